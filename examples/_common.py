"""Pieces shared by the benchmark examples: command-line flags, BLAS threads, a fit helper."""

from __future__ import annotations

import argparse
import sys
import time

from rnnkit.optim import Adam, CosineDecay
from rnnkit.train import TrainConfig, Trainer


def add_training_args(parser: argparse.ArgumentParser, *, steps: int, lr: float,
                      batch_size: int, hidden: int, time_limit: float) -> None:
    """The flags every example shares (defaults differ per task)."""
    g = parser.add_argument_group("training")
    g.add_argument("--hidden", type=int, default=hidden, help="hidden units per direction")
    g.add_argument("--steps", type=int, default=steps, help="optimizer steps per model")
    g.add_argument("--time-limit", type=float, default=time_limit,
                   help="seconds per model; training stops at whichever budget comes first")
    g.add_argument("--batch-size", type=int, default=batch_size, help="examples per step")
    g.add_argument("--lr", type=float, default=lr,
                   help="Adam's learning rate, decayed to lr/50 by a cosine over --steps")
    g.add_argument("--clip", type=float, default=1.0,
                   help="gradient clipping: maximum global norm of the gradients")
    g.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    g.add_argument("--threads", type=int, default=1,
                   help="BLAS threads for numpy (the matrices are small: 1 is fastest, "
                        "especially on a busy machine); 0 leaves the default")
    g.add_argument("--progress", action="store_true", help="show a progress bar per model")


def limit_blas_threads(n: int) -> None:
    """Limit numpy's BLAS to ``n`` threads for the rest of the run (needs threadpoolctl)."""
    if n <= 0:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print(f"note: threadpoolctl is not installed, numpy's BLAS threads are not set to {n} "
              "(pip install threadpoolctl)", file=sys.stderr)
        return
    threadpool_limits(limits=n, user_api="blas")


def fit(model, train_data, args, on_step=None, steps: int | None = None) -> dict:
    """Train ``model`` with Adam, cosine-decayed lr, global-norm clipping, and the step and
    time budgets of ``args``. Returns the trainer's summary plus ``seconds``."""
    steps = args.steps if steps is None else steps
    opt = Adam(model.params, lr=args.lr)
    config = TrainConfig(steps=steps, time_limit=args.time_limit, clip_mode="global_norm",
                         clip_value=args.clip, progress=args.progress, log_every=0)
    trainer = Trainer(model, opt, train_data, None, config,
                      schedule=CosineDecay(args.lr, steps, args.lr / 50),
                      log=lambda msg: None, on_step=on_step)
    started = time.perf_counter()
    summary = trainer.fit()
    summary["seconds"] = time.perf_counter() - started
    return summary


def print_table(header: list[str], rows: list[list], file=None) -> None:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    cols = [header, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line, file=file)
    print("|:" + "-" * (widths[0] + 1) + "|" + "|".join("-" * (w + 1) + ":" for w in widths[1:])
          + "|", file=file)
    for r in cols[1:]:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:],
                                                                         strict=True)]
        print("| " + " | ".join(cells) + " |", file=file)
    sys.stdout.flush()
