"""What a resumable training checkpoint must hold, checked before anything is restored.

:func:`check_resumable` reads everything :meth:`rnnkit.train.Trainer.resume` restores (the
counters, the weights, the optimizer's state, the RNG state, the carried state) and checks
it against the trainer it is for: the same model configuration and optimizer, the optimizer's
moments finite, of the parameters' shapes and (second moments) not negative, its step count
not beyond the run's, counters that are integers in range, an RNG state the model's
generator takes, a carried state of the model's state shape. Anything else raises
:class:`~rnnkit.checkpoint.CheckpointError` naming the file, and the trainer is left as it
was. :func:`newest_checkpoint` finds the checkpoint of a run to resume from.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from . import checkpoint
from ._checks import shape_str

CheckpointError = checkpoint.CheckpointError
SECOND_MOMENTS = ("v", "sum")  # optimizer slots that are sums of squares: never negative


@dataclass
class Resumable:
    """The checked contents of a training checkpoint, ready to restore."""

    params: dict  # name -> array of the parameter's dtype
    optimizer: dict  # as Optimizer.load_state_dict takes it
    rng_state: dict
    train_state: dict  # TrainState's fields
    carry: object  # the carried state (an array or a pair), or None


def _int(value, name: str, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CheckpointError(f"{where}: {name} must be an integer >= {minimum}, got "
                              f"{value!r}")
    return value


def _number(value, name: str, where: str, positive: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise CheckpointError(f"{where}: {name} must be a finite number "
                              f"{'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _train_state(meta: dict, where: str, state_cls, num_batches: int) -> dict:
    ts = meta.get("train_state")
    if ts is None:
        raise CheckpointError(f"{where} is a model file, not a resumable training checkpoint")
    if not isinstance(ts, dict):
        raise CheckpointError(f"{where}: train_state is a {type(ts).__name__}, not a dict")
    known = {f.name for f in fields(state_cls)}
    unknown = sorted(set(ts) - known)
    if unknown:
        raise CheckpointError(f"{where}: train_state holds unknown fields {unknown}")
    for k in ("step", "epoch", "batch"):
        if k not in ts:
            raise CheckpointError(f"{where}: train_state has no {k!r}: the position of the "
                                  "run is unknown")
        _int(ts[k], f"train_state.{k}", where)
    if ts["batch"] > num_batches:
        raise CheckpointError(f"{where}: train_state.batch is {ts['batch']}, but an epoch "
                              f"has {num_batches} batches")
    for k in ("evals_since_best", "bad_steps", "restores"):
        if k in ts:
            _int(ts[k], f"train_state.{k}", where)
    if "lr_scale" in ts:
        _number(ts["lr_scale"], "train_state.lr_scale", where, positive=True)
    if ts.get("best_val") is not None:
        _number(ts["best_val"], "train_state.best_val", where)
    if ts.get("best_step") is not None:
        _int(ts["best_step"], "train_state.best_step", where)
    history = ts.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise CheckpointError(f"{where}: train_state.history must be a list of records")
    return ts


def _optimizer(opt, meta: dict, arrays: dict, step: int, where: str) -> dict:
    saved = meta.get("optimizer")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{where} has no optimizer state")
    if saved.get("name") != type(opt).__name__:
        raise CheckpointError(f"{where} was written with optimizer {saved.get('name')}, this "
                              f"run uses {type(opt).__name__}")
    t = _int(saved.get("t"), "optimizer.t", where)
    if t > step:
        raise CheckpointError(
            f"{where}: the optimizer has taken {t} steps but the run only {step} (a state "
            "saved in the middle of a step)")
    lr = _number(saved.get("lr"), "optimizer.lr", where)
    out = {}
    for k, p in opt.params.items():
        for s in opt.slots:
            key = f"opt/{k}/{s}"
            a = arrays.get(key)
            if a is None:
                raise CheckpointError(f"{where} has no optimizer state {k}/{s}")
            if a.shape != p.shape or a.dtype.kind != "f":
                raise CheckpointError(
                    f"{where}: optimizer state {k}/{s} is {a.dtype} {shape_str(a.shape)}, "
                    f"expected floats {shape_str(p.shape)} like the parameter")
            with np.errstate(over="ignore"):
                a = a.astype(p.dtype, copy=False)
            if not np.isfinite(a).all():
                raise CheckpointError(f"{where}: optimizer state {k}/{s} holds NaN or inf")
            if s in SECOND_MOMENTS and (a < 0).any():
                raise CheckpointError(f"{where}: optimizer state {k}/{s} (a sum of squares) "
                                      "holds negative values")
            out[f"{k}/{s}"] = a
    extra = sorted(k for k in arrays if k.startswith("opt/") and k[4:] not in out)
    if extra:
        raise CheckpointError(f"{where} holds optimizer state for no parameter of this "
                              f"model: {', '.join(map(repr, extra[:5]))}")
    return {"t": t, "lr": lr, "arrays": out}


def _rng_state(rng: np.random.Generator, meta: dict, where: str) -> dict:
    state = meta.get("rng")
    try:
        probe = type(rng.bit_generator)()
        probe.state = state  # the generator's own check of the state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise CheckpointError(f"{where} has no valid RNG state ({type(e).__name__}: "
                              f"{str(e)[:120]})") from None
    return state


def _carry(trainer, arrays: dict, ts: dict, where: str):
    parts = sorted(k for k in arrays if k.startswith("carry/"))
    if not parts or not getattr(trainer.train_data, "carries_state", False):
        return None
    rnn = getattr(trainer.model, "rnn", None)
    nb = trainer.train_data.num_batches()
    batch = trainer.train_data.batch(ts["epoch"], ts["batch"] if ts["batch"] < nb else 0)
    B = np.shape(batch["x"])[0]
    expected = rnn.zero_state(B) if rnn is not None else None
    if expected is not None:
        expected = expected if isinstance(expected, tuple) else (expected,)
        names = [f"carry/{i}" for i in range(len(expected))]
        if parts != names:
            raise CheckpointError(f"{where}: the carried state holds {parts}, expected "
                                  f"{names}")
    out = []
    for i, k in enumerate(parts):
        a = arrays[k]
        want = expected[i] if expected is not None else None
        if a.dtype.kind != "f" or (want is not None and a.shape != want.shape):
            shown = shape_str(want.shape) if want is not None else "floats"
            raise CheckpointError(f"{where}: the carried state {k} is {a.dtype} "
                                  f"{shape_str(a.shape)}, expected {shown}")
        if not np.isfinite(a).all():
            raise CheckpointError(f"{where}: the carried state {k} holds NaN or inf")
        out.append(a.astype(want.dtype if want is not None else a.dtype, copy=False))
    return out[0] if len(out) == 1 else tuple(out)


def check_resumable(trainer, arrays: dict, meta: dict, where: str) -> Resumable:
    """Check a training checkpoint (``arrays``, ``meta`` as :func:`checkpoint.load` gives
    them) against ``trainer``; return what to restore. Raises CheckpointError."""
    from .train import TrainState

    ts = _train_state(meta, where, TrainState, trainer.train_data.num_batches())
    config = trainer.model.config()
    if meta.get("config") != config:
        raise CheckpointError(f"{where} was written for another model configuration: "
                              f"{meta.get('config')} vs {config}")
    params = trainer.model.check_arrays(arrays, where)
    opt = _optimizer(trainer.opt, meta, arrays, ts["step"], where)
    return Resumable(params, opt, _rng_state(trainer.model.rng, meta, where), ts,
                     _carry(trainer, arrays, ts, where))


def declared_shapes_check(trainer, where: str):
    """A ``check`` for :func:`checkpoint.load`: the parameters and optimizer state a file
    declares must have the shapes of the trainer's model, and any other array (the carried
    state) no more entries than the model's state or parameters, before any is read."""
    model = trainer.model
    rnn = getattr(model, "rnn", None)
    state_size = 0
    if rnn is not None and getattr(trainer.train_data, "carries_state", False):
        B = np.shape(trainer.train_data.batch(0, 0)["x"])[0]
        state_size = rnn.num_layers * rnn.num_directions * B * rnn.hidden_size
    limit = max(state_size, *(p.size for p in model.params.values()))

    def check(meta: dict, headers: dict) -> None:
        if meta.get("config") != model.config():
            raise CheckpointError(f"{where} was written for another model configuration: "
                                  f"{meta.get('config')} vs {model.config()}")
        for k, (shape, _) in headers.items():
            kind, _, name = k.partition("/")
            if kind == "opt":
                name = name.rpartition("/")[0]
            p = model.params.get(name) if kind in ("param", "opt") else None
            if p is not None and shape != p.shape:
                raise CheckpointError(f"{where}: {k} declares shape {shape_str(shape)}, "
                                      f"expected {shape_str(p.shape)}")
            if p is None and math.prod(shape) > limit:
                raise CheckpointError(f"{where}: array {k!r} declares shape "
                                      f"{shape_str(shape)}, larger than any of the model's")

    return check


