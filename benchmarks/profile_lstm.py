"""Where an LSTM training step spends its time, in rnnkit and in PyTorch, side by side.

Times the training step of ``bench.py`` (``LanguageModel.train_batch`` of an LSTM on
one-hot inputs, per-step linear output layer, softmax cross-entropy over 65 symbols,
forward + backward, then ``Adam.step``) and splits it into parts:

* rnnkit (with the accelerated kernels if numba is installed, and on the numpy engine):
  the per-step recurrent products (forward ``h @ W_h``, backward ``da @ W_h.T``), the
  element-wise work of the steps (the compiled kernels, or the numpy lines of
  :mod:`rnnkit.cells`), the weight gradients of all steps, the rest of the sequence loop
  (one-hot look-ups, masks, loop), the model outside the recurrent layer (output layer,
  loss) and Adam. The products are timed through a stand-in for the ``np`` module that
  :mod:`rnnkit.cells` and :mod:`rnnkit.accelerated.steps` see (the engine is not changed).
* PyTorch: ``torch.profiler``'s self CPU time of its operators (oneDNN's LSTM forward and
  backward, the matrix products of the output layer, the loss, Adam).

Then the per-step products alone, in numpy (OpenBLAS) and in PyTorch (MKL), at the same
shapes: the GEMM throughput each library reaches there.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_lstm.py
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench first: it limits the thread pools' spinning before numpy and torch load them
import bench  # noqa: E402  (also the benchmark's model, loss and machine description)
import numpy as np  # noqa: E402

FWD = "recurrent products, forward (h @ W_h, per step)"
BWD = "recurrent products, backward (da @ W_h.T, per step)"
ROLES = {"lstm_forward": FWD, "lstm_backward": BWD}


class _TimedNumpy:
    """Stands in for ``numpy`` in the step modules: ``matmul`` is timed by the step function
    that calls it, everything else is numpy's."""

    def __init__(self, totals: dict):
        self._totals = totals

    def __getattr__(self, name):
        return getattr(np, name)

    def matmul(self, *args, **kwargs):
        role = ROLES.get(sys._getframe(1).f_code.co_name, "other products")
        t0 = time.perf_counter()
        out = np.matmul(*args, **kwargs)
        self._totals[role] += time.perf_counter() - t0
        return out


def _timed(fn, totals: dict, key: str):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        totals[key] += time.perf_counter() - t0
        return out

    return wrapper


