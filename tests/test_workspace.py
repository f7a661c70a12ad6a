"""The engine's pool of reusable arrays never hands out an array that is still in use."""

import numpy as np
import pytest

import rnnkit
from rnnkit import _workspace


@pytest.fixture(autouse=True)
def fresh_pool():
    _workspace.clear()
    yield
    _workspace.clear()


def test_free_array_is_reused():
    a = _workspace.empty((64, 64, 8), np.float32)
    addr = a.__array_interface__["data"][0]
    del a
    b = _workspace.empty((64, 64, 8), np.float32)
    assert b.__array_interface__["data"][0] == addr


@pytest.mark.parametrize("hold", ["array", "view", "reshape", "transpose"])
def test_array_in_use_is_not_reused(hold):
    a = _workspace.empty((64, 64, 8), np.float32)
    a[...] = 1.0
    held = {"array": a, "view": a[3:], "reshape": a.reshape(-1), "transpose": a.T}[hold]
    del a
    b = _workspace.empty((64, 64, 8), np.float32)
    b[...] = 2.0
    assert np.all(held == 1.0)


def test_small_arrays_and_other_dtypes_are_separate():
    a = _workspace.empty((4, 4), np.float32)  # below MIN_BYTES: plain np.empty
    assert _workspace.pooled_bytes() == 0
    b = _workspace.empty((64, 64, 8), np.float64)
    del b
    c = _workspace.empty((64, 64, 8), np.float32)
    assert c.dtype == np.float32 and a.dtype == np.float32


def test_pool_is_bounded(monkeypatch):
    monkeypatch.setattr(_workspace, "MAX_BYTES", 3 * 64 * 64 * 8 * 4)
    for n in range(10):
        _workspace.empty((64 + n, 64, 8), np.float32)
    assert _workspace.pooled_bytes() <= _workspace.MAX_BYTES + 74 * 64 * 8 * 4


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_interleaved_forwards_and_backwards_match_separate_ones(kind):
    """Caches stay valid while later calls run: forward A, forward B, backward B, backward A
    equals each pair run on its own (the pool must not reuse A's arrays for B)."""
    rng = np.random.default_rng(0)
    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[kind]
    layer = cls(5, 40, num_layers=2, dtype=np.float64, rng=rng)
    xa, xb = rng.standard_normal((2, 16, 30, 5))
    da, db = rng.standard_normal((2, 16, 30, 40))

    def alone(x, d):
        out, _, cache = layer.forward(x)
        return out.copy(), layer.backward(d, cache)

    ref_a, ref_b = alone(xa, da), alone(xb, db)
    out_a, _, cache_a = layer.forward(xa)
    out_b, _, cache_b = layer.forward(xb)
    got_b = layer.backward(db, cache_b)
    got_a = layer.backward(da, cache_a)
    again_a = layer.backward(da, cache_a)  # a cache can be used twice
    np.testing.assert_array_equal(out_a, ref_a[0])
    np.testing.assert_array_equal(out_b, ref_b[0])
    for (ref, got) in ((ref_a[1], got_a), (ref_b[1], got_b), (ref_a[1], again_a)):
        np.testing.assert_array_equal(got[0], ref[0])
        for k in ref[2]:
            np.testing.assert_array_equal(got[2][k], ref[2][k])
