"""The fast one-step path (Recurrent.stepper, LanguageModel.stepper) computes what the
sequence forward computes."""

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
    stepper = layer.stepper()
    state = None
    for t in range(6):
        h, state = stepper.step(x[:, t], state)
        np.testing.assert_allclose(h, out[:, t], rtol=1e-12, atol=1e-13)
    for a, b in zip(np.atleast_1d(state), np.atleast_1d(final), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(("kind", "kw"), CASES, ids=IDS)
def test_step_ids_is_the_one_hot_step(kind, kw):
    layer, rng = make(kind, kw, dtype=np.float32)
    stepper = layer.stepper()
    ids = np.array([0, 6, 3])
    h0 = rng.standard_normal((2, 3, 9)).astype(np.float32)
    state = (h0, h0 * 0.5) if kind == "lstm" else h0
    a, sa = stepper.step_ids(ids, state)
    b, sb = stepper.step(np.eye(7, dtype=np.float32)[ids], state)
    c, sc = layer.step(np.eye(7, dtype=np.float32)[ids], state)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


def test_stepper_is_a_snapshot_and_checks_its_input():
    layer, rng = make("lstm", {})
    stepper = layer.stepper()
    before, _ = stepper.step_ids(np.array([1]))
    layer.params["l0.W_h"] += 1.0
    after, _ = stepper.step_ids(np.array([1]))
    np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match=r"ids holds id 7, outside the vocabulary \[0, 7\)"):
        stepper.step_ids(np.array([7]))
    with pytest.raises(ValueError, match="ids holds id -1"):
        stepper.step_ids(np.array([-1]))
    with pytest.raises(ValueError, match="x must have shape"):
        stepper.step(np.zeros((1, 3)))
    bi = rnnkit.LSTM(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match="unidirectional"):
        bi.stepper()


@pytest.mark.parametrize("embedding_dim", [None, 5])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_language_model_stepper_matches_step(cell, embedding_dim):
    model = LanguageModel(11, cell=cell, hidden_size=8, num_layers=2,
                          embedding_dim=embedding_dim, dtype=np.float64,
                          rng=np.random.default_rng(2))
    fast = model.stepper()
    s1 = s2 = None
    for tok in [3, 0, 10, 4]:
        ids = np.array([tok, (tok + 1) % 11])
        l1, s1 = model.step(ids, s1 if s1 is not None else model.initial_state(2)[0])
        l2, s2 = fast(ids, s2)
        np.testing.assert_allclose(l2, l1, rtol=1e-12, atol=1e-13)
