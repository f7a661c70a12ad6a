"""Beam search on a model of the dinosaur names: the default length normalisation gives
names, not empty outputs; ``num_return`` (``rnnkit sample --beam W --num N``) gives the N
best distinct beams, best first."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.data import Vocab, dinos_text
from rnnkit.generate import beam_hypotheses
from rnnkit.models import LanguageModel
from rnnkit.optim import Adam
from rnnkit.train import StreamData, TrainConfig, Trainer


@pytest.fixture(scope="module")
def dinos(tmp_path_factory):
    """(model, vocab, checkpoint) of a small LSTM trained briefly on the dinosaur names."""
    text = dinos_text().lower()
    vocab = Vocab.from_text(text, "char")
    model = LanguageModel(len(vocab), "lstm", 48, 1, rng=0)
    data = StreamData(vocab.encode(text), 16, 25)
    Trainer(model, Adam(model.params, lr=0.01), data, None,
            TrainConfig(steps=250, progress=False, log_every=0), log=lambda m: None).fit()
    path = tmp_path_factory.mktemp("dinos") / "dinos.npz"
    model.save(path, {"vocab": vocab.to_json(),
                      "sample_defaults": {"prime": "\n", "stop": "\n", "length": 30,
                                          "capitalize": True}})
    return model, vocab, path


PRIMES = ["\n"] + list("abcdefghijklmnopqrstuvwxyz")


def test_beam_output_is_a_name_not_an_empty_line(dinos):
    model, vocab, _ = dinos
    nl = vocab.encode("\n").tolist()
    plain_empty = 0
    for prime in PRIMES:
        ids = vocab.encode(prime)
        out = model.generate(ids, 30, beam=5, stop_ids=nl)
        assert len(out) >= 2 and out[-1] == nl[0], (prime, vocab.decode(out))  # a name
        plain = model.generate(ids, 30, beam=5, stop_ids=nl, length_penalty=0)
        plain_empty += plain == nl
    # ranked by the plain sum of log-probabilities, short outputs win: some are empty
    assert plain_empty > 0


def test_num_return_gives_the_best_distinct_beams(dinos):
    model, vocab, _ = dinos
    nl = vocab.encode("\n").tolist()
    ids = vocab.encode("\n")
    beams = model.generate(ids, 30, beam=6, stop_ids=nl, num_return=6)
    assert len(beams) == 6 and len({tuple(b) for b in beams}) == 6
    assert beams[0] == model.generate(ids, 30, beam=6, stop_ids=nl)
    # best first: the scores (mean log-probability per token) do not rise
    logits, state = model.prime(ids)
    hyps = beam_hypotheses(model.step, logits, state, 6, 30, nl, num=6)
    assert [q for q, _ in hyps] == beams
    scores = [s for _, s in hyps]
    assert scores == sorted(scores, reverse=True)
    for seq, score in hyps:  # the score is the mean log-probability of the tokens
        lp, (lg, st) = 0.0, (logits, state)
        for t in seq:
            z = np.asarray(lg, np.float64)
            lp += z[t] - z.max() - np.log(np.exp(z - z.max()).sum())
            out, st = model.step(np.array([t]), st)
            lg = out[0]
        assert score == pytest.approx(lp / len(seq), abs=1e-6)
    with pytest.raises(ValueError, match="on_token streams one sequence"):
        model.generate(ids, 30, beam=3, num_return=2, on_token=print)


def test_sample_command_prints_the_n_best_beams(dinos, capsys):
    _, _, path = dinos
    assert main(["sample", str(path), "--beam", "5", "--num", "5"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert len(names) == 5 and len(set(names)) == 5 and all(names)
    assert main(["sample", str(path), "--beam", "5"]) == 0
    assert capsys.readouterr().out.splitlines() == names[:1]
    assert main(["sample", str(path), "--beam", "5", "--num", "2", "--prime", "ba"]) == 0
    two = capsys.readouterr().out.splitlines()
    assert len(two) == 2 and all(n.startswith("Ba") and len(n) > 2 for n in two), two
    for flags, words in [(["--beam", "3", "--num", "4"], "--num must be an integer in [1, 3]"),
                         (["--length-penalty", "0.5"], "--length-penalty applies to beam "
                          "search only; give --beam too")]:
        with pytest.raises(SystemExit) as e:
            main(["sample", str(path), *flags])
        assert e.value.code == 2 and words in capsys.readouterr().err
