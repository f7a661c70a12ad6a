"""The ready models: gradients, PyTorch parity, generation, save/load and bad input.

Every finite-difference check runs in float64 on tiny sizes with every parameter (biases
included) drawn from U(-0.5, 0.5), and compares ``train_batch``'s gradients with central
differences of ``stats["loss"] / stats["count"]`` (the mean loss) for every entry of every
parameter. With dropout, ``model.rng`` is rewound before each evaluation so that every
forward draws the same dropout masks.
"""

import json

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.gradcheck import numerical_gradient, rel_error
from rnnkit.models import (
    LanguageModel,
    Seq2Seq,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    load_model,
)

TOL = 1e-7  # float64 central differences of a correct backward agree to ~1e-9


def randomize(model, seed: int, scale: float = 0.5):
    """Fill every parameter of ``model`` in place with U(-scale, scale); returns the model."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.uniform(-scale, scale, p.shape)
    return model


def gradcheck_model(model, batch, state=None, tol=TOL):
    """Compare train_batch's gradients with central differences of the mean loss.

    Rewinds ``model.rng`` before every call, so dropout masks are the same each time.
    Returns the relative errors by parameter name.
    """
    saved = model.rng.bit_generator.state

    def run():
        model.rng.bit_generator.state = saved
        return model.train_batch(batch, state)

    stats, grads, _ = run()
    assert set(grads) == set(model.params)

    def mean_loss():
        s, _, _ = run()
        return s["loss"] / s["count"]

    errors = {}
    for name, p in model.params.items():
        assert grads[name].shape == p.shape, name
        errors[name] = rel_error(numerical_gradient(mean_loss, p), grads[name])
    assert max(errors.values()) < tol, errors
    # zeros against zeros would prove nothing: the weights must get gradient (a W_h may
    # get none when, e.g., max pooling picks every reverse unit at its first step)
    for name in model.params:
        if "W_x" in name or name == "head.W":
            assert np.abs(grads[name]).max() > 1e-6, f"{name}: gradient is all zero"
    assert max(np.abs(g).max() for k, g in grads.items() if "W_h" in k) > 1e-6
    return errors


def padded_ids(rng, B, T, V, lengths, pad=0):
    """(B, T) ids in [1, V) right-padded with ``pad`` to the given lengths."""
    ids = rng.integers(1, V, (B, T))
    for b, n in enumerate(lengths):
        ids[b, n:] = pad
    return ids


def length_mask(B, T, lengths):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


# --------------------------------------------------------------------------- gradients
LM_CASES = [
    # cell, embedding_dim, dropout, cond_size, extra cell options
    ("rnn", None, 0.0, None, {}),
    ("lstm", None, 0.0, None, {}),
    ("gru", None, 0.0, None, {}),
    ("rnn", 3, 0.0, None, {"nonlinearity": "relu"}),
    ("lstm", 3, 0.0, 2, {}),
    ("gru", 3, 0.0, 2, {}),
    ("gru", None, 0.0, 2, {"reset_after": False}),
    ("lstm", None, 0.4, None, {}),
    ("gru", 3, 0.4, 2, {}),
    ("rnn", 3, 0.4, None, {}),
]


@pytest.mark.parametrize("cell,emb,dropout,cond,kw", LM_CASES,
                         ids=[f"{c[0]}-{'emb' if c[1] else 'onehot'}-p{c[2]}-cond{c[3]}"
                              f"{'-' + '-'.join(map(str, c[4].values())) if c[4] else ''}"
                              for c in LM_CASES])
def test_language_model_gradients(cell, emb, dropout, cond, kw):
    V, B, T = 5, 3, 4
    model = randomize(LanguageModel(V, cell, hidden_size=3, num_layers=2, embedding_dim=emb,
                                    dropout=dropout, cond_size=cond, dtype=np.float64, rng=1,
                                    **kw), seed=2)
    if kw.get("nonlinearity") == "relu":  # keep tiny relu layers alive
        for k, p in model.params.items():
            if k.startswith("rnn."):
                p[...] = np.abs(p) + 0.05
    rng = np.random.default_rng(3)
    lengths = [4, 3, 2]
    batch = {"x": rng.integers(0, V, (B, T)), "y": rng.integers(0, V, (B, T)),
             "mask": length_mask(B, T, lengths)}
    if cond:
        batch["cond"] = rng.standard_normal((B, cond))
    stats, _, _ = model.train_batch(batch)
    assert stats["count"] == sum(lengths)
    gradcheck_model(model, batch)
    if cond:
        assert np.abs(model.train_batch(batch)[1]["cond.W"]).max() > 1e-6
    if dropout:
        # the masks are really random: without rewinding the RNG the loss changes
        losses = {model.train_batch(batch)[0]["loss"] for _ in range(3)}
        assert len(losses) == 3


def test_language_model_gradients_with_carried_state():
    """A carried state (truncated BPTT) replaces the conditioning: cond gets zero gradient
    and the loss depends on the state passed in."""
    V, B, T = 4, 2, 3
    model = randomize(LanguageModel(V, "lstm", 3, 1, cond_size=2, dtype=np.float64, rng=0), 1)
    rng = np.random.default_rng(1)
    state = (rng.uniform(-1, 1, (1, B, 3)), rng.uniform(-1, 1, (1, B, 3)))
    batch = {"x": rng.integers(0, V, (B, T)), "y": rng.integers(0, V, (B, T))}
    gradcheck_model(model, batch, state=state)
    stats, grads, new_state = model.train_batch(batch, state)
    assert not np.any(grads["cond.W"]) and not np.any(grads["cond.b"])
    zero = (np.zeros_like(state[0]), np.zeros_like(state[1]))
    assert model.train_batch(batch, zero)[0]["loss"] != stats["loss"]
    assert new_state[0].shape == (1, B, 3)


def classifier_batch(rng, inputs, B=3, T=4, V=6, D=3):
    lengths = [4, 3, 1]
    if inputs == "ids":
        return {"x": padded_ids(rng, B, T, V, lengths), "y": np.array([0, 2, 1])}, lengths
    x = rng.standard_normal((B, T, D))
    mask = length_mask(B, T, lengths)
    x[~mask] = 9.0  # padded steps hold garbage that must not matter
    return {"x": x, "y": np.array([0, 2, 1]), "mask": mask}, lengths


CLS_CASES = [(pooling, bi, inputs) for pooling in ("last", "mean", "max")
             for bi in (False, True) for inputs in ("ids", "features")]
POOL_CELL = {"last": "lstm", "mean": "gru", "max": "rnn"}


@pytest.mark.parametrize("pooling,bidirectional,inputs", CLS_CASES,
                         ids=[f"{p}-{'bi' if b else 'uni'}-{i}" for p, b, i in CLS_CASES])
def test_sequence_classifier_gradients(pooling, bidirectional, inputs):
    kw = dict(vocab_size=6, embedding_dim=2) if inputs == "ids" else dict(input_size=3)
    model = randomize(SequenceClassifier(3, cell=POOL_CELL[pooling], hidden_size=2,
                                         bidirectional=bidirectional, pooling=pooling,
                                         dtype=np.float64, rng=0, **kw), seed=1)
    if inputs == "ids":
        model.params["embed.W"][0] = 0  # the padding row is zero, as the layer makes it
    batch, lengths = classifier_batch(np.random.default_rng(2), inputs)
    stats, grads, _ = model.train_batch(batch)
    assert stats["count"] == 3 and 0 <= stats["correct"] <= 3
    gradcheck_model(model, batch)
    if inputs == "ids":
        assert not np.any(grads["embed.W"][0])  # padding gets no gradient
    # padding is ignored: the logits of each sequence equal those of it alone, unpadded
    logits, _ = model.forward(batch["x"], batch.get("mask"))
    for b, n in enumerate(lengths):
        alone, _ = model.forward(batch["x"][b : b + 1, :n])
        np.testing.assert_allclose(logits[b], alone[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sequence_regressor_gradients(cell):
    model = randomize(SequenceRegressor(2, input_size=3, cell=cell, hidden_size=2,
                                        bidirectional=True, pooling="mean", dtype=np.float64,
                                        rng=0), seed=1)
    rng = np.random.default_rng(2)
    batch, _ = classifier_batch(rng, "features")
    batch["y"] = rng.standard_normal((3, 2))
    stats, _, _ = model.train_batch(batch)
    assert stats["count"] == 3 and "correct" not in stats
    pred = model.predict(batch["x"], batch["mask"])
    assert stats["loss"] == pytest.approx(np.sum((pred - batch["y"]) ** 2) / 2, rel=1e-12)
    gradcheck_model(model, batch)


@pytest.mark.parametrize("cell,inputs,layers", [("gru", "ids", 2), ("lstm", "features", 1)])
def test_sequence_tagger_gradients(cell, inputs, layers):
    kw = dict(vocab_size=6, embedding_dim=2) if inputs == "ids" else dict(input_size=3)
    model = randomize(SequenceTagger(3, cell=cell, hidden_size=2, num_layers=layers,
                                     dtype=np.float64, rng=0, **kw), seed=1)
    rng = np.random.default_rng(2)
    batch, lengths = classifier_batch(rng, inputs)
    batch["y"] = rng.integers(0, 3, (3, 4))
    stats, _, _ = model.train_batch(batch)
    assert stats["count"] == sum(lengths)
    gradcheck_model(model, batch)


@pytest.mark.parametrize("cell,layers", [("lstm", 1), ("gru", 2)])
def test_seq2seq_gradients(cell, layers):
    model = randomize(Seq2Seq(6, 7, bos_id=1, eos_id=2, embedding_dim=2, cell=cell,
                              hidden_size=2, num_layers=layers, dtype=np.float64, rng=0),
                      seed=1)
    for name in ("src_embed.W", "tgt_embed.W"):
        model.params[name][0] = 0
    src = [[3, 4, 5], [5, 3], [4]]
    tgt = [[3, 4], [6, 5, 4, 3], [5]]
    batch = model.make_batch(src, tgt)
    assert batch["src"].shape == (3, 3) and batch["x"].shape == (3, 5)
    np.testing.assert_array_equal(batch["x"][1], [1, 6, 5, 4, 3])
    np.testing.assert_array_equal(batch["y"][1], [6, 5, 4, 3, 2])
    np.testing.assert_array_equal(batch["y"][0], [3, 4, 2, 0, 0])
    stats, grads, _ = model.train_batch(batch)
    assert stats["count"] == 3 + 5 + 2
    errors = gradcheck_model(model, batch)
    assert np.abs(grads["encoder.l0.W_x"]).max() > 1e-6  # the encoder learns through the state
    assert set(errors) == set(model.params)


# --------------------------------------------------------------------------- PyTorch
def test_language_model_matches_pytorch():
    torch = pytest.importorskip("torch")
    from rnnkit.interop import to_torch

    V, H, B, T = 5, 4, 3, 5
    model = randomize(LanguageModel(V, "lstm", H, num_layers=2, dtype=np.float64, rng=0), 1)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    stats, grads, state = model.train_batch({"x": x, "y": y})

    lstm = to_torch(model.rnn)
    linear = torch.nn.Linear(H, V).to(torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(model.params["head.W"].T))
        linear.bias.copy_(torch.tensor(model.params["head.b"]))
    onehot = torch.nn.functional.one_hot(torch.tensor(x), V).to(torch.float64)
    out, (h_n, c_n) = lstm(onehot)
    logits = linear(out)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(y).reshape(-1))
    loss.backward()

    assert stats["loss"] / stats["count"] == pytest.approx(loss.item(), abs=1e-12)
    np.testing.assert_allclose(state[0], h_n.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(state[1], c_n.detach().numpy(), atol=1e-12)
    expected = {"head.W": linear.weight.grad.numpy().T, "head.b": linear.bias.grad.numpy()}
    for k in range(2):
        expected[f"rnn.l{k}.W_x"] = getattr(lstm, f"weight_ih_l{k}").grad.numpy().T
        expected[f"rnn.l{k}.W_h"] = getattr(lstm, f"weight_hh_l{k}").grad.numpy().T
        expected[f"rnn.l{k}.b"] = getattr(lstm, f"bias_ih_l{k}").grad.numpy()
    assert set(expected) == set(grads)
    for name, g in expected.items():
        np.testing.assert_allclose(grads[name], g, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------- generation
@pytest.fixture(scope="module")
def lm():
    """A float64 two-layer RNN language model (with dropout) that mostly maps token t to
    t + 3 mod 7 plus random perturbations, so that greedy outputs cycle through the
    vocabulary instead of settling on one token as small random models do."""
    V = 7
    model = randomize(LanguageModel(V, "rnn", V, 2, dropout=0.3, dtype=np.float64, rng=0), 5)
    model.params["rnn.l0.W_x"] += 3 * np.roll(np.eye(V), 3, axis=1)
    model.params["rnn.l1.W_x"] += 3 * np.eye(V)
    model.params["head.W"] += 3 * np.eye(V)
    return model


def test_generate_is_reproducible_and_leaves_the_model_alone(lm):
    rng_state = lm.rng.bit_generator.state
    a = lm.generate([1, 2], 20, rng=3)
    b = lm.generate([1, 2], 20, rng=np.random.default_rng(3))
    c = lm.generate([1, 2], 20, rng=4)
    assert a == b and a != c
    assert len(a) == 20 and all(isinstance(t, int) and 0 <= t < 7 for t in a)
    assert lm.rng.bit_generator.state == rng_state  # sampling draws nothing from the model
    assert lm.rnn.training and lm.drop.training  # training mode is restored
    streamed = []
    assert lm.generate([1, 2], 20, rng=3, on_token=streamed.append) == a == streamed


def test_greedy_equals_beam_1_equals_top_k_1(lm):
    greedy = lm.generate([3], 15, greedy=True)
    assert lm.generate([3], 15, beam=1) == greedy
    assert lm.generate([3], 15, top_k=1, rng=0) == greedy
    assert lm.generate([3], 15, top_k=1, rng=1, temperature=2.0) == greedy
    assert len(set(greedy)) > 1  # not a trivial constant sequence
    # greedy is the argmax of a full forward pass over prime + the tokens so far
    lm.eval()
    try:
        seq = [3]
        for tok in greedy:
            logits, _, _ = lm.forward(np.array([seq]))
            assert int(np.argmax(logits[0, -1])) == tok
            seq.append(tok)
    finally:
        lm.train()


def test_stop_ids_stop_generation(lm):
    free = lm.generate([1], 20, rng=7)
    stop = free[5]
    first = free.index(stop)
    assert lm.generate([1], 20, rng=7, stop_ids=[stop]) == free[: first + 1]
    greedy = lm.generate([1], 20, greedy=True)
    g_stop = greedy[4]
    out = lm.generate([1], 20, greedy=True, stop_ids={g_stop})
    assert out == greedy[: greedy.index(g_stop) + 1] and out[-1] == g_stop
    assert lm.generate([1], 20, beam=1, stop_ids=[g_stop]) == out


@pytest.mark.parametrize("cell,emb", [("gru", 3), ("lstm", None)])
def test_prime_matches_forward(cell, emb):
    model = randomize(LanguageModel(6, cell, 4, 2, embedding_dim=emb, dropout=0.5,
                                    dtype=np.float64, rng=0), seed=1, scale=1.0)
    prime = [4, 1, 5, 2, 0]
    logits, state = model.prime(np.array(prime))
    assert logits.shape == (6,)
    model.eval()
    try:
        full, final, _ = model.forward(np.array([prime]))
    finally:
        model.train()
    np.testing.assert_allclose(logits, full[0, -1], rtol=1e-12, atol=1e-12)
    for got, want in zip(state, final, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # each greedy token is the argmax of a full forward pass over prime + tokens so far
    out = model.generate(prime, 6, greedy=True)
    model.eval()
    try:
        for k, tok in enumerate(out):
            logits, _, _ = model.forward(np.array([prime + out[:k]]))
            assert int(np.argmax(logits[0, -1])) == tok
    finally:
        model.train()


def test_prime_conditions_the_output(lm):
    a = lm.generate([4, 1, 6, 2], 10, greedy=True)
    b = lm.generate([5, 5, 5, 5], 10, greedy=True)
    assert a != b
    assert not np.allclose(lm.prime([4, 1, 6, 2])[0], lm.prime([4, 1, 6, 5])[0])


def test_prime_outside_vocabulary_or_empty_raises(lm):
    with pytest.raises(ValueError, match=r"prime holds id 7, outside the vocabulary \[0, 7\)"):
        lm.generate([1, 7], 5)
    with pytest.raises(ValueError, match="prime holds id -1"):
        lm.generate([-1], 5)
    with pytest.raises(ValueError, match="at least one token"):
        lm.generate([], 5)


def test_generate_with_conditioning_vector():
    model = randomize(LanguageModel(6, "lstm", 5, cond_size=3, dtype=np.float64, rng=0), 1, 1.5)
    c1, c2 = np.full((1, 3), 1.0), np.full((1, 3), -1.0)
    a = model.generate([0], 12, rng=3, cond=c1)
    assert a == model.generate([0], 12, rng=3, cond=c1)
    assert not np.allclose(model.prime([0], cond=c1)[0], model.prime([0], cond=c2)[0])
    # the conditioned prime is the forward pass with the same cond
    logits, _, _ = model.forward(np.array([[0, 3]]), cond=c2)
    np.testing.assert_allclose(model.prime([0, 3], cond=c2)[0], logits[0, -1], atol=1e-12)
    with pytest.raises(ValueError, match="needs cond"):
        model.generate([0], 3)


@pytest.fixture(scope="module")
def s2s():
    model = randomize(Seq2Seq(6, 7, bos_id=1, eos_id=2, embedding_dim=3, cell="lstm",
                              hidden_size=5, num_layers=2, dtype=np.float64, rng=0), 2, 1.0)
    model.params["head.b"][2] = -1.5  # make eos rarer so that outputs have some length
    return model


def _seq_logprob(model, src, out, max_len):
    """log p(out [+ eos]) under teacher forcing, for one source sequence."""
    tgt = out + ([model.eos_id] if len(out) < max_len else [])
    x = np.array([[model.bos_id, *tgt[:-1]]])
    logits, _ = model.forward(np.array([src]), x)
    z = logits[0] - logits[0].max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(lp[np.arange(len(tgt)), tgt].sum())


def test_seq2seq_decode_greedy_equals_beam_1(s2s):
    srcs = [[3, 4, 5, 3], [5, 3], [4]]
    max_len = 8
    beam1 = s2s.decode(srcs, max_len=max_len, beam=1)
    assert s2s.decode(srcs, max_len=max_len) == beam1
    assert any(len(o) > 0 for o in beam1)
    # greedy by hand: argmax of a full teacher-forced forward pass, each sequence alone
    for src, out in zip(srcs, beam1, strict=True):
        seq = []
        for _ in range(max_len):
            logits, _ = s2s.forward(np.array([src]), np.array([[s2s.bos_id, *seq]]))
            tok = int(np.argmax(logits[0, -1]))
            if tok == s2s.eos_id:
                break
            seq.append(tok)
        assert seq == out
    # a padded array batch decodes like the list
    padded = np.array([[3, 4, 5, 3], [5, 3, 0, 0], [4, 0, 0, 0]])
    assert s2s.decode(padded, max_len=max_len) == beam1
    # a wider beam ranked by the plain sum never finds a less likely sequence
    beam3 = s2s.decode(srcs, max_len=max_len, beam=3, length_penalty=0)
    for src, g, b in zip(srcs, beam1, beam3, strict=True):
        assert _seq_logprob(s2s, src, b, max_len) >= _seq_logprob(s2s, src, g, max_len) - 1e-12
    assert s2s.modules["decoder"].training


def test_seq2seq_decode_returns_the_best_beams(s2s):
    srcs = [[3, 4, 5, 3], [5, 3]]
    for alpha in (None, 0.0, 0.7):
        best = s2s.decode(srcs, max_len=8, beam=4, length_penalty=alpha)
        many = s2s.decode(srcs, max_len=8, beam=4, length_penalty=alpha, num_return=3)
        for one, three in zip(best, many, strict=True):
            assert len(three) == 3 and three[0] == one
            assert len({tuple(q) for q in three}) == 3
    with pytest.raises(ValueError, match=r"max_len must be an integer >= 0, got -1"):
        s2s.decode(srcs, max_len=-1)
    with pytest.raises(ValueError, match=r"num_return must be an integer in \[1, 2\]"):
        s2s.decode(srcs, beam=2, num_return=5)


# --------------------------------------------------------------------------- save / load
def _models():
    return {
        "lm-onehot": (LanguageModel(5, "rnn", 3, 2, dropout=0.2, rng=0, nonlinearity="relu"),
                      {"x": np.array([[1, 2, 3], [4, 0, 1]])}),
        "lm-cond": (LanguageModel(5, "lstm", 3, 2, embedding_dim=2, cond_size=2, rng=0,
                                  forget_bias=0.5, dtype=np.float64),
                    {"x": np.array([[1, 2, 3]]), "cond": np.array([[0.5, -1.0]])}),
        "classifier": (SequenceClassifier(3, vocab_size=6, embedding_dim=2, cell="gru",
                                          hidden_size=3, bidirectional=True, pooling="max",
                                          rng=0, reset_after=False),
                       {"x": np.array([[1, 2, 3], [4, 5, 0]])}),
        "regressor": (SequenceRegressor(2, input_size=3, cell="lstm", hidden_size=3,
                                        num_layers=2, pooling="mean", rng=0),
                      {"x": np.arange(18, dtype=np.float32).reshape(2, 3, 3) / 10}),
        "tagger": (SequenceTagger(4, vocab_size=6, embedding_dim=2, cell="rnn", hidden_size=3,
                                  rng=0), {"x": np.array([[1, 2, 3], [4, 5, 0]])}),
        "seq2seq": (Seq2Seq(6, 7, bos_id=1, eos_id=2, embedding_dim=2, cell="gru",
                            hidden_size=3, rng=0), {"src": np.array([[3, 4, 5], [5, 3, 0]])}),
    }


def _outputs(model, inputs):
    model.eval()
    try:
        if isinstance(model, LanguageModel):
            return model.forward(inputs["x"], cond=inputs.get("cond"))[0]
        if isinstance(model, Seq2Seq):
            tgt = np.array([[1, 3, 4], [1, 5, 0]])
            return model.forward(inputs["src"], tgt)[0]
        return model.forward(inputs["x"])[0]
    finally:
        model.train()


@pytest.mark.parametrize("name", list(_models()))
def test_save_load_round_trip(name, tmp_path):
    model, inputs = _models()[name]
    randomize(model, seed=3)
    path = model.save(tmp_path / "m.npz", meta={"vocab": ["a", "b"]},
                      arrays={"extra/table": np.arange(4)})
    loaded, meta, arrays = load_model(path)
    assert type(loaded) is type(model)
    assert loaded.config() == model.config()
    assert meta["model"] == type(model).__name__ and meta["vocab"] == ["a", "b"]
    np.testing.assert_array_equal(arrays["extra/table"], np.arange(4))
    assert set(loaded.params) == set(model.params)
    for k, p in model.params.items():
        assert loaded.params[k].dtype == p.dtype
        np.testing.assert_array_equal(loaded.params[k], p)
    np.testing.assert_array_equal(_outputs(loaded, inputs), _outputs(model, inputs))
    if isinstance(model, LanguageModel) and model.cond_size is None:
        assert loaded.generate([1], 10, rng=5) == model.generate([1], 10, rng=5)
    if isinstance(model, Seq2Seq):
        assert loaded.decode([[3, 4]], 5, beam=2) == model.decode([[3, 4]], 5, beam=2)


def test_save_accepts_numpy_integer_sizes(tmp_path):
    """Sizes often come from numpy (``ids.max() + 1``); the config must still be JSON."""
    model = LanguageModel(np.int64(5), hidden_size=np.int64(3), rng=0)
    loaded, _, _ = load_model(model.save(tmp_path / "m.npz"))
    assert loaded.config() == model.config() and loaded.vocab_size == 5
    s2s = Seq2Seq(np.int64(5), 6, bos_id=np.int64(1), eos_id=np.int64(2), hidden_size=3, rng=0)
    loaded, _, _ = load_model(s2s.save(tmp_path / "s.npz"))
    assert loaded.bos_id == 1 and loaded.config() == s2s.config()


@pytest.fixture
def saved_lm(tmp_path):
    model = LanguageModel(5, "lstm", 3, rng=0)
    path = model.save(tmp_path / "m.npz")
    arrays, meta = checkpoint.load(path)
    return model, path, arrays, meta


def test_load_model_rejects_wrong_shape(saved_lm, tmp_path):
    _, _, arrays, meta = saved_lm
    arrays["param/head.W"] = np.zeros((3, 4), np.float32)
    path = checkpoint.save(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"'head.W' has shape \(3, 4\), but the model config implies "
                             r"\(3, 5\)"):
        load_model(path)


def test_load_model_rejects_missing_parameter(saved_lm, tmp_path):
    _, _, arrays, meta = saved_lm
    del arrays["param/rnn.l0.W_h"]
    path = checkpoint.save(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(checkpoint.CheckpointError, match="has no parameter 'rnn.l0.W_h'"):
        load_model(path)


def test_load_model_rejects_nan_weights(saved_lm, tmp_path):
    _, _, arrays, meta = saved_lm
    arrays["param/head.b"] = arrays["param/head.b"].copy()
    arrays["param/head.b"][2] = np.nan
    path = checkpoint.save(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(checkpoint.CheckpointError, match="'head.b' holds NaN or inf"):
        load_model(path)


def test_load_model_rejects_unknown_model_and_bad_config(saved_lm, tmp_path):
    _, _, arrays, meta = saved_lm
    path = checkpoint.save(tmp_path / "a.npz", arrays, {**meta, "model": "Transformer"})
    with pytest.raises(checkpoint.CheckpointError,
                       match="unknown model 'Transformer'; known: LanguageModel"):
        load_model(path)
    path = checkpoint.save(tmp_path / "b.npz", arrays,
                           {**meta, "config": {**meta["config"], "cell": "tcn"}})
    with pytest.raises(checkpoint.CheckpointError,
                       match="invalid model config: config cell must be"):
        load_model(path)
    path = checkpoint.save(tmp_path / "c.npz", arrays, {"purpose": "not a model"})
    with pytest.raises(checkpoint.CheckpointError, match="holds no model"):
        load_model(path)


def test_save_refuses_nan_and_keeps_the_old_file(saved_lm):
    model, path, _, _ = saved_lm
    before = path.read_bytes()
    model.params["rnn.l0.W_x"][0, 1] = np.nan
    with pytest.raises(ValueError, match="'rnn.l0.W_x' holds NaN or inf: refusing to save"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    loaded, _, _ = load_model(path)
    assert np.isfinite(loaded.params["rnn.l0.W_x"]).all()


# --------------------------------------------------------------------------- bad input
def test_language_model_bad_input():
    model = LanguageModel(5, "lstm", 3, rng=0)
    x = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=r"ids must have shape \(B, T\), got \(3,?\)"):
        model.train_batch({"x": x[0], "y": x[0]})
    with pytest.raises(ValueError, match=r"ids must have shape \(B, T\), got \(2, 3, 1\)"):
        model.train_batch({"x": x[..., None], "y": x})
    with pytest.raises(ValueError, match=r"ids holds id 5, outside the vocabulary \[0, 5\)"):
        model.train_batch({"x": x + 5, "y": x})
    with pytest.raises(TypeError, match="integer array of token ids"):
        model.train_batch({"x": x.astype(float), "y": x})
    with pytest.raises(ValueError, match=r"targets holds class 5, outside \[0, 5\)"):
        model.train_batch({"x": x, "y": x + 5})
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 3\).* got \(2, 2\)"):
        model.train_batch({"x": x, "y": x[:, :2]})
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 3\).* got \(3, 3\)"):
        model.train_batch({"x": x, "y": np.zeros((3, 3), np.int64)})
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 3\)"):
        model.train_batch({"x": x, "y": x, "mask": np.ones((3, 3), bool)})
    with pytest.raises(ValueError, match="built without cond_size"):
        model.train_batch({"x": x, "y": x, "cond": np.zeros((2, 2))})
    cond_model = LanguageModel(5, "gru", 3, cond_size=2, rng=0)
    with pytest.raises(ValueError, match=r"needs cond \(B, 2\)"):
        cond_model.train_batch({"x": x, "y": x})
    with pytest.raises(ValueError, match=r"cond must have shape \(2, 2\), got \(3, 2\)"):
        cond_model.train_batch({"x": x, "y": x, "cond": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="cell must be one of"):
        LanguageModel(5, "transformer")
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 2"):
        LanguageModel(1)


@pytest.mark.parametrize("cls", [SequenceClassifier, SequenceTagger])
def test_exactly_one_of_vocab_size_and_input_size(cls):
    for kw in ({}, {"vocab_size": 5, "input_size": 3}):
        with pytest.raises(ValueError, match="exactly one of vocab_size .* or input_size"):
            cls(3, **kw)
    with pytest.raises(ValueError, match="exactly one of vocab_size .* or input_size"):
        SequenceRegressor(2)


def test_classifier_bad_input():
    model = SequenceClassifier(3, vocab_size=5, embedding_dim=2, hidden_size=3, rng=0)
    x = np.ones((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=r"targets holds class 3, outside \[0, 3\)"):
        model.train_batch({"x": x, "y": np.array([0, 3])})
    with pytest.raises(ValueError, match=r"y must have shape \(2,\), got \(3,?\)"):
        model.train_batch({"x": x, "y": np.array([0, 1, 1])})
    with pytest.raises(ValueError, match=r"y must have shape \(2,\), got \(2, 1\)"):
        model.train_batch({"x": x, "y": np.array([[0], [1]])})
    with pytest.raises(ValueError, match=r"x must be token ids \(B, T\), got shape \(2, 3, 1\)"):
        model.train_batch({"x": x[..., None], "y": np.array([0, 1])})
    with pytest.raises(ValueError, match="every sequence needs at least one valid step"):
        model.train_batch({"x": np.array([[1, 2, 0], [0, 0, 0]]), "y": np.array([0, 1])})
    features = SequenceClassifier(3, input_size=4, hidden_size=3, rng=0)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, 4\), got \(2, 3, 5\)"):
        features.train_batch({"x": np.ones((2, 3, 5)), "y": np.array([0, 1])})
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 3\)"):
        features.train_batch({"x": np.ones((2, 3, 4)), "y": np.array([0, 1]),
                              "mask": np.ones((3, 3), bool)})
    with pytest.raises(ValueError, match="pooling must be one of"):
        SequenceClassifier(3, input_size=4, pooling="sum")


def test_regressor_bad_target_shape():
    model = SequenceRegressor(2, input_size=3, hidden_size=3, rng=0)
    x = np.ones((2, 3, 3))
    for bad in ((2, 3), (3, 2), (4,), (2, 2, 1), (3,)):
        with pytest.raises(ValueError, match=rf"y must have shape \(2, 2\), got "
                                             rf"\({', '.join(map(str, bad))},?\)"):
            model.train_batch({"x": x, "y": np.ones(bad)})
    # with one output, y may be given as (B,)
    single = SequenceRegressor(1, input_size=3, hidden_size=3, rng=0)
    s1, _, _ = single.train_batch({"x": x, "y": np.array([0.5, -0.5])})
    s2, _, _ = single.train_batch({"x": x, "y": np.array([[0.5], [-0.5]])})
    assert s1["loss"] == s2["loss"]


def test_tagger_and_seq2seq_bad_input():
    tagger = SequenceTagger(3, vocab_size=5, embedding_dim=2, hidden_size=3, rng=0)
    x = np.ones((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 3\).* got \(2, 4\)"):
        tagger.train_batch({"x": x, "y": np.ones((2, 4), np.int64)})
    with pytest.raises(ValueError, match=r"targets holds class 3, outside \[0, 3\)"):
        tagger.train_batch({"x": x, "y": np.full((2, 3), 3)})
    s2s = Seq2Seq(6, 7, 1, 2, embedding_dim=3, hidden_size=4, rng=0)
    with pytest.raises(ValueError, match="src_seqs has 1 sequences, tgt_seqs 2"):
        s2s.make_batch([[3, 4]], [[3], [4]])
    with pytest.raises(ValueError, match="tgt_in has 3 sequences, src has 2"):
        s2s.train_batch({"src": np.ones((2, 3), np.int64), "x": np.ones((3, 2), np.int64),
                         "y": np.ones((3, 2), np.int64)})
    with pytest.raises(ValueError, match=r"src holds id 9, outside the vocabulary \[0, 6\)"):
        s2s.train_batch({"src": np.full((2, 3), 9), "x": x, "y": x})
    with pytest.raises(ValueError, match=r"src must have 2 dimensions, got shape \(3,?\)"):
        s2s.train_batch({"src": np.ones(3, np.int64), "x": x, "y": x})
    with pytest.raises(ValueError, match=r"eos_id must be an id in \[0, 7\), got 7"):
        Seq2Seq(6, 7, 1, 7)


def test_tagger_loss_mask_leaves_steps_out_of_the_loss_only():
    """loss_mask: the network still reads the step, but its label does not count."""
    rng = np.random.default_rng(5)
    model = SequenceTagger(3, vocab_size=6, embedding_dim=3, hidden_size=4, dtype=np.float64,
                           rng=0)
    x = rng.integers(1, 6, (2, 5))
    y = rng.integers(0, 3, (2, 5))
    lm = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], bool)
    stats, grads, _ = model.train_batch({"x": x, "y": y, "loss_mask": lm})
    assert stats["count"] == 7
    y2 = y.copy()
    y2[~lm] = (y2[~lm] + 1) % 3  # other labels where they do not count: same loss, grads
    stats2, grads2, _ = model.train_batch({"x": x, "y": y2, "loss_mask": lm})
    assert stats2["loss"] == stats["loss"]
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads2[k])
    # while the unlabelled steps still feed the network: other tokens there change the loss
    x2 = x.copy()
    x2[0, 4] = x2[0, 4] % 5 + 1
    assert model.train_batch({"x": x2, "y": y, "loss_mask": lm})[0]["loss"] != stats["loss"]


# --------------------------------------------------------------------------- shapes from a config
def _configs():
    """Models with every option that changes a parameter's shape."""
    import itertools

    for cell, E, L, cond, bias, init in itertools.product(
            ("rnn", "lstm", "gru"), (None, 4), (1, 2), (None, 3), (True, False),
            ("zeros", "learned")):
        yield LanguageModel(7, cell, 5, L, embedding_dim=E, cond_size=cond, bias=bias,
                            initial_state=init, rng=0)
    yield LanguageModel(7, "gru", 5, 2, reset_after=False, rng=0)
    for bidir, merge, vocab in itertools.product((False, True), ("concat", "sum"), (None, 9)):
        inputs = {"vocab_size": vocab} if vocab else {"input_size": 3}
        yield SequenceClassifier(4, cell="gru", hidden_size=5, num_layers=2,
                                 bidirectional=bidir, merge=merge, embedding_dim=6,
                                 pooling="mean", rng=0, **inputs)
        yield SequenceTagger(3, cell="lstm", hidden_size=5, num_layers=2, bidirectional=bidir,
                             merge=merge, embedding_dim=6, rng=0, **inputs)
    yield SequenceRegressor(2, input_size=3, cell="rnn", hidden_size=4, bidirectional=True,
                            rng=0)
    yield SequenceTagger(3, vocab_size=8, rng=0)  # bidirectional by default
    for cell in ("rnn", "lstm", "gru"):
        yield Seq2Seq(6, 7, bos_id=1, eos_id=2, embedding_dim=4, cell=cell, hidden_size=5,
                      num_layers=2, rng=0)
    for att, bidir, feed, size in itertools.product((None, "additive", "general", "dot"),
                                                    (False, True), (False, True), (None, 3)):
        if (feed and att is None) or (size is not None and att != "additive"):
            continue
        yield Seq2Seq(6, 7, bos_id=1, eos_id=2, embedding_dim=4, cell="lstm", hidden_size=6,
                      bidirectional=bidir, attention=att, attention_size=size,
                      input_feeding=feed, rng=0)


