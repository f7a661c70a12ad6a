"""The training loop: learning, exact resume, budgets, early stopping, history,
checkpoints, non-finite steps and interruption.

Everything trains tiny models on generated data (a Markov chain over a few tokens), so
the tests need no corpus and run in a few seconds.
"""

import csv
import json
import math
import re
import signal

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.data import TextStream
from rnnkit.models import LanguageModel, SequenceClassifier, load_model
from rnnkit.optim import SGD, Adam, StepDecay
from rnnkit.train import (
    ArrayData,
    StreamData,
    TrainConfig,
    Trainer,
    save_history,
)

V = 4
# a Markov chain that mostly moves t -> t + 1 (mod 4); doubly stochastic, so its stationary
# distribution is uniform and its entropy rate is the entropy of one row, 0.588 nats
P = np.full((V, V), 0.05) + 0.80 * np.roll(np.eye(V), 1, axis=1)
# the reverse chain (t -> t - 1): what a model of P predicts worst
P_REV = P.T.copy()


def markov_ids(n: int, seed: int, transitions=P) -> np.ndarray:
    """n ids (n,) drawn from the chain ``transitions`` (V, V), starting at 0."""
    rng = np.random.default_rng(seed)
    ids = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    cum = np.cumsum(transitions, axis=1)
    for i in range(1, n):
        ids[i] = min(int(np.searchsorted(cum[ids[i - 1]], u[i], side="right")), V - 1)
    return ids


TRAIN_IDS = markov_ids(161, seed=0)  # 4 rows of 40: 5 batches of (4, 8) per epoch
VAL_IDS = markov_ids(81, seed=1)


def quiet(**kw) -> TrainConfig:
    return TrainConfig(progress=False, log_every=0, **kw)


def lm_run(steps, checkpoint_dir=None, seed=0, log=None, on_step=None, val_ids=VAL_IDS,
           **cfg):
    """A 2-layer LSTM language model with dropout on the Markov text, Adam with a step
    schedule, validation every 3 steps. Returns (model, trainer)."""
    model = LanguageModel(V, "lstm", 6, 2, embedding_dim=3, dropout=0.3, rng=seed)
    opt = Adam(model.params, lr=0.02)
    cfg = {"eval_every": 3, **cfg}
    trainer = Trainer(model, opt, StreamData(TRAIN_IDS, 4, 8), StreamData(val_ids, 2, 8),
                      quiet(steps=steps, checkpoint_dir=checkpoint_dir, **cfg),
                      schedule=StepDecay(0.02, every=4, gamma=0.7), meta={"note": "test"},
                      log=log if log is not None else (lambda msg: None), on_step=on_step)
    return model, trainer


def assert_same_params(a, b):
    assert set(a.params) == set(b.params)
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k


def assert_same_run(m1, t1, m2, t2, prime=(1, 2)):
    """Bit-identical weights, optimizer state, RNG state, history, and samples."""
    assert_same_params(m1, m2)
    s1, s2 = t1.opt.state_dict(), t2.opt.state_dict()
    assert s1["t"] == s2["t"]
    for k in s1["arrays"]:
        assert np.array_equal(s1["arrays"][k], s2["arrays"][k]), k
    assert m1.rng.bit_generator.state == m2.rng.bit_generator.state
    assert t1.state.history == t2.state.history
    assert (t1.state.step, t1.state.epoch, t1.state.batch) == \
        (t2.state.step, t2.state.epoch, t2.state.batch)
    assert t1.state.best_val == t2.state.best_val
    if isinstance(m1, LanguageModel):
        assert m1.generate(list(prime), 25, rng=11) == m2.generate(list(prime), 25, rng=11)


# --------------------------------------------------------------------------- learning
def test_language_model_learns_markov_text():
    """The loss falls from ln 4 (knowing nothing) to within 0.05 nats of the true chain's
    own cross-entropy on the same validation targets (the best any model can do in
    expectation; a model that had learnt only the unigram frequencies stays at ln 4)."""
    train, val = markov_ids(4001, seed=2), markov_ids(801, seed=3)
    model = LanguageModel(V, "gru", 8, rng=0)
    val_data = StreamData(val, 4, 10)
    trainer = Trainer(model, Adam(model.params, lr=0.02), StreamData(train, 8, 10), val_data,
                      quiet(steps=120, eval_every=40), log=lambda msg: None)
    first = trainer.evaluate()
    summary = trainer.fit()
    true_nats = []
    for k in range(val_data.num_batches()):
        b = val_data.batch(0, k)
        true_nats.append(-np.log(P[b["x"], b["y"]]))
    reference = float(np.mean(true_nats))
    assert abs(first["loss"] - math.log(V)) < 0.1
    assert 0.45 < reference < 0.75  # near the entropy rate, 0.588
    final = summary["history"][-1]
    assert final["step"] == 120 and "val_loss" in final
    assert final["val_loss"] < reference + 0.05, (final["val_loss"], reference)
    assert final["val_perplexity"] == pytest.approx(math.exp(final["val_loss"]))
    assert final["val_bpc"] == pytest.approx(final["val_loss"] / math.log(2))
    assert summary["best_val"] <= final["val_loss"]


