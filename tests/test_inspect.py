"""rnnkit.inspect.gradient_flow: dL/dh_t of every step, checked against finite
differences, and the seeds' vanishing gradient made visible."""

import numpy as np
import pytest

from rnnkit.inspect import gradient_flow
from rnnkit.models import LanguageModel, SequenceClassifier, SequenceRegressor

V, H, B, T = 7, 5, 3, 6


def _lm(cell, **kw):
    model = LanguageModel(V, cell=cell, hidden_size=H, dtype=np.float64, rng=1, **kw)
    rng = np.random.default_rng(2)
    for p in model.params.values():
        p[...] = rng.uniform(-0.6, 0.6, p.shape)
    return model


def _batch(seed=3):
    ids = np.random.default_rng(seed).integers(0, V, (B, T + 1))
    return {"x": ids[:, :-1], "y": ids[:, 1:]}


def _loss_with(model, batch, loss, t, e):
    """The loss of the step-by-step forward with e (B, H) added to h_t of the only layer."""
    state = model.initial_state(B)[0]
    total = 0.0
    for s in range(T):
        h, state = model.rnn.step(batch["x"][:, s], state)
        if s == t:
            h = h + e
            state = (state[0] + e, state[1]) if model.rnn.kind == "lstm" else state + e
        z = h @ model.head.params["W"] + model.head.params["b"]
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        ce = -logp[np.arange(B), batch["y"][:, s]].mean()
        if loss == "sum" or s == T - 1:
            total += ce
    return total


@pytest.mark.parametrize("loss", ["last", "sum"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_equal_finite_differences(cell, loss):
    model, batch = _lm(cell), _batch()
    flow = gradient_flow(model, batch, loss)
    assert set(flow.grads) == {(0, "forward")}
    g = flow.grads[(0, "forward")]  # (T, B, H)
    eps = 1e-6
    for t in range(T):
        num = np.zeros((B, H))
        for i in range(B):
            for j in range(H):
                e = np.zeros((B, H))
                e[i, j] = eps
                num[i, j] = (_loss_with(model, batch, loss, t, e)
                             - _loss_with(model, batch, loss, t, -e)) / (2 * eps)
        np.testing.assert_allclose(g[t], num, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(flow.norms[(0, "forward")],
                               np.linalg.norm(g, axis=2).mean(axis=1))
    if loss == "last":  # only the last prediction: nothing reaches h_t from later losses
        assert not np.allclose(g[0], 0)


def test_the_vanishing_gradient():
    """Untrained, with PyTorch's initialisation: the gradient of the last step's loss that
    reaches 30 steps back is a million times smaller for a tanh RNN, and the LSTM (forget
    bias 1) carries a thousand times more of it."""
    ids = np.random.default_rng(0).integers(0, 20, (8, 41))
    batch = {"x": ids[:, :-1], "y": ids[:, 1:]}
    ratio = {}
    for cell in ("rnn", "lstm"):
        model = LanguageModel(20, cell=cell, hidden_size=32, dtype=np.float64, rng=0)
        d, n = gradient_flow(model, batch, "last").by_distance((0, "forward"))
        assert d[0] == 0 and len(n) == 40
        ratio[cell] = n[30] / n[0]
    assert ratio["rnn"] < 1e-5
    assert ratio["lstm"] > 100 * ratio["rnn"]


def test_layers_directions_table_and_mode():
    model = LanguageModel(V, cell="gru", hidden_size=H, num_layers=2, dropout=0.5, rng=0)
    flow = gradient_flow(model, _batch(), "sum")
    assert set(flow.grads) == {(0, "forward"), (1, "forward")}
    assert model.rnn.training  # left as it was
    table = flow.table()
    assert table.splitlines()[0].split() == ["distance", "layer", "0", "forward", "layer", "1",
                                             "forward"]
    assert len(table.splitlines()) == T + 1
    again = gradient_flow(model, _batch(), "sum")  # eval mode: no dropout, the same numbers
    np.testing.assert_array_equal(again.norms[(0, "forward")], flow.norms[(0, "forward")])


def test_many_to_one_models_and_bidirectional():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 9, 2))
    reg = SequenceRegressor(1, input_size=2, hidden_size=6, bidirectional=True,
                            dtype=np.float64, rng=0)
    flow = gradient_flow(reg, {"x": x, "y": rng.standard_normal((4, 1))})
    assert set(flow.grads) == {(0, "forward"), (0, "reverse")}
    # the loss reads the forward state at the end and the reverse state at the start
    fwd, rev = flow.grads[(0, "forward")], flow.grads[(0, "reverse")]
    assert np.abs(fwd[-1]).sum() > 0 and np.abs(rev[0]).sum() > 0
    _, n = flow.by_distance((0, "reverse"))
    np.testing.assert_array_equal(n, flow.norms[(0, "reverse")])
    clf = SequenceClassifier(3, input_size=2, hidden_size=4, rng=0)
    with pytest.raises(ValueError, match="loss at the last step only"):
        gradient_flow(clf, {"x": x.astype(np.float32), "y": np.array([0, 1, 2, 0])}, "sum")
    with pytest.raises(ValueError, match="loss must be one of"):
        gradient_flow(clf, {}, "first")
    with pytest.raises(TypeError, match="model must be a LanguageModel"):
        gradient_flow(object(), {})
