"""Embedding, Dense, Dropout and RepeatVector: finite differences in float64, parity with
torch.nn.Embedding / torch.nn.Linear (our ``W`` is torch's ``weight.T``), dropout statistics
and bad input.

Every gradient check uses the loss L = sum(y * R) for a fixed random R, so that R is the
exact upstream gradient dy.
"""

import numpy as np
import pytest

from rnnkit.gradcheck import numerical_gradient, rel_error
from rnnkit.layers import Dense, Dropout, Embedding, RepeatVector
from rnnkit.optim import SGD, Adam

TOL = 1e-8


def loss_and_probe(y, seed=0):
    """R (y's shape, float64) and L(y) = sum(y * R)."""
    R = np.random.default_rng(seed).standard_normal(y.shape)
    return R, lambda out: float(np.sum(out * R))


# ---------------------------------------------------------------------- Embedding
def test_embedding_forward_looks_up_rows():
    emb = Embedding(6, 3, dtype=np.float64, rng=0)
    ids = np.array([[0, 5, 2], [2, 2, 1]])
    y, _ = emb.forward(ids)
    assert y.shape == (2, 3, 3) and y.dtype == np.float64
    np.testing.assert_array_equal(y, emb.params["W"][ids])


@pytest.mark.parametrize("ids_shape", [(7,), (2, 4), (2, 3, 2)])
def test_embedding_gradcheck_with_repeated_ids(ids_shape):
    V, E = 4, 3
    emb = Embedding(V, E, dtype=np.float64, rng=1)
    rng = np.random.default_rng(2)
    ids = rng.integers(0, V, size=ids_shape)
    ids.reshape(-1)[:3] = 1  # id 1 occurs at least three times: its gradient rows add up
    y, cache = emb.forward(ids)
    R, L = loss_and_probe(y)
    dx, grads = emb.backward(R, cache)
    assert dx is None and set(grads) == {"W"}
    num = numerical_gradient(lambda: L(emb.forward(ids)[0]), emb.params["W"])
    assert rel_error(num, grads["W"]) < TOL
    # the repeated id accumulates one row of R per occurrence
    np.testing.assert_allclose(grads["W"][1], R.reshape(-1, E)[ids.reshape(-1) == 1].sum(0))
    # ids that never occur get exactly zero gradient
    for v in set(range(V)) - set(ids.reshape(-1).tolist()):
        assert not grads["W"][v].any()


def test_embedding_padding_idx_row_is_zero_gets_no_gradient_and_stays_zero():
    V, E, pad = 5, 3, 0
    emb = Embedding(V, E, padding_idx=pad, dtype=np.float64, rng=3)
    assert not emb.params["W"][pad].any()
    ids = np.array([[3, 1, pad, pad], [pad, 4, 4, 2]])
    y, cache = emb.forward(ids)
    assert not y[ids == pad].any(), "padding positions must embed to zero vectors"
    R, L = loss_and_probe(y, seed=4)
    _, grads = emb.backward(R, cache)
    assert not grads["W"][pad].any(), "the padding row must get zero gradient"
    num = numerical_gradient(lambda: L(emb.forward(ids)[0]), emb.params["W"])
    rows = [v for v in range(V) if v != pad]
    assert rel_error(num[rows], grads["W"][rows]) < TOL
    assert np.abs(num[pad]).max() > 0.1  # the row is read, yet by design it does not learn

    # training with weight decay and Adam leaves the row at exactly zero
    for opt in (SGD(emb.params, lr=0.1, momentum=0.9, weight_decay=0.1),
                Adam(emb.params, lr=0.1, weight_decay=0.1)):
        for _ in range(3):
            y, cache = emb.forward(ids)
            opt.step(emb.backward(y, cache)[1])
        assert not emb.params["W"][pad].any()


def test_embedding_mask():
    ids = np.array([[2, 0, 1], [0, 0, 3]])
    np.testing.assert_array_equal(
        Embedding(4, 2, padding_idx=0, rng=0).mask(ids),
        [[True, False, True], [False, False, True]])
    np.testing.assert_array_equal(Embedding(4, 2, padding_idx=3, rng=0).mask(ids),
                                  ids != 3)
    assert Embedding(4, 2, rng=0).mask(ids) is None