# --------------------------------------------------------------------------- exact resume
def test_exact_resume_with_carried_state_dropout_and_validation(tmp_path):
    """2N steps in one go == N steps, save, a fresh model/optimizer/trainer, resume, N more:
    bit for bit, through an epoch boundary, with dropout, a carried state and a schedule."""
    n = 7  # mid-epoch (5 batches per epoch) and between validations (every 3 steps)
    m1, t1 = lm_run(2 * n)
    t1.fit()
    m2, t2 = lm_run(n, tmp_path)
    t2.fit()
    assert t2.carry is not None  # the state carried from the last batch is saved
    half = tmp_path / "half.npz"
    half.write_bytes((tmp_path / "last.npz").read_bytes())
    arrays, meta = checkpoint.load(half)
    assert {"carry/0", "carry/1"} <= set(arrays) and meta["note"] == "test"
    m3, t3 = lm_run(2 * n, tmp_path, seed=123)  # another init: the checkpoint overrides it
    t3.resume(half)
    assert t3.state.step == n
    summary = t3.fit()
    assert summary["step"] == 2 * n and summary["epoch"] == 2
    assert_same_run(m1, t1, m3, t3)

    # the test is sensitive to what the checkpoint restores: the carried state and the RNG
    for spoil in ("carry", "rng"):
        m4, t4 = lm_run(2 * n, seed=5)
        t4.resume(half)
        if spoil == "carry":
            t4.carry = None
        else:
            m4.rng.bit_generator.state = np.random.default_rng(99).bit_generator.state
        t4.fit()
        assert not np.array_equal(m4.params["head.W"], m1.params["head.W"]), spoil


def test_resume_from_a_validation_checkpoint_is_exact(tmp_path):
    """A step-named checkpoint written at a validation resumes exactly too (its history
    includes that step's record and its validation)."""
    m1, t1 = lm_run(12)
    t1.fit()
    _, t2 = lm_run(12, tmp_path, keep_checkpoints=10)
    t2.fit()
    ckpt = tmp_path / "ckpt_step0000006_val{:.4f}.npz".format(t2.state.history[5]["val_loss"])
    assert ckpt.is_file()
    m3, t3 = lm_run(12, tmp_path / "again", seed=7)
    t3.resume(ckpt)
    assert t3.state.step == 6 and t3.state.history[-1]["step"] == 6
    assert "val_loss" in t3.state.history[-1]
    t3.fit()
    assert_same_run(m1, t1, m3, t3)


def classifier_run(steps, checkpoint_dir=None, seed=0):
    """A 2-layer GRU classifier with dropout on shuffled fixed-size arrays (10 examples,
    batches of 3: 4 batches per epoch, the last one partial), validated at each epoch end."""
    rng = np.random.default_rng(42)
    x = rng.standard_normal((10, 5, 3))
    lengths = rng.integers(1, 6, 10)
    mask = np.arange(5)[None, :] < lengths[:, None]
    y = (x[:, 0, 0] > 0).astype(np.int64)
    model = SequenceClassifier(2, input_size=3, cell="gru", hidden_size=4, num_layers=2,
                               dropout=0.3, pooling="mean", rng=seed)
    train = ArrayData({"x": x, "y": y, "mask": mask}, batch_size=3, shuffle=True, seed=1)
    val = ArrayData({"x": x[:4], "y": y[:4], "mask": mask[:4]}, batch_size=2, shuffle=False)
    trainer = Trainer(model, SGD(model.params, lr=0.1, momentum=0.9), train, val,
                      quiet(steps=steps, checkpoint_dir=checkpoint_dir), log=lambda m: None)
    return model, trainer


def test_exact_resume_with_shuffled_arrays_across_epochs(tmp_path):
    m1, t1 = classifier_run(12)
    t1.fit()
    assert (t1.state.epoch, t1.state.batch) == (2, 4)  # 12 steps = 3 epochs of 4 batches
    val_steps = [h["step"] for h in t1.state.history if "val_loss" in h]
    assert val_steps == [4, 8]  # end of epochs 0 and 1 (the end of epoch 2 is not reached)
    assert all("accuracy" in h for h in t1.state.history if "loss" in h)
    data = t1.train_data
    assert not np.array_equal(data.batch(0, 0)["x"], data.batch(1, 0)["x"])  # reshuffled
    _, t2 = classifier_run(6, tmp_path)  # stops mid-epoch 1
    t2.fit()
    m3, t3 = classifier_run(12, tmp_path, seed=3)
    t3.resume(tmp_path / "last.npz")
    assert (t3.state.epoch, t3.state.batch) == (1, 2)
    t3.fit()
    assert_same_run(m1, t1, m3, t3)


