"""Where attention matters: exact-match accuracy of encoder-decoders without attention, with
additive and with dot attention, at the same budget (steps, batch, hidden size, seed).

Tasks (``--task``):

* ``noisy-dates``: a date written in one of 14 formats inside a sentence of 40-120
  characters with distractor numbers ("Order #5521 at 14:30, see room 12 dated 3rd of May
  1979, case 1987."), to be written as 1979-05-03; held-out dates never seen in training.
* ``reverse`` / ``copy``: a random string of 50-100 symbols (of 10), to be written
  backwards / as it is.

    python examples/attention_compare.py --task noisy-dates
    python examples/attention_compare.py --task reverse --hidden 64 --attention-size 32
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import add_training_args, fit, limit_blas_threads, print_table

from rnnkit import tasks
from rnnkit.models import Seq2Seq
from rnnkit.models.teacher_forcing import TeacherForcing
from rnnkit.train import ListData


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", default="noisy-dates", choices=["noisy-dates", "reverse", "copy"])
    p.add_argument("--attention", nargs="+", default=["none", "additive", "dot"],
                   choices=["none", "additive", "general", "dot"], help="models to compare")
    p.add_argument("--cell", default="lstm", choices=["rnn", "gru", "lstm"])
    p.add_argument("--embedding-dim", type=int, default=32, help="embedding size")
    p.add_argument("--attention-size", type=int, default=None,
                   help="A, the additive score's size (default: hidden)")
    p.add_argument("--bidirectional", action="store_true", help="bidirectional encoder")
    p.add_argument("--input-feeding", action="store_true", help="Luong's input feeding")
    p.add_argument("--teacher-forcing", default="1.0",
                   help="ratio or schedule, e.g. 0.75 or inverse_sigmoid:k=500")
    p.add_argument("--min-len", type=int, default=None,
                   help="shortest source (default 40 characters / 50 symbols)")
    p.add_argument("--max-len", type=int, default=None,
                   help="longest source (default 120 characters / 100 symbols)")
    p.add_argument("--symbols", type=int, default=10, help="copy/reverse: distinct symbols")
    p.add_argument("--train-size", type=int, default=100000, help="training pairs")
    p.add_argument("--test-size", type=int, default=1000, help="held-out pairs scored")
    p.add_argument("--plot", default=None, metavar="PATH.png",
                   help="draw the attention map of the first held-out example (with several "
                        "kinds of attention, the kind is added to the name)")
    p.add_argument("--eval-every", type=int, default=500,
                   help="print held-out exact match on 200 pairs every N steps (0: never)")
    add_training_args(p, steps=2500, lr=0.003, batch_size=32, hidden=128, time_limit=300)
    return p.parse_args(argv)


def make_task(args, rng):
    """(train pairs, test pairs) of id arrays, vocabulary sizes, decode length, show()
    for sources and targets, the token of each id (sources, targets)."""
    if args.task == "noisy-dates":
        lo, hi = args.min_len or 40, args.max_len or 120
        train_dates, test_dates = tasks.split_dates(tasks.date_range(), 0.1, rng)
        src_v, tgt_v = tasks.noisy_date_vocabs()

        def encode(pairs):
            return [(src_v.encode(s), tgt_v.encode(t)) for s, t in pairs]

        train = encode(tasks.noisy_date_pairs(train_dates, args.train_size, None, lo, hi, rng))
        test = encode(tasks.noisy_date_pairs(test_dates, args.test_size, None, lo, hi, rng))
        labels = (src_v.tokens, tgt_v.tokens)
        return train, test, (len(src_v), len(tgt_v), 1, 2), 12, src_v.decode, tgt_v.decode, labels
    lo, hi = args.min_len or 50, args.max_len or 100
    reverse = args.task == "reverse"
    train = tasks.copy_pairs(args.train_size, lo, hi, args.symbols, reverse, rng)
    test = tasks.copy_pairs(args.test_size, lo, hi, args.symbols, reverse, rng)

    def show(ids):
        return "".join(chr(ord("a") + int(i) - 3) if i >= 3 else "?" for i in ids)

    V = args.symbols + 3
    tokens = ["<pad>", "<bos>", "<eos>", *(chr(ord("a") + i) for i in range(args.symbols))]
    return train, test, (V, V, tasks.PAIR_BOS, tasks.PAIR_EOS), hi + 2, show, show, (tokens,
                                                                                     tokens)


def scores(out, test):
    """Exact match and token accuracy (position by position over the target; missing or
    extra tokens count as wrong)."""
    exact = np.mean([list(o) == t.tolist() for o, (_, t) in zip(out, test, strict=True)])
    right = sum(sum(a == b for a, b in zip(o, t.tolist(), strict=False)) for o, (_, t)
                in zip(out, test, strict=True))
    total = sum(max(len(o), len(t)) for o, (_, t) in zip(out, test, strict=True))
    return float(exact), right / total


def plot_map(model, src, labels, max_len, args, att):
    """The attention map of one held-out source, written to --plot."""
    path = Path(args.plot)
    if len([a for a in args.attention if a != "none"]) > 1:
        path = path.with_name(f"{path.stem}_{att}{path.suffix}")
    title = f"{args.task}, {att} attention: held-out example 0"
    _, _, fig = model.plot_attention(src, *labels, path=path, max_len=max_len, title=title)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"  attention map written to {path}")


def main(argv=None):
    args = parse_args(argv)
    limit_blas_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    train, test, (V_src, V_tgt, bos, eos), max_len, show_src, show_tgt, labels = make_task(
        args, rng)
    tf = TeacherForcing.parse(args.teacher_forcing)
    src_lens = [len(s) for s, _ in train]
    print(f"{args.task}: {len(train)} training pairs, {len(test)} held-out, sources of "
          f"{min(src_lens)}-{max(src_lens)} tokens; {'bi' if args.bidirectional else 'uni'}"
          f"directional {args.cell} encoder, hidden {args.hidden}, embedding "
          f"{args.embedding_dim}, batch {args.batch_size}, Adam lr {args.lr} (cosine decay), "
          f"clip {args.clip}, {args.steps} steps, time limit {args.time_limit:g} s, seed "
          f"{args.seed}; input feeding {args.input_feeding}, teacher forcing "
          f"{args.teacher_forcing}")
    s0, t0 = test[0]
    print(f"  example: {show_src(s0)!r} -> {show_tgt(t0)!r}")
    probe = test[:200]
    rows, started = [], time.perf_counter()
    for att in args.attention:
        attention = None if att == "none" else att
        model = Seq2Seq(V_src, V_tgt, bos_id=bos, eos_id=eos, pad_id=0,
                        embedding_dim=args.embedding_dim, cell=args.cell,
                        hidden_size=args.hidden, bidirectional=args.bidirectional,
                        attention=attention, input_feeding=args.input_feeding and bool(attention),
                        attention_size=args.attention_size if att == "additive" else None,
                        teacher_forcing=tf, rng=args.seed)

        def collate(batch, model=model):
            return model.make_batch([s for s, _ in batch], [t for _, t in batch])

        def report(trainer, rec, model=model, att=att):
            if args.eval_every and rec["step"] % args.eval_every == 0:
                exact, _ = scores(model.decode([s for s, _ in probe], max_len), probe)
                print(f"  {att} step {rec['step']:5d}: train loss {rec['loss']:.4f}, held-out "
                      f"exact {exact:.3f} (200 pairs)", flush=True)

        summary = fit(model, ListData(train, collate, args.batch_size, seed=args.seed), args,
                      on_step=report)
        t1 = time.perf_counter()
        out = model.decode([s for s, _ in test], max_len)
        exact, tok = scores(out, test)
        loss = np.mean([h["loss"] for h in summary["history"][-100:]])
        print(f"{att}: exact match {exact:.3f}, token accuracy {tok:.3f} ({summary['step']} "
              f"steps, {summary['seconds']:.0f} s, decoding {time.perf_counter() - t1:.0f} s; "
              f"{summary['stopped']})")
        print(f"  wanted {show_tgt(t0)!r}\n  output {show_tgt(out[0])!r}", flush=True)
        if args.plot and attention:
            plot_map(model, s0, labels, max_len, args, att)
        rows.append([att, f"{model.num_parameters():,}", summary["step"],
                     f"{summary['seconds']:.0f}", f"{loss:.4f}", f"{tok:.3f}", f"{exact:.3f}"])
    print(f"\nheld-out results ({len(test)} pairs; train loss: mean of the last 100 steps)")
    print_table(["attention", "parameters", "steps", "seconds", "train loss", "token acc",
                 "exact match"], rows)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
