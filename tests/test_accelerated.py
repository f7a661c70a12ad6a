"""The compiled backend (rnnkit.accelerated, numba) against the numpy engine.

Every configuration runs twice, with the compiled step functions and inside
``rnnkit.accelerated.disabled()`` (the numpy engine of rnnkit.cells), and every output,
state and gradient must agree: to 1e-12 relative in float64, to 1e-5 in float32 (the
kernels' float32 tanh is a rational approximation with a few units in the last place of
error, and they sum in their own order).
"""

import numpy as np
import pytest

pytest.importorskip("numba")

import rnnkit  # noqa: E402
from rnnkit import accelerated, cells, sequence  # noqa: E402
from rnnkit.models import LanguageModel  # noqa: E402
from rnnkit.optim import SGD, Adam  # noqa: E402

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
FORMS = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}),
         ("gru", {"reset_after": True}), ("gru", {"reset_after": False})]
FORM_IDS = ["rnn-tanh", "rnn-relu", "lstm", "gru", "gru-reset-before"]


def assert_close(a, b, dtype, what=""):
    """a equals b to the dtype's tolerance, relative to b's largest magnitude."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, what
    scale = max(float(np.abs(b).max()), 1e-30) if b.size else 1.0
    err = float(np.abs(a - b).max()) / scale if b.size else 0.0
    assert err <= RTOL[dtype], f"{what}: relative difference {err:.3g}"


def both(fn):
    """fn() with the compiled kernels, then on the numpy engine: (compiled, numpy)."""
    assert accelerated.enabled()
    a = fn()
    with accelerated.disabled():
        assert accelerated.kernels() is None
        b = fn()
    return a, b


def test_switch():
    assert accelerated.available(), accelerated.unavailable_reason()
    assert accelerated.unavailable_reason() is None
    assert accelerated.kernels(np.float32) is not None
    assert accelerated.kernels(np.float16) is None  # the numpy engine for other dtypes
    with accelerated.disabled():
        assert not accelerated.enabled() and accelerated.kernels() is None
    assert accelerated.enabled()
    assert accelerated.set_enabled(False) is True and not accelerated.enabled()
    assert accelerated.set_enabled(True) is False
    with pytest.raises(TypeError, match="flag must be True or False"):
        accelerated.set_enabled(1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh(dtype):
    from rnnkit.accelerated import _kernels

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(5001) * s for s in (1e-4, 0.1, 1, 3, 10)]
                       + [np.array([0, -0.0, 1e-30, 7.9, 7.91, -7.91, 9, 20, 1e30, -1e30,
                                    np.inf, -np.inf])]).astype(dtype)
    out = np.empty_like(x)
    _kernels.tanh_array(x, out)
    exact = np.tanh(x.astype(np.float64))
    rel = np.abs(out - exact) / np.maximum(np.abs(exact), np.finfo(dtype).tiny)
    assert rel.max() <= (5e-7 if dtype == np.float32 else 1e-15)
    nan = np.array([np.nan], dtype=dtype)
    _kernels.tanh_array(nan, out[:1])
    assert np.isnan(out[0])


def _random_direction(kind, kw, dtype, B, T, D, H, bias, rng):
    G = sequence.GATES[kind]
    p = {"W_x": rng.uniform(-0.6, 0.6, (D, G * H)), "W_h": rng.uniform(-0.6, 0.6, (H, G * H))}
    if bias:
        p["b"] = rng.uniform(-0.5, 0.5, G * H)
        if kind == "gru" and kw.get("reset_after", True):
            p["b_hn"] = rng.uniform(-0.5, 0.5, H)
    return {k: v.astype(dtype) for k, v in p.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("kind", "kw"), FORMS, ids=FORM_IDS)
@pytest.mark.parametrize(("B", "mask", "rec", "one_hot", "bias"), [
    (3, False, False, False, True),
    (17, True, False, False, True),
    (5, False, True, False, False),
    (8, True, True, True, True),
    (1, False, False, True, True),
])
def test_direction_forward_and_backward(kind, kw, dtype, B, mask, rec, one_hot, bias):
    rng = np.random.default_rng(B)
    T, D, H = 6, 5, 7
    p = _random_direction(kind, kw, dtype, B, T, D, H, bias, rng)
    x = None if one_hot else rng.standard_normal((T, B, D)).astype(dtype)
    ids = rng.integers(0, D, (T, B)) if one_hot else None
    h0 = rng.uniform(-0.5, 0.5, (B, H)).astype(dtype)
    c0 = rng.uniform(-0.5, 0.5, (B, H)).astype(dtype) if kind == "lstm" else None
    m = (rng.random((T, B)) < 0.7) if mask else None
    rm = ((rng.random((B, H)) < 0.6) / 0.6).astype(dtype) if rec else None
    dhs = rng.standard_normal((T, B, H)).astype(dtype)
    dh_last = rng.standard_normal((B, H)).astype(dtype)
    dc_last = rng.standard_normal((B, H)).astype(dtype) if kind == "lstm" else None

    def run():
        tr = sequence.forward(kind, p, x, h0, c0, m, rm, ids=ids, **kw)
        dx, dh0, dc0, g = sequence.backward(tr, dhs, dh_last, dc_last)
        out = {"hs": tr.hs, "dh0": dh0, **{"d" + k: v for k, v in g.items()}}
        if dx is not None:
            out["dx"] = dx
        if kind == "lstm":
            out.update(cs=tr.cs, dc0=dc0)
        return out

    fast, ref = both(run)
    assert fast.keys() == ref.keys()
    for k in ref:
        assert_close(fast[k], ref[k], dtype, k)


@pytest.mark.parametrize(("cls", "kw"), [(rnnkit.LSTM, {}), (rnnkit.GRU, {}),
                                         (rnnkit.RNN, {"nonlinearity": "relu"})])
def test_deep_bidirectional_layer(cls, kw):
    rng = np.random.default_rng(3)
    layer = cls(4, 6, num_layers=2, bidirectional=True, dtype=np.float32, rng=1, **kw)
    x = rng.standard_normal((5, 9, 4)).astype(np.float32)
    lengths = np.array([9, 4, 1, 7, 9])
    dout = rng.standard_normal((5, 9, 12)).astype(np.float32)

    def run():
        out, _, cache = layer.forward(x, lengths=lengths)
        dx, _, g = layer.backward(dout, cache)
        return out, dx, g

    (o1, dx1, g1), (o2, dx2, g2) = both(run)
    assert_close(o1, o2, np.float32, "out")
    assert_close(dx1, dx2, np.float32, "dx")
    for k in g2:
        assert_close(g1[k], g2[k], np.float32, k)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_language_model_training_and_generation(cell):
    """The gradients of a training step, then three steps of SGD and the one-step path.
    (Not Adam: its update normalises every gradient entry, so that two entries of nearly
    zero that differ in their rounding move a parameter by up to 2 lr apart; Adam's own
    kernel is compared on its own below.)"""
    def run():
        model = LanguageModel(11, cell=cell, hidden_size=16, num_layers=2,
                              dtype=np.float32, rng=0)
        opt = SGD(model.params, lr=0.5)
        rng = np.random.default_rng(0)
        first = None
        for _ in range(3):
            ids = rng.integers(0, 11, (4, 12))
            _, grads, _ = model.train_batch({"x": ids, "y": np.roll(ids, -1, axis=1)})
            first = first or {"d" + k: v.copy() for k, v in grads.items()}
            opt.step(grads)
        logits, _ = model.step(np.array([1, 2]), model.initial_state(2)[0])
        return {**first, **{k: v.copy() for k, v in model.params.items()}, "logits": logits}

    fast, ref = both(run)
    for k in ref:
        assert_close(fast[k], ref[k], np.float32, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_update(dtype, weight_decay):
    shapes = {"w": (7, 9), "b": (9,)}

    def run():
        params = {k: np.random.default_rng(9).standard_normal(s).astype(dtype)
                  for k, s in shapes.items()}
        opt = Adam(params, lr=1e-2, weight_decay=weight_decay)
        for step in range(4):
            opt.step({k: np.random.default_rng(step).standard_normal(s).astype(dtype)
                      for k, s in shapes.items()})
        return params

    fast, ref = both(run)
    for k in ref:
        assert_close(fast[k], ref[k], dtype, k)


def test_results_are_deterministic():
    rng = np.random.default_rng(4)
    p = _random_direction("lstm", {}, np.float32, 16, 20, 8, 32, True, rng)
    x = rng.standard_normal((20, 16, 8)).astype(np.float32)
    h0 = np.zeros((16, 32), np.float32)

    def run():
        tr = sequence.forward("lstm", p, x, h0, h0)
        return tr.hs, sequence.backward(tr, np.ones_like(tr.hs[1:]))[3]

    (h1, g1), (h2, g2) = run(), run()
    np.testing.assert_array_equal(h1, h2)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


def test_the_kernels_run(monkeypatch):
    """The comparisons above would pass trivially if the engine never took the compiled
    path: count the calls of the compiled step functions."""
    steps = accelerated.kernels()
    calls = []
    for name in ("lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
                 "rnn_forward", "rnn_backward", "one_hot_weight_gradient"):
        real = getattr(steps, name)

        def counting(*a, _real=real, _name=name, **k):
            calls.append(_name)
            return _real(*a, **k)

        monkeypatch.setattr(steps, name, counting)
    for cls in (rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN):
        layer = cls(3, 4, rng=0)
        out, _, cache = layer.forward(np.zeros((2, 5), dtype=np.int64) + 1)
        layer.backward(np.ones_like(out), cache)
    assert sorted(set(calls)) == sorted(["lstm_forward", "lstm_backward", "gru_forward",
                                         "gru_backward", "rnn_forward", "rnn_backward",
                                         "one_hot_weight_gradient"])
    assert calls.count("lstm_forward") == 5 and calls.count("lstm_backward") == 5
    with accelerated.disabled():
        calls.clear()
        layer.forward(np.zeros((2, 5, 3), np.float32))
        assert calls == []


def test_the_numpy_engine_is_the_cells():
    """Without the kernels, the sequence loop runs rnnkit.cells' step functions."""
    with accelerated.disabled():
        assert sequence._ops(np.float32) is cells
    assert sequence._ops(np.float32) is accelerated.kernels()
