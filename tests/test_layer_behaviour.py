"""Behaviour of the layers: cell-versus-layer equivalence, masks, caches, step(), initial
states, initialisation, dtypes and seeds (float64 comparisons, tiny sizes)."""

import numpy as np
import pytest
from helpers import CELL_KINDS, KIND_IDS, KINDS, LAYER_KINDS, make_layer, probes, random_state

import rnnkit

B, T, D, H = 3, 4, 3, 2
kinds = pytest.mark.parametrize(("cls", "kw"), LAYER_KINDS, ids=KIND_IDS)
TIGHT = {"rtol": 1e-11, "atol": 1e-13}


def data(seed=0, B=B, T=T):
    return np.random.default_rng(seed).standard_normal((B, T, D))


def arrays(state):
    return list(state) if isinstance(state, tuple) else [state]


def pick(state, idx):
    """Index the batch axis of a state (one array or the LSTM pair)."""
    if isinstance(state, tuple):
        return tuple(s[:, idx] for s in state)
    return state[:, idx]


# ---------------------------------------------------------------------- cell vs layer
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize(("layer_cls", "cell_cls", "kw"),
                         [(k[0], k[1], k[2]) for k in KINDS], ids=KIND_IDS)
def test_hand_loop_over_cell_equals_layer(layer_cls, cell_cls, kw, bias):
    layer = make_layer(layer_cls, kw, D, H, bias=bias)
    cell = cell_cls(D, H, bias=bias, dtype=np.float64, rng=99, **kw)
    assert set(cell.params) == {k[3:] for k in layer.params}
    for k in cell.params:
        cell.params[k] = layer.params["l0." + k].copy()
    lstm = layer.kind == "lstm"
    x = data(1)
    s0 = random_state(layer, B, np.random.default_rng(2))
    out, sT, cache = layer.forward(x, s0)
    R1, Rs = probes(out, sT, np.random.default_rng(3))
    dx, ds0, grads = layer.backward(R1, cache, Rs)

    # forward by hand
    s = tuple(a[0] for a in s0) if lstm else s0[0]  # the state of the only layer
    outs, caches = [], []
    for t in range(T):
        s, c = cell.forward(x[:, t], s)
        outs.append(s[0] if lstm else s)
        caches.append(c)
    np.testing.assert_allclose(np.stack(outs, axis=1), out, **TIGHT)
    for a, b in zip(arrays(s), arrays(sT), strict=True):
        np.testing.assert_allclose(a, b[0], **TIGHT)

    # backward by hand, chained through the state
    ds = [r[0].copy() for r in arrays(Rs)]  # gradient w.r.t. the state after the last step
    dx_loop = np.zeros_like(x)
    g_loop = {k: np.zeros_like(v) for k, v in cell.params.items()}
    for t in range(T - 1, -1, -1):
        ds[0] = ds[0] + R1[:, t]  # the output of step t is its hidden state
        dxt, dprev, g = cell.backward(tuple(ds) if lstm else ds[0], caches[t])
        dx_loop[:, t] = dxt
        ds = arrays(dprev)
        for k in g:
            g_loop[k] += g[k]
    np.testing.assert_allclose(dx_loop, dx, **TIGHT)
    for a, b in zip(ds, arrays(ds0), strict=True):
        np.testing.assert_allclose(a, b[0], **TIGHT)
    for k, v in g_loop.items():
        np.testing.assert_allclose(v, grads["l0." + k], **TIGHT)


# ---------------------------------------------------------------------- masks
LENGTHS = np.array([2, 1, T])

MASK_CONFIGS = {
    "uni": {},
    "stacked": {"num_layers": 2},
    "bi": {"bidirectional": True},
    "bi-stacked-mul": {"num_layers": 2, "bidirectional": True, "merge": "mul"},
    "bi-stacked-final": {"num_layers": 2, "bidirectional": True, "return_sequences": False},
}


