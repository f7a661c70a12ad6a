"""rnnkit vs PyTorch on tiny Shakespeare: the same model, the same data, the same clock.

Trains a character-level 2-layer LSTM with rnnkit and the equivalent PyTorch model (the
same initial weights, the same batches in the same order, the same optimizer settings,
truncated BPTT with carried state) for the same wall-clock budget, validating both on the
last 10% of the text, and prints both curves' end points.

The two runs go side by side, each in its own process with one thread, so that they get
the same share of this machine at the same time::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/shakespeare.py --minutes 30

``--only rnnkit`` (or ``torch``) runs one of them in this process, with ``--threads``.
Results go to ``benchmarks/results/shakespeare_<framework>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_TEXT = HERE.parent.parent / "shared" / "data" / "tinyshakespeare.txt"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--text", default=str(DEFAULT_TEXT), help="UTF-8 corpus (default: "
                   "../shared/data/tinyshakespeare.txt)")
    p.add_argument("--minutes", type=float, default=30.0, help="training budget of each run")
    p.add_argument("--hidden", type=int, default=256, help="LSTM units per layer")
    p.add_argument("--layers", type=int, default=2, help="stacked LSTM layers")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout between layers and "
                   "before the output layer")
    p.add_argument("--batch-size", type=int, default=32, help="streams per batch")
    p.add_argument("--seq-len", type=int, default=100, help="truncated BPTT length")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    p.add_argument("--clip", type=float, default=5.0, help="global gradient-norm clip")
    p.add_argument("--eval-every", type=float, default=120.0,
                   help="seconds of training between validations (not counted in the budget)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and dropout")
    p.add_argument("--only", choices=["rnnkit", "torch"], help="run one framework here")
    p.add_argument("--threads", type=int, default=1, help="threads of each run (default: 1, "
                   "so that the two side-by-side runs each have one core)")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for the JSON results")
    return p.parse_args(argv)


def data(args):
    import numpy as np

    from rnnkit.data import TextStream, Vocab, read_text, split_train_val

    text = read_text(args.text)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    train, val = split_train_val(ids, 0.1)
    return (vocab, TextStream(train, args.batch_size, args.seq_len),
            TextStream(val, args.batch_size, args.seq_len), np)


def build_rnnkit(args, V):
    from rnnkit.models import LanguageModel

    return LanguageModel(V, "lstm", args.hidden, args.layers, dropout=args.dropout,
                         rng=args.seed)


def run_rnnkit(args):
    from rnnkit.optim import Adam, clip_by_global_norm

    vocab, train, val, np = data(args)
    model = build_rnnkit(args, len(vocab))
    opt = Adam(model.params, lr=args.lr)

    def evaluate():
        model.eval()
        total, n, state = 0.0, 0, None
        for x, y in val:
            stats, state = model.evaluate({"x": x, "y": y}, state)
            total += stats["loss"]
            n += stats["count"]
        model.train()
        return total / n

    def train_step(k, state):
        x, y = train.batch(k)
        stats, grads, state = model.train_batch({"x": x, "y": y}, state)
        clip_by_global_norm(grads, args.clip)
        opt.step(grads)
        return stats["loss"] / stats["count"], state

    return loop(args, train, train_step, evaluate, "rnnkit")


def run_torch(args):
    import torch

    from rnnkit.interop import to_torch

    torch.set_num_threads(args.threads)
    vocab, train, val, np = data(args)
    V = len(vocab)
    ref = build_rnnkit(args, V)  # the same initial weights as the rnnkit run

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = to_torch(ref.rnn)
            self.drop = torch.nn.Dropout(args.dropout)
            self.head = torch.nn.Linear(args.hidden, V)
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(ref.head.params["W"].T.copy()))
                self.head.bias.copy_(torch.from_numpy(ref.head.params["b"]))

        def forward(self, x, state):
            h, state = self.lstm(x, state)
            return self.head(self.drop(h)), state

    net = Net()
    torch.manual_seed(args.seed)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    eye = torch.eye(V)

    def evaluate():
        net.eval()
        total, n, state = 0.0, 0, None
        with torch.inference_mode():
            for x, y in val:
                logits, state = net(eye[torch.from_numpy(x)], state)
                total += torch.nn.functional.cross_entropy(
                    logits.reshape(-1, V), torch.from_numpy(y).reshape(-1), reduction="sum").item()
                n += y.size
        net.train()
        return total / n

    def train_step(k, state):
        x, y = train.batch(k)
        if state is not None:
            state = tuple(s.detach() for s in state)
        logits, state = net(eye[torch.from_numpy(x)], state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                                 torch.from_numpy(y).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), args.clip)
        opt.step()
        return loss.item(), state

    return loop(args, train, train_step, evaluate, "torch")


def loop(args, train, train_step, evaluate, name):
    """Train for the budget (validation time excluded), validating every eval_every s."""
    budget = args.minutes * 60.0
    trained, next_eval = 0.0, args.eval_every
    step, k, epoch, state = 0, 0, 0, None
    curve = [{"seconds": 0.0, "step": 0, "val_loss": evaluate()}]
    print(f"{name}: step 0 val {curve[0]['val_loss']:.4f}", flush=True)
    losses = []
    while trained < budget:
        t0 = time.perf_counter()
        loss, state = train_step(k, state)
        trained += time.perf_counter() - t0
        losses.append(loss)
        step += 1
        k += 1
        if k == len(train):
            k, epoch, state = 0, epoch + 1, None
        if trained >= next_eval or trained >= budget:
            next_eval += args.eval_every
            v = evaluate()
            curve.append({"seconds": round(trained, 1), "step": step, "epoch": epoch,
                          "train_loss": sum(losses) / len(losses), "val_loss": v})
            losses = []
            print(f"{name}: {trained:7.0f} s, step {step}, epoch {epoch}, val {v:.4f}",
                  flush=True)
    return {"framework": name, "steps": step, "seconds": trained,
            "steps_per_s": step / trained, "final_val_loss": curve[-1]["val_loss"],
            "best_val_loss": min(c["val_loss"] for c in curve), "curve": curve}


def machine() -> str:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
        result = (run_rnnkit if args.only == "rnnkit" else run_torch)(args)
        result["settings"] = {k: v for k, v in vars(args).items() if k not in ("out", "only")}
        result["machine"] = machine()
        path = out / f"shakespeare_{args.only}.json"
        path.write_text(json.dumps(result, indent=1))
        return 0
    if not Path(args.text).is_file():
        print(f"error: {args.text} not found (give --text)", file=sys.stderr)
        return 2
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    procs = [subprocess.Popen([sys.executable, __file__, *passthrough, "--only", fw], env=env)
             for fw in ("rnnkit", "torch")]
    codes = [p.wait() for p in procs]
    if any(codes):
        print(f"error: a run failed (exit codes {codes})", file=sys.stderr)
        return 1
    res = {fw: json.loads((out / f"shakespeare_{fw}.json").read_text())
           for fw in ("rnnkit", "torch")}
    print(f"\nmachine: {machine()}; each run: {args.threads} thread(s), side by side")
    print(f"model: {args.layers}-layer LSTM, hidden {args.hidden}, one-hot input, "
          f"dropout {args.dropout}; batch {args.batch_size} x {args.seq_len} steps; Adam "
          f"{args.lr}; clip {args.clip}; budget {args.minutes:g} min of training each\n")
    print(f"{'':8}{'steps':>8}{'steps/s':>9}{'final val':>11}{'best val':>10}"
          f"{'bits/char':>11}")
    for fw, r in res.items():
        print(f"{fw:8}{r['steps']:>8}{r['steps_per_s']:>9.2f}{r['final_val_loss']:>11.4f}"
              f"{r['best_val_loss']:>10.4f}{r['best_val_loss'] / math.log(2):>11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
