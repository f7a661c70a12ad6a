"""``rnnkit train``: build a language model on a text, train it with checkpoints and
samples, and write its history, best checkpoint and loss plot."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import initializers
from ..checkpoint import CheckpointError
from ._common import RUN_FAILED, _fail, os_error, read_text_file
from .display import shown
from .plan import check_memory, check_schedule
from .settings import TrainCommand, _check_resume, _train_settings

BUILTIN = "builtin:dinos"


def _load_corpus(cfg: TrainCommand):
    from ..data import dinos_text

    if cfg.text is None:
        return dinos_text().lower(), BUILTIN
    return read_text_file(cfg.text), str(Path(cfg.text).resolve())


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


def _prepare_out(out: Path) -> None:
    """Create the output folder and make sure files can be written in it, before anything
    is trained: a one-line error otherwise."""
    if out.exists() and not out.is_dir():
        _fail(f"--out {str(out)!r} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".rnnkit-", suffix=".tmp", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        _fail(f"--out {str(out)!r} cannot be written: {os_error(e)}", RUN_FAILED)


def _has_run(out: Path) -> bool:
    return (out / "last.npz").exists() or any(out.glob("ckpt_step*.npz"))


def cmd_train(args) -> int:
    """``rnnkit train``: build, train, checkpoint and sample; returns the exit code."""
    cfg, resume_from = _train_settings(args)
    if cfg.engine == "numpy":
        from .. import accelerated

        accelerated.set_enabled(False)
    text, source = _load_corpus(cfg)
    out = Path(cfg.out)
    if not cfg.resume and out.is_dir() and _has_run(out):
        _fail(f"{str(out)!r} already holds a run; use --resume to continue it or --out to "
              "start a new one (nothing was overwritten)")
    vocab, ids, train_data, val_data = _streams(cfg, text, source)
    check_schedule(cfg, train_data.num_batches())
    check_memory(cfg, len(vocab))
    if cfg.resume:
        _check_resume(cfg, resume_from, vocab)
    _prepare_out(out)
    try:
        trainer, defaults = _trainer(cfg, vocab, source, train_data, val_data)
    except MemoryError as e:
        _fail(f"out of memory while building the model ({e}); lower --hidden or --layers",
              RUN_FAILED)
    if cfg.resume:
        try:
            trainer.resume(resume_from)
        except CheckpointError as e:
            _fail(f"--resume: {e}")
        origin = _saved_origin(resume_from)
        if origin:  # a fine-tuned run stays one
            trainer.meta["init_from"] = origin
    trainer.log(f"training a {cfg.layers}-layer {cfg.cell.upper()} "
                f"({trainer.model.num_parameters():,} parameters) on {source}: {len(ids):,} "
                f"{'words' if cfg.word else 'characters'}, vocabulary {len(vocab)}; output "
                f"in {out}")
    return _run(trainer, cfg, vocab, text, source, defaults)


def _saved_origin(path: Path):
    """The ``init_from`` record of a fine-tuned run's checkpoint, or None."""
    from ..checkpoint import read_meta

    origin = read_meta(path)[0].get("init_from")
    return origin if isinstance(origin, dict) else None


def _run(trainer, cfg: TrainCommand, vocab, text: str, source: str, defaults: dict) -> int:
    """Train, write the results and show the final samples; the exit code."""
    out = Path(cfg.out)
    try:
        # overflow in a diverging step is handled (skipped, restored, reported): no warnings
        with np.errstate(over="ignore", invalid="ignore"):
            result = trainer.fit()
        interrupted = result["interrupted"]
        best = _write_results(trainer, result, bool(interrupted), cfg, out, trainer.log)
    except MemoryError as e:
        _fail(f"out of memory while training ({e}); lower --batch-size, --seq-len or "
              "--hidden (the checkpoints already written are intact)", RUN_FAILED)
    except OSError as e:
        _fail(f"{os_error(e)}: the run stopped (the checkpoints already written are intact; "
              "continue with --resume)", RUN_FAILED)
    if interrupted:
        print(f"interrupted at step {result['step']}; {out / 'last.npz'} is saved: continue "
              "with the same flags and --resume", file=sys.stderr, flush=True)
        return 143 if interrupted == "SIGTERM" else 130
    if result["stopped"] == "losses stayed non-finite":
        _fail(f"training stopped at step {result['step']}: the losses stayed non-finite; "
              f"{out / 'best.npz'} and {out / 'last.npz'} hold the last good weights (lower "
              "--lr or --clip-value)", RUN_FAILED)
    if not cfg.quiet:
        _final_samples(trainer.model, vocab, text, source, defaults, cfg.seed)
    trainer.log(f"best checkpoint: {best}  (sample with: rnnkit sample {best})")
    return 0