@pytest.mark.parametrize("config", list(MASK_CONFIGS))
@kinds
def test_masked_batch_equals_sequences_one_by_one(cls, kw, config):
    layer = make_layer(cls, kw, D, H, **MASK_CONFIGS[config])
    rng = np.random.default_rng(4)
    x = data(5)
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    x[~mask] = 5.0 * rng.standard_normal(x[~mask].shape)  # padding must be ignored
    s0 = random_state(layer, B, rng)
    out, sT, cache = layer.forward(x, s0, mask=mask)
    R1, Rs = probes(out, sT, rng)  # non-zero at padded steps too: they must be ignored
    dx, ds0, grads = layer.backward(R1, cache, Rs)

    # lengths= gives exactly the same thing as mask=
    out_l, sT_l, cache_l = layer.forward(x, s0, lengths=LENGTHS)
    np.testing.assert_array_equal(out_l, out)
    np.testing.assert_array_equal(layer.backward(R1, cache_l, Rs)[0], dx)

    g_sum = {k: np.zeros_like(v) for k, v in grads.items()}
    for b, n in enumerate(LENGTHS):
        sb = pick(s0, slice(b, b + 1))
        ob, sTb, cb = layer.forward(x[b : b + 1, :n], sb)
        if layer.return_sequences:
            np.testing.assert_allclose(out[b, :n], ob[0], **TIGHT)
            assert (out[b, n:] == 0).all()
            R1b = R1[b : b + 1, :n]
        else:
            np.testing.assert_allclose(out[b], ob[0], **TIGHT)
            R1b = R1[b : b + 1]
        for a, c in zip(arrays(sT), arrays(sTb), strict=True):
            np.testing.assert_allclose(a[:, b], c[:, 0], **TIGHT)
        dxb, ds0b, gb = layer.backward(R1b, cb, pick(Rs, slice(b, b + 1)))
        np.testing.assert_allclose(dx[b, :n], dxb[0], **TIGHT)
        assert (dx[b, n:] == 0).all()
        for a, c in zip(arrays(ds0), arrays(ds0b), strict=True):
            np.testing.assert_allclose(a[:, b], c[:, 0], **TIGHT)
        for k in g_sum:
            g_sum[k] += gb[k]
    for k in grads:
        np.testing.assert_allclose(grads[k], g_sum[k], **TIGHT)


@kinds
def test_all_true_mask_equals_no_mask(cls, kw):
    layer = make_layer(cls, kw, D, H, bidirectional=True)
    x = data(6)
    a, _, _ = layer.forward(x)
    b, _, _ = layer.forward(x, mask=np.ones((B, T), dtype=bool))
    c, _, _ = layer.forward(x, lengths=[T] * B)
    d, _, _ = layer.forward(x, mask=np.ones((B, T), dtype=int))
    for o in (b, c, d):
        np.testing.assert_array_equal(a, o)


# ---------------------------------------------------------------------- caches
@kinds
def test_two_forwards_then_backwards_in_reverse_order(cls, kw):
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=True, dropout=0.3)
    x1, x2 = data(7), data(8)
    s1 = random_state(layer, B, np.random.default_rng(9))
    mask = np.arange(T)[None, :] < LENGTHS[:, None]

    layer.rng = np.random.default_rng(10)
    o1, st1, c1 = layer.forward(x1, s1, mask=mask)
    o2, st2, c2 = layer.forward(x2)
    R1a, Rsa = probes(o1, st1, np.random.default_rng(11))
    R1b, Rsb = probes(o2, st2, np.random.default_rng(12))
    g2 = layer.backward(R1b, c2, Rsb)
    g1 = layer.backward(R1a, c1, Rsa)
    g1_again = layer.backward(R1a, c1, Rsa)  # backward leaves the cache intact

    layer.rng = np.random.default_rng(10)  # the same dropout masks, drawn in the same order
    p1o, _, p1c = layer.forward(x1, s1, mask=mask)
    p1 = layer.backward(R1a, p1c, Rsa)
    p2o, _, p2c = layer.forward(x2)
    p2 = layer.backward(R1b, p2c, Rsb)

    np.testing.assert_array_equal(o1, p1o)
    np.testing.assert_array_equal(o2, p2o)
    for got, want in ((g1, p1), (g2, p2), (g1_again, p1)):
        np.testing.assert_array_equal(got[0], want[0])
        for a, b in zip(arrays(got[1]), arrays(want[1]), strict=True):
            np.testing.assert_array_equal(a, b)
        assert set(got[2]) == set(layer.params)
        for k in layer.params:
            np.testing.assert_array_equal(got[2][k], want[2][k])
    assert not np.allclose(g1[2]["l0.W_x"], g2[2]["l0.W_x"])


