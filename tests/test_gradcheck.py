"""Finite-difference gradient checks (float64) of every cell and layer configuration.

The loss is a random linear functional of all outputs, L = sum(out*R1) + sum(h_n*R2)
(+ sum(c_n*R3)), so both ``dout`` and ``dstate`` are exercised in every check. Every
parameter, the input and the initial state are checked; the relative error must be
below 1e-6 (a correct float64 backward gives ~1e-9).
"""

import numpy as np
import pytest
from helpers import (
    CELL_KINDS,
    KIND_IDS,
    LAYER_KINDS,
    cell_gradcheck,
    layer_gradcheck,
    linear_loss,
    make_layer,
    probes,
    random_state,
)

B, T, D, H = 3, 4, 3, 2
kinds = pytest.mark.parametrize(("cls", "kw"), LAYER_KINDS, ids=KIND_IDS)


def data(seed=0, B=B, T=T, D=D):
    return np.random.default_rng(seed).standard_normal((B, T, D))


# ---------------------------------------------------------------------- cells
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize(("cls", "kw"), CELL_KINDS, ids=KIND_IDS)
def test_cell(cls, kw, bias):
    cell = cls(D, H, bias=bias, dtype=np.float64, rng=0, **kw)
    rng = np.random.default_rng(1)
    for p in cell.params.values():
        p[...] = rng.uniform(-0.7, 0.7, p.shape)
    assert ("b" in cell.params) == bias
    x = rng.standard_normal((B, D))
    h = rng.uniform(-0.5, 0.5, (B, H))
    state = (h, rng.uniform(-0.5, 0.5, (B, H))) if cell._layer.kind == "lstm" else h
    cell_gradcheck(cell, x, state)


# ---------------------------------------------------------------------- layers
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@kinds
def test_single_layer(cls, kw, bias):
    layer = make_layer(cls, kw, D, H, bias=bias)
    assert any(k.endswith(".b") for k in layer.params) == bias
    layer_gradcheck(layer, data(), random_state(layer, B, np.random.default_rng(2)))


@kinds
def test_one_input_feature(cls, kw):
    """D = 1 (a univariate series): the input side is formed as x * W_x, not by matmul."""
    layer = make_layer(cls, kw, 1, H)
    layer_gradcheck(layer, data(4, D=1), random_state(layer, B, np.random.default_rng(5)))


@pytest.mark.parametrize("num_layers", [2, 3])
@kinds
def test_stacked(cls, kw, num_layers):
    layer = make_layer(cls, kw, D, H, num_layers=num_layers)
    layer_gradcheck(layer, data(1), random_state(layer, B, np.random.default_rng(3)))


@pytest.mark.parametrize("merge", ["concat", "sum", "mul", "ave"])
@kinds
def test_bidirectional(cls, kw, merge):
    layer = make_layer(cls, kw, D, H, bidirectional=True, merge=merge)
    layer_gradcheck(layer, data(2), random_state(layer, B, np.random.default_rng(4)))


# lengths 1 and T (full) and one in between; B = 3
LENGTHS = np.array([2, 1, T])


def length_mask(lengths, T=T):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


@pytest.mark.parametrize("how", ["mask", "lengths"])
@kinds
def test_masked(cls, kw, how):
    layer = make_layer(cls, kw, D, H)
    args = {"mask": length_mask(LENGTHS)} if how == "mask" else {"lengths": LENGTHS}
    errors = layer_gradcheck(layer, data(3), random_state(layer, B, np.random.default_rng(5)),
                             **args)
    assert set(errors) >= {"x", "h0_state"}


def test_masked_with_gaps():
    """A mask that is not a prefix (valid steps 0, 2, 3) is checked too."""
    layer = make_layer(*LAYER_KINDS[2], D, H, bidirectional=True)
    mask = np.array([[True, False, True, True], [True, True, True, True], [False, True, False,
                                                                             False]])
    layer_gradcheck(layer, data(4), random_state(layer, B, np.random.default_rng(6)), mask=mask)


@pytest.mark.parametrize("merge", ["concat", "mul"])
@kinds
def test_masked_bidirectional_stacked(cls, kw, merge):
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=True, merge=merge)
    layer_gradcheck(layer, data(5), random_state(layer, B, np.random.default_rng(7)),
                    lengths=LENGTHS)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@kinds