def profile_rnnkit(B: int, T: int, H: int, layers: int, reps: int, seed: int) -> dict:
    """Seconds per training step by part (the repetition with the median total)."""
    from rnnkit import cells, sequence
    from rnnkit.accelerated import steps

    model, batch = bench.make_model(bench.TrainConfig("lstm", layers, B, T, H), seed)
    train_step = bench.rnnkit_train_step(model, batch)
    totals: dict = defaultdict(float)
    patches = [(cells, "np", _TimedNumpy(totals)), (steps, "np", _TimedNumpy(totals))]
    for mod in (cells, steps):
        for name in ("lstm_forward", "lstm_backward"):
            patches.append((mod, name, _timed(getattr(mod, name), totals, "step " + name)))
    patches += [(sequence, "weight_gradients",
                 _timed(sequence.weight_gradients, totals, "weight gradients")),
                (model.rnn, "forward", _timed(model.rnn.forward, totals, "layer forward")),
                (model.rnn, "backward", _timed(model.rnn.backward, totals, "layer backward")),
                (train_step.opt, "step", _timed(train_step.opt.step, totals, "adam"))]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    rows = []
    try:
        for obj, name, new in patches:
            setattr(obj, name, new)
        for _ in range(2):
            train_step()
        gc.collect()
        gc.disable()
        for _ in range(reps):
            totals.clear()
            t0 = time.perf_counter()
            train_step()
            totals["step"] = time.perf_counter() - t0
            rows.append(dict(totals))
    finally:
        gc.enable()
        for obj, name, old in saved:
            if obj is model.rnn or obj is train_step.opt:
                delattr(obj, name)  # back to the method
            else:
                setattr(obj, name, old)
    rows.sort(key=lambda r: r["step"])
    return rows[len(rows) // 2]


def rnnkit_parts(t: dict) -> list:
    """(part, seconds) of a profile_rnnkit result; the parts add up to the step."""
    prod = t[FWD] + t[BWD]
    steps_ = t["step lstm_forward"] + t["step lstm_backward"]
    layer = t["layer forward"] + t["layer backward"]
    return [
        (FWD, t[FWD]),
        (BWD, t[BWD]),
        ("element-wise work of the steps", steps_ - prod),
        ("weight gradients of all steps (dW_x, dW_h, db)", t["weight gradients"]),
        ("rest of the layer (one-hot look-ups, loop, checks)",
         layer - steps_ - t["weight gradients"]),
        ("model outside the layer (output layer, loss)", t["step"] - layer - t["adam"]),
        ("Adam", t["adam"]),
    ]


def profile_torch(B: int, T: int, H: int, layers: int, reps: int, seed: int) -> list:
    """(operator, seconds per step) by self CPU time in torch.profiler, largest first."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    model, batch = bench.make_model(bench.TrainConfig("lstm", layers, B, T, H), seed)
    step, _ = bench.torch_train_step(model, batch, torch, "fused")
    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            step()
    rows = [(e.key, e.self_cpu_time_total / 1e6 / reps) for e in prof.key_averages()]
    rows.sort(key=lambda r: -r[1])
    return rows


def time_products(B: int, H: int, reps: int):
    """Median seconds of the per-step products alone, numpy and torch:
    [(label, shape, numpy s, torch s)]."""
    import torch

    rng = np.random.default_rng(0)
    G = 4 * H
    h = rng.standard_normal((B, H)).astype(np.float32)
    W = rng.standard_normal((H, G)).astype(np.float32)
    WF = np.asfortranarray(W)  # as the backward passes it: W.T is then C-contiguous
    d = rng.standard_normal((B, G)).astype(np.float32)
    out, dh = np.empty((B, G), np.float32), np.empty((B, H), np.float32)
    th, tW, td = torch.from_numpy(h), torch.from_numpy(W), torch.from_numpy(d)
    tout, tdh = torch.empty(B, G), torch.empty(B, H)
    inner = 200
    cases = [("h @ W_h", f"({B}, {H}) @ ({H}, {G})",
              lambda: np.matmul(h, W, out=out), lambda: torch.mm(th, tW, out=tout)),
             ("da @ W_h.T", f"({B}, {G}) @ ({G}, {H})",
              lambda: np.matmul(d, WF.T, out=dh), lambda: torch.mm(td, tW.T, out=tdh))]
    result = []
    for label, shape, f_np, f_t in cases:
        def run_np(f=f_np):
            for _ in range(inner):
                f()

        def run_t(f=f_t):
            for _ in range(inner):
                f()

        times = bench.time_interleaved([run_np, run_t], reps, 2)
        result.append((label, shape, statistics.median(times[0]) / inner,
                       statistics.median(times[1]) / inner))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Profile the LSTM training step of bench.py in rnnkit (recurrent products, "
        "element-wise work, weight gradients, ...) and in PyTorch (its operators), and time "
        "the per-step products alone in numpy and PyTorch.")
    ap.add_argument("--batch", type=int, default=32, help="B, sequences per batch (default 32)")
    ap.add_argument("--steps", type=int, default=100, help="T, time steps (default 100)")
    ap.add_argument("--hidden", type=int, default=256, help="H, hidden units (default 256)")
    ap.add_argument("--layers", type=int, default=1, help="stacked LSTM layers (default 1)")
    ap.add_argument("--reps", type=int, default=11,
                    help="timed repetitions of each step and product (default 11)")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for numpy's BLAS and PyTorch (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")
    args = ap.parse_args(argv)
    for name in ("batch", "steps", "hidden", "layers", "reps", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    bench.set_numpy_threads(args.threads)
    blas = bench.numpy_blas_info()
    import torch

    import rnnkit.accelerated

    torch.set_num_threads(args.threads)
    B, T, H, L = args.batch, args.steps, args.hidden, args.layers
    print("measured on:", bench.machine_summary(blas, args.threads))
    print(f"LSTM training step, (B, T, H) = ({B}, {T}, {H}), {L} layer(s), {args.threads} "
          f"threads; the repetition with the median total, ms")
    engines = [("numpy engine", False)]
    if rnnkit.accelerated.available():
        engines.insert(0, ("accelerated", True))
    columns = []
    for name, flag in engines:
        previous = rnnkit.accelerated.set_enabled(flag)
        try:
            columns.append((name, rnnkit_parts(profile_rnnkit(B, T, H, L, args.reps,
                                                               args.seed))))
        finally:
            rnnkit.accelerated.set_enabled(previous)
    print(f"{'rnnkit part':<54}" + "".join(f"{n:>16}" for n, _ in columns))
    for k, (part, _) in enumerate(columns[0][1]):
        print(f"{part:<54}" + "".join(f"{c[k][1] * 1e3:>16.2f}" for _, c in columns))
    print(f"{'total':<54}" + "".join(f"{sum(s for _, s in c) * 1e3:>16.2f}"
                                     for _, c in columns))
    print()
    rows = profile_torch(B, T, H, L, args.reps, args.seed)
    total = sum(s for _, s in rows)
    print(f"{'PyTorch operator (self CPU time)':<54}{'ms':>16}")
    for key, s in rows[:8]:
        print(f"{key:<54}{s * 1e3:>16.2f}")
    print(f"{'others':<54}{sum(s for _, s in rows[8:]) * 1e3:>16.2f}")
    print(f"{'total':<54}{total * 1e3:>16.2f}")
    print()
    print(f"per-step products alone (median of {args.reps} x 200 calls)")
    print(f"{'product':<14}{'shape':>26}{'numpy us':>10}{'GFLOP/s':>9}{'torch us':>10}"
          f"{'GFLOP/s':>9}")
    flop = 2.0 * B * H * 4 * H
    for label, shape, t_np, t_t in time_products(B, H, args.reps):
        print(f"{label:<14}{shape:>26}{t_np * 1e6:>10.1f}{flop / t_np / 1e9:>9.1f}"
              f"{t_t * 1e6:>10.1f}{flop / t_t / 1e9:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