def _step(meta: dict):
    ts = meta.get("train_state")
    step = ts.get("step") if isinstance(ts, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def newest_checkpoint(folder) -> tuple[Path | None, list[str]]:
    """The training checkpoint of a run's folder with the most steps: ``last.npz``, or a
    ``ckpt_step*.npz`` of more steps (left when the write of last.npz after it did not
    happen). Files whose archive or metadata are damaged are passed over (the arrays' data
    is checked when the chosen one is loaded). Returns (path or None, notes on the files
    passed over)."""
    folder = Path(folder)
    notes: list[str] = []

    def steps_of(p: Path):
        try:
            meta, _ = checkpoint.read_meta(p)  # its sizes and metadata, not its data
        except CheckpointError as e:
            notes.append(f"{p.name}: {e}")
            return None
        step = _step(meta)
        if step is None:
            notes.append(f"{p.name}: it holds no train_state step, so no position to "
                         "resume from")
        return step

    last = folder / "last.npz"
    last_step = steps_of(last) if last.exists() else None
    named = []
    for p in folder.glob("ckpt_step*.npz"):
        m = re.match(r"ckpt_step(\d+)", p.name)
        if m and (last_step is None or int(m.group(1)) > last_step):
            named.append((int(m.group(1)), p.name, p))
    for _, _, p in sorted(named, reverse=True):
        step = steps_of(p)
        if step is not None and (last_step is None or step > last_step):
            return p, notes
    return (last if last_step is not None else None), notes
