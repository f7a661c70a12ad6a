"""The trainer's gradient statistics: the global norm before clipping, whether clipping
changed the step, the norm of every layer (history.json / .csv)."""

import csv
import math

import numpy as np
import pytest

from rnnkit.models import LanguageModel
from rnnkit.optim import Adam, clip_gradients
from rnnkit.train import StreamData, TrainConfig, Trainer, layer_norms, save_history, would_clip


def test_layer_norms_and_would_clip():
    rng = np.random.default_rng(0)
    grads = {"rnn.l0.W_x": rng.standard_normal((3, 4)), "rnn.l0.b": rng.standard_normal(4),
             "rnn.l1.W_x": rng.standard_normal((4, 4)), "head.W": rng.standard_normal((4, 2))}
    norms = layer_norms(grads)
    assert list(norms) == ["rnn.l0", "rnn.l1", "head"]
    l0 = np.sqrt((grads["rnn.l0.W_x"] ** 2).sum() + (grads["rnn.l0.b"] ** 2).sum())
    assert norms["rnn.l0"] == pytest.approx(l0, rel=1e-12)
    total = math.sqrt(sum(v * v for v in norms.values()))
    for mode, value in [("global_norm", total * 0.99), ("global_norm", total * 1.01),
                        ("norm", 1.0), ("norm", 100.0), ("value", 0.5), ("value", 100.0),
                        ("none", 1e-9)]:
        before = {k: v.copy() for k, v in grads.items()}
        expect = would_clip(before, mode, value)
        clip_gradients(before, mode, value)
        changed = any(not np.array_equal(before[k], grads[k]) for k in grads)
        assert expect == changed, (mode, value)


def test_history_records_them(tmp_path):
    ids = np.random.default_rng(0).integers(0, 9, 2000)
    model = LanguageModel(9, hidden_size=8, num_layers=2, rng=0)
    config = TrainConfig(steps=6, clip_mode="global_norm", clip_value=0.05, log_every=0,
                         progress=False)
    summary = Trainer(model, Adam(model.params, lr=1e-2), StreamData(ids, 4, 10), None,
                      config, log=lambda m: None).fit()
    hist = summary["history"]
    assert len(hist) == 6
    for rec in hist:
        layers = {k: v for k, v in rec.items() if k.startswith("grad_norm/")}
        assert set(layers) == {"grad_norm/rnn.l0", "grad_norm/rnn.l1", "grad_norm/head"}
        assert math.sqrt(sum(v * v for v in layers.values())) == pytest.approx(
            rec["grad_norm"], rel=1e-5)
        assert rec["clipped"] == (rec["grad_norm"] > 0.05)
    assert any(rec["clipped"] for rec in hist)
    save_history(hist, tmp_path / "h.csv")
    with open(tmp_path / "h.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["clipped"] in ("True", "False") and "grad_norm/rnn.l1" in rows[0]