def test_embedding_init_is_standard_normal_and_seeded():
    a = Embedding(200, 50, rng=7).params["W"]
    b = Embedding(200, 50, rng=7).params["W"]
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert abs(a.mean()) < 0.02 and abs(a.std() - 1) < 0.02


# ---------------------------------------------------------------------- Dense
@pytest.mark.parametrize(("D", "U"), [(4, 3), (1, 3), (4, 1)],
                         ids=["4to3", "one-input", "one-output"])  # K = 1 products too
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("lead", [(3,), (2, 3), ()], ids=["2-D", "3-D", "1-D"])
def test_dense_gradcheck(lead, bias, D, U):
    x_shape = lead + (D,)
    dense = Dense(D, U, bias=bias, dtype=np.float64, rng=0)
    assert ("b" in dense.params) == bias
    rng = np.random.default_rng(1)
    if bias:
        dense.params["b"][...] = rng.uniform(-1, 1, U)  # a zero bias could hide a bug
    x = rng.standard_normal(x_shape)
    y, cache = dense.forward(x)
    assert y.shape == x_shape[:-1] + (U,)
    expected = x @ dense.params["W"] + (dense.params["b"] if bias else 0)
    np.testing.assert_allclose(y, expected, rtol=1e-14, atol=1e-14)
    R, L = loss_and_probe(y, seed=2)
    dx, grads = dense.backward(R, cache)
    assert set(grads) == set(dense.params)
    f = lambda: L(dense.forward(x)[0])  # noqa: E731
    assert rel_error(numerical_gradient(f, x), dx) < TOL
    for name, p in dense.params.items():
        assert rel_error(numerical_gradient(f, p), grads[name]) < TOL, name


def test_dense_same_weights_at_every_step():
    dense = Dense(3, 2, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    y, _ = dense.forward(x)
    for t in range(4):
        np.testing.assert_allclose(y[:, t], dense.forward(x[:, t])[0], rtol=1e-14)


# ---------------------------------------------------------------------- torch parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("x_shape", [(3, 4), (2, 3, 4)], ids=["2-D", "3-D"])
def test_dense_matches_torch_linear(x_shape, bias, dtype):
    torch = pytest.importorskip("torch")
    tdtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    D, U = 4, 5
    torch.manual_seed(0)
    lin = torch.nn.Linear(D, U, bias=bias).to(tdtype)
    if bias:
        with torch.no_grad():
            lin.bias.uniform_(-1, 1)
    dense = Dense(D, U, bias=bias, dtype=dtype, rng=0)
    dense.params["W"][...] = lin.weight.detach().numpy().T
    if bias:
        dense.params["b"][...] = lin.bias.detach().numpy()
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    R = rng.standard_normal(x_shape[:-1] + (U,)).astype(dtype)

    xt = torch.tensor(x, requires_grad=True)
    yt = lin(xt)
    (yt * torch.tensor(R)).sum().backward()
    y, cache = dense.forward(x)
    dx, grads = dense.backward(R, cache)

    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert y.dtype == dtype and dx.dtype == dtype
    assert rel_error(y, yt.detach().numpy()) < tol
    assert rel_error(dx, xt.grad.numpy()) < tol
    assert rel_error(grads["W"], lin.weight.grad.numpy().T) < tol
    if bias:
        assert rel_error(grads["b"], lin.bias.grad.numpy()) < tol


@pytest.mark.parametrize("padding_idx", [None, 0, 3])
def test_embedding_matches_torch(padding_idx):
    torch = pytest.importorskip("torch")
    V, E = 6, 4
    torch.manual_seed(0)
    temb = torch.nn.Embedding(V, E, padding_idx=padding_idx).double()
    emb = Embedding(V, E, padding_idx=padding_idx, dtype=np.float64, rng=0)
    emb.params["W"][...] = temb.weight.detach().numpy()
    rng = np.random.default_rng(5)
    ids = rng.integers(0, V, size=(3, 5))
    ids[0, :3] = 3  # repeats, and the padding id 3 (when set)
    ids[1, 0] = 0
    R = rng.standard_normal((3, 5, E))

    yt = temb(torch.tensor(ids))
    (yt * torch.tensor(R)).sum().backward()
    y, cache = emb.forward(ids)
    _, grads = emb.backward(R, cache)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    assert rel_error(grads["W"], temb.weight.grad.numpy()) < 1e-12
    if padding_idx is not None:
        assert not temb.weight.grad[padding_idx].any() and not grads["W"][padding_idx].any()


# ---------------------------------------------------------------------- Dropout
def test_dropout_gradcheck_with_fixed_mask():
    drop = Dropout(0.4)
    x = np.random.default_rng(0).standard_normal((3, 4, 2))

    def run():
        drop.rng = np.random.default_rng(11)  # the same mask on every call
        return drop.forward(x)

    y, cache = run()
    R, L = loss_and_probe(y, seed=1)
    dx, grads = drop.backward(R, cache)
    assert grads == {}
    assert rel_error(numerical_gradient(lambda: L(run()[0]), x), dx) < TOL
    dropped = y == 0
    assert dropped.any() and (~dropped).any()
    assert not dx[dropped].any()


def test_dropout_inverted_scaling_statistics():
    p = 0.3
    drop = Dropout(p, rng=np.random.default_rng(123))
    x = np.random.default_rng(0).uniform(0.5, 2.0, size=(400, 500))
    y, mask = drop.forward(x)
    kept = y != 0
    # kept entries are exactly x / (1 - p); the rest are zero
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)
    n = x.size
    frac_dropped = 1 - kept.mean()
    assert abs(frac_dropped - p) < 5 * np.sqrt(p * (1 - p) / n)
    # E[y] = x: the mean of y / x is 1 within five standard errors
    ratio = y / x
    se = np.sqrt(p / (1 - p) / n)
    assert abs(ratio.mean() - 1) < 5 * se
    # and the backward pass uses the same mask and scaling
    dx, _ = drop.backward(np.ones_like(x), mask)
    np.testing.assert_array_equal(dx, kept / (1 - p))