def test_keyboard_interrupt_leaves_a_resumable_checkpoint(tmp_path):
    m1, t1 = lm_run(12)
    t1.fit()

    def interrupt(trainer, rec):
        if rec["step"] == 5:
            raise KeyboardInterrupt

    logs = []
    m2, t2 = lm_run(12, tmp_path, log=logs.append, on_step=interrupt)
    summary = t2.fit()
    assert summary["stopped"] == "interrupted (Ctrl-C)" and summary["step"] == 5
    assert any("interrupted" in msg for msg in logs)
    loaded, meta, _ = load_model(tmp_path / "last.npz")
    assert meta["train_state"]["step"] == 5
    assert_same_params(loaded, m2)
    m3, t3 = lm_run(12, tmp_path, seed=8)
    t3.resume(tmp_path / "last.npz")
    t3.fit()
    assert_same_run(m1, t1, m3, t3)


# --------------------------------------------------------------------------- step boundaries
def signal_inside(trainer, step, where, signals):
    """Deliver ``signals`` (raise_signal: each is handled before it returns, so the test is
    deterministic) inside optimizer step ``step``: ``where="update"`` after the optimizer
    has updated 2 of the parameters, ``"gradients"`` after the model has computed its
    gradients (and drawn its dropout masks). Returns the record of what happened."""
    seen = {"delivered": False}
    opt, model = trainer.opt, trainer.model
    update, train_batch = opt._update, model.train_batch

    def deliver():
        seen["delivered"] = True
        for sig in signals:
            signal.raise_signal(sig)

    def watched_update(p, g, st):
        update(p, g, st)
        seen[opt.t] = seen.get(opt.t, 0) + 1
        if where == "update" and opt.t == step and seen[opt.t] == 2:
            deliver()

    def watched_batch(batch, carry):
        out = train_batch(batch, carry)
        if where == "gradients" and trainer.state.step == step - 1:
            deliver()
        return out

    opt._update, model.train_batch = watched_update, watched_batch
    return seen


def on_disk(path):
    arrays, meta = checkpoint.load(path)
    return arrays, meta["train_state"]["step"], meta["optimizer"]["t"]


@pytest.mark.parametrize("step", [5, 6], ids=["between-validations", "validation-step"])
def test_a_second_ctrl_c_in_the_middle_of_an_update_finishes_the_step(tmp_path, step):
    """Two Ctrl-C while the optimizer is half-way through step k (2 of the parameters
    updated): the update is finished, the run stops there, last.npz is the state after
    step k (the optimizer's count and the counters agree), and a resume continues to the
    same run, bit for bit, as one never stopped (including the validation of step 6, done
    by the resumed run)."""
    m1, t1 = lm_run(12)
    t1.fit()
    ref, t_ref = lm_run(step)
    t_ref.fit()
    m2, t2 = lm_run(12, tmp_path)
    seen = signal_inside(t2, step, "update", [signal.SIGINT, signal.SIGINT])
    summary = t2.fit()
    assert seen["delivered"] and seen[step] == len(m2.params)  # every parameter updated
    assert summary["interrupted"] == "Ctrl-C" and summary["step"] == step
    assert t2.opt.t == t2.state.step == step
    arrays, saved_step, saved_t = on_disk(tmp_path / "last.npz")
    assert saved_step == saved_t == step
    for k, v in ref.params.items():
        assert np.array_equal(arrays[f"param/{k}"], v), k
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    m3, t3 = lm_run(12, tmp_path, seed=9)
    t3.resume(tmp_path / "last.npz")
    t3.fit()
    assert_same_run(m1, t1, m3, t3)