# ---------------------------------------------------------------------- step
@pytest.mark.parametrize("initial", ["given", "zeros", "learned"])
@pytest.mark.parametrize("num_layers", [1, 2])
@kinds
def test_step_repeated_equals_forward(cls, kw, num_layers, initial):
    layer = make_layer(cls, kw, D, H, num_layers=num_layers,
                       initial_state="learned" if initial == "learned" else "zeros")
    x = data(13)
    s0 = random_state(layer, B, np.random.default_rng(14)) if initial == "given" else None
    out, sT, _ = layer.forward(x, s0)
    s = s0
    for t in range(T):
        y, s = layer.step(x[:, t], s)
        np.testing.assert_allclose(y, out[:, t], **TIGHT)
        assert y.shape == (B, H)
    for a, b in zip(arrays(s), arrays(sT), strict=True):
        np.testing.assert_allclose(a, b, **TIGHT)


# ---------------------------------------------------------------------- initial state
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@kinds
def test_learned_initial_state(cls, kw, bidirectional):
    opts = {"num_layers": 2, "bidirectional": bidirectional, "dtype": np.float64}
    learned = cls(D, H, rng=20, initial_state="learned", **kw, **opts)
    zeros = cls(D, H, rng=20, **kw, **opts)
    assert set(learned.params) - set(zeros.params) == (
        {"h0", "c0"} if learned.kind == "lstm" else {"h0"})
    for k, v in zeros.params.items():
        np.testing.assert_array_equal(learned.params[k], v)
    x = data(21)
    # a zero learned state is the zero state
    assert not learned.params["h0"].any()
    np.testing.assert_array_equal(learned.forward(x)[0], zeros.forward(x)[0])

    # a non-zero learned state is used when no state is given...
    rng = np.random.default_rng(22)
    n = 2 * learned.num_directions
    for k in ("h0", "c0"):
        if k in learned.params:
            learned.params[k][...] = rng.uniform(-0.5, 0.5, (n, H))
    as_state = tuple(np.repeat(learned.params[k][:, None], B, axis=1)
                     for k in ("h0", "c0") if k in learned.params)
    as_state = as_state if learned.kind == "lstm" else as_state[0]
    out_l, st_l, cache_l = learned.forward(x)
    out_z, st_z, cache_z = zeros.forward(x, as_state)
    np.testing.assert_allclose(out_l, out_z, **TIGHT)
    assert not np.allclose(out_l, zeros.forward(x)[0])
    R1, Rs = probes(out_l, st_l, rng)
    _, ds0, g = learned.backward(R1, cache_l, Rs)
    # ...and its gradient is the state gradient summed over the batch
    for k, d in zip(("h0", "c0"), arrays(ds0), strict=False):
        np.testing.assert_allclose(g[k], d.sum(axis=1), **TIGHT)
        assert np.abs(g[k]).max() > 1e-6

    # an explicit state overrides the learned one (which then gets a zero gradient)
    s = random_state(learned, B, rng)
    out_e, st_e, cache_e = learned.forward(x, s)
    np.testing.assert_allclose(out_e, zeros.forward(x, s)[0], **TIGHT)
    _, _, g = learned.backward(R1, cache_e, Rs)
    assert not g["h0"].any()
    assert g["h0"].shape == learned.params["h0"].shape


