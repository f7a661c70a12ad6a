"""Sequence to sequence: human-written dates -> ISO 8601, character by character.

An encoder-decoder (``Seq2Seq``, no attention: the encoder's final state is all the
decoder gets) learns to read dates written in 14 formats ("3rd of May 1979",
"Thursday, May 3, 1979", "05/03/79", "03.05.1979", ...; weekdays computed with
``datetime``) and write them as "1979-05-03". The dates 1950-2049 are split at random into
training and held-out dates, and the score is exact-match accuracy on held-out dates,
which the model has never seen in any format.

    python examples/dates_seq2seq.py                        # all formats (about 2 min)
    python examples/dates_seq2seq.py --formats "mm/dd/yy" "dd.mm.yyyy" --steps 800
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
from _common import add_training_args, fit, limit_blas_threads, print_table

from rnnkit import tasks
from rnnkit.models import Seq2Seq
from rnnkit.train import ListData


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--formats", nargs="+", default=list(tasks.DATE_FORMATS),
                   choices=list(tasks.DATE_FORMATS), metavar="FORMAT",
                   help="source formats, from: " + "; ".join(tasks.DATE_FORMATS))
    p.add_argument("--cell", default="lstm", choices=["rnn", "gru", "lstm"],
                   help="recurrent cell of the encoder and the decoder")
    p.add_argument("--embedding-dim", type=int, default=32, help="character embedding size")
    p.add_argument("--test-fraction", type=float, default=0.1,
                   help="fraction of the dates 1950-2049 held out from training")
    p.add_argument("--train-size", type=int, default=100000,
                   help="training pairs (training dates drawn with replacement)")
    p.add_argument("--test-dates", type=int, default=500,
                   help="held-out dates scored, each written in every format")
    p.add_argument("--beam", type=int, default=1, help="beam width of decoding (1: greedy)")
    p.add_argument("--eval-every", type=int, default=500,
                   help="print held-out exact match on 200 pairs every N steps (0: never)")
    add_training_args(p, steps=3000, lr=0.003, batch_size=64, hidden=128, time_limit=420)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    limit_blas_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    train_dates, test_dates = tasks.split_dates(tasks.date_range(), args.test_fraction, rng)
    src_v, tgt_v = tasks.date_vocabs()
    print(f"dates: {len(args.formats)} formats, {len(train_dates)} training dates, "
          f"{len(test_dates)} held-out dates (disjoint); {args.cell} encoder-decoder, hidden "
          f"{args.hidden}, embedding {args.embedding_dim}, batch {args.batch_size}, Adam lr "
          f"{args.lr} (cosine decay), clip {args.clip}, {args.steps} steps, time limit "
          f"{args.time_limit:g} s, seed {args.seed}")
    for f in args.formats:
        print(f"  {f:24s} {tasks.format_date(test_dates[0], f)}")
    model = Seq2Seq(len(src_v), len(tgt_v), bos_id=tgt_v.index["<bos>"],
                    eos_id=tgt_v.index["<eos>"], pad_id=0, embedding_dim=args.embedding_dim,
                    cell=args.cell, hidden_size=args.hidden, rng=args.seed)
    pairs = tasks.date_pairs(train_dates, args.train_size, args.formats, rng)
    items = [(src_v.encode(s), tgt_v.encode(t)) for s, t in pairs]

    def collate(batch):
        return model.make_batch([s for s, _ in batch], [t for _, t in batch])

    def translate(sources):
        out = model.decode([src_v.encode(s) for s in sources], max_len=12, beam=args.beam)
        return [tgt_v.decode(o) for o in out]

    probe = tasks.date_pairs(test_dates, 200, args.formats, rng)

    def report(trainer, rec):
        if args.eval_every and rec["step"] % args.eval_every == 0:
            got = translate([s for s, _ in probe])
            exact = np.mean([g == t for g, (_, t) in zip(got, probe, strict=True)])
            print(f"  step {rec['step']:5d}: train loss {rec['loss']:.4f}, held-out exact "
                  f"match {exact:.3f} (200 pairs)", flush=True)

    started = time.perf_counter()
    summary = fit(model, ListData(items, collate, args.batch_size, seed=args.seed), args,
                  on_step=report)
    print(f"trained {summary['step']} steps in {summary['seconds']:.0f} s ({summary['stopped']})")

    # every scored held-out date, written in every format
    chosen = rng.choice(len(test_dates), size=min(args.test_dates, len(test_dates)),
                        replace=False)
    scored = [tasks.format_date(test_dates[i], f) for i in chosen for f in args.formats]
    wanted = [test_dates[i].isoformat() for i in chosen for _ in args.formats]
    t0 = time.perf_counter()
    got = translate(scored)
    decode_s = time.perf_counter() - t0
    by_format = defaultdict(list)
    for k, (g, w) in enumerate(zip(got, wanted, strict=True)):
        by_format[args.formats[k % len(args.formats)]].append(g == w)
    rows = [[f, tasks.format_date(test_dates[chosen[0]], f), f"{np.mean(ok):.3f}"]
            for f, ok in by_format.items()]
    exact = float(np.mean([g == w for g, w in zip(got, wanted, strict=True)]))
    print(f"\nheld-out exact match: {exact:.4f} on {len(scored)} pairs ({len(chosen)} unseen "
          f"dates x {len(args.formats)} formats; decoding took {decode_s:.0f} s)")
    print_table(["format", "example", "exact match"], rows)
    wrong = [(s, w, g) for s, w, g in zip(scored, wanted, got, strict=True) if g != w]
    print(f"\n{len(wrong)} errors" + (", for example:" if wrong else ""))
    for s, w, g in wrong[:8]:
        print(f"  {s!r:32s} -> {g!r} (wanted {w!r})")
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