def test_a_second_ctrl_c_while_computing_gradients_rolls_the_step_back(tmp_path):
    """Two Ctrl-C after the forward and backward of step 5 (dropout masks drawn): step 5
    never happened, its random draws are undone, and the resume is exact."""
    m1, t1 = lm_run(12)
    t1.fit()
    ref, t_ref = lm_run(4)
    t_ref.fit()
    m2, t2 = lm_run(12, tmp_path)
    seen = signal_inside(t2, 5, "gradients", [signal.SIGINT, signal.SIGINT])
    summary = t2.fit()
    assert seen["delivered"] and 5 not in seen  # the optimizer never ran step 5
    assert summary["interrupted"] == "Ctrl-C" and summary["step"] == 4
    _, saved_step, saved_t = on_disk(tmp_path / "last.npz")
    assert saved_step == saved_t == 4
    assert m2.rng.bit_generator.state == ref.rng.bit_generator.state
    assert_same_params(m2, ref)
    m3, t3 = lm_run(12, tmp_path, seed=9)
    t3.resume(tmp_path / "last.npz")
    t3.fit()
    assert_same_run(m1, t1, m3, t3)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_one_signal_stops_after_the_step(tmp_path, sig):
    m1, t1 = lm_run(12)
    t1.fit()
    logs = []
    m2, t2 = lm_run(12, tmp_path, log=logs.append)
    signal_inside(t2, 6, "update", [sig])
    summary = t2.fit()
    name = "SIGTERM" if sig == signal.SIGTERM else "Ctrl-C"
    assert summary["interrupted"] == name and summary["stopped"] == f"interrupted ({name})"
    assert summary["step"] == 6 and "val_loss" in t2.state.history[-1]  # its validation ran
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    m3, t3 = lm_run(12, tmp_path, seed=9)
    t3.resume(tmp_path / "last.npz")
    t3.fit()
    assert_same_run(m1, t1, m3, t3)


def test_an_interrupt_that_escapes_an_update_saves_nothing_half_done(tmp_path):
    """A KeyboardInterrupt raised inside the optimizer by someone else's code (no signal
    handler of the trainer's to defer it): last.npz is not written over; the one on disk
    is the state of step 6."""
    logs = []
    m, t = lm_run(12, tmp_path, log=logs.append)
    update = t.opt._update
    calls = []

    def broken_update(p, g, st):
        calls.append(t.opt.t)
        if t.opt.t == 8 and calls.count(8) == 2:
            raise KeyboardInterrupt
        update(p, g, st)

    t.opt._update = broken_update
    summary = t.fit()
    assert summary["stopped"] == "interrupted (Ctrl-C)"
    assert any("in the middle of an update: last.npz was not written" in m for m in logs)
    _, saved_step, saved_t = on_disk(tmp_path / "last.npz")
    assert saved_step == saved_t == 6


# --------------------------------------------------------------------------- budgets
def test_step_budget_counts_across_resumes(tmp_path):
    _, t = lm_run(4, tmp_path)
    s = t.fit()
    assert s["stopped"] == "reached 4 steps" and s["step"] == 4
    assert [h["step"] for h in s["history"]] == [1, 2, 3, 4]
    _, t2 = lm_run(4, tmp_path)
    t2.resume(tmp_path / "last.npz")
    s2 = t2.fit()  # already at the budget: nothing more to do
    assert s2["step"] == 4 and len(s2["history"]) == 4


def test_epoch_budget_and_end_of_epoch_validation():
    logs = []
    model, t = lm_run(None, log=logs.append, epochs=2, eval_every=None)
    s = t.fit()
    assert s["stopped"] == "reached 2 epochs"
    assert s["step"] == 2 * 5 and s["epoch"] == 2
    val = [h for h in s["history"] if "val_loss" in h]
    assert [(h["step"], h["epoch"]) for h in val] == [(5, 1), (10, 2)]
    assert sum("val loss" in msg for msg in logs) == 2


def test_time_limit_zero_stops_before_any_step(tmp_path):
    model, t = lm_run(None, tmp_path, time_limit=0)
    before = {k: v.copy() for k, v in model.params.items()}
    s = t.fit()
    assert s["step"] == 0 and s["history"] == []
    assert s["stopped"] == "reached the time limit of 0 s"
    for k, v in model.params.items():
        assert np.array_equal(v, before[k])
    assert load_model(tmp_path / "last.npz")[1]["train_state"]["step"] == 0


def test_time_limit_stops_a_long_run():
    _, t = lm_run(10**6, time_limit=0.3)
    s = t.fit()
    assert s["stopped"] == "reached the time limit of 0.3 s"
    assert 0 < s["step"] < 10**6


def test_a_budget_is_required_and_the_optimizer_must_own_the_params():
    model = LanguageModel(V, "rnn", 3, rng=0)
    data = StreamData(TRAIN_IDS, 4, 8)
    with pytest.raises(ValueError, match="give a budget"):
        Trainer(model, Adam(model.params), data, config=quiet())
    other = LanguageModel(V, "rnn", 3, rng=0)
    with pytest.raises(ValueError, match="optimizer must be built over model.params"):
        Trainer(model, Adam(other.params), data, config=quiet(steps=1))


# --------------------------------------------------------------------------- early stopping
def reverse_val_run(steps, checkpoint_dir=None, **cfg):
    """A GRU language model learning the chain P, validated every 2 steps on text from the
    reverse chain: the better it knows P, the worse it predicts that text (its loss rises
    from ln 4), so no later evaluation beats the first one."""
    model = LanguageModel(V, "gru", 6, rng=0)
    val = StreamData(markov_ids(81, seed=4, transitions=P_REV), 2, 8)
    trainer = Trainer(model, Adam(model.params, lr=0.05), StreamData(TRAIN_IDS, 4, 8), val,
                      quiet(steps=steps, eval_every=2, checkpoint_dir=checkpoint_dir, **cfg),
                      log=lambda msg: None)
    return model, trainer