# ---------------------------------------------------------------------- initialisation
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_forget_bias_initialises_only_the_forget_block(bidirectional):
    opts = {"num_layers": 2, "bidirectional": bidirectional, "rng": 3}
    lstm = rnnkit.LSTM(D, H, forget_bias=2.5, **opts)
    plain = rnnkit.LSTM(D, H, forget_bias=0.0, **opts)
    default = rnnkit.LSTM(D, H, **opts)
    biases = [k for k in lstm.params if k.endswith(".b")]
    assert len(biases) == 2 * lstm.num_directions
    for k in biases:
        b = lstm.params[k]
        assert b.shape == (4 * H,)
        np.testing.assert_array_equal(b[H : 2 * H], 2.5)
        assert not b[:H].any() and not b[2 * H :].any()  # i, g, o blocks stay zero
        assert not plain.params[k].any()
        np.testing.assert_array_equal(default.params[k][H : 2 * H], 1.0)
    for k in lstm.params:  # the weights are untouched
        if k not in biases:
            np.testing.assert_array_equal(lstm.params[k], plain.params[k])
    cell = rnnkit.LSTMCell(D, H, forget_bias=-1.5)
    np.testing.assert_array_equal(cell.params["b"][H : 2 * H], -1.5)
    assert not cell.params["b"][:H].any() and not cell.params["b"][2 * H :].any()
    for cls, kw in ((rnnkit.RNN, {}), (rnnkit.GRU, {})):
        layer = cls(D, H, **kw)
        assert all(not v.any() for k, v in layer.params.items() if k.endswith(("b", "b_hn")))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@kinds
def test_dtype_is_preserved(cls, kw, dtype):
    layer = cls(D, H, num_layers=2, bidirectional=True, initial_state="learned", dtype=dtype,
                rng=0, **kw)
    assert layer.dtype == dtype
    assert all(v.dtype == dtype for v in layer.params.values())
    other = np.float64 if dtype == np.float32 else np.float32
    x = data(30).astype(other)  # input of the other float type is converted
    out, st, cache = layer.forward(x, lengths=LENGTHS)
    assert out.dtype == dtype and all(s.dtype == dtype for s in arrays(st))
    R1, Rs = probes(out, st, np.random.default_rng(31))
    dx, ds0, grads = layer.backward(R1.astype(other), cache,
                                    tuple(r.astype(other) for r in arrays(Rs))
                                    if layer.kind == "lstm" else Rs.astype(other))
    assert dx.dtype == dtype and all(s.dtype == dtype for s in arrays(ds0))
    assert all(g.dtype == dtype for g in grads.values())
    uni = cls(D, H, dtype=dtype, rng=0, **kw)
    y, s = uni.step(x[:, 0])
    assert y.dtype == dtype and all(a.dtype == dtype for a in arrays(s))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("cls", "kw"), CELL_KINDS, ids=KIND_IDS)
def test_cell_dtype_is_preserved(cls, kw, dtype):
    cell = cls(D, H, dtype=dtype, rng=0, **kw)
    assert all(v.dtype == dtype for v in cell.params.values())
    s, cache = cell.forward(np.ones((B, D)))
    assert all(a.dtype == dtype for a in arrays(s))
    ds = tuple(np.ones_like(a) for a in s) if isinstance(s, tuple) else np.ones_like(s)
    dx, dprev, g = cell.backward(ds, cache)
    assert dx.dtype == dtype and all(a.dtype == dtype for a in arrays(dprev))
    assert all(v.dtype == dtype for v in g.values())


