"""The ``rnnkit`` command: train a character (or word) language model, sample, evaluate, inspect.

    rnnkit train [TEXT_FILE]        # no file: the built-in dinosaur names
    rnnkit sample CHECKPOINT
    rnnkit eval CHECKPOINT TEXT_FILE
    rnnkit info CHECKPOINT

Every ``train`` flag maps one-to-one onto a field of :class:`TrainCommand`.
"""

from __future__ import annotations

import argparse
import codecs
import math
import os
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from . import __version__
from .checkpoint import CheckpointError

BUILTIN = "builtin:dinos"


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
    threads: int | None = _opt(None, "with the fast extra: threads the compiled LSTM splits "
                               "its batch across (default: 2 where the machine has 2 or more "
                               "cores; 1: the numpy engine's results, bit for bit)")
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


def _escapes(s: str | None) -> str | None:
    """Turn backslash escapes typed on a command line (\\n, \\t) into characters."""
    if s is None:
        return None
    return codecs.decode(s.encode("utf-8"), "unicode_escape") if "\\" in s else s


def _fail(msg: str, code: int = 2):
    print(f"rnnkit: error: {msg}", file=sys.stderr)
    raise SystemExit(code)


# --------------------------------------------------------------------------- train
def _load_corpus(cfg: TrainCommand):
    from .data import dinos_text, read_text

    if cfg.text is None:
        return dinos_text().lower(), BUILTIN
    try:
        text = read_text(cfg.text)
    except (OSError, ValueError) as e:
        _fail(str(e))
    return text, str(Path(cfg.text).resolve())


def _schedule(cfg: TrainCommand):
    from .optim import CosineDecay, ExponentialDecay, Schedule, StepDecay, Warmup

    total = cfg.schedule_steps or cfg.steps or 10_000
    sched = {
        "constant": lambda: Schedule(cfg.lr),
        "step": lambda: StepDecay(cfg.lr, cfg.decay_every, cfg.decay_rate),
        "exponential": lambda: ExponentialDecay(cfg.lr, cfg.decay_rate ** (1 / cfg.decay_every)),
        "cosine": lambda: CosineDecay(cfg.lr, total),
    }[cfg.schedule]()
    return Warmup(sched, cfg.warmup) if cfg.warmup > 0 else sched


def _sample_defaults(vocab, source: str) -> dict:
    nl = "\n" in vocab.index
    if source == BUILTIN:
        # names are capitalised when shown, as the course prints them
        return {"prime": "\n", "stop": "\n", "length": 50, "capitalize": True}
    return {"prime": "\n" if nl else vocab.tokens[0], "stop": None, "length": 300}