def test_early_stopping_with_patience(tmp_path):
    _, t = reverse_val_run(200, tmp_path, patience=3)
    s = t.fit()
    assert s["stopped"] == "early stopping"
    vals = [(h["step"], h["val_loss"]) for h in s["history"] if "val_loss" in h]
    assert [step for step, _ in vals] == [2, 4, 6, 8]
    assert all(a[1] < b[1] for a, b in zip(vals, vals[1:], strict=False))  # only worse
    assert s["step"] == 8 and t.state.best_step == 2
    assert s["best_val"] == vals[0][1]
    assert t.state.evals_since_best == 3
    assert load_model(tmp_path / "best.npz")[1]["train_state"]["step"] == 2


def test_min_delta_ignores_small_improvements():
    _, t = lm_run(200, eval_every=1, patience=2, min_delta=10.0)
    s = t.fit()
    assert s["stopped"] == "early stopping" and s["step"] == 3
    assert t.state.best_step == 1


# --------------------------------------------------------------------------- history
def test_history_saved_as_json_and_csv(tmp_path):
    _, t = lm_run(7)
    history = t.fit()["history"]
    assert len(history) == 7
    assert sum("val_loss" in h for h in history) == 2
    path = save_history(history, tmp_path / "history.json")
    assert json.loads(path.read_text()) == history
    path = save_history(history, tmp_path / "history.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(history)
    layers = [k for k in rows[0] if k.startswith("grad_norm/")]
    assert layers and list(rows[0]) == ["step", "epoch", "loss", "grad_norm", "clipped", "lr",
                                        *layers, "val_loss", "val_perplexity", "val_bpc"]
    for rec, row in zip(history, rows, strict=True):
        for key, value in row.items():
            if key == "clipped":
                assert value == str(rec[key])
            elif key in rec:
                assert float(value) == rec[key], key
            else:
                assert value == ""
    assert not list(tmp_path.glob("*.tmp"))


# --------------------------------------------------------------------------- checkpoints
CKPT_RE = re.compile(r"ckpt_step(\d{7})_val(\d+\.\d{4})\.npz")


def test_checkpoints_names_keep_and_best(tmp_path):
    _, t = reverse_val_run(12, tmp_path, keep_checkpoints=2)  # the best is the first
    history = t.fit()["history"]
    val_by_step = {h["step"]: h["val_loss"] for h in history if "val_loss" in h}
    assert sorted(val_by_step) == [2, 4, 6, 8, 10, 12]
    names = sorted(p.name for p in tmp_path.glob("ckpt_*.npz"))
    assert len(names) == 2
    steps = []
    for name in names:
        m = CKPT_RE.fullmatch(name)
        assert m, name
        step = int(m.group(1))
        assert m.group(2) == f"{val_by_step[step]:.4f}"
        steps.append(step)
    assert steps == [10, 12]  # the newest are kept
    assert {p.name for p in tmp_path.iterdir()} == {*names, "best.npz", "last.npz"}

    best, meta, _ = load_model(tmp_path / "best.npz")
    best_val = min(val_by_step.values())
    assert meta["train_state"]["best_val"] == best_val
    assert meta["train_state"]["step"] == meta["train_state"]["best_step"] == 2
    probe = Trainer(best, Adam(best.params), t.train_data, t.val_data, quiet(steps=1))
    assert probe.evaluate()["loss"] == pytest.approx(best_val, rel=1e-6)
    assert load_model(tmp_path / "last.npz")[1]["train_state"]["step"] == 12

    # a resumed run keeps counting the checkpoints already in the folder
    _, t2 = reverse_val_run(16, tmp_path, keep_checkpoints=2)
    t2.resume(tmp_path / "last.npz")
    t2.fit()
    assert sorted(p.name[:16] for p in tmp_path.glob("ckpt_*.npz")) == [
        "ckpt_step0000014", "ckpt_step0000016"]


def test_checkpoint_every_without_validation(tmp_path):
    _, t = lm_run(4, tmp_path, eval_every=None, checkpoint_every=2)  # no epoch end reached
    t.fit()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt_step0000002.npz", "ckpt_step0000004.npz", "last.npz"]
    meta = checkpoint.load(tmp_path / "ckpt_step0000002.npz")[1]
    assert meta["train_state"]["step"] == 2 and meta["train_state"]["best_val"] is None


# --------------------------------------------------------------------------- non-finite
def inject(model, bad_calls, poison=False, grads_only=()):
    """Make ``model.train_batch`` return a NaN loss and NaN gradients on the given call
    numbers (1-based), or only NaN gradients for those in ``grads_only``; with ``poison``
    a bad call also writes NaN into a weight, as a blow-up inside the model would.
    Returns a log of (call number, copy of the params before the call)."""
    real = model.train_batch
    seen = []

    def train_batch(batch, state=None):
        n = len(seen) + 1
        seen.append((n, {k: v.copy() for k, v in model.params.items()}))
        if n in bad_calls or n in grads_only:
            stats, grads, new_state = real(batch, state) if n in grads_only else (
                {"loss": math.nan, "count": 32}, None, None)
            if poison:
                model.params["head.W"][0, 0] = np.nan
            return stats, {k: np.full_like(v, np.nan) for k, v in model.params.items()}, \
                new_state
        return real(batch, state)

    model.train_batch = train_batch
    return seen


def test_non_finite_steps_are_skipped_and_logged():
    logs = []
    model, t = lm_run(8, log=logs.append, eval_every=None)
    seen = inject(model, bad_calls={3}, grads_only={6})
    s = t.fit()
    assert s["step"] == 8 and len(seen) == 10  # two extra calls for the two skipped steps
    skipped = [m for m in logs if "non-finite" in m]
    assert len(skipped) == 2 and all("update skipped (1/5)" in m for m in skipped)
    assert "non-finite loss (nan)" in skipped[0]
    assert "loss (nan)" not in skipped[1] and "gradient norm (nan)" in skipped[1]
    for (n, before), (_, after) in zip(seen, seen[1:] + [(0, model.params)], strict=True):
        changed = any(not np.array_equal(before[k], after[k]) for k in before)
        assert changed == (n not in (3, 6)), n  # skipped calls leave the weights alone
    steps = [h for h in s["history"] if "loss" in h]  # (validations add their own records)
    assert [h["step"] for h in steps] == list(range(1, 9))
    assert all(math.isfinite(h["loss"]) for h in steps)
    assert t.state.restores == 0 and t.state.lr_scale == 1.0 and t.state.bad_steps == 0


def test_bad_streak_restores_last_good_weights_and_halves_lr():
    logs = []
    model, t = lm_run(8, log=logs.append, max_bad_steps=2)  # validation at steps 3 and 6
    seen = inject(model, bad_calls={5, 6}, poison=True)
    s = t.fit()
    assert s["step"] == 8 and t.state.restores == 1 and t.state.lr_scale == 0.5
    assert any("restored the last good weights; learning rate scaled by 0.5" in m
               for m in logs)
    # calls 1-4 made steps 1-4; 5 and 6 were bad; call 7 starts from the weights of the
    # last validation (after step 3), not the poisoned ones
    after_step3 = seen[3][1]
    for k, v in seen[6][1].items():
        assert np.array_equal(v, after_step3[k]), k
    assert all(np.isfinite(v).all() for v in model.params.values())
    lrs = {h["step"]: h["lr"] for h in s["history"]}
    sched = StepDecay(0.02, every=4, gamma=0.7)
    assert lrs[4] == sched(3) and lrs[5] == sched(4) * 0.5 and lrs[8] == sched(7) * 0.5
    assert t.opt.t == 7  # the optimizer state went back to step 3 as well


def test_run_stops_after_max_restores_without_nan_checkpoints(tmp_path):
    logs = []
    model, t = lm_run(50, tmp_path, log=logs.append, eval_every=2, max_bad_steps=2,
                      max_restores=2)
    seen = inject(model, bad_calls=set(range(4, 100)), poison=True)
    s = t.fit()
    assert s["stopped"] == "losses stayed non-finite" and s["step"] == 3
    assert len(seen) == 3 + 3 * 2  # three streaks of two: restore, restore, stop
    assert any("stopping: losses stayed non-finite after 2 restores" in m for m in logs)
    assert t.state.lr_scale == 0.25
    for k, v in model.params.items():  # the weights of the last validation (step 2)
        assert np.array_equal(v, seen[2][1][k]), k
    files = sorted(tmp_path.glob("*.npz"))
    assert {p.name for p in files} >= {"last.npz", "best.npz"}
    for p in files:
        arrays, _ = checkpoint.load(p)
        for k, a in arrays.items():
            assert np.isfinite(a).all(), (p.name, k)
        load_model(p)


# --------------------------------------------------------------------------- resume refusals
def test_resume_refuses_foreign_or_damaged_files(tmp_path):
    model, t = lm_run(3, tmp_path)
    t.fit()
    last = tmp_path / "last.npz"

    other = LanguageModel(V, "lstm", 7, 2, embedding_dim=3, dropout=0.3, rng=0)
    t_other = Trainer(other, Adam(other.params), StreamData(TRAIN_IDS, 4, 8),
                      config=quiet(steps=1))
    before = {k: v.copy() for k, v in other.params.items()}
    with pytest.raises(checkpoint.CheckpointError, match="another model configuration"):
        t_other.resume(last)
    assert all(np.array_equal(v, before[k]) for k, v in other.params.items())

    model_only = model.save(tmp_path / "model.npz")
    _, t2 = lm_run(6)
    with pytest.raises(checkpoint.CheckpointError,
                       match="is a model file, not a resumable training checkpoint"):
        t2.resume(model_only)

    raw = last.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="corrupted or truncated"):
        t2.resume(truncated)
    flipped = bytearray(raw)
    mid = len(raw) // 3
    flipped[mid : mid + 8] = bytes(b ^ 0xFF for b in flipped[mid : mid + 8])
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(bytes(flipped))
    with pytest.raises(checkpoint.CheckpointError, match="damaged.npz"):
        t2.resume(damaged)
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        t2.resume(tmp_path / "missing.npz")
    assert t2.state.step == 0  # nothing was half-restored