def test_learned_initial_state(cls, kw, bidirectional):
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=bidirectional,
                       initial_state="learned")
    assert layer.params["h0"].shape == (2 * layer.num_directions, H)
    assert np.abs(layer.params["h0"]).min() > 0  # randomised, non-zero
    errors = layer_gradcheck(layer, data(6), None, lengths=LENGTHS)
    assert "h0" in errors and ("c0" in errors) == (layer.kind == "lstm")


@pytest.mark.parametrize(("bidirectional", "merge"),
                         [(False, "concat"), (True, "concat"), (True, "sum"), (True, "mul"),
                          (True, "ave")], ids=["uni", "bi-concat", "bi-sum", "bi-mul", "bi-ave"])
@kinds
def test_return_sequences_false(cls, kw, bidirectional, merge):
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=bidirectional, merge=merge,
                       return_sequences=False)
    x = data(7)
    out, _, _ = layer.forward(x)
    assert out.shape == (B, layer.output_size)
    layer_gradcheck(layer, x, random_state(layer, B, np.random.default_rng(8)),
                    lengths=LENGTHS)


@kinds
def test_dstate_and_dout_are_both_used(cls, kw):
    """The gradient with both dout and dstate is the sum of the two separate gradients."""
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=True)
    x = data(8)
    s0 = random_state(layer, B, np.random.default_rng(9))
    out, st, cache = layer.forward(x, s0)
    R1, Rs = probes(out, st, np.random.default_rng(10))
    both = layer.backward(R1, cache, dstate=Rs)
    only_out = layer.backward(R1, cache)
    only_state = layer.backward(None, cache, dstate=Rs)
    np.testing.assert_allclose(both[0], only_out[0] + only_state[0], rtol=1e-12, atol=1e-14)
    for k in layer.params:
        np.testing.assert_allclose(both[2][k], only_out[2][k] + only_state[2][k],
                                   rtol=1e-12, atol=1e-14)
    # and the state's gradient is not negligible
    assert np.abs(only_state[0]).max() > 1e-3


# ---------------------------------------------------------------------- dropout
@kinds
def test_dropout_training_gradcheck_with_fixed_mask(cls, kw):
    layer = make_layer(cls, kw, D, H, num_layers=3, dropout=0.4)
    layer.train()
    x = data(11)
    s0 = random_state(layer, B, np.random.default_rng(12))
    # the mask is in the cache, and re-seeding the layer's rng reproduces it
    layer.rng = np.random.default_rng(5)
    _, _, c1 = layer.forward(x, s0)
    layer.rng = np.random.default_rng(5)
    _, _, c2 = layer.forward(x, s0)
    assert c1.drop[-1] is None
    for a, b in zip(c1.drop[:-1], c2.drop[:-1], strict=True):
        assert a is not None and (a == 0).any() and (a > 0).any()
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a[a > 0], 1 / 0.6)
    layer_gradcheck(layer, x, s0, rng_seed=5)


@kinds
def test_dropout_is_identity_in_eval_mode(cls, kw):
    layer = make_layer(cls, kw, D, H, num_layers=2, dropout=0.5)
    reference = make_layer(cls, kw, D, H, num_layers=2, dropout=0.0)
    for k, v in layer.params.items():
        reference.params[k][...] = v
    x = data(13)
    s0 = random_state(layer, B, np.random.default_rng(14))
    train_out, _, _ = layer.train().forward(x, s0)
    out, st, cache = layer.eval().forward(x, s0)
    ref_out, ref_st, ref_cache = reference.forward(x, s0)
    assert all(d is None for d in cache.drop)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(st[0] if isinstance(st, tuple) else st,
                                  ref_st[0] if isinstance(ref_st, tuple) else ref_st)
    assert not np.allclose(train_out, out)  # dropout is active in training mode
    R1, Rs = probes(out, st, np.random.default_rng(15))
    g = layer.backward(R1, cache, Rs)
    g_ref = reference.backward(R1, ref_cache, Rs)
    np.testing.assert_array_equal(g[0], g_ref[0])
    for k in layer.params:
        np.testing.assert_array_equal(g[2][k], g_ref[2][k])
    assert linear_loss(out, st, R1, Rs) == linear_loss(ref_out, ref_st, R1, Rs)
    # eval mode is also a gradient-correct function
    layer_gradcheck(layer, x, s0)