def test_the_shapes_a_config_implies_are_those_of_the_built_model():
    """The shapes load_model checks a file's arrays against before building anything."""
    from rnnkit.models import MODELS
    from rnnkit.models._shapes import param_shapes

    n = 0
    for model in _configs():
        config = json.loads(json.dumps(model.config()))  # as a checkpoint holds it
        shapes = param_shapes(MODELS[type(model).__name__], config, len(model.params))
        assert shapes == {k: v.shape for k, v in model.params.items()}, config
        n += 1
    assert n > 100


@pytest.mark.parametrize(("change", "message"), [
    ({"hidden_size": 40000}, r"'rnn.l0.W_x' has shape \(5, 12\), but the model config "
                             r"implies \(5, 160000\)"),
    ({"num_layers": 10**6}, "config num_layers is 1,000,000, but the file holds only 5 "
                            "parameter arrays"),
    ({"num_layers": 2}, "has no parameter 'rnn.l1.W_x', which its model config implies"),
    ({"hidden_size": "3"}, "config hidden_size must be an integer >= 1, got '3'"),
    ({"vocab_size": 1.5}, "config vocab_size must be an integer >= 2, got 1.5"),
    ({"embedding_dim": 0}, "config embedding_dim must be an integer >= 1, got 0"),
    ({"cell": ["lstm"]}, r"config cell must be one of 'rnn', 'lstm', 'gru', got \['lstm'\]"),
])
def test_a_config_that_claims_more_than_the_arrays_is_refused_before_building(
        saved_lm, tmp_path, monkeypatch, change, message):
    _, _, arrays, meta = saved_lm
    path = checkpoint.save(tmp_path / "bad.npz", arrays,
                           {**meta, "config": {**meta["config"], **change}})
    built = []
    monkeypatch.setattr(LanguageModel, "__init__",
                        lambda self, *a, **k: built.append(k) or 1 / 0)
    with pytest.raises(checkpoint.CheckpointError, match=message):
        load_model(path)
    assert built == [], "nothing may be built from a config that the arrays contradict"