@kinds
def test_seeds(cls, kw):
    opts = {"num_layers": 2, "bidirectional": True, "dropout": 0.5, **kw}
    a = cls(D, H, rng=123, **opts)
    b = cls(D, H, rng=123, **opts)
    c = cls(D, H, rng=124, **opts)
    g = cls(D, H, rng=np.random.default_rng(123), **opts)
    assert a.params.keys() == b.params.keys() == c.params.keys()
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
        np.testing.assert_array_equal(a.params[k], g.params[k])
    assert all(not np.array_equal(a.params[k], c.params[k]) for k in a.params if "W_" in k)
    # the same seed gives the same run, dropout included, bit for bit
    x = data(40).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x)[0], b.forward(x)[0])
    assert not np.array_equal(a.forward(x)[0], c.forward(x)[0])


@kinds
def test_forward_and_backward_leave_their_inputs_unchanged(cls, kw):
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=True, return_sequences=False)
    x = data(50)
    s0 = random_state(layer, B, np.random.default_rng(51))
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    keep = [a.copy() for a in (x, mask, *arrays(s0))]
    out, sT, cache = layer.forward(x, s0, mask=mask)
    R1, Rs = probes(out, sT, np.random.default_rng(52))
    keep_d = [a.copy() for a in (R1, *arrays(Rs))]
    g1 = layer.backward(R1, cache, Rs)
    for a, b in zip((x, mask, *arrays(s0)), keep, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip((R1, *arrays(Rs)), keep_d, strict=True):
        np.testing.assert_array_equal(a, b)
    g2 = layer.backward(R1, cache, Rs)  # and a second backward gives the same answer
    np.testing.assert_array_equal(g1[0], g2[0])


@kinds
def test_sequence_of_length_zero_keeps_its_state(cls, kw):
    """lengths may contain 0: that sequence outputs zeros and passes its state through."""
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=True)
    x = data(53)
    s0 = random_state(layer, B, np.random.default_rng(54))
    out, sT, cache = layer.forward(x, s0, lengths=[0, 2, T])
    assert not out[0].any()
    for a, b in zip(arrays(sT), arrays(s0), strict=True):
        np.testing.assert_array_equal(a[:, 0], b[:, 0])
    R1, Rs = probes(out, sT, np.random.default_rng(55))
    dx, ds0, grads = layer.backward(R1, cache, Rs)
    assert not dx[0].any()
    for a, b in zip(arrays(ds0), arrays(Rs), strict=True):
        np.testing.assert_array_equal(a[:, 0], b[:, 0])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_backward_without_dx_gives_the_same_grads(kind, bidirectional):
    """need_dx=False (data inputs) skips the input gradient only."""
    rng = np.random.default_rng(3)
    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[kind]
    layer = cls(4, 6, num_layers=2, bidirectional=bidirectional, dtype=np.float64, rng=rng)
    x = rng.standard_normal((3, 5, 4))
    out, _, cache = layer.forward(x, lengths=[5, 2, 4])
    dout = rng.standard_normal(out.shape)
    dx, ds, g = layer.backward(dout, cache)
    dx2, ds2, g2 = layer.backward(dout, cache, need_dx=False)
    assert dx.shape == x.shape and dx2 is None
    for k in g:
        np.testing.assert_array_equal(g2[k], g[k])
    for a, b in zip(np.atleast_1d(ds), np.atleast_1d(ds2), strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- one-hot ids, layout
@kinds
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidi"])
def test_one_hot_ids_equal_one_hot_vectors(cls, kw, bidirectional):
    """x given as (B, T) integer ids is x = eye(D)[ids], in the outputs, the states and
    every gradient; the ids get no dx."""
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=bidirectional)
    rng = np.random.default_rng(4)
    ids = rng.integers(0, D, (B, T))
    lengths = np.array([4, 1, 3])
    out_i, s_i, c_i = layer.forward(ids, lengths=lengths)
    out_x, s_x, c_x = layer.forward(np.eye(D)[ids], lengths=lengths)
    np.testing.assert_array_equal(out_i, out_x)
    for a, b in zip(arrays(s_i), arrays(s_x), strict=True):
        np.testing.assert_array_equal(a, b)
    R, Rs = probes(out_i, s_i, rng)
    dx_i, ds_i, g_i = layer.backward(R, c_i, Rs)
    _, ds_x, g_x = layer.backward(R, c_x, Rs, need_dx=False)
    assert dx_i is None
    for k in g_x:  # the same sums, in another order for the first layer's W_x and b
        np.testing.assert_allclose(g_i[k], g_x[k], rtol=1e-12, atol=1e-14, err_msg=k)
    for a, b in zip(arrays(ds_i), arrays(ds_x), strict=True):
        np.testing.assert_array_equal(a, b)


