"""The adding problem: tanh RNN vs GRU vs LSTM, and the gradient that reaches each step.

Trains a ``SequenceRegressor`` of each cell at each length T on the adding problem
(Hochreiter & Schmidhuber 1997; the form of Le et al. 2015 / Arjovsky et al. 2016: a value
channel and a marker channel with two ones, target = the sum of the two marked values)
and reports the test MSE next to the trivial answer's 0.167. Then it measures the norm of
d loss / d x_t as a function of the distance from the output, for untrained and trained
models: the vanishing-gradient story, in numbers (and a PNG if matplotlib is installed).

    python examples/adding_problem.py                       # the full run (about 6 min)
    python examples/adding_problem.py --lengths 20 --steps 500 --cells gru

A model is named ``CELL[-relu][@INIT]``: ``rnn``, ``rnn-relu``, ``gru``, ``lstm``, with an
initialisation scheme of ``rnnkit.initializers`` (``default`` if none), e.g.
``rnn-relu@identity`` (IRNN, Le et al. 2015) or ``lstm@chrono:200`` (Tallec & Ollivier
2018):

    python examples/adding_problem.py --lengths 200 --cells rnn rnn-relu@identity lstm \
        lstm@chrono:200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import add_training_args, fit, limit_blas_threads, print_table

from rnnkit import initializers, tasks
from rnnkit.losses import mse
from rnnkit.models import SequenceRegressor
from rnnkit.train import ArrayData


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"], type=variant,
                   help="models to compare: CELL[-relu][@INIT], CELL rnn, gru or lstm, INIT "
                        "a scheme of rnnkit.initializers (e.g. rnn-relu@identity, "
                        "lstm@chrono:100)")
    p.add_argument("--lengths", nargs="+", type=int, default=[50, 100],
                   help="sequence lengths T to train at")
    p.add_argument("--rnn-steps", type=int, default=10000,
                   help="optimizer steps for the tanh RNN (its steps cost about a quarter of "
                        "a gated cell's, so the default gives it a similar time)")
    p.add_argument("--train-size", type=int, default=20000, help="training examples per T")
    p.add_argument("--test-size", type=int, default=2000, help="held-out test examples per T")
    p.add_argument("--grad-batch", type=int, default=200,
                   help="examples averaged in the gradient-norm measurement")
    p.add_argument("--plot", default=None,
                   help="write the gradient norms to this PNG (needs matplotlib)")
    add_training_args(p, steps=2500, lr=0.005, batch_size=50, hidden=64, time_limit=150)
    return p.parse_args(argv)


def variant(name: str) -> str:
    """Check a model name CELL[-relu][@INIT] (argparse type)."""
    cell, _, init = name.partition("@")
    if cell not in ("rnn", "rnn-relu", "gru", "lstm"):
        raise argparse.ArgumentTypeError(f"cell must be rnn, rnn-relu, gru or lstm, got {cell!r}")
    try:
        initializers.as_scheme(initializers.parse(init) if init else "default",
                               cell.split("-")[0])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name


def make_model(name: str, hidden: int, seed: int, dtype=np.float32) -> SequenceRegressor:
    """The regressor of a model name CELL[-relu][@INIT]."""
    cell, _, init = name.partition("@")
    kw = {"nonlinearity": "relu"} if cell == "rnn-relu" else {}
    return SequenceRegressor(1, input_size=2, cell=cell.split("-")[0], hidden_size=hidden,
                             dtype=dtype, rng=seed,
                             init=initializers.parse(init) if init else "default", **kw)


def input_gradient_norms(model: SequenceRegressor, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean over examples of ||d loss / d x_t|| for every step t: x (B, T, 2) -> (T,).

    Measured in float64 (a copy of the weights) so that tiny gradients do not underflow.
    The loss is the MSE of the model's prediction."""
    twin = SequenceRegressor(1, input_size=2, cell=model.rnn.kind,
                             hidden_size=model.rnn.hidden_size, dtype=np.float64,
                             **{k: v for k, v in model.rnn._extra_config().items()
                                if k in ("nonlinearity", "reset_after", "forget_bias")})
    for k, v in model.params.items():
        np.copyto(twin.params[k], v)
    twin.eval()
    x64 = x.astype(np.float64)
    h, _, rcache = twin.rnn.forward(x64)  # (B, H): the final state
    pred, hcache = twin.head.forward(h)
    _, dpred = mse(pred, y.astype(np.float64), None, "mean")
    dh, _ = twin.head.backward(dpred, hcache)
    dx, _, _ = twin.rnn.backward(dh, rcache)  # (B, T, 2)
    return np.linalg.norm(dx, axis=2).mean(axis=0)


