"""Continue training an rnnkit checkpoint in PyTorch, then come back to rnnkit to sample.

Loads a character model that ``rnnkit train`` saved, turns it into a ``torch.nn.Module``
(``rnnkit.interop.to_torch``), trains it further with PyTorch on the same text (the run's
own vocabulary; the built-in dinosaur names when the run was trained on them), brings the
trained module back (``rnnkit.interop.from_torch``) and writes an rnnkit checkpoint with the
run's metadata, which ``rnnkit sample`` (and ``rnnkit export``) read as any other:

    rnnkit train --steps 500 --out runs/dinos
    python examples/torch_continue.py runs/dinos/best.npz -o runs/dinos/torch.npz --steps 300
    rnnkit sample runs/dinos/torch.npz --num 5

``--device cuda`` runs the PyTorch part on a GPU (the module and the batches are moved
there; the rest is unchanged). For several GPUs, wrap the module in
``torch.nn.parallel.DistributedDataParallel`` inside a ``torchrun`` launch, give each process
its own share of the batches, and call ``from_torch(ddp.module)`` on rank 0 at the end: the
module that DDP wraps is the one ``to_torch`` made.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rnnkit import checkpoint
from rnnkit.data import Vocab, dinos_text, read_text
from rnnkit.interop import from_torch, to_torch
from rnnkit.models import load_model


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="an rnnkit checkpoint of a character model")
    p.add_argument("-o", "--out", required=True, help="the rnnkit checkpoint to write")
    p.add_argument("--text", default=None, help="the text to train on (default: the run's "
                   "own text: the built-in dinosaur names, or the file it was trained on)")
    p.add_argument("--steps", type=int, default=200, help="PyTorch optimizer steps")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per batch")
    p.add_argument("--seq-len", type=int, default=50, help="characters per sequence")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    p.add_argument("--seed", type=int, default=0, help="seed of the batches")
    return p.parse_args(argv)


def batches(ids: np.ndarray, args, rng: np.random.Generator):
    """Random windows of the text: x, y (B, T) int64 tensors on the device."""
    starts = rng.integers(0, len(ids) - args.seq_len - 1, args.batch_size)
    rows = np.stack([ids[s : s + args.seq_len + 1] for s in starts])
    t = torch.from_numpy(rows).to(args.device)
    return t[:, :-1], t[:, 1:]


def main(argv=None):
    args = parse_args(argv)
    model, meta, _ = load_model(args.checkpoint)
    vocab = Vocab.from_json(meta["vocab"])
    source = meta.get("source", "")
    text = (read_text(args.text) if args.text else
            dinos_text().lower() if source.startswith("builtin:") else read_text(source))
    ids = vocab.encode(text)
    module = to_torch(model).to(args.device).train()
    opt = torch.optim.Adam(module.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = batches(ids, args, rng)
        opt.zero_grad(set_to_none=True)
        logits, _ = module(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 5.0)
        opt.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: loss {loss.item():.4f}", flush=True)
    back = from_torch(module.cpu())
    keep = {k: v for k, v in meta.items() if k not in ("model", "config", "train_state")}
    back.save(args.out, {**keep, "continued_in": f"PyTorch {torch.__version__}, "
                                                 f"{args.steps} steps"})
    print(f"{args.steps} steps in PyTorch on {args.device} in "
          f"{time.perf_counter() - started:.1f} s; wrote {args.out}")
    checkpoint.load(args.out)  # the file reads back


if __name__ == "__main__":
    main()