def test_load_is_all_or_nothing_and_refuses_extra_or_integer_parameters(saved_lm, tmp_path):
    model, _, arrays, meta = saved_lm
    extra = checkpoint.save(tmp_path / "extra.npz", {**arrays, "param/rnn.l9.W_x": np.zeros(2)},
                            meta)
    with pytest.raises(checkpoint.CheckpointError,
                       match="holds parameters this model does not have: 'rnn.l9.W_x'"):
        load_model(extra)
    ints = checkpoint.save(tmp_path / "ints.npz",
                           {**arrays, "param/head.b": np.zeros(5, np.int64)}, meta)
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"'head.b' has dtype int64, expected floats \(float32\)"):
        load_model(ints)
    big = checkpoint.save(tmp_path / "big.npz",
                          {**arrays, "param/head.b": np.full(5, 1e300)}, meta)
    with pytest.raises(checkpoint.CheckpointError, match=r"'head.b' holds NaN or inf \(in "
                       r"float32\)"):
        load_model(big)
    # a failing load leaves the model's weights as they were
    before = {k: v.copy() for k, v in model.params.items()}
    bad = dict(arrays)
    bad["param/rnn.l0.W_x"] = arrays["param/rnn.l0.W_x"] + 1
    bad["param/head.b"] = np.full(5, np.nan, np.float32)
    with pytest.raises(checkpoint.CheckpointError):
        model.load_arrays(bad)
    assert all(np.array_equal(before[k], v) for k, v in model.params.items())


def test_language_model_refuses_to_read_ahead():
    with pytest.raises(ValueError, match="bidirectional=True: a language model predicts"):
        LanguageModel(5, "lstm", 4, bidirectional=True, rng=0)
