"""Parity of variable-length bit strings: many-to-one classification with masks.

Bit strings of random length (lengths differ within every batch) are right-padded, and
``SequenceClassifier`` (pooling "last": the state at each string's own last bit) reads them
under a mask; the label is 1 for an odd number of ones. The label flips with every bit, so
nothing short of the whole running XOR beats chance (50%). Scored on held-out strings of
the training lengths, and, as an extra without a claim, on longer strings than any seen
in training.

    python examples/parity.py                          # GRU, LSTM and tanh RNN, lengths 1-50
    python examples/parity.py --cells gru --max-len 100 --steps 3000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import add_training_args, fit, limit_blas_threads, print_table

from rnnkit import tasks
from rnnkit.models import SequenceClassifier
from rnnkit.train import ListData


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cells", nargs="+", default=["gru", "lstm", "rnn"],
                   choices=["rnn", "gru", "lstm"], help="recurrent cells to compare")
    p.add_argument("--min-len", type=int, default=1, help="shortest training string")
    p.add_argument("--max-len", type=int, default=50, help="longest training string")
    p.add_argument("--embedding-dim", type=int, default=8, help="bit embedding size")
    p.add_argument("--train-size", type=int, default=20000, help="training strings")
    p.add_argument("--test-size", type=int, default=2000, help="held-out strings per range")
    add_training_args(p, steps=2000, lr=0.005, batch_size=32, hidden=64, time_limit=150)
    return p.parse_args(argv)


def accuracy(model, items) -> float:
    batch = tasks.collate_classification(items)
    return float((model.predict(batch["x"], batch["mask"]) == batch["y"]).mean())


def main(argv=None):
    args = parse_args(argv)
    limit_blas_threads(args.threads)
    lo, hi = args.min_len, args.max_len
    rng = np.random.default_rng(args.seed)
    train = tasks.parity(args.train_size, lo, hi, rng)
    tests = {f"{lo}-{hi}": tasks.parity(args.test_size, lo, hi, rng),
             f"{hi + 1}-{2 * hi}": tasks.parity(args.test_size, hi + 1, 2 * hi, rng),
             f"{2 * hi + 1}-{4 * hi}": tasks.parity(args.test_size, 2 * hi + 1, 4 * hi, rng)}
    data = ListData(train, tasks.collate_classification, args.batch_size, seed=args.seed)
    lengths = data.batch(0, 0)["mask"].sum(axis=1)
    print(f"parity: training strings of {lo}-{hi} bits (first batch: lengths "
          f"{lengths.min()}-{lengths.max()}, {len(set(lengths.tolist()))} distinct); cells "
          f"{args.cells}, hidden {args.hidden}, batch {args.batch_size}, Adam lr {args.lr} "
          f"(cosine decay), clip {args.clip}, {args.steps} steps, time limit "
          f"{args.time_limit:g} s, seed {args.seed}\n")
    rows = []
    started = time.perf_counter()
    for cell in args.cells:
        model = SequenceClassifier(2, vocab_size=3, embedding_dim=args.embedding_dim, cell=cell,
                                   hidden_size=args.hidden, rng=args.seed)
        summary = fit(model, data, args)
        accs = {name: accuracy(model, items) for name, items in tests.items()}
        rows.append([cell, summary["step"], f"{summary['seconds']:.0f}",
                     *[f"{a:.4f}" for a in accs.values()]])
        print(f"{cell}: held-out accuracy " + ", ".join(
            f"{a:.4f} on {name} bits" for name, a in accs.items())
            + f" ({summary['step']} steps, {summary['seconds']:.0f} s)", flush=True)
    print(f"\nheld-out accuracy ({args.test_size} strings per length range; chance 0.5; "
          f"trained on {lo}-{hi} bits)")
    print_table(["cell", "steps", "seconds", *[f"{n} bits" for n in tests]], rows)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
