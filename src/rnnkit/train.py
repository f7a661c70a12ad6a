"""The training loop: budgets, validation, metrics, checkpoints, exact resume.

A data source is addressed by position, so that a run can stop anywhere and resume
exactly: ``data.num_batches()`` batches per epoch and ``data.batch(epoch, k)`` gives
batch ``k`` of ``epoch`` (a dict such as ``{"x": ..., "y": ..., "mask": ...}``). Shuffled
sources derive their order from ``(seed, epoch)``; nothing about the data lives in hidden
iterator state. Sources with ``carries_state = True`` (text streams, truncated BPTT) have
the model's final state carried into the next batch and reset at each epoch.

A checkpoint holds the weights, the optimizer's state, the model's RNG state, the step,
epoch and batch position, the carried state, the history and the caller's metadata
(config, vocabulary), in one atomic no-pickle file (:mod:`rnnkit.checkpoint`). Resuming
from step k and running to step n gives the same weights, bit for bit, as running to n in
one go.

Signals stop a run at step boundaries only (:mod:`rnnkit.interrupts`): the first Ctrl-C or
SIGTERM after the step under way, a second at once, finishing an update under way or
rolling back a step still computing its gradients. The data sources are those of
:mod:`rnnkit.sources`.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint
from .interrupts import StepBoundary
from .optim import Optimizer, Schedule, clip_gradients
from .resume import check_resumable, declared_shapes_check
from .sources import ArrayData, ListData, StreamData

__all__ = ["ArrayData", "ListData", "StreamData", "TrainConfig", "TrainState", "Trainer",
           "TrainingStopped", "save_history", "summarize"]

LN2 = math.log(2.0)


# --------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Settings of one training run (all optional; at least one budget is needed)."""

    epochs: int | None = None  # stop after this many epochs
    steps: int | None = None  # stop after this many optimizer steps (in total, across resumes)
    time_limit: float | None = None  # stop after this many seconds of this call
    clip_mode: str = "global_norm"  # value | norm | global_norm | none
    clip_value: float = 5.0  # the clipping threshold
    eval_every: int | None = None  # validate every N steps (None: at the end of each epoch)
    max_val_batches: int | None = None  # cap the validation pass (None: all of it)
    patience: int | None = None  # early stopping: evaluations without improvement
    min_delta: float = 0.0  # improvement smaller than this does not count
    checkpoint_dir: str | None = None  # where checkpoints go (None: none are written)
    checkpoint_every: int | None = None  # also write one every N steps (None: at evaluations)
    keep_checkpoints: int = 3  # step-named checkpoints kept (best.npz and last.npz always)
    max_bad_steps: int = 5  # consecutive non-finite steps before restoring the last good state
    lr_backoff: float = 0.5  # learning-rate factor applied at each such restore
    max_restores: int = 3  # restores allowed before the run stops
    progress: bool = True  # show a progress bar (tqdm, if installed)
    log_every: int = 100  # without a bar: print a line every N steps (0: never)


