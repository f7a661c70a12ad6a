"""``rnnkit train``: build a language model on a text, train it with checkpoints and
samples, and write its history, best checkpoint and loss plot."""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import initializers
from ..checkpoint import CheckpointError
from ._common import _fail
from .settings import TrainCommand, _check_resume, _train_settings

BUILTIN = "builtin:dinos"


def _load_corpus(cfg: TrainCommand):
    from ..data import dinos_text, read_text

    if cfg.text is None:
        return dinos_text().lower(), BUILTIN
    try:
        text = read_text(cfg.text)
    except (OSError, ValueError) as e:
        _fail(str(e))
    return text, str(Path(cfg.text).resolve())


def _schedule(cfg: TrainCommand):
    from ..optim import CosineDecay, ExponentialDecay, Schedule, StepDecay, Warmup

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


def cmd_train(args) -> int:
    """``rnnkit train``: build, train, checkpoint and sample; returns the exit code."""
    from ..models import LanguageModel
    from ..optim import make_optimizer
    from ..train import TrainConfig, Trainer

    cfg = _train_settings(args)
    if cfg.engine == "numpy":
        from .. import accelerated

        accelerated.set_enabled(False)
    text, source = _load_corpus(cfg)
    out = Path(cfg.out)
    last = out / "last.npz"
    if not cfg.resume and last.exists():
        _fail(f"{str(out)!r} already holds a run; use --resume to continue it or --out to "
              "start a new one (nothing was overwritten)")
    vocab, ids, train_data, val_data = _streams(cfg, text, source)
    model = LanguageModel(len(vocab), cfg.cell, cfg.hidden, cfg.layers,
                          embedding_dim=cfg.embedding or None, dropout=cfg.dropout, rng=cfg.seed,
                          init=initializers.parse(cfg.init))
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
    best = _write_results(trainer, result, interrupted, cfg, out, log)
    if interrupted:
        print(f"interrupted at step {result['step']}; {last} is saved: continue with the same "
              f"flags and --resume", file=sys.stderr, flush=True)
        return 130
    if not cfg.quiet:
        _final_samples(model, vocab, text, source, defaults, prime_ids, stop_ids, cfg.seed)
    log(f"best checkpoint: {best}  (sample with: rnnkit sample {best})")
    return 0


def _streams(cfg: TrainCommand, text: str, source: str):
    """The vocabulary of the text, its ids (N,), and the training and validation streams
    (None without a validation part long enough)."""
    from ..data import Vocab, split_train_val
    from ..train import StreamData

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
    return vocab, ids, train_data, val_data


def _write_results(trainer, result: dict, interrupted: bool, cfg: TrainCommand, out: Path,
                   log) -> Path:
    """After ``fit``: a final validation if the last step had none (unless interrupted),
    history.json and .csv, best.npz if no validation wrote one, loss.png. Returns the path
    of best.npz."""
    from ..train import save_history

    if not interrupted and trainer.val_data is not None and (
            not result["history"] or "val_loss" not in result["history"][-1]):
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
    return best


def _final_samples(model, vocab, text: str, source: str, defaults: dict, prime_ids, stop_ids,
                   seed: int) -> None:
    """Samples of the trained model on stdout: ten names for the built-in corpus (those not
    in the list marked new), one text otherwise."""
    rng = np.random.default_rng(seed)
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