def gradient_table(norms: dict, T: int) -> None:
    """Print ||dL/dx_t|| relative to the last step, at chosen distances from the output."""
    distances = sorted({d for d in (0, 1, 2, 5, 10, 20, 30, 40, 50, 75, T - 1) if d < T})
    header = ["model"] + [f"d={d}" for d in distances]
    rows = []
    for name, g in norms.items():
        last = g[T - 1]
        rows.append([name] + [f"{g[T - 1 - d] / last:.1e}" if last > 0 else "0"
                              for d in distances])
    print_table(header, rows)


def plot(all_norms: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(matplotlib is not installed: no plot written to {path})")
        return
    fig, axes = plt.subplots(1, len(all_norms), figsize=(6 * len(all_norms), 4), squeeze=False)
    for ax, (T, norms) in zip(axes[0], all_norms.items(), strict=True):
        for name, g in norms.items():
            rel = g[::-1] / g[-1]
            ax.semilogy(np.arange(T), np.maximum(rel, 1e-30), label=name)
        ax.set_xlabel("distance from the output (steps)")
        ax.set_ylabel("||dL/dx_t|| / ||dL/dx_T||")
        ax.set_title(f"adding problem, T = {T}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv=None):
    args = parse_args(argv)
    limit_blas_threads(args.threads)
    print(f"adding problem: cells {args.cells}, T in {args.lengths}, hidden {args.hidden}, "
          f"batch {args.batch_size}, Adam lr {args.lr} (cosine decay), clip {args.clip}, "
          f"{args.steps} steps ({args.rnn_steps} for rnn), time limit {args.time_limit:g} s, "
          f"seed {args.seed}")
    print(f"trivial answer (always 1.0): MSE {tasks.adding_baseline_mse():.3f}\n")
    results, all_norms = [], {}
    started = time.perf_counter()
    for T in args.lengths:
        rng = np.random.default_rng([args.seed, T])
        x, y = tasks.adding_problem(args.train_size, T, rng=rng)
        xt, yt = tasks.adding_problem(args.test_size, T, rng=rng)
        xg, yg = xt[: args.grad_batch], yt[: args.grad_batch]
        data = ArrayData({"x": x, "y": y}, args.batch_size, seed=args.seed)
        norms = {}
        for cell in args.cells:
            model = make_model(cell, args.hidden, args.seed)
            norms[f"{cell} untrained"] = input_gradient_norms(model, xg, yg)
            steps = args.rnn_steps if cell.startswith("rnn") else args.steps
            summary = fit(model, data, args, steps=steps)
            test_mse = float(np.mean((model.predict(xt) - yt) ** 2))
            norms[f"{cell} trained"] = input_gradient_norms(model, xg, yg)
            solved = "yes" if test_mse < 0.01 else "no"
            results.append([cell, T, summary["step"], f"{summary['seconds']:.0f}",
                            f"{test_mse:.4f}", solved])
            print(f"T={T:<4d} {cell:<8s} test MSE {test_mse:.4f} after {summary['step']} steps "
                  f"({summary['seconds']:.0f} s; {summary['stopped']})", flush=True)
        all_norms[T] = norms
    print("\ntest MSE (trivial answer 0.167; solved = MSE < 0.01)")
    print_table(["cell", "T", "steps", "seconds", "test MSE", "solved"], results)
    for T, norms in all_norms.items():
        print(f"\n||d loss / d x_t|| at distance d from the output, relative to d=0 (T={T}, "
              f"mean over {len(xg)} test examples)")
        gradient_table({k: norms[k] for k in sorted(norms, key=lambda k: "untrained" not in k)},
                       T)
    if args.plot:
        plot(all_norms, args.plot)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
