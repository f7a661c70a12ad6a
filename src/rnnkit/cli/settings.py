"""The settings of ``rnnkit train``: :class:`TrainCommand` (one field per flag), their
checks, and the settings a ``--resume`` takes over from the run it continues or refuses
to change."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .. import initializers
from ..checkpoint import CheckpointError
from ._common import _fail
from .run_meta import check_settings


def _opt(default, help: str, **kw):
    """A TrainCommand field: its default and the help text of its flag."""
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class TrainCommand:
    """Settings of ``rnnkit train``; each field is the flag of the same name (``seq_len`` is
    ``--seq-len``). With ``--resume``, the settings not given on the command line are those
    the run was started with."""

    text: str | None = _opt(None, "UTF-8 text file to train on (default: the built-in "
                            "dinosaur names)")
    cell: str = _opt("lstm", "recurrent cell", choices=("rnn", "lstm", "gru"))
    layers: int = _opt(2, "stacked recurrent layers")
    hidden: int = _opt(128, "hidden units per layer")
    embedding: int = _opt(0, "embedding size (0: one-hot inputs, as char-rnn)")
    dropout: float = _opt(0.2, "dropout between layers and before the output layer")
    init: str = _opt("default", "initialisation of the recurrent weights: default, "
                     "glorot_orthogonal, identity[:SCALE], uniform[:RANGE] or chrono:T_MAX "
                     "(see rnnkit.initializers)")
    init_from: str | None = _opt(None, "fine-tune: start from the weights of this checkpoint "
                                 "(its model's shape; the symbols both texts share keep "
                                 "their rows, new ones start fresh) with a fresh optimizer "
                                 "and step counter")
    seq_len: int = _opt(50, "steps of truncated backpropagation through time")
    batch_size: int = _opt(32, "sequences per batch (contiguous streams of the text)")
    optimizer: str = _opt("adam", "optimizer", choices=("sgd", "momentum", "adagrad", "rmsprop",
                                                         "adam", "adamw"))
    lr: float = _opt(2e-3, "learning rate")
    schedule: str = _opt("constant", "learning-rate schedule",
                         choices=("constant", "step", "exponential", "cosine"))
    decay_every: int = _opt(1000, "steps between decays (step and exponential schedules)")
    decay_rate: float = _opt(0.97, "decay factor per --decay-every steps")
    schedule_steps: int | None = _opt(None, "steps the cosine schedule spans (default: --steps "
                                      "of the first run, or 10000)")
    warmup: int = _opt(0, "linear warm-up steps before the schedule")
    clip: str = _opt("global_norm", "gradient clipping",
                     choices=("value", "norm", "global_norm", "none"))
    clip_value: float = _opt(5.0, "clipping threshold")
    val_fraction: float = _opt(0.1, "fraction of the text (at its end) held out for validation")
    seed: int = _opt(0, "seed of initialisation, dropout and samples")
    engine: str = _opt("auto", "auto: the compiled kernels where numba is installed (the "
                       "fast extra), else numpy; numpy: always the numpy engine (the same "
                       "results to float rounding)", choices=("auto", "numpy"))
    out: str | None = _opt(None, "output folder (default: runs/<name of the text>)")
    steps: int | None = _opt(None, "stop after this many steps in total (if no budget is "
                             "given at all: 1000)")
    epochs: int | None = _opt(None, "stop after this many epochs in total")
    time: float | None = _opt(None, "stop after this many seconds of this run")
    eval_every: int = _opt(100, "validate and checkpoint every N steps")
    sample_every: int = _opt(500, "print samples every N steps (0: never)")
    checkpoint_every: int = _opt(0, "also checkpoint every N steps (0: only at validations)")
    resume: bool = _opt(False, "continue the run saved in OUT/last.npz")
    word: bool = _opt(False, "word-level model instead of characters")
    max_vocab: int = _opt(10000, "word level: the most frequent words kept")
    quiet: bool = _opt(False, "no progress bar, samples or status lines")


def _validate(cfg: TrainCommand) -> None:
    """Reject bad settings with the flag's name before anything is built or written."""
    for name in ("layers", "hidden", "seq_len", "batch_size", "decay_every", "max_vocab"):
        if getattr(cfg, name) < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    for name in ("embedding", "warmup", "eval_every", "sample_every", "checkpoint_every"):
        if getattr(cfg, name) < 0:
            _fail(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    for name in ("steps", "epochs", "schedule_steps"):
        v = getattr(cfg, name)
        if v is not None and v < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if cfg.time is not None and not (cfg.time > 0 and math.isfinite(cfg.time)):
        _fail(f"--time must be a finite number of seconds > 0, got {cfg.time}")
    try:
        initializers.parse(cfg.init)
    except ValueError as e:
        _fail(f"--init: {e}")
    if not 0 <= cfg.dropout < 1:
        _fail(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if not 0 <= cfg.val_fraction < 1:
        _fail(f"--val-fraction must be in [0, 1), got {cfg.val_fraction}")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        _fail(f"--lr must be a finite number > 0, got {cfg.lr}")
    if not (cfg.clip_value > 0 and math.isfinite(cfg.clip_value)):
        _fail(f"--clip-value must be a finite number > 0, got {cfg.clip_value}")
    if cfg.seed < 0:
        _fail(f"--seed must be an integer >= 0, got {cfg.seed}")
    if not 0 < cfg.decay_rate <= 1:
        _fail(f"--decay-rate must be in (0, 1], got {cfg.decay_rate}")


# settings that a resumed run must share with the run it continues: the model's shape,
# the layout of the data (the carried state and the batch position) and the optimizer's state;
# the vocabulary is compared as well
RESUME_FIXED = ("cell", "layers", "hidden", "embedding", "init", "dropout", "seq_len", "batch_size",
                "optimizer", "val_fraction", "word")


def _resume_source(out: Path) -> Path:
    """The checkpoint a --resume continues: the newest complete one of the run in ``out``
    (last.npz, or a step-named one written after it), or a clear --resume error."""
    from ..resume import newest_checkpoint

    last = out / "last.npz"
    if out.is_file():
        _fail(f"--resume: --out {str(out)!r} is a file, not a run's folder")
    path, notes = newest_checkpoint(out) if out.is_dir() else (None, [])
    if path is None:
        if notes:
            _fail(f"--resume: no checkpoint of {str(out)!r} can be resumed ({notes[0]})")
        _fail(f"--resume: {str(last)!r} does not exist (train without --resume first)")
    for note in notes:
        print(f"rnnkit: note: passed over {note}", file=sys.stderr)
    if path != last:
        print(f"rnnkit: resuming from {path.name}, the newest complete checkpoint of the run",
              file=sys.stderr)
    return path


def _saved_run(path: Path) -> dict:
    """The metadata of a run's checkpoint, or a clear --resume error."""
    from ..checkpoint import read_meta

    try:
        meta, _ = read_meta(path)
    except CheckpointError as e:
        _fail(f"--resume: {e}")
    if "train_state" not in meta:
        _fail(f"--resume: {str(path)!r} was not written by `rnnkit train`")
    try:
        check_settings(meta.get("cli"), TrainCommand, repr(str(path)))
    except CheckpointError as e:
        _fail(f"--resume: {e}")
    return meta


def _check_resume(cfg: TrainCommand, path: Path, vocab) -> None:
    """Refuse a --resume whose flags or text do not match the run saved in ``path``."""
    meta = _saved_run(path)
    old = meta["cli"]
    diffs = [f"--{k.replace('_', '-')} {old[k]} (now {getattr(cfg, k)})"
             for k in RESUME_FIXED if k in old and old[k] != getattr(cfg, k)]
    if diffs:
        _fail(f"--resume: the run in {str(path.parent)!r} was trained with "
              + ", ".join(diffs) + "; give the same values to continue it (nothing was changed)")
    if meta.get("vocab") != vocab.to_json():
        saved = meta.get("vocab")
        before = saved.get("tokens", []) if isinstance(saved, dict) else []
        before = [t for t in before if isinstance(t, str)] if isinstance(before, list) else []
        added = sorted(set(vocab.tokens) - set(before))[:10]
        gone = sorted(set(before) - set(vocab.tokens))[:10]
        _fail(f"--resume: the text's vocabulary differs from the one the run in "
              f"{str(path.parent)!r} was trained with (new: {added or 'none'}, missing: "
              f"{gone or 'none'}); resume on the same text (nothing was changed)")


# per-invocation settings, never taken over from the run being resumed
NOT_INHERITED = ("resume", "quiet", "time", "out", "init_from")


def _train_settings(args) -> tuple[TrainCommand, Path | None]:
    """The flags given, completed by the defaults or, with --resume, by the saved run's;
    and the checkpoint a --resume continues (None without --resume)."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainCommand) if hasattr(args, f.name)}
    text = given.get("text")
    out = given.get("out") or str(Path("runs") / (Path(text).stem if text else "dinos"))
    base = asdict(TrainCommand())
    source = None
    if given.get("resume") and given.get("init_from") is not None:
        _fail("--init-from starts a new run from a checkpoint's weights and --resume "
              "continues a run; give one of them")
    if given.get("resume"):
        source = _resume_source(Path(out))
        saved = _saved_run(source)["cli"]
        base.update({k: v for k, v in saved.items() if k in base and k not in NOT_INHERITED})
    cfg = TrainCommand(**{**base, **given, "out": out})
    if cfg.init_from is not None:
        from .finetune import with_init_from

        cfg = with_init_from(cfg, given)
    _validate(cfg)
    if cfg.steps is None and cfg.epochs is None and cfg.time is None:
        cfg = replace(cfg, steps=1000)
    if cfg.schedule_steps is None:
        cfg = replace(cfg, schedule_steps=cfg.steps or 10_000)
    return cfg, source
