"""Tagging that needs the future: bidirectional vs unidirectional ``SequenceTagger``.

Every token is tagged with the symbol that comes ``--ahead`` steps after it. The tokens are
independent, so a tagger that reads only the past cannot beat chance (1 / symbols) at any
tagged step, while a bidirectional tagger reads the answer from its reverse direction:
the seeds' "He said Teddy Roosevelt ..." / "He said teddy bears ..." argument, measured.
Token accuracy is scored on the steps that have a token ``--ahead`` steps later.

    python examples/future_tagging.py                         # RNN, GRU, LSTM, both directions
    python examples/future_tagging.py --cells rnn --ahead 1 5 --steps 1000
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
    p.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"],
                   choices=["rnn", "gru", "lstm"], help="recurrent cells to compare")
    p.add_argument("--ahead", nargs="+", type=int, default=[5],
                   help="how many steps ahead the tag lies")
    p.add_argument("--length", type=int, default=40, help="T, tokens per sequence")
    p.add_argument("--symbols", type=int, default=10, help="distinct tokens")
    p.add_argument("--embedding-dim", type=int, default=16, help="input embedding size")
    p.add_argument("--train-size", type=int, default=20000, help="training sequences")
    p.add_argument("--test-size", type=int, default=2000, help="held-out test sequences")
    add_training_args(p, steps=2000, lr=0.005, batch_size=32, hidden=64, time_limit=120)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    limit_blas_threads(args.threads)
    V, T = args.symbols, args.length
    print(f"future tagging: T={T}, {V} symbols, ahead {args.ahead}, cells {args.cells}, "
          f"hidden {args.hidden} per direction, batch {args.batch_size}, Adam lr {args.lr} "
          f"(cosine decay), clip {args.clip}, {args.steps} steps, time limit "
          f"{args.time_limit:g} s, seed {args.seed}")
    print(f"chance at a tagged step: {1 / V:.3f}\n")
    rows = []
    started = time.perf_counter()
    for ahead in args.ahead:
        rng = np.random.default_rng([args.seed, ahead])
        x, y = tasks.future_tagging(args.train_size, T, ahead, V, rng=rng)
        xt, yt = tasks.future_tagging(args.test_size, T, ahead, V, rng=rng)
        data = ArrayData({"x": x, "y": y}, args.batch_size, seed=args.seed)
        tagged = yt > 0
        for cell in args.cells:
            for bidirectional in (True, False):
                model = SequenceTagger(V + 1, vocab_size=V + 1, embedding_dim=args.embedding_dim,
                                       cell=cell, hidden_size=args.hidden,
                                       bidirectional=bidirectional, rng=args.seed)
                summary = fit(model, data, args)
                pred = model.predict(xt)
                acc = float((pred[tagged] == yt[tagged]).mean())
                acc_all = float((pred == yt).mean())
                name = ("bi" if bidirectional else "uni") + f"-{cell}"
                rows.append([name, ahead, summary["step"], f"{summary['seconds']:.0f}",
                             f"{acc:.4f}", f"{acc_all:.4f}"])
                print(f"{name:9s} ahead {ahead}: token accuracy {acc:.4f} at tagged steps, "
                      f"{acc_all:.4f} at all steps ({summary['step']} steps, "
                      f"{summary['seconds']:.0f} s)", flush=True)
    print(f"\nheld-out token accuracy ({args.test_size} sequences of {T}; chance "
          f"{1 / V:.3f} at tagged steps)")
    print_table(["tagger", "ahead", "steps", "seconds", "tagged-step acc", "all-step acc"], rows)
    print("\n(all-step accuracy also counts the last `ahead` steps, whose tag is 'none'; a "
          "unidirectional tagger can learn those by counting)")
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