def _spoiled(arrays, meta, what):
    """A copy of a training checkpoint's (arrays, meta) with one thing wrong."""
    arrays, meta = dict(arrays), json.loads(json.dumps(meta))
    ts, opt = meta["train_state"], meta["optimizer"]
    first_m = next(k for k in arrays if k.startswith("opt/") and k.endswith("/m"))
    if what == "inf in the optimizer":
        arrays[first_m] = np.full_like(arrays[first_m], np.inf)
    elif what == "negative second moment":
        k = first_m[:-2] + "/v"
        arrays[k] = -np.abs(arrays[k]) - 1
    elif what == "missing optimizer array":
        del arrays[first_m]
    elif what == "optimizer array of another shape":
        arrays[first_m] = np.zeros(3, np.float32)
    elif what == "extra optimizer array":
        arrays["opt/nothing/m"] = np.zeros(2, np.float32)
    elif what == "no optimizer entry":
        del meta["optimizer"]
    elif what == "optimizer ahead of the run":
        opt["t"] = ts["step"] + 1
    elif what == "optimizer t a string":
        opt["t"] = "6"
    elif what == "no rng entry":
        del meta["rng"]
    elif what == "rng of another generator":
        meta["rng"] = np.random.MT19937(0).state | {"state": {"key": [1], "pos": 0}}
    elif what == "no step":
        del ts["step"]
    elif what == "step a float":
        ts["step"] = 6.0
    elif what == "batch beyond the epoch":
        ts["batch"] = 99
    elif what == "unknown train_state field":
        ts["speed"] = 3
    elif what == "history not a list":
        ts["history"] = {"step": 1}
    elif what == "train_state a list":
        meta["train_state"] = [6, 1, 1]
    elif what == "carried state of another shape":
        arrays["carry/0"] = np.zeros((2, 3, 6), np.float32)
    elif what == "carried state missing a part":
        del arrays["carry/1"]
    elif what == "carried state with NaN":
        arrays["carry/0"] = np.full_like(arrays["carry/0"], np.nan)
    return arrays, meta


