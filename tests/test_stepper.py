"""The one-step path (Recurrent.step, LanguageModel.step) computes what the sequence
forward computes."""

import numpy as np
import pytest

import rnnkit
from rnnkit.models import LanguageModel

CASES = [
    ("lstm", {}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
    ("rnn", {"nonlinearity": "tanh"}),
    ("rnn", {"nonlinearity": "relu"}),
]
IDS = [f"{k}-{'-'.join(f'{a}={b}' for a, b in kw.items())}" for k, kw in CASES]


def make(kind, kw, dtype=np.float64, **extra):
    rng = np.random.default_rng(5)
    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[kind]
    layer = cls(7, 9, num_layers=2, dtype=dtype, rng=rng, **kw, **extra)
    for p in layer.params.values():
        p[...] = rng.uniform(-0.5, 0.5, p.shape)
    return layer, rng


@pytest.mark.parametrize("initial_state", ["zeros", "learned"])
@pytest.mark.parametrize(("kind", "kw"), CASES, ids=IDS)
def test_steps_match_the_sequence_forward(kind, kw, initial_state):
    layer, rng = make(kind, kw, initial_state=initial_state)
    x = rng.standard_normal((3, 6, 7))
    out, final, _ = layer.eval().forward(x)
    state = None
    for t in range(6):
        h, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(h, out[:, t], rtol=1e-12, atol=1e-13)
    for a, b in zip(np.atleast_1d(state), np.atleast_1d(final), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(("kind", "kw"), CASES, ids=IDS)
def test_step_ids_is_the_one_hot_step(kind, kw):
    layer, rng = make(kind, kw, dtype=np.float32)
    ids = np.array([0, 6, 3])
    h0 = rng.standard_normal((2, 3, 9)).astype(np.float32)
    state = (h0, h0 * 0.5) if kind == "lstm" else h0
    a, sa = layer.step(ids, state)
    b, sb = layer.step(np.eye(7, dtype=np.float32)[ids], state)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_step_reads_the_current_weights_and_checks_its_input():
    layer, rng = make("lstm", {})
    before, _ = layer.step(np.array([1]))
    layer.params["l0.W_h"] += 1.0
    after, _ = layer.step(np.array([1]), (np.full((2, 1, 9), 0.5), np.zeros((2, 1, 9))))
    assert not np.allclose(before, after)
    with pytest.raises(ValueError, match=r"x holds id 7, outside the vocabulary \[0, 7\)"):
        layer.step(np.array([7]))
    with pytest.raises(ValueError, match="x holds id -1"):
        layer.step(np.array([-1]))
    with pytest.raises(ValueError, match="x must have shape"):
        layer.step(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="x must have 1 dimensions"):
        layer.step(np.zeros((1, 3), dtype=np.int64))
    bi = rnnkit.LSTM(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match="unidirectional"):
        bi.step(np.zeros((1, 3)))


@pytest.mark.parametrize("embedding_dim", [None, 5])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_language_model_step_matches_the_forward(cell, embedding_dim):
    model = LanguageModel(11, cell=cell, hidden_size=8, num_layers=2,
                          embedding_dim=embedding_dim, dtype=np.float64,
                          rng=np.random.default_rng(2))
    model.eval()
    seq = np.array([[3, 0, 10, 4], [4, 1, 0, 5]])
    logits, _, _ = model.forward(seq)
    state = model.initial_state(2)[0]
    for t in range(4):
        step_logits, state = model.step(seq[:, t], state)
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-12, atol=1e-13)
