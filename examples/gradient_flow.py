"""The vanishing and exploding gradients of the seeds, measured: RNN vs GRU vs LSTM.

Part 1 trains a character model of each cell on the built-in dinosaur names and measures,
untrained and trained, how the gradient of the last prediction's loss reaching step t
shrinks with the distance to that prediction (``rnnkit.inspect.gradient_flow``). Part 2
trains a tanh RNN whose recurrent weights are too large (``--init uniform:R``) with and
without gradient clipping and reports the gradient norms and losses: the exploding
gradient, and what clipping does to it. One PNG (``--plot``, needs matplotlib) shows both.

    python examples/gradient_flow.py --plot docs/gradient_flow.png      # about 2 minutes
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from _common import limit_blas_threads, print_table

from rnnkit import initializers
from rnnkit.data import Vocab, dinos_text
from rnnkit.inspect import gradient_flow
from rnnkit.models import LanguageModel
from rnnkit.optim import Adam
from rnnkit.train import StreamData, TrainConfig, Trainer

DISTANCES = (0, 1, 2, 5, 10, 20, 30, 40, 49)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"],
                   choices=["rnn", "gru", "lstm"], help="cells of part 1")
    p.add_argument("--hidden", type=int, default=64, help="hidden units")
    p.add_argument("--seq-len", type=int, default=50, help="steps per sequence (T)")
    p.add_argument("--steps", type=int, default=600, help="training steps per model")
    p.add_argument("--explode-init", default="uniform:1.0",
                   help="initialisation of part 2's tanh RNN (too large on purpose)")
    p.add_argument("--explode-lr", type=float, default=0.05, help="part 2's learning rate")
    p.add_argument("--explode-steps", type=int, default=300, help="part 2's training steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (0: the default)")
    p.add_argument("--plot", default=None, help="write the figure to this PNG")
    return p.parse_args(argv)


def data(args):
    text = dinos_text().lower()  # the built-in dinosaur names, as rnnkit train reads them
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    split = int(len(ids) * 0.9)
    train = StreamData(ids[:split], 32, args.seq_len)
    probe = ids[split : split + 16 * (args.seq_len + 1)].reshape(16, args.seq_len + 1)
    return vocab, train, {"x": probe[:, :-1], "y": probe[:, 1:]}


def train(model, train_data, steps, lr, clip) -> list:
    config = TrainConfig(steps=steps, clip_mode="none" if clip is None else "global_norm",
                         clip_value=clip or 1.0, log_every=0, progress=False)
    trainer = Trainer(model, Adam(model.params, lr=lr), train_data, None, config,
                      log=lambda msg: None)
    return trainer.fit()["history"]


def vanishing(args, vocab, train_data, probe) -> dict:
    """Part 1: {cell: {"untrained": norms by distance, "trained": ...}} (last-step loss)."""
    curves, rows = {}, []
    for cell in args.cells:
        model = LanguageModel(len(vocab), cell=cell, hidden_size=args.hidden,
                              dtype=np.float64, rng=args.seed)
        curves[cell] = {"untrained": gradient_flow(model, probe).by_distance((0, "forward"))[1]}
        history = train(model, train_data, args.steps, 3e-3, 5.0)
        curves[cell]["trained"] = gradient_flow(model, probe).by_distance((0, "forward"))[1]
        for when, n in curves[cell].items():
            rows.append([f"{cell} {when}"] + [f"{n[d] / n[0]:.1e}" for d in DISTANCES
                                              if d < len(n)])
        print(f"{cell}: training loss {history[0]['loss']:.3f} -> {history[-1]['loss']:.3f} "
              f"after {len(history)} steps", flush=True)
    print(f"\n||dL/dh_t|| of the last prediction's loss at distance d, relative to d = 0 "
          f"(mean over {len(probe['x'])} held-out sequences of {args.seq_len} characters)")
    print_table(["model"] + [f"d={d}" for d in DISTANCES if d < args.seq_len], rows)
    return curves


def exploding(args, vocab, train_data) -> dict:
    """Part 2: {"no clipping" | "clipped at 1": history} of a tanh RNN with large weights."""
    runs, rows = {}, []
    for name, clip in (("no clipping", None), ("clipped at 1", 1.0)):
        model = LanguageModel(len(vocab), cell="rnn", hidden_size=args.hidden, rng=args.seed,
                              init=initializers.parse(args.explode_init), dtype=np.float64)
        runs[name] = h = train(model, train_data, args.explode_steps, args.explode_lr, clip)
        norms = np.array([r["grad_norm"] for r in h])
        losses = np.array([r["loss"] for r in h])
        finite = losses[np.isfinite(losses)]
        rows.append([name, len(h), f"{np.median(norms):.3g}", f"{norms.max():.3g}",
                     f"{losses[0]:.3f}", f"{finite[-1] if finite.size else math.nan:.3f}"])
    print(f"\ntanh RNN, init {args.explode_init}, Adam lr {args.explode_lr}: the gradient's "
          f"global norm before clipping, and the training loss")
    print_table(["run", "steps", "median norm", "max norm", "first loss", "last loss"], rows)
    return runs


def plot(curves, runs, path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(matplotlib is not installed: no plot written to {path})")
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, when in zip(axes[:2], ("untrained", "trained"), strict=True):
        for cell, c in curves.items():
            ax.semilogy(c[when] / c[when][0], label=cell)
        ax.set_title(f"dinosaur names, {when}")
        ax.set_xlabel("distance to the loss (steps)")
        ax.set_ylabel("||dL/dh_t|| / ||dL/dh_T||")
        ax.legend()
    for name, h in runs.items():
        axes[2].semilogy([r["grad_norm"] for r in h], label=name, lw=0.8)
    axes[2].set_title("tanh RNN, large weights: gradient norm")
    axes[2].set_xlabel("training step")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


def main(argv=None):
    args = parse_args(argv)
    limit_blas_threads(args.threads)
    started = time.perf_counter()
    vocab, train_data, probe = data(args)
    curves = vanishing(args, vocab, train_data, probe)
    runs = exploding(args, vocab, train_data)
    if args.plot:
        plot(curves, runs, args.plot)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