SPOILS = {
    "inf in the optimizer": "optimizer state .* holds NaN or inf",
    "negative second moment": r"/v \(a sum of squares\) holds negative values",
    "missing optimizer array": "has no optimizer state .*/m",
    "optimizer array of another shape": r"opt/embed.W/m declares shape \(3,\), expected "
                                        r"\(4, 3\)",
    "extra optimizer array": "optimizer state for no parameter of this model: 'opt/nothing/m'",
    "no optimizer entry": "has no optimizer state",
    "optimizer ahead of the run": "the optimizer has taken 7 steps but the run only 6",
    "optimizer t a string": "optimizer.t must be an integer >= 0, got '6'",
    "no rng entry": "has no valid RNG state",
    "rng of another generator": "has no valid RNG state",
    "no step": "train_state has no 'step': the position of the run is unknown",
    "step a float": "train_state.step must be an integer >= 0, got 6.0",
    "batch beyond the epoch": "train_state.batch is 99, but an epoch has 5 batches",
    "unknown train_state field": r"train_state holds unknown fields \['speed'\]",
    "history not a list": "train_state.history must be a list of records",
    "train_state a list": "train_state is a list, not a dict",
    "carried state of another shape": r"carried state carry/0 is float32 \(2, 3, 6\), "
                                      r"expected \(2, 4, 6\)",
    "carried state missing a part": "the carried state holds",
    "carried state with NaN": "the carried state carry/0 holds NaN or inf",
}