def _trainer(cfg: TrainCommand, vocab, source: str, train_data, val_data):
    """The model, its optimizer and the trainer of the run (its samples every
    --sample-every steps); returns (trainer, sample defaults)."""
    from ..models import LanguageModel
    from ..optim import make_optimizer
    from ..train import TrainConfig, Trainer

    log = (lambda m: None) if cfg.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    defaults = _sample_defaults(vocab, source)
    meta = {"vocab": vocab.to_json(), "cli": asdict(cfg), "source": source,
            "sample_defaults": defaults}
    if cfg.init_from is None:
        model = LanguageModel(len(vocab), cfg.cell, cfg.hidden, cfg.layers,
                              embedding_dim=cfg.embedding or None, dropout=cfg.dropout,
                              rng=cfg.seed, init=initializers.parse(cfg.init))
    else:
        from .finetune import start_from

        model, meta["init_from"] = start_from(cfg, vocab, log)
    opt = make_optimizer(cfg.optimizer, model.params, lr=cfg.lr)

    def show_samples(trainer, rec):
        if cfg.quiet or not cfg.sample_every or rec["step"] % cfg.sample_every:
            return
        rng = np.random.default_rng([cfg.seed, rec["step"]])  # not the training RNG
        lines = _samples(model, vocab, defaults, 3 if source == BUILTIN else 1, rng)
        trainer.write(f"--- samples at step {rec['step']} ---\n" + "\n".join(lines))

    tc = TrainConfig(steps=cfg.steps, epochs=cfg.epochs, time_limit=cfg.time,
                     clip_mode=cfg.clip, clip_value=cfg.clip_value, eval_every=cfg.eval_every,
                     checkpoint_dir=str(cfg.out), checkpoint_every=cfg.checkpoint_every or None,
                     progress=not cfg.quiet, log_every=0 if cfg.quiet else 100)
    trainer = Trainer(model, opt, train_data, val_data, tc, _schedule(cfg), meta, log,
                      show_samples)
    return trainer, defaults


def _samples(model, vocab, defaults: dict, n: int, rng) -> list[str]:
    """n samples from the run's default prime, as generated (newlines at their ends
    dropped), shown as the run shows its samples."""
    prime = vocab.encode(defaults["prime"]) if defaults["prime"] else None
    stop = vocab.encode(defaults["stop"]) if defaults["stop"] else ()
    texts = [vocab.decode(model.generate(prime, defaults["length"], rng=rng, stop_ids=stop))
             for _ in range(n)]
    return [shown(t.strip("\n"), defaults.get("capitalize", False)) for t in texts]


def _streams(cfg: TrainCommand, text: str, source: str):
    """The vocabulary of the text, its ids (N,), and the training and validation streams
    (None without a validation part long enough)."""
    from ..data import Vocab, split_train_val
    from ..train import StreamData

    vocab = (Vocab.from_text(text, "word", max_size=cfg.max_vocab) if cfg.word
             else Vocab.from_text(text, "char"))
    if len(vocab) < 2:
        _fail(f"{source}: the text holds a single distinct {'word' if cfg.word else 'character'}"
              f" ({vocab.tokens[0]!r}); a language model needs at least 2 to choose from")
    ids = vocab.encode(text)
    try:
        train_ids, val_ids = split_train_val(ids, cfg.val_fraction)
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


def _final_samples(model, vocab, text: str, source: str, defaults: dict, seed: int) -> None:
    """Samples of the trained model on stdout: ten names for the built-in corpus (those not
    in the list marked new; an empty sample shown as an empty line, and not counted), one
    text otherwise."""
    rng = np.random.default_rng(seed)
    texts = _samples(model, vocab, defaults, 10 if source == BUILTIN else 1, rng)
    print("--- samples from the final model ---", file=sys.stderr)
    if source != BUILTIN:
        for t in texts:
            print(t)
        return
    known = set(text.split("\n"))
    names = [t for t in texts if t]
    for t in texts:
        print(t + ("   (new)" if t and t.lower() not in known else ""))
    new = sum(t.lower() not in known for t in names)
    empty = len(texts) - len(names)
    print(f"{new} of {len(names)} names are not in the training list"
          + (f"; {empty} sample{' was' if empty == 1 else 's were'} empty" if empty else ""),
          file=sys.stderr)


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
        _draw(plt, path, steps, loss, vsteps, vloss, [h for h in history if "grad_norm" in h])
    except Exception as e:  # the plot is a convenience: never lose a finished run to it
        log(f"note: could not draw {path} ({type(e).__name__}: {e}); history.csv has the numbers")


def _draw_gradients(gx, grads: list) -> None:
    """Gradient norms (log scale) and the running share of clipped steps (right axis)."""
    steps = [h["step"] for h in grads]
    gx.semilogy(steps, [max(h["grad_norm"], 1e-30) for h in grads], lw=0.8, label="global")
    for key in [k for k in grads[-1] if k.startswith("grad_norm/")]:
        gx.semilogy(steps, [max(h.get(key, 0.0), 1e-30) for h in grads], lw=0.6, alpha=0.7,
                    label=key.split("/", 1)[1])
    gx.set_ylabel("gradient norm before clipping")
    gx.grid(alpha=0.3)
    gx.legend(fontsize=7, ncol=3)
    clipped = np.array([bool(h.get("clipped", False)) for h in grads], dtype=float)
    k = max(1, min(50, len(clipped)))
    share = np.convolve(clipped, np.ones(k) / k, mode="valid")
    cx = gx.twinx()
    cx.plot(steps[k - 1:], share, color="black", lw=0.8, ls="--")
    cx.set_ylim(0, 1)
    cx.set_ylabel(f"share clipped (last {k} steps, dashed)")


def _draw(plt, path: Path, steps, loss, vsteps, vloss, grads) -> None:
    """The loss plot: the losses, and below them the gradient's norm before clipping
    (global and per layer) with the share of steps that clipping changed."""
    fig, (ax, gx) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 2]})
    if loss:
        k = max(1, len(loss) // 100)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1:], smooth, label="train (smoothed)")
    if vloss:
        ax.plot(vsteps, vloss, "o-", label="validation")
    ax.set_ylabel("loss (nats per token)")
    if loss or vloss:
        ax.legend()
    ax.grid(alpha=0.3)
    if grads:
        _draw_gradients(gx, grads)
    gx.set_xlabel("step")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
