"""Fine-tuning on a new text: ``rnnkit.models.transfer`` (the vocabulary mapped, the rest of
the weights kept) and ``rnnkit train NEW.txt --init-from CHECKPOINT`` (the model's shape
from the checkpoint, a fresh optimizer and step counter, the mapping printed and kept)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.checkpoint import read_meta
from rnnkit.cli import main
from rnnkit.data import Vocab
from rnnkit.models import LanguageModel, SequenceClassifier, load_model, transfer

OLD = list("\nabcdefgh")
NEW = list("\nfghijk")  # shares \n f g h; i j k are new; a-e are dropped


@pytest.mark.parametrize("embedding", [None, 5])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_transfer_keeps_shared_rows_and_the_stack(cell, embedding):
    old = LanguageModel(len(OLD), cell, 6, 2, embedding_dim=embedding, rng=0,
                        dtype=np.float64)
    new, mapping = transfer(old, OLD, NEW, rng=1)
    assert mapping == {"kept": list("\nfgh"), "new": list("ijk"), "dropped": list("abcde")}
    fresh = LanguageModel(len(NEW), cell, 6, 2, embedding_dim=embedding, rng=1,
                          dtype=np.float64)
    inputs = "embed.W" if embedding else "rnn.l0.W_x"
    for name, q in new.params.items():
        p = old.params[name]
        if name == inputs:
            np.testing.assert_array_equal(q[[0, 1, 2, 3]], p[[0, 6, 7, 8]])
            np.testing.assert_array_equal(q[4:], fresh.params[name][4:])  # as a fresh model
        elif name == "head.W":
            np.testing.assert_array_equal(q[:, :4], p[:, [0, 6, 7, 8]])
            np.testing.assert_array_equal(q[:, 4:], fresh.params[name][:, 4:])
        elif name == "head.b":
            np.testing.assert_array_equal(q[:4], p[[0, 6, 7, 8]])
        else:
            np.testing.assert_array_equal(q, p)
    # on a text of shared symbols, the new model scores the shared symbols as the old one
    ids_old = np.array([[0, 6, 7, 8, 6, 0, 7]])
    ids_new = np.array([[0, 1, 2, 3, 1, 0, 2]])
    lo, hn = old.forward(ids_old)[0], new.forward(ids_new)[0]
    np.testing.assert_allclose(hn[..., :4], lo[..., [0, 6, 7, 8]], rtol=1e-12, atol=1e-12)


def test_transfer_changes_dropout_but_not_the_shape():
    old = LanguageModel(len(OLD), "lstm", 6, 1, dropout=0.3, rng=0)
    new, _ = transfer(old, OLD, NEW, rng=0, dropout=0.0)
    assert new.config()["dropout"] == 0.0 and new.config()["cell"] == "lstm"
    with pytest.raises(ValueError, match="hidden_size"):
        transfer(old, OLD, NEW, hidden_size=8)
    with pytest.raises(ValueError, match="old_tokens has 3 tokens"):
        transfer(old, list("abc"), NEW)
    with pytest.raises(ValueError, match="distinct"):
        transfer(old, OLD, list("aab"))


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    d = tmp_path_factory.mktemp("finetune")
    (d / "old.txt").write_text("the cat sat on the mat\n" * 60, encoding="utf-8")
    (d / "new.txt").write_text("THE BAT SAT; the rat ate\n" * 60, encoding="utf-8")
    rc = main(["train", str(d / "old.txt"), "--hidden", "16", "--layers", "1", "--steps", "20",
               "--eval-every", "10", "--seq-len", "20", "--batch-size", "4", "--quiet",
               "--out", str(d / "old")])
    assert rc == 0
    return d


def _train(d, *flags):
    return main(["train", str(d / "new.txt"), "--steps", "3", "--eval-every", "3",
                 "--seq-len", "20", "--batch-size", "4", "--sample-every", "0", *flags])


def test_init_from_maps_the_vocabulary_and_starts_a_fresh_run(texts, capsys):
    d = texts
    old_model, old_meta, _ = load_model(d / "old" / "best.npz")
    capsys.readouterr()
    assert _train(d, "--init-from", str(d / "old" / "best.npz"), "--lr", "1e-12",
                  "--out", str(d / "tuned")) == 0
    err = capsys.readouterr().err
    new_vocab = Vocab.from_text((d / "new.txt").read_text(encoding="utf-8"), "char")
    old_vocab = Vocab.from_json(old_meta["vocab"])
    shared = [t for t in new_vocab.tokens if t in old_vocab.index]
    added = [t for t in new_vocab.tokens if t not in old_vocab.index]
    assert (f"{len(shared)} of {len(new_vocab)} symbols kept their trained rows, "
            f"{len(added)} new") in err
    model, meta, _ = load_model(d / "tuned" / "last.npz")
    # the checkpoint's shape, a fresh step counter and optimizer
    assert meta["cli"]["hidden"] == 16 and meta["cli"]["layers"] == 1
    assert meta["train_state"]["step"] == 3 and meta["optimizer"]["t"] == 3
    assert meta["init_from"]["kept"] == len(shared) and meta["init_from"]["new"] == added
    # with a vanishing learning rate the weights are the checkpoint's (rows mapped)
    src = [old_vocab.index[t] for t in shared]
    dst = [new_vocab.index[t] for t in shared]
    np.testing.assert_allclose(model.params["head.W"][:, dst], old_model.params["head.W"][:, src],
                               atol=1e-6)
    np.testing.assert_allclose(model.params["rnn.l0.W_h"], old_model.params["rnn.l0.W_h"],
                               atol=1e-6)
    # a resumed fine-tuning run stays one, and info says so
    assert main(["train", str(d / "new.txt"), "--steps", "4", "--resume", "--quiet",
                 "--out", str(d / "tuned")]) == 0
    assert read_meta(d / "tuned" / "last.npz")[0]["init_from"] == meta["init_from"]
    capsys.readouterr()
    assert main(["info", str(d / "tuned" / "last.npz")]) == 0
    assert f"fine-tuned  from {d / 'old' / 'best.npz'} ({len(shared)} symbols" in \
        capsys.readouterr().out


@pytest.mark.parametrize("flags, words", [
    (["--hidden", "32"], ["--hidden 32", "has 16", "leave these flags out"]),
    (["--cell", "gru"], ["--cell gru", "has lstm"]),
    (["--resume"], ["--init-from", "--resume", "give one of them"]),
    (["--word"], ["--word True", "has False"]),
])
def test_init_from_refuses_flags_that_change_the_model(texts, capsys, flags, words):
    d = texts
    with pytest.raises(SystemExit) as e:
        _train(d, "--init-from", str(d / "old" / "best.npz"), *flags, "--out", str(d / "x"))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words), err
    assert not (d / "x").exists()


def test_init_from_refuses_what_it_cannot_start_from(texts, capsys, tmp_path):
    d = texts
    clf = SequenceClassifier(3, vocab_size=5, hidden_size=4, rng=0)
    clf.save(tmp_path / "clf.npz")
    relu = LanguageModel(5, "rnn", 4, nonlinearity="relu", rng=0)
    relu.save(tmp_path / "relu.npz", {"vocab": Vocab(list("abcde")).to_json()})
    bare = LanguageModel(5, "lstm", 4, rng=0)
    bare.save(tmp_path / "bare.npz")
    cases = [(d / "old", "is a folder"), (tmp_path / "none.npz", "does not exist"),
             (tmp_path / "clf.npz", "SequenceClassifier"),
             (tmp_path / "relu.npz", "nonlinearity='relu'"),
             (tmp_path / "bare.npz", "holds no vocabulary")]
    for path, words in cases:
        with pytest.raises(SystemExit) as e:
            _train(d, "--init-from", str(path), "--out", str(tmp_path / "out"))
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err


def test_the_comparison_example_runs_both_runs(texts, capsys, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "finetune_compare.py"
    spec = importlib.util.spec_from_file_location("finetune_compare", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main_([str(texts / "old" / "best.npz"), str(texts / "new.txt"), "--steps", "4",
                   "--eval-every", "1", "--targets", "9,0.01", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "fine-tuned" in out and "scratch" in out
    # every run reaches a loss of 9 at its first validation and none reaches 0.01
    assert "  9.00           1         1" in out and "  0.01           -         -" in out
    for name in ("finetuned", "scratch"):  # the same shape, the same budget
        meta = read_meta(tmp_path / name / "last.npz")[0]
        assert meta["train_state"]["step"] == 4
        assert (meta["cli"]["hidden"], meta["cli"]["layers"]) == (16, 1)