@pytest.fixture(scope="module")
def saved_training(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    _, t = lm_run(6, folder)
    t.fit()
    return checkpoint.load(folder / "last.npz")


@pytest.mark.parametrize("what", list(SPOILS))
def test_resume_refuses_an_inconsistent_checkpoint_and_restores_nothing(tmp_path, what,
                                                                        saved_training):
    arrays, meta = _spoiled(*saved_training, what)
    path = checkpoint.save(tmp_path / "bad.npz", arrays, meta)
    m, t = lm_run(12, seed=4)
    before = {k: v.copy() for k, v in m.params.items()}
    rng_before = m.rng.bit_generator.state
    with pytest.raises(checkpoint.CheckpointError, match=SPOILS[what]) as info:
        t.resume(path)
    assert "bad.npz" in str(info.value) and "\n" not in str(info.value)
    assert all(np.array_equal(before[k], v) for k, v in m.params.items())
    assert m.rng.bit_generator.state == rng_before
    assert t.state.step == 0 and t.opt.t == 0 and t.carry is None


def test_stream_data_matches_text_stream():
    data = StreamData(TRAIN_IDS, 4, 8)
    stream = TextStream(TRAIN_IDS, 4, 8)
    assert data.num_batches() == len(stream) == 5
    for k in range(5):
        x, y = stream.batch(k)
        b = data.batch(3, k)  # the epoch does not change a stream
        assert np.array_equal(b["x"], x) and np.array_equal(b["y"], y)
        assert np.array_equal(b["x"][:, 1:], b["y"][:, :-1])


def test_an_update_that_overflows_the_weights_is_undone(tmp_path):
    """Finite gradients times a huge learning rate give inf weights: the update is undone,
    the run says so, restores, and no checkpoint ever holds a non-finite weight."""
    logs = []
    model = LanguageModel(V, "rnn", 5, 1, embedding_dim=3, rng=0)
    start = {k: v.copy() for k, v in model.params.items()}
    t = Trainer(model, SGD(model.params, lr=1e300), StreamData(TRAIN_IDS, 4, 8),
                StreamData(VAL_IDS, 2, 8),
                quiet(steps=20, eval_every=2, max_bad_steps=2, max_restores=1,
                      clip_mode="none", checkpoint_dir=str(tmp_path)), log=logs.append)
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point here
        s = t.fit()
    assert s["stopped"] == "losses stayed non-finite"
    assert any("the update made weights (or the optimizer's state) non-finite" in m
               for m in logs)
    for k, v in model.params.items():
        assert np.isfinite(v).all(), k
        assert np.array_equal(v, start[k]), k  # every update overflowed: back to the start
    for p in tmp_path.glob("*.npz"):
        arrays, _ = checkpoint.load(p)
        assert all(np.isfinite(a).all() for a in arrays.values()), p.name


def test_an_update_that_overflows_the_optimizer_state_is_undone(tmp_path):
    """Finite weights but an overflowing second moment (Adam's v of a float32 gradient of
    1e20): the update is undone and no checkpoint holds a non-finite moment (a resume
    would refuse it)."""
    logs = []
    model = LanguageModel(V, "rnn", 5, 1, embedding_dim=3, rng=0)
    t = Trainer(model, Adam(model.params, lr=1e-3), StreamData(TRAIN_IDS, 4, 8),
                StreamData(VAL_IDS, 2, 8),
                quiet(steps=6, eval_every=2, max_bad_steps=2, max_restores=1,
                      clip_mode="none", checkpoint_dir=str(tmp_path)), log=logs.append)
    train_batch = model.train_batch

    def huge_gradients(batch, carry):
        stats, grads, new = train_batch(batch, carry)
        if t.state.step >= 2:
            grads = {k: np.full_like(g, 1e20) for k, g in grads.items()}
        return stats, grads, new

    model.train_batch = huge_gradients
    with np.errstate(over="ignore", invalid="ignore"):
        s = t.fit()
    assert s["stopped"] == "losses stayed non-finite" and s["step"] == 2
    assert any("the optimizer's state) non-finite" in m for m in logs)
    for p in tmp_path.glob("*.npz"):
        arrays, _ = checkpoint.load(p)
        assert all(np.isfinite(a).all() for a in arrays.values()), p.name
    m3 = LanguageModel(V, "rnn", 5, 1, embedding_dim=3, rng=1)
    t3 = Trainer(m3, Adam(m3.params, lr=1e-3), StreamData(TRAIN_IDS, 4, 8),
                 config=quiet(steps=8))
    t3.resume(tmp_path / "last.npz")
    assert t3.state.step == 2


def test_resume_refuses_a_checkpoint_of_another_optimizer(tmp_path):
    model, t = lm_run(3, tmp_path)
    t.fit()
    other = LanguageModel(V, "lstm", 6, 2, embedding_dim=3, dropout=0.3, rng=0)
    t2 = Trainer(other, SGD(other.params, lr=0.1), StreamData(TRAIN_IDS, 4, 8),
                 config=quiet(steps=1))
    with pytest.raises(checkpoint.CheckpointError, match="optimizer Adam, this run uses SGD"):
        t2.resume(tmp_path / "last.npz")
