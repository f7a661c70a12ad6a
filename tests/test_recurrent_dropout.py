"""Recurrent (Gal & Ghahramani) and variational dropout on the recurrent layers."""

import numpy as np
import pytest

import rnnkit
from rnnkit.gradcheck import numerical_gradient, rel_error
from rnnkit.sequence import forward as direction_forward

CASES = [(rnnkit.RNN, {}), (rnnkit.LSTM, {}), (rnnkit.GRU, {}),
         (rnnkit.GRU, {"reset_after": False})]


@pytest.mark.parametrize("cls,kw", CASES)
def test_gradients_with_recurrent_and_variational_dropout(cls, kw):
    rng = np.random.default_rng(0)
    layer = cls(3, 3, 2, bidirectional=True, dropout=0.3, recurrent_dropout=0.4,
                variational=True, dtype=np.float64, rng=1, **kw)
    x = rng.normal(size=(2, 4, 3))
    R = rng.normal(size=(2, 4, 6))
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    saved = layer.rng.bit_generator.state

    def loss():
        layer.rng.bit_generator.state = saved  # the same dropout masks every time
        return float((layer.forward(x, mask=mask)[0] * R).sum())

    layer.rng.bit_generator.state = saved
    _, _, cache = layer.forward(x, mask=mask)
    dx, _, grads = layer.backward(R, cache)
    for k, p in layer.params.items():
        assert rel_error(numerical_gradient(loss, p), grads[k]) < 1e-7, k
    assert rel_error(numerical_gradient(loss, x), dx) < 1e-7


@pytest.mark.parametrize("cls,kw", CASES)
def test_recurrent_mask_is_one_mask_per_sequence_applied_to_the_recurrent_input(cls, kw):
    """Equal to running the kernel with (h * m) feeding W_h at every step, same m."""
    rng = np.random.default_rng(1)
    layer = cls(2, 4, recurrent_dropout=0.5, dtype=np.float64, rng=3, **kw)
    x = rng.normal(size=(3, 6, 2))
    saved = layer.rng.bit_generator.state
    out, _, cache = layer.forward(x)
    rec_mask = cache.dirs[0][0].rec_mask
    assert rec_mask.shape == (3, 4)
    assert set(np.unique(rec_mask)) <= {0.0, 2.0}
    # the mask is drawn from the layer's generator: re-drawing gives the same one
    layer.rng.bit_generator.state = saved
    again = (layer.rng.random((3, 4)) < 0.5) / 0.5
    np.testing.assert_array_equal(rec_mask, again)
    p = {k[3:]: v for k, v in layer.params.items()}
    c0 = np.zeros((3, 4)) if cls is rnnkit.LSTM else None
    ref = direction_forward(layer.kind, p, x.transpose(1, 0, 2).copy(), np.zeros((3, 4)), c0,
                            rec_mask=rec_mask, **layer._kernel_options())
    np.testing.assert_allclose(out, ref.hs[1:].transpose(1, 0, 2), rtol=0, atol=1e-14)
    # and it is not the same as no dropout
    plain = direction_forward(layer.kind, p, x.transpose(1, 0, 2).copy(), np.zeros((3, 4)), c0,
                              **layer._kernel_options())
    assert not np.allclose(out, plain.hs[1:].transpose(1, 0, 2))


def test_variational_dropout_reuses_the_mask_at_every_step():
    layer = rnnkit.LSTM(2, 5, 2, dropout=0.5, variational=True, rng=0)
    x = np.random.default_rng(0).normal(size=(4, 7, 2)).astype(np.float32)
    _, _, cache = layer.forward(x)
    drop = cache.drop[0]
    assert drop.shape == (1, 4, 5)  # (1, B, F): broadcast over all T steps
    per_step = rnnkit.LSTM(2, 5, 2, dropout=0.5, rng=0)
    assert per_step.forward(x)[2].drop[0].shape == (7, 4, 5)


def test_eval_mode_turns_both_dropouts_off():
    x = np.random.default_rng(2).normal(size=(2, 5, 3))
    a = rnnkit.GRU(3, 4, 2, dropout=0.5, recurrent_dropout=0.5, dtype=np.float64, rng=7).eval()
    b = rnnkit.GRU(3, 4, 2, dtype=np.float64, rng=7)
    np.testing.assert_array_equal(a.forward(x)[0], b.forward(x)[0])


@pytest.mark.parametrize("bad", [1.0, -0.1, "0.5"])
def test_recurrent_dropout_is_validated(bad):
    with pytest.raises((ValueError, TypeError), match="recurrent_dropout"):
        rnnkit.LSTM(2, 3, recurrent_dropout=bad)