@dataclass
class TrainState:
    """Counters that a checkpoint saves and a resume restores."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # next batch of the current epoch
    lr_scale: float = 1.0
    best_val: float | None = None
    best_step: int | None = None
    evals_since_best: int = 0
    bad_steps: int = 0
    restores: int = 0
    history: list = field(default_factory=list)


class TrainingStopped(RuntimeError):
    """Training cannot go on (e.g. losses stay non-finite after the allowed restores)."""


def _rng_state_json(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _state_arrays(state, prefix: str = "carry") -> dict:
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {f"{prefix}/{i}": s for i, s in enumerate(state)}
    return {f"{prefix}/0": state}


def _finite_state(state) -> bool:
    if state is None:
        return True
    parts = state if isinstance(state, tuple) else (state,)
    return all(np.isfinite(p).all() for p in parts)


class Trainer:
    """Train a model (anything with ``params``, ``train_batch``, ``evaluate``, ``save``).

    Args:
        model: an rnnkit model.
        optimizer: an :class:`~rnnkit.optim.Optimizer` over ``model.params``.
        train_data, val_data: data sources (see the module docstring).
        config: a :class:`TrainConfig`.
        schedule: a :class:`~rnnkit.optim.Schedule` (None: the optimizer's lr throughout).
        meta: JSON metadata saved in every checkpoint (e.g. the vocabulary and CLI config).
        log: where messages go (default: stderr).
        on_step: callback ``on_step(trainer, record)`` after every step (e.g. samples).
    """

    def __init__(self, model, optimizer: Optimizer, train_data, val_data=None,
                 config: TrainConfig | None = None, schedule: Schedule | None = None,
                 meta: dict | None = None, log=None, on_step=None):
        if optimizer.params is not model.params:
            raise ValueError("optimizer must be built over model.params (the same dict)")
        self.model, self.opt = model, optimizer
        self.train_data, self.val_data = train_data, val_data
        self.config = config or TrainConfig()
        c = self.config
        if c.epochs is None and c.steps is None and c.time_limit is None:
            raise ValueError("give a budget: epochs, steps or time_limit")
        if train_data.num_batches() < 1:
            raise ValueError("train_data has no batches")
        self.schedule = schedule or Schedule(optimizer.lr)
        self.meta = dict(meta or {})
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.on_step = on_step
        self.state = TrainState()
        self.carry = None  # the state carried between batches of a stream
        self._good = None  # in-memory copy of the last good weights and optimizer state
        self._bar = None  # the progress bar while fit() runs
        self._ckpts: list[Path] = []
        self._boundary = StepBoundary()  # not entered: signals as they were (see fit)

    # ------------------------------------------------------------------ checkpoints
    def _arrays(self) -> dict:
        arrays = dict(self.model.checkpoint_arrays())
        for k, v in self.opt.state_dict()["arrays"].items():
            arrays[f"opt/{k}"] = v
        arrays.update(_state_arrays(self.carry))
        return arrays

    def _meta(self) -> dict:
        return {
            **self.meta,
            "train_state": asdict(self.state),
            "optimizer": {**self.opt.settings(), "t": self.opt.t, "lr": self.opt.lr},
            "schedule": self.schedule.settings(),
            "rng": _rng_state_json(self.model.rng),
            # checkpoint_dir may be a Path, which JSON cannot hold
            "train_config": {k: str(v) if isinstance(v, Path) else v
                             for k, v in asdict(self.config).items()},
        }

    def save_checkpoint(self, path) -> Path:
        """Write a resumable checkpoint atomically (refuses weights holding NaN/inf)."""
        return self.model.save(path, self._meta(), {k: v for k, v in self._arrays().items()
                                                    if not k.startswith("param/")})

    def resume(self, path) -> None:
        """Restore weights, optimizer, RNG, counters, carried state and history from a
        checkpoint written by this trainer; the next ``fit`` continues exactly. Everything
        is checked first (:func:`rnnkit.resume.check_resumable`): a file that fails leaves
        the trainer as it was and raises CheckpointError naming it."""
        where = repr(str(path))
        arrays, meta = checkpoint.load(path, check=declared_shapes_check(self, where))
        r = check_resumable(self, arrays, meta, where)
        for k, a in r.params.items():
            np.copyto(self.model.params[k], a)
        self.opt.load_state_dict(r.optimizer)
        self.model.rng.bit_generator.state = r.rng_state
        self.state = TrainState(**r.train_state)
        self.carry = r.carry
        self._ckpts = self._earlier_checkpoints()

    def _earlier_checkpoints(self) -> list[Path]:
        """The step-named checkpoints of this run up to the current step, oldest first: a
        resumed run counts them towards ``keep_checkpoints``."""
        if self.config.checkpoint_dir is None:
            return []
        found = []
        for p in Path(self.config.checkpoint_dir).glob("ckpt_step*.npz"):
            m = re.match(r"ckpt_step(\d+)", p.name)
            if m and int(m.group(1)) <= self.state.step:
                found.append((int(m.group(1)), p.name, p))
        return [p for *_, p in sorted(found)]

    def _write_checkpoints(self, val_loss: float | None) -> None:
        d = self.config.checkpoint_dir
        if d is None:
            return
        d = Path(d)
        s = self.state
        tag = f"step{s.step:07d}" + (f"_val{val_loss:.4f}" if val_loss is not None else "")
        path = self.save_checkpoint(d / f"ckpt_{tag}.npz")
        self._ckpts.append(path)
        while len(self._ckpts) > self.config.keep_checkpoints:
            old = self._ckpts.pop(0)
            old.unlink(missing_ok=True)
        self.save_checkpoint(d / "last.npz")

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data=None) -> dict:
        """Loss (mean per target), perplexity, bits per token and accuracy on ``data``
        (default: the validation data), in eval mode."""
        data = data if data is not None else self.val_data
        if data is None:
            return {}
        self.model.eval()
        try:
            total = {"loss": 0.0, "count": 0}
            carry = None
            n = data.num_batches()
            if self.config.max_val_batches:
                n = min(n, self.config.max_val_batches)
            for k in range(n):
                stats, carry = self.model.evaluate(data.batch(0, k), carry)
                if not getattr(data, "carries_state", False):
                    carry = None
                for key, v in stats.items():
                    total[key] = total.get(key, 0) + v
        finally:
            self.model.train()
        return summarize(total)

    # ------------------------------------------------------------------ the loop
    def _snapshot(self) -> None:
        self._good = ({k: v.copy() for k, v in self.model.params.items()},
                      {k: v.copy() for k, v in self.opt.state_dict()["arrays"].items()},
                      self.opt.t)

    def _restore(self) -> None:
        params, opt_arrays, t = self._good
        for k, v in params.items():
            np.copyto(self.model.params[k], v)
        self.opt.load_state_dict({"t": t, "lr": self.opt.lr, "arrays": opt_arrays})
        self.carry = None

    def _done(self, started: float) -> str | None:
        c, s = self.config, self.state
        if c.steps is not None and s.step >= c.steps:
            return f"reached {c.steps} steps"
        if c.epochs is not None and s.epoch >= c.epochs:
            return f"reached {c.epochs} epochs"
        if c.time_limit is not None and time.perf_counter() - started >= c.time_limit:
            return f"reached the time limit of {c.time_limit:g} s"
        return None

    def write(self, msg: str) -> None:
        """Print a message without garbling the progress bar (if one is showing)."""
        if self._bar is not None:
            self._bar.write(msg, file=sys.stderr)
        else:
            self.log(msg)

    def _make_bar(self):
        if not self.config.progress:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.log("(install tqdm for a progress bar: pip install 'rnnkit[progress]')")
            return None
        c = self.config
        total = c.steps
        if c.epochs is not None:
            by_epochs = c.epochs * self.train_data.num_batches()
            total = by_epochs if total is None else min(total, by_epochs)
        return tqdm(total=total, initial=self.state.step, unit="step", dynamic_ncols=True,
                    file=sys.stderr, leave=True)

    def fit(self) -> dict:
        """Train until a budget is reached, early stopping, a signal, or Ctrl-C.

        Returns a summary: ``{"stopped": reason, "interrupted": None, "Ctrl-C" or
        "SIGTERM", "step", "epoch", "best_val", "history"}``. Run in the main thread, the
        first Ctrl-C or SIGTERM stops the run after the step under way, a second at once
        (:mod:`rnnkit.interrupts`): the state left, and written to ``last.npz`` when a
        checkpoint_dir is set, is always that of a step boundary, and a resume continues it
        exactly.
        """
        c, s = self.config, self.state
        started = time.perf_counter()
        self.model.train()
        self._snapshot()
        reason = None
        self._tokens_since, self._t_since = 0, time.perf_counter()
        with StepBoundary() as boundary:
            self._boundary = boundary
            bar = self._bar = self._make_bar()
            try:
                reason = self._catch_up(bar) or self._loop(started, bar)
            except KeyboardInterrupt:
                reason = f"interrupted ({boundary.requested or 'Ctrl-C'})"
            finally:
                if bar is not None:
                    bar.close()
                self._bar = None
                self._boundary = StepBoundary()
        if boundary.torn:
            self.log("the interrupt came in the middle of an update: last.npz was not "
                     "written (the checkpoints on disk hold complete steps)")
        elif c.checkpoint_dir is not None:
            self.save_checkpoint(Path(c.checkpoint_dir) / "last.npz")
        self.log(f"stopped: {reason} (step {s.step}, epoch {s.epoch})")
        interrupted = reason.startswith("interrupted") and (boundary.requested or "Ctrl-C")
        return {"stopped": reason, "interrupted": interrupted or None, "step": s.step,
                "epoch": s.epoch, "best_val": s.best_val, "history": s.history}

    def _catch_up(self, bar) -> str | None:
        """The validation of the last step, if an interrupt came between its update and its
        validation (a resumed run does it first, as the run would have); the reason to
        stop, or None."""
        c, s = self.config, self.state
        last = s.history[-1] if s.history else {}
        if (last.get("step") == s.step and "loss" in last and "val_loss" not in last
                and c.eval_every and s.step % c.eval_every == 0 and self.val_data is not None):
            return "early stopping" if self._validate(bar, last) else None
        return None

    def _loop(self, started: float, bar) -> str:
        """The steps of :meth:`fit` until a reason to stop; returns it."""
        c, s = self.config, self.state
        nb = self.train_data.num_batches()
        while (reason := self._done(started)) is None:
            if self._boundary.requested:
                return f"interrupted ({self._boundary.requested})"
            if s.batch >= nb:
                with self._boundary.update():
                    s.epoch += 1
                    s.batch = 0
                    self.carry = None
                if c.eval_every is None and self.val_data is not None and self._validate(bar):
                    return "early stopping"
                continue
            if s.batch == 0:
                self.carry = None
            rec, reason = self._train_step(self.train_data.batch(s.epoch, s.batch))
            if rec is not None:
                reason = self._after_step(bar, rec)
            if reason:
                return reason
        return reason

    def _train_step(self, batch: dict):
        """One optimizer step on batch. Returns (the step's history record, None), or
        (None, None) for a skipped non-finite step, or (None, reason) when the run must
        stop.

        Computing the gradients changes nothing but the model's RNG (dropout): an interrupt
        there rewinds it, so the step never happened. The update (optimizer, counters,
        history) runs inside ``StepBoundary.update``: it is finished before an interrupt
        is let through."""
        c, s = self.config, self.state
        rng_state = self.model.rng.bit_generator.state
        try:
            self.opt.lr = self.schedule(s.step) * s.lr_scale
            carry = self.carry if self.train_data.carries_state else None
            stats, grads, new_carry = self.model.train_batch(batch, carry)
            layers = layer_norms(grads)  # before clipping, as the global norm
            clipped = would_clip(grads, c.clip_mode, c.clip_value)
            norm = clip_gradients(grads, c.clip_mode, c.clip_value)
        except KeyboardInterrupt:
            self.model.rng.bit_generator.state = rng_state
            raise
        mean_loss = stats["loss"] / max(stats["count"], 1)
        with self._boundary.update():
            if not (math.isfinite(mean_loss) and math.isfinite(norm)):
                s.batch += 1
                return None, ("losses stayed non-finite" if self._bad_step(mean_loss, norm)
                              else None)
            self.opt.step(grads)
            if not self._finite_update():
                # the update itself overflowed: never keep (or save) such weights or moments
                self._restore()
                s.batch += 1
                stop = self._bad_step(mean_loss, norm, "the update made weights (or the "
                                      "optimizer's state) non-finite")
                return None, ("losses stayed non-finite" if stop else None)
            s.bad_steps = 0
            self.carry = new_carry if _finite_state(new_carry) else None
            s.step += 1
            s.batch += 1
            self._tokens_since += stats["count"]
            rec = {"step": s.step, "epoch": s.epoch, "loss": mean_loss, "grad_norm": norm,
                   "clipped": clipped, "lr": self.opt.lr,
                   **{f"grad_norm/{k}": v for k, v in layers.items()}}
            if "correct" in stats:
                rec["accuracy"] = stats["correct"] / max(stats["count"], 1)
            s.history.append(rec)  # before validation, which completes it in place
        return rec, None

    def _finite_update(self) -> bool:
        """Whether the weights and the optimizer's state are finite after an update."""
        moments = (a for st in self.opt.state.values() for a in st.values())
        return all(np.isfinite(v).all() for v in self.model.params.values()) and all(
            np.isfinite(a).all() for a in moments)

    def _after_step(self, bar, rec: dict) -> str | None:
        """Record, show, validate and checkpoint after a step; the reason to stop, or
        None."""
        c, s = self.config, self.state
        now = time.perf_counter()
        logged = c.log_every and s.step % c.log_every == 0
        if bar is not None or logged:
            rec["tokens_per_s"] = self._tokens_since / max(now - self._t_since, 1e-9)
        self._show(bar, rec)
        if bar is None and logged:
            self._tokens_since, self._t_since = 0, now
        reason, evaluated = None, False
        if c.eval_every and s.step % c.eval_every == 0 and self.val_data is not None:
            evaluated = True
            if self._validate(bar, rec):
                reason = "early stopping"
        if c.checkpoint_every and s.step % c.checkpoint_every == 0 and not evaluated:
            self._write_checkpoints(None)
        if self.on_step is not None:
            self.on_step(self, rec)
        return reason

    def _bad_step(self, loss: float, norm: float, what: str | None = None) -> bool:
        """Handle a non-finite step; returns True when the run must stop."""
        c, s = self.config, self.state
        s.bad_steps += 1
        self.carry = None
        what = what or f"non-finite loss ({loss}) or gradient norm ({norm})"
        self.log(f"step {s.step + 1}: {what}; update skipped ({s.bad_steps}/{c.max_bad_steps})")
        if s.bad_steps < c.max_bad_steps:
            return False
        if s.restores >= c.max_restores:
            self.log(f"stopping: losses stayed non-finite after {s.restores} restores; the last "
                     "good weights are kept (lower the learning rate or clip harder)")
            self._restore()
            return True
        s.restores += 1
        s.bad_steps = 0
        s.lr_scale *= c.lr_backoff
        self._restore()
        self.log(f"restored the last good weights; learning rate scaled by {s.lr_scale:g}")
        return False

    def _validate(self, bar, rec: dict | None = None) -> bool:
        """Evaluate, update best/patience, write checkpoints; True to stop early. The
        evaluation changes nothing; its results are recorded in one ``update`` block."""
        c, s = self.config, self.state
        ev = self.evaluate()
        val = ev.get("loss")
        with self._boundary.update():
            if rec is None:
                rec = {"step": s.step, "epoch": s.epoch}
                s.history.append(rec)
            if val is not None and not math.isfinite(val):
                # diverging weights: keep neither a snapshot nor a checkpoint of them
                rec["val_loss"] = None
                self.log(f"step {s.step}: the validation loss is not finite ({val}); no "
                         "checkpoint written")
                s.evals_since_best += 1
                return c.patience is not None and s.evals_since_best >= c.patience
            rec.update({f"val_{k}": v for k, v in ev.items()})
            improved = val is not None and (s.best_val is None
                                            or val < s.best_val - c.min_delta)
            if improved:
                s.best_val, s.best_step, s.evals_since_best = val, s.step, 0
            else:
                s.evals_since_best += 1
            self._snapshot()
        self._write_checkpoints(val)
        if improved and c.checkpoint_dir is not None:
            self.save_checkpoint(Path(c.checkpoint_dir) / "best.npz")
        msg = f"step {s.step}: " + ", ".join(f"val {k} {v:.4f}" for k, v in ev.items())
        if bar is not None:
            bar.write(msg, file=sys.stderr)
        else:
            self.log(msg)
        return c.patience is not None and s.evals_since_best >= c.patience

    def _show(self, bar, rec: dict) -> None:
        if bar is not None:
            post = {"loss": f"{rec['loss']:.4f}"}
            last_val = next((h["val_loss"] for h in reversed(self.state.history)
                             if h.get("val_loss") is not None), None)
            if last_val is not None:
                post["val"] = f"{last_val:.4f}"
            post["bpc"] = f"{rec['loss'] / LN2:.3f}"
            if "tokens_per_s" in rec:
                post["tok/s"] = f"{rec['tokens_per_s']:.0f}"
            bar.set_postfix(post, refresh=False)
            bar.update(1)
        elif self.config.log_every and rec["step"] % self.config.log_every == 0:
            self.log(f"step {rec['step']}: loss {rec['loss']:.4f}, grad norm "
                     f"{rec['grad_norm']:.3f}, {rec.get('tokens_per_s', 0):.0f} tokens/s")


def summarize(total: dict) -> dict:
    """Summed stats {loss, count, correct?} -> mean loss, perplexity, bits per token,
    accuracy."""
    n = max(total.get("count", 0), 1)
    loss = total["loss"] / n
    out = {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "bpc": loss / LN2}
    if "correct" in total:
        out["accuracy"] = total["correct"] / n
    return out


def layer_norms(grads: dict) -> dict:
    """The Euclidean norm of the gradients of each layer: parameters grouped by their name
    without its last part (``rnn.l0.W_x`` and ``rnn.l0.W_h`` are layer ``rnn.l0``; ``head.W``
    is ``head``). Returns {layer: norm}, in the order of the parameters."""
    squares: dict = {}
    for name, g in grads.items():
        layer = name.rsplit(".", 1)[0]
        flat = g.reshape(-1)
        squares[layer] = squares.get(layer, 0.0) + float(np.dot(flat, flat))
    return {k: math.sqrt(v) for k, v in squares.items()}


def would_clip(grads: dict, mode: str, value: float) -> bool:
    """Whether :func:`~rnnkit.optim.clip_gradients` changes these gradients (before it
    runs): an entry beyond ``value`` (mode "value"), an array (mode "norm") or all of them
    (mode "global_norm") with a norm above ``value``."""
    if mode == "none":
        return False
    if mode == "value":
        return any(float(np.abs(g).max(initial=0.0)) > value for g in grads.values())
    norms = [float(np.linalg.norm(g)) for g in grads.values()]
    if mode == "norm":
        return any(n > value for n in norms)
    return math.sqrt(sum(n * n for n in norms)) > value


def save_history(history: list, path) -> Path:
    """Write the history as JSON (``.json``) or CSV (any other suffix), atomically (a
    failed write leaves the previous file and no temporary one)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        if path.suffix == ".json":
            tmp.write_text(json.dumps(history, indent=1))
        else:
            keys: list[str] = []
            for rec in history:
                keys += [k for k in rec if k not in keys]
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=keys)
                w.writeheader()
                w.writerows(history)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