def test_dropout_seeded_is_reproducible_and_fresh_each_call():
    x = np.ones((5, 6))
    a = Dropout(0.5, rng=3)
    y1, _ = a.forward(x)
    y2, _ = a.forward(x)
    assert not np.array_equal(y1, y2), "each call draws a new mask"
    b = Dropout(0.5, rng=3)
    np.testing.assert_array_equal(b.forward(x)[0], y1)


def test_dropout_eval_and_p0_are_identity():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    drop = Dropout(0.5, rng=0).eval()
    assert not drop.training
    y, cache = drop.forward(x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(drop.backward(dy, cache)[0], dy)
    zero = Dropout(0.0, rng=0)
    assert zero.training
    y, cache = zero.forward(x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(zero.backward(dy, cache)[0], dy)
    assert drop.train().training
    assert (drop.forward(x)[0] == 0).any()


def test_dropout_keeps_float32():
    y, m = Dropout(0.25, rng=0).forward(np.ones((4, 4), np.float32))
    assert y.dtype == np.float32 and m.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}


# ---------------------------------------------------------------------- RepeatVector
def test_repeat_vector_forward_and_gradcheck():
    rep = RepeatVector(4)
    x = np.random.default_rng(0).standard_normal((2, 3))
    y, cache = rep.forward(x)
    assert y.shape == (2, 4, 3)
    for t in range(4):
        np.testing.assert_array_equal(y[:, t], x)
    R, L = loss_and_probe(y)
    dx, grads = rep.backward(R, cache)
    assert grads == {} and dx.shape == x.shape
    assert rel_error(numerical_gradient(lambda: L(rep.forward(x)[0]), x), dx) < TOL
    np.testing.assert_allclose(dx, R.sum(axis=1))


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [[[0, 5]], [[-1, 2]], np.array([7])], ids=["V", "-1", "7"])
def test_embedding_ids_out_of_range(bad):
    emb = Embedding(5, 2, rng=0)
    with pytest.raises(ValueError, match=r"ids holds id -?\d+, outside the vocabulary \[0, 5\)"):
        emb.forward(bad)