def _validate(cfg: TrainCommand) -> None:
    """Reject bad settings with the flag's name before anything is built or written."""
    for name in ("layers", "hidden", "seq_len", "batch_size", "decay_every", "max_vocab"):
        if getattr(cfg, name) < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    for name in ("embedding", "warmup", "eval_every", "sample_every", "checkpoint_every"):
        if getattr(cfg, name) < 0:
            _fail(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    for name in ("steps", "epochs", "schedule_steps", "threads"):
        v = getattr(cfg, name)
        if v is not None and v < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if cfg.time is not None and not cfg.time > 0:
        _fail(f"--time must be > 0 seconds, got {cfg.time}")
    if not 0 <= cfg.dropout < 1:
        _fail(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if not 0 <= cfg.val_fraction < 1:
        _fail(f"--val-fraction must be in [0, 1), got {cfg.val_fraction}")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        _fail(f"--lr must be a finite number > 0, got {cfg.lr}")
    if not cfg.clip_value > 0:
        _fail(f"--clip-value must be > 0, got {cfg.clip_value}")
    if not 0 < cfg.decay_rate <= 1:
        _fail(f"--decay-rate must be in (0, 1], got {cfg.decay_rate}")


class _DeferredInterrupt:
    """Within ``with``: the first Ctrl-C lets the current step finish (so that last.npz is
    written between steps and resumes exactly), the second stops at once.

    ``stop()`` raises KeyboardInterrupt once a Ctrl-C came; call it between steps."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        # only where Python's own Ctrl-C handling is in place (not ignored, main thread)
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        msg = "\nrnnkit: stopping after this step (Ctrl-C again to stop at once)\n"
        try:  # not print(): the interrupted code may be writing to sys.stderr right now
            os.write(sys.stderr.fileno(), msg.encode())
        except (AttributeError, OSError, ValueError):
            pass

    def stop(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


# settings that a resumed run must share with the run it continues: the model's shape,
# the layout of the data (the carried state and the batch position) and the optimizer's state;
# the vocabulary is compared as well
RESUME_FIXED = ("cell", "layers", "hidden", "embedding", "dropout", "seq_len", "batch_size",
                "optimizer", "val_fraction", "word")


def _saved_run(last: Path) -> dict:
    """The metadata of a run's last.npz, or a clear --resume error."""
    from .checkpoint import load

    if not last.exists():
        _fail(f"--resume: {str(last)!r} does not exist (train without --resume first)")
    try:
        _, meta = load(last)
    except CheckpointError as e:
        _fail(f"--resume: {e}")
    if not isinstance(meta.get("cli"), dict) or "train_state" not in meta:
        _fail(f"--resume: {str(last)!r} was not written by `rnnkit train`")
    return meta


def _check_resume(cfg: TrainCommand, last: Path, vocab) -> None:
    """Refuse a --resume whose flags or text do not match the run saved in ``last``."""
    meta = _saved_run(last)
    old = meta["cli"]
    diffs = [f"--{k.replace('_', '-')} {old[k]} (now {getattr(cfg, k)})"
             for k in RESUME_FIXED if k in old and old[k] != getattr(cfg, k)]
    if diffs:
        _fail(f"--resume: the run in {str(last.parent)!r} was trained with "
              + ", ".join(diffs) + "; give the same values to continue it (nothing was changed)")
    if meta.get("vocab") != vocab.to_json():
        before = list(meta.get("vocab", {}).get("tokens", []))
        added = sorted(set(vocab.tokens) - set(before))[:10]
        gone = sorted(set(before) - set(vocab.tokens))[:10]
        _fail(f"--resume: the text's vocabulary differs from the one the run in "
              f"{str(last.parent)!r} was trained with (new: {added or 'none'}, missing: "
              f"{gone or 'none'}); resume on the same text (nothing was changed)")


# per-invocation settings, never taken over from the run being resumed
NOT_INHERITED = ("resume", "quiet", "time", "out")


def _train_settings(args) -> TrainCommand:
    """The flags given, completed by the defaults or, with --resume, by the saved run's."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainCommand) if hasattr(args, f.name)}
    text = given.get("text")
    out = given.get("out") or str(Path("runs") / (Path(text).stem if text else "dinos"))
    base = asdict(TrainCommand())
    if given.get("resume"):
        saved = _saved_run(Path(out) / "last.npz")["cli"]
        base.update({k: v for k, v in saved.items() if k in base and k not in NOT_INHERITED})
    cfg = TrainCommand(**{**base, **given, "out": out})
    _validate(cfg)
    if cfg.steps is None and cfg.epochs is None and cfg.time is None:
        cfg = replace(cfg, steps=1000)
    if cfg.schedule_steps is None:
        cfg = replace(cfg, schedule_steps=cfg.steps or 10_000)
    return cfg


def cmd_train(args) -> int:
    """``rnnkit train``: build, train, checkpoint and sample; returns the exit code."""
    from .data import Vocab, split_train_val
    from .models import LanguageModel
    from .optim import make_optimizer
    from .train import StreamData, TrainConfig, Trainer, save_history

    cfg = _train_settings(args)
    if cfg.threads is not None:
        from . import compiled

        compiled.set_threads(cfg.threads)
    text, source = _load_corpus(cfg)
    out = Path(cfg.out)
    last = out / "last.npz"
    if not cfg.resume and last.exists():
        _fail(f"{str(out)!r} already holds a run; use --resume to continue it or --out to "
              "start a new one (nothing was overwritten)")
    vocab = (Vocab.from_text(text, "word", max_size=cfg.max_vocab) if cfg.word
             else Vocab.from_text(text, "char"))
    ids = vocab.encode(text)
    train_ids, val_ids = split_train_val(ids, cfg.val_fraction)
    try:
        train_data = StreamData(train_ids, cfg.batch_size, cfg.seq_len)
        val_data = (StreamData(val_ids, min(cfg.batch_size, max(1, (len(val_ids) - 1) // 2)),
                               cfg.seq_len) if val_ids is not None and len(val_ids) > 2 else None)
    except ValueError as e:
        _fail(f"{source}: {e}")
    model = LanguageModel(len(vocab), cfg.cell, cfg.hidden, cfg.layers,
                          embedding_dim=cfg.embedding or None, dropout=cfg.dropout, rng=cfg.seed)
    opt = make_optimizer(cfg.optimizer, model.params, lr=cfg.lr)
    defaults = _sample_defaults(vocab, source)
    meta = {"vocab": vocab.to_json(), "cli": asdict(cfg), "source": source,
            "sample_defaults": defaults}
    log = (lambda m: None) if cfg.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    prime_ids = vocab.encode(defaults["prime"]) if defaults["prime"] else None
    stop_ids = vocab.encode(defaults["stop"]) if defaults["stop"] else ()

    ctrl_c = _DeferredInterrupt()

    def show_samples(trainer, rec):
        ctrl_c.stop()  # after the step (and its checkpoints) is complete
        if cfg.quiet or not cfg.sample_every or rec["step"] % cfg.sample_every:
            return
        rng = np.random.default_rng([cfg.seed, rec["step"]])  # not the training RNG
        lines = []
        for _ in range(3 if source == BUILTIN else 1):
            toks = model.generate(prime_ids, defaults["length"], rng=rng, stop_ids=stop_ids)
            line = vocab.decode(toks).strip("\n")
            lines.append(line.capitalize() if source == BUILTIN else line)
        trainer.write(f"--- samples at step {rec['step']} ---\n" + "\n".join(lines))

    tc = TrainConfig(steps=cfg.steps, epochs=cfg.epochs, time_limit=cfg.time,
                     clip_mode=cfg.clip, clip_value=cfg.clip_value, eval_every=cfg.eval_every,
                     checkpoint_dir=str(out), checkpoint_every=cfg.checkpoint_every or None,
                     progress=not cfg.quiet, log_every=0 if cfg.quiet else 100)
    trainer = Trainer(model, opt, train_data, val_data, tc, _schedule(cfg), meta, log,
                      show_samples)
    if cfg.resume:
        _check_resume(cfg, last, vocab)
        try:
            trainer.resume(last)
        except CheckpointError as e:
            _fail(f"--resume: {e}")
    log(f"training a {cfg.layers}-layer {cfg.cell.upper()} ({model.num_parameters():,} "
        f"parameters) on {source}: {len(ids):,} {'words' if cfg.word else 'characters'}, "
        f"vocabulary {len(vocab)}; output in {out}")
    with ctrl_c:
        result = trainer.fit()
    interrupted = ctrl_c.requested or str(result["stopped"]).startswith("interrupted")
    if not interrupted and val_data is not None and (not result["history"] or
                                                     "val_loss" not in result["history"][-1]):
        ev = trainer.evaluate()
        if ev:
            log(f"final: val loss {ev['loss']:.4f}, {ev['bpc']:.3f} bits per "
                f"{'word' if cfg.word else 'char'}")
    hist = trainer.state.history
    save_history(hist, out / "history.json")
    save_history(hist, out / "history.csv")
    best = out / "best.npz"
    if not best.exists():
        trainer.save_checkpoint(best)
    _plot(hist, out / "loss.png", log)
    if interrupted:
        print(f"interrupted at step {result['step']}; {last} is saved: continue with the same "
              f"flags and --resume", file=sys.stderr, flush=True)
        return 130
    if not cfg.quiet:
        rng = np.random.default_rng(cfg.seed)
        texts = [vocab.decode(model.generate(prime_ids, defaults["length"], rng=rng,
                                             stop_ids=stop_ids)).strip("\n")
                 for _ in range(10 if source == BUILTIN else 1)]
        print("--- samples from the final model ---", file=sys.stderr)
        if source == BUILTIN:
            known = set(text.split("\n"))
            for t in texts:
                print(t.capitalize() + ("" if t in known else "   (new)"))
            new = sum(t not in known for t in texts)
            print(f"{new} of {len(texts)} names are not in the training list", file=sys.stderr)
        else:
            for t in texts:
                print(t)
    log(f"best checkpoint: {best}  (sample with: rnnkit sample {best})")
    return 0


def _plot(history: list, path: Path, log) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("note: matplotlib is not installed, so no loss plot was drawn "
            "(pip install 'rnnkit[plot]'); history.csv has the numbers")
        return
    steps = [h["step"] for h in history if "loss" in h]
    loss = [h["loss"] for h in history if "loss" in h]
    vsteps = [h["step"] for h in history if h.get("val_loss") is not None]
    vloss = [h["val_loss"] for h in history if h.get("val_loss") is not None]
    try:
        _draw(plt, path, steps, loss, vsteps, vloss)
    except Exception as e:  # the plot is a convenience: never lose a finished run to it
        log(f"note: could not draw {path} ({type(e).__name__}: {e}); history.csv has the numbers")


def _draw(plt, path: Path, steps, loss, vsteps, vloss) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    if loss:
        k = max(1, len(loss) // 100)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1:], smooth, label="train (smoothed)")
    if vloss:
        ax.plot(vsteps, vloss, "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


# --------------------------------------------------------------------------- sample / eval / info
def _load(path):
    from .data import Vocab
    from .models import LanguageModel, load_model

    try:
        model, meta, _ = load_model(path)
    except CheckpointError as e:
        _fail(str(e))
    if not isinstance(model, LanguageModel) or "vocab" not in meta:
        _fail(f"{path!r} is not a language-model checkpoint written by `rnnkit train`")
    return model, meta, Vocab.from_json(meta["vocab"])


def cmd_sample(args) -> int:
    """``rnnkit sample``: stream generated text from a checkpoint; returns the exit code."""
    if args.length < 0:
        _fail(f"--length must be >= 0 (0: the run's default), got {args.length}")
    if args.num < 1:
        _fail(f"--num must be >= 1, got {args.num}")
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        _fail(f"--temperature must be a finite number > 0 (use --greedy for 0), "
              f"got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        _fail(f"--top-k must be >= 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        _fail(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.beam is not None and args.beam < 1:
        _fail(f"--beam must be >= 1, got {args.beam}")
    model, meta, vocab = _load(args.checkpoint)
    defaults = meta.get("sample_defaults", {})
    prime = _escapes(args.prime) if args.prime is not None else defaults.get("prime")
    stop = _escapes(args.stop) if args.stop is not None else defaults.get("stop")
    length = args.length or defaults.get("length", 300)
    if not prime:
        _fail("--prime must not be empty")
    try:
        prime_ids = vocab.encode(prime, name="--prime")
    except ValueError as e:
        _fail(str(e))
    stop_ids = []
    if stop:
        try:
            stop_ids = vocab.encode(stop, name="--stop")
        except ValueError as e:
            _fail(str(e))
        if len(stop_ids) != 1:
            _fail(f"--stop must be a single {vocab.level}, got {stop!r}")
    rng = np.random.default_rng(args.seed)
    sep = "" if vocab.level == "char" else " "
    for i in range(args.num):
        # words are joined by spaces, as Vocab.decode does: none at the start of a line
        # nor before a newline
        line_start = [True]
        first = [defaults.get("capitalize", False) and not args.show_prime]
        if args.show_prime:
            sys.stdout.write(prime)
            line_start[0] = prime[-1].isspace()

        def emit(tok, line_start=line_start, first=first):
            t = vocab.tokens[tok]
            if first[0]:  # the first letter of a name
                t = t.upper()
            first[0] = False
            sys.stdout.write(t if not sep or line_start[0] or t == "\n" else sep + t)
            sys.stdout.flush()
            line_start[0] = t == "\n"

        toks = model.generate(prime_ids, length, rng=rng, temperature=args.temperature,
                              top_k=args.top_k, top_p=args.top_p, greedy=args.greedy,
                              beam=args.beam, stop_ids=stop_ids, on_token=emit)
        if not toks or vocab.tokens[toks[-1]] != "\n":
            sys.stdout.write("\n")
        if args.num > 1 and i < args.num - 1 and stop is None:
            sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def cmd_eval(args) -> int:
    """``rnnkit eval``: loss, bits per token and perplexity on a text; returns the exit code."""
    from .data import read_text
    from .train import StreamData, TrainConfig, Trainer

    for name in ("batch_size", "seq_len"):
        if getattr(args, name) < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    model, meta, vocab = _load(args.checkpoint)
    try:
        text = read_text(args.text)
        ids = vocab.encode(text, name=str(args.text))
    except (OSError, ValueError) as e:
        _fail(str(e))
    if len(ids) < 2:
        _fail(f"{str(args.text)!r} holds {len(ids)} token(s): at least 2 are needed to "
              "predict one")
    data = StreamData(ids, min(args.batch_size, max(1, (len(ids) - 1) // 2)), args.seq_len)
    from .optim import SGD

    trainer = Trainer(model, SGD(model.params, lr=1.0), data, None, TrainConfig(steps=0),
                      log=lambda m: None)
    ev = trainer.evaluate(data)
    unit = "word" if vocab.level == "word" else "char"
    print(f"{args.text}: {len(ids):,} {unit}s")
    print(f"loss        {ev['loss']:.4f} nats/{unit}")
    print(f"bits/{unit}   {ev['bpc']:.4f}")
    print(f"perplexity  {ev['perplexity']:.3f}")
    return 0


def cmd_info(args) -> int:
    """``rnnkit info``: describe a checkpoint; returns the exit code."""
    model, meta, vocab = _load(args.checkpoint)
    cli = meta.get("cli", {})
    print(f"checkpoint  {args.checkpoint}")
    print(f"model       {meta['model']}: {model.rnn!r}")
    print(f"parameters  {model.num_parameters():,}")
    shown = "".join(vocab.tokens) if vocab.level == "char" else " ".join(vocab.tokens[:30])
    print(f"vocabulary  {len(vocab)} {vocab.level}s: {shown[:120]!r}")
    print(f"trained on  {meta.get('source', '?')}")
    for k in ("cell", "layers", "hidden", "embedding", "dropout", "seq_len", "batch_size",
              "optimizer", "lr", "schedule", "clip", "clip_value", "seed"):
        if k in cli:
            print(f"  {k:<12}{cli[k]}")
    ts = meta.get("train_state")
    if ts:
        hist = ts.get("history", [])
        vals = [h["val_loss"] for h in hist if h.get("val_loss") is not None]
        print(f"trained     {ts['step']} steps, {ts['epoch']} epochs")
        if hist:
            print(f"last loss   {hist[-1].get('loss', float('nan')):.4f}")
        if vals:
            print(f"val loss    last {vals[-1]:.4f}, best {min(vals):.4f} "
                  f"({min(vals) / math.log(2):.3f} bits/{vocab.level})")
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``rnnkit`` command and its subcommands."""
    p = argparse.ArgumentParser(prog="rnnkit", description="Recurrent networks on numpy: train "
                                "a character-level language model, then sample from it.")
    p.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a language model on a text file",
                       description="Train a character (or word) level language model. With no "
                       "TEXT_FILE, trains on the built-in list of dinosaur names.")
    for f in fields(TrainCommand):
        meta = f.metadata
        default = "" if f.default is None else f" (default: {f.default})"
        kw = {"help": meta["help"] + ("" if f.type == "bool" else default),
              "default": argparse.SUPPRESS}  # absent unless given: --resume fills it in
        if f.name == "text":
            t.add_argument("text", nargs="?", metavar="TEXT_FILE", **kw)
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            t.add_argument(flag, action="store_true", **kw)
        elif "choices" in meta:
            t.add_argument(flag, choices=meta["choices"], **kw)
        else:
            kind = {"int": int, "float": float, "str": str}[f.type.split(" ")[0]]
            t.add_argument(flag, type=kind, **kw)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="generate text from a checkpoint",
                       description="Generate text from a trained checkpoint, streaming it as it "
                       "is generated. Backslash escapes such as \\n work in --prime and --stop.")
    s.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz written by rnnkit train")
    s.add_argument("--prime", help="text to start from (default: the run's, e.g. a newline)")
    s.add_argument("--length", type=int, default=0,
                   help="tokens to generate per sample (default: the run's, e.g. 50)")
    s.add_argument("--temperature", type=float, default=1.0,
                   help="softmax temperature: <1 more conservative, >1 more varied")
    s.add_argument("--top-k", type=int, help="sample only among the k most likely tokens")
    s.add_argument("--top-p", type=float, help="nucleus sampling: smallest set of mass p")
    s.add_argument("--greedy", action="store_true", help="always take the most likely token")
    s.add_argument("--beam", type=int, help="beam search of this width (deterministic)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--stop", help="stop after this token (default: the run's, e.g. newline)")
    s.add_argument("--num", type=int, default=1, help="number of samples (default: 1)")
    s.add_argument("--show-prime", action="store_true", help="print the prime before the text")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("eval", help="loss, bits per char and perplexity on a text",
                       description="Evaluate a checkpoint on a held-out text file.")
    e.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz written by rnnkit train")
    e.add_argument("text", metavar="TEXT_FILE", help="UTF-8 text to evaluate on")
    e.add_argument("--batch-size", type=int, default=32, help="streams evaluated side by side")
    e.add_argument("--seq-len", type=int, default=100, help="steps per chunk (state is carried)")
    e.set_defaults(func=cmd_eval)

    i = sub.add_parser("info", help="configuration, size, vocabulary and history of a checkpoint",
                       description="Describe a checkpoint.")
    i.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz written by rnnkit train")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None) -> int:
    """Entry point of the ``rnnkit`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # a checkpoint being written is never left half-done (it is written to a temporary
        # file and renamed), so stopping anywhere is safe
        print("\nrnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `rnnkit sample ... | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
