"""The copy-memory task: recall K symbols after a long delay (unidirectional taggers).

The input shows K random symbols, a delay of blanks, a marker, and K more blanks; the
model must output blanks and then the K symbols in order (Hochreiter & Schmidhuber 1997;
Arjovsky, Shah & Bengio 2016). A ``SequenceTagger(bidirectional=False)`` reads the input
left to right and emits one tag per step, so it must carry the symbols across the delay.
The score is exact-sequence accuracy on held-out sequences: every one of the
``delay + 2K`` outputs right.

    python examples/copy_task.py                        # GRU and tanh RNN at delay 50 (about 4 min)
    python examples/copy_task.py --cells gru rnn --delays 10 50 --steps 4000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import add_training_args, fit, limit_blas_threads, print_table

from rnnkit import tasks
from rnnkit.models import SequenceTagger
from rnnkit.train import ArrayData


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cells", nargs="+", default=["gru", "rnn"],
                   choices=["rnn", "gru", "lstm"], help="recurrent cells to compare")
    p.add_argument("--delays", nargs="+", type=int, default=[50],
                   help="blanks between the last symbol and the marker")
    p.add_argument("--symbols", type=int, default=5, help="K, symbols to recall")
    p.add_argument("--alphabet", type=int, default=8, help="distinct data symbols")
    p.add_argument("--embedding-dim", type=int, default=16, help="input embedding size")
    p.add_argument("--train-size", type=int, default=50000, help="training sequences")
    p.add_argument("--test-size", type=int, default=1000, help="held-out test sequences")
    p.add_argument("--eval-every", type=int, default=1000,
                   help="print held-out accuracy every N steps (0: never during training)")
    add_training_args(p, steps=12000, lr=0.005, batch_size=32, hidden=64, time_limit=330)
    return p.parse_args(argv)


def show(x_row, y_row, p_row, K) -> str:
    sym = {tasks.COPY_BLANK: "-", tasks.COPY_MARKER: ":"}
    src = "".join(sym.get(int(i), chr(ord("a") + int(i) - 3)) for i in x_row)
    want = "".join(chr(ord("a") + int(t) - 1) if t else "-" for t in y_row[-K:])
    got = "".join(chr(ord("a") + int(t) - 1) if t else "-" for t in p_row[-K:])
    return f"input {src}\n  wanted at the end: {want}   output: {got}"


def main(argv=None):
    args = parse_args(argv)
    limit_blas_threads(args.threads)
    K, A = args.symbols, args.alphabet
    print(f"copy memory: K={K} symbols of {A}, delays {args.delays}, cells {args.cells}, "
          f"hidden {args.hidden}, batch {args.batch_size}, Adam lr {args.lr} (cosine decay), "
          f"clip {args.clip}, {args.steps} steps, time limit {args.time_limit:g} s, "
          f"seed {args.seed}")
    rows = []
    started = time.perf_counter()
    for delay in args.delays:
        rng = np.random.default_rng([args.seed, delay])
        x, y = tasks.copy_memory(args.train_size, delay, K, A, rng=rng)
        xt, yt = tasks.copy_memory(args.test_size, delay, K, A, rng=rng)
        data = ArrayData({"x": x, "y": y}, args.batch_size, seed=args.seed)
        baseline = tasks.copy_baseline_loss(delay, K, A)
        print(f"\ndelay {delay}: sequences of {x.shape[1]} steps; memoryless baseline "
              f"{baseline:.4f} nats/step, exact-sequence chance {A ** -K:.1e}", flush=True)
        for cell in args.cells:
            model = SequenceTagger(A + 1, vocab_size=A + 3, embedding_dim=args.embedding_dim,
                                   cell=cell, hidden_size=args.hidden, bidirectional=False,
                                   rng=args.seed)

            def report(trainer, rec, model=model, cell=cell, xt=xt, yt=yt):
                if args.eval_every and rec["step"] % args.eval_every == 0:
                    exact = tasks.sequence_accuracy(model.predict(xt), yt)
                    print(f"  {cell} step {rec['step']:6d}: train loss {rec['loss']:.4f}, "
                          f"held-out exact {exact:.3f}", flush=True)

            summary = fit(model, data, args, on_step=report)
            pred = model.predict(xt)
            exact = tasks.sequence_accuracy(pred, yt)
            per_symbol = float((pred[:, -K:] == yt[:, -K:]).mean())
            loss = summary["history"][-1]["loss"] if summary["history"] else float("nan")
            rows.append([cell, delay, summary["step"], f"{summary['seconds']:.0f}",
                         f"{loss:.4f}", f"{baseline:.4f}", f"{per_symbol:.3f}", f"{exact:.3f}"])
            print(f"{cell}, delay {delay}: exact-sequence accuracy {exact:.3f}, recalled "
                  f"symbols {per_symbol:.3f} ({summary['step']} steps, "
                  f"{summary['seconds']:.0f} s; {summary['stopped']})")
            print("  " + show(xt[0], yt[0], pred[0], K), flush=True)
    print(f"\nheld-out results ({args.test_size} sequences; chance per symbol {1 / A:.3f})")
    print_table(["cell", "delay", "steps", "seconds", "train loss", "baseline",
                 "symbol acc", "exact-seq acc"], rows)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