@kinds
def test_time_major_is_the_transposed_layout(cls, kw):
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=True)
    x = data(5)
    lengths = np.array([2, 4, 3])
    out, s, cache = layer.forward(x, lengths=lengths)
    out_t, s_t, cache_t = layer.forward(np.ascontiguousarray(x.transpose(1, 0, 2)),
                                        lengths=lengths, time_major=True)
    assert out_t.shape == (T, B, layer.output_size)
    np.testing.assert_array_equal(out_t, out.transpose(1, 0, 2))
    for a, b in zip(arrays(s), arrays(s_t), strict=True):
        np.testing.assert_array_equal(a, b)
    R, Rs = probes(out, s, np.random.default_rng(6))
    dx, ds, g = layer.backward(R, cache, Rs)
    dx_t, ds_t, g_t = layer.backward(np.ascontiguousarray(R.transpose(1, 0, 2)), cache_t, Rs)
    assert dx_t.shape == (T, B, D)
    np.testing.assert_array_equal(dx_t, dx.transpose(1, 0, 2))
    for k in g:
        np.testing.assert_array_equal(g[k], g_t[k], err_msg=k)
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 3, 4\)"):
        layer.backward(R, cache_t, Rs)


def test_one_hot_ids_out_of_range_and_wrong_shapes():
    layer = rnnkit.LSTM(D, H, rng=0)
    with pytest.raises(ValueError, match=r"x holds id 3, outside the vocabulary \[0, 3\)"):
        layer.forward(np.array([[0, 3]]))
    with pytest.raises(ValueError, match=r"x must have 3 dimensions \(B, T, 3\), got shape "
                                         r"\(2, 2\)"):
        layer.forward(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"x must have 3 dimensions \(T, B, 3\)"):
        layer.forward(np.zeros((2, 2)), time_major=True)


# ---------------------------------------------------------------------- cache ownership
def test_backward_refuses_a_cache_of_another_layer():
    """A cache records the layer that made it: another layer's cache, or this layer's
    after its parameters changed shape, is refused with a message, never used."""
    x4 = np.zeros((2, 3, 4))
    a, b = rnnkit.RNN(4, 5, dtype=np.float64, rng=0), rnnkit.RNN(3, 5, dtype=np.float64)
    out, _, cache = a.forward(x4)
    with pytest.raises(ValueError, match=r"cache does not belong to this layer \(RNN\("
                                         r"input_size=3.*made by another layer, RNN\("
                                         r"input_size=4"):
        b.backward(np.ones_like(out), cache)
    twin = rnnkit.RNN(4, 5, dtype=np.float64, rng=0)  # the same configuration
    with pytest.raises(ValueError, match="made by another layer"):
        twin.backward(np.ones_like(out), cache)
    a.params["l0.W_x"] = np.zeros((6, 5))
    with pytest.raises(ValueError, match="parameter shapes changed"):
        a.backward(np.ones_like(out), cache)
    lstm = rnnkit.LSTM(4, 5, rng=0)
    _, _, lcache = lstm.forward(x4.astype(np.float32))
    with pytest.raises(ValueError, match="made by another layer, LSTM"):
        rnnkit.GRU(4, 5).backward(None, lcache)
