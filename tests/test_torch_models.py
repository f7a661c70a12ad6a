"""Whole models to PyTorch and back (rnnkit.interop.to_torch / from_torch of a model): the
same outputs, a round trip with the weights PyTorch trained, refusals."""

import numpy as np
import pytest

from rnnkit.interop import from_torch, to_torch
from rnnkit.models import (
    LanguageModel,
    Seq2Seq,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
)

torch = pytest.importorskip("torch")

B, T, V = 4, 7, 11


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for k, p in model.params.items():
        if k.endswith("embed.W") and getattr(model.modules[k.split(".")[0]], "padding_idx",
                                             None) is not None:
            p[1:] = rng.uniform(-0.5, 0.5, p[1:].shape)  # the padding row stays zero
        else:
            p[...] = rng.uniform(-0.5, 0.5, p.shape)
    return model.eval()


def _ids(seed=1, low=0):
    return np.random.default_rng(seed).integers(low, V, (B, T))


def _t(a):
    return torch.tensor(a)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("embedding_dim", [None, 5])
def test_language_model(cell, embedding_dim):
    model = _randomize(LanguageModel(V, cell=cell, hidden_size=6, num_layers=2,
                                     embedding_dim=embedding_dim, dtype=np.float64, rng=0))
    module = to_torch(model).eval()
    ids = _ids()
    logits, state, _ = model.forward(ids)
    with torch.no_grad():
        t_logits, t_state = module(_t(ids))
    np.testing.assert_allclose(t_logits.numpy(), logits, rtol=1e-10, atol=1e-12)
    h = state[0] if cell == "lstm" else state
    th = t_state[0] if cell == "lstm" else t_state
    np.testing.assert_allclose(th.numpy(), h, rtol=1e-10, atol=1e-12)
    back = from_torch(module)
    assert type(back) is LanguageModel and back.config() == model.config()
    for k in model.params:
        np.testing.assert_array_equal(back.params[k], model.params[k])


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_with_padding(pooling, bidirectional):
    model = _randomize(SequenceClassifier(3, vocab_size=V, embedding_dim=4, cell="gru",
                                          hidden_size=5, bidirectional=bidirectional,
                                          pooling=pooling, dtype=np.float64, rng=0))
    ids = _ids(low=1)
    for b, n in enumerate([7, 3, 1, 5]):
        ids[b, n:] = 0  # pad_id 0: padded steps
    logits, _ = model.forward(ids)
    with torch.no_grad():
        t_logits = to_torch(model).eval()(_t(ids))
    np.testing.assert_allclose(t_logits.numpy(), logits, rtol=1e-10, atol=1e-12)


def test_regressor_on_features_and_tagger():
    x = np.random.default_rng(2).standard_normal((B, T, 3))
    reg = _randomize(SequenceRegressor(2, input_size=3, hidden_size=5, dtype=np.float64))
    with torch.no_grad():
        out = to_torch(reg).eval()(_t(x)).numpy()
    np.testing.assert_allclose(out, reg.forward(x)[0], rtol=1e-10, atol=1e-12)
    tag = _randomize(SequenceTagger(4, vocab_size=V, embedding_dim=3, cell="lstm",
                                    hidden_size=5, bidirectional=True, dtype=np.float64))
    ids = _ids(low=1)
    ids[1, 4:] = 0
    with torch.no_grad():
        t_logits = to_torch(tag).eval()(_t(ids)).numpy()
    logits, mask, _ = tag.forward(ids)
    np.testing.assert_allclose(t_logits[mask], logits[mask], rtol=1e-10, atol=1e-12)
    assert type(from_torch(to_torch(tag))) is SequenceTagger


def test_seq2seq():
    model = _randomize(Seq2Seq(V, V, bos_id=1, eos_id=2, embedding_dim=4, cell="lstm",
                               hidden_size=6, num_layers=2, dtype=np.float64))
    src, tgt = _ids(3, low=3), _ids(4, low=3)
    src[0, 5:] = 0
    logits, _ = model.forward(src, tgt)
    with torch.no_grad():
        t_logits = to_torch(model).eval()(_t(src), _t(tgt)).numpy()
    np.testing.assert_allclose(t_logits, logits, rtol=1e-10, atol=1e-12)


def test_train_in_torch_and_come_back():
    """A few steps of Adam in PyTorch, then rnnkit computes what the trained module does."""
    model = LanguageModel(V, cell="lstm", hidden_size=8, dropout=0.1, rng=0)
    module = to_torch(model).train()
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    ids = _t(_ids())
    for _ in range(5):
        opt.zero_grad()
        logits, _ = module(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
    back = from_torch(module).eval()
    assert not np.allclose(back.params["head.W"], model.params["head.W"])
    with torch.no_grad():
        t_logits, _ = module.eval()(ids)
    np.testing.assert_allclose(back.forward(ids.numpy())[0], t_logits.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_what_torch_cannot_express_is_refused():
    with pytest.raises(ValueError, match="no recurrent_dropout; this layer has "
                                         "recurrent_dropout=0.2"):
        to_torch(LanguageModel(V, hidden_size=4, recurrent_dropout=0.2))
    with pytest.raises(ValueError, match="no variational"):
        to_torch(LanguageModel(V, hidden_size=4, num_layers=2, dropout=0.1, variational=True))
    with pytest.raises(ValueError, match="conditioned"):
        to_torch(LanguageModel(V, hidden_size=4, cond_size=3))
    with pytest.raises(ValueError, match="reset_after=False"):
        to_torch(SequenceTagger(3, input_size=2, cell="gru", reset_after=False))


def test_the_continue_in_pytorch_example(tmp_path, monkeypatch):
    """examples/torch_continue.py: a checkpoint trained further in PyTorch comes back as a
    checkpoint that rnnkit samples from."""
    import importlib.util
    from pathlib import Path

    from rnnkit.data import Vocab, dinos_text
    from rnnkit.models import load_model

    text = dinos_text().lower()
    vocab = Vocab.from_text(text)
    model = LanguageModel(len(vocab), hidden_size=8, rng=0)
    model.save(tmp_path / "run.npz", {"vocab": vocab.to_json(), "source": "builtin:dinos"})
    path = Path(__file__).resolve().parent.parent / "examples" / "torch_continue.py"
    spec = importlib.util.spec_from_file_location("torch_continue", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main([str(tmp_path / "run.npz"), "-o", str(tmp_path / "torch.npz"), "--steps",
                  "3", "--batch-size", "4", "--seq-len", "10"])
    back, meta, _ = load_model(tmp_path / "torch.npz")
    assert meta["vocab"] == vocab.to_json() and "PyTorch" in meta["continued_in"]
    assert not np.allclose(back.params["head.W"], model.params["head.W"])
    assert len(back.generate(vocab.encode("a"), 5, rng=0)) <= 5