@pytest.mark.parametrize("bad", [np.array([[0.0, 1.0]]), np.array([True, False]),
                                 np.array(["a"])], ids=["float", "bool", "str"])
def test_embedding_ids_not_integers(bad):
    with pytest.raises(TypeError, match="ids must be an integer array of token ids, got dtype"):
        Embedding(5, 2, rng=0).forward(bad)


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"num_embeddings": 0, "embedding_dim": 2}, ValueError, "num_embeddings must be an integer"),
    ({"num_embeddings": 5, "embedding_dim": 2.0}, TypeError, "embedding_dim must be an integer"),
    ({"num_embeddings": 5, "embedding_dim": 2, "padding_idx": 5}, ValueError,
     r"padding_idx must be an id in \[0, 5\) or None, got 5"),
    ({"num_embeddings": 5, "embedding_dim": 2, "padding_idx": 1.0}, ValueError, "padding_idx"),
    ({"num_embeddings": 5, "embedding_dim": 2, "dtype": np.int32}, TypeError,
     "dtype must be float32 or float64"),
])
def test_embedding_bad_settings(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        Embedding(**kwargs)


def test_embedding_backward_wrong_dy_shape():
    emb = Embedding(5, 2, rng=0)
    _, cache = emb.forward(np.array([[1, 2, 3]]))
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 3, 2\), got \(1, 3, 3\)"):
        emb.backward(np.zeros((1, 3, 3), np.float32), cache)


@pytest.mark.parametrize(("x", "exc", "message"), [
    (np.zeros((2, 3)), ValueError, r"x must have shape \(d0, 4\), got \(2, 3\)"),
    (np.zeros((2, 5, 3)), ValueError, r"x must have shape \(d0, d1, 4\), got \(2, 5, 3\)"),
    (np.zeros((2, 4), np.int64), TypeError, "x must be a floating-point array"),
    (np.float64(1.0), ValueError, "x must have at least one dimension"),
    (np.full((1, 4), np.nan), ValueError, "x contains NaN or infinite values"),
    (["a", "b", "c", "d"], TypeError, "x must be a floating-point array"),
])
def test_dense_bad_input(x, exc, message):
    with pytest.raises(exc, match=message):
        Dense(4, 3, rng=0).forward(x)


def test_dense_bad_dy_and_settings():
    dense = Dense(4, 3, rng=0)
    _, cache = dense.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\), got \(2, 4\)"):
        dense.backward(np.zeros((2, 4), np.float32), cache)
    with pytest.raises(ValueError, match="in_features must be an integer >= 1, got 0"):
        Dense(0, 3)
    with pytest.raises(TypeError, match="out_features must be an integer"):
        Dense(4, None)
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy"):
        Dense(4, 3, rng="seed")


@pytest.mark.parametrize(("p", "exc"), [(1.0, ValueError), (1.5, ValueError), (-0.1, ValueError),
                                        ("0.5", TypeError), (True, TypeError)])
def test_dropout_bad_p(p, exc):
    with pytest.raises(exc, match=r"p must be (a number )?in \[0, 1\)"):
        Dropout(p)


@pytest.mark.parametrize("dtype", [np.int64, bool])
def test_dropout_rejects_non_float_input(dtype):
    # an integer input cannot hold the 1/(1-p) scaling: int(1/0.7) would scale by 1
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        Dropout(0.3, rng=0).forward(np.ones((3, 3), dtype=dtype))


def test_repeat_vector_bad_input():
    rep = RepeatVector(3)
    with pytest.raises(ValueError, match=r"x must have 2 dimensions \(B, D\), got shape"):
        rep.forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"dy must have shape \(B, 3, D\), got \(2, 2, 4\)"):
        rep.backward(np.zeros((2, 2, 4)), None)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        RepeatVector(0)


def test_num_parameters_and_modes():
    assert Dense(4, 3, rng=0).num_parameters() == 15
    assert Dense(4, 3, bias=False, rng=0).num_parameters() == 12
    assert Embedding(10, 3, rng=0).num_parameters() == 30
    assert Dropout(0.1).num_parameters() == 0 and RepeatVector(2).params == {}
    d = Dense(2, 2, rng=0)
    assert d.eval() is d and not d.training and d.train().training
