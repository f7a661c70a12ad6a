"""Where an rnnkit LSTM training step spends its time, and this machine's GEMM throughput.

Times one training step (the one of ``bench.py``: ``LanguageModel.train_batch`` of an LSTM
on one-hot inputs, per-step linear output layer, softmax cross-entropy over 65 symbols,
forward + backward, then ``Adam.step``) with rnnkit's compiled kernels (if numba is
installed; with the batch split across threads where it applies, and unsplit) and on its
numpy engine, and splits it into

* the matrix products inside ``rnnkit.cells.direction_forward/backward``, by role
  (input projection, per-step recurrent products, weight gradients, input gradient);
* the element-wise work of those two functions (everything in them that is not a matrix
  product: gate nonlinearities, cell update, gate gradients, the one-hot look-up, Python
  loop overhead; one compiled kernel per step, or some 25 numpy passes);
* the rest of the layer (argument checks, layouts);
* the model outside the layer (output layer, loss) and Adam.

The matrix products are timed by swapping the ``np`` module seen by ``rnnkit.cells`` for a
proxy whose ``matmul`` records its wall time (the engine itself is not modified). Then
plain float32 products of the same shapes are timed alone, in numpy and in PyTorch, to
give the GEMM throughput (GFLOP/s) this machine reaches at those shapes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_lstm.py
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench first: it limits the thread pools' spinning before numpy and torch load them
import bench  # noqa: E402  (also the benchmark's model, loss and machine description)
import numpy as np  # noqa: E402

PROJ = "input projection W_x^T @ x^T (all steps)"
FWD = "recurrent W_h^T @ h^T (per step, forward)"
BWD = "recurrent W_h @ dg^T (per step, backward)"
DWH = "weight gradient dW_h = h.T @ dg"
DWX = "weight gradient dW_x = x.T @ dg"
DX = "input gradient dx = dg @ W_x.T"
FORWARD_ROLES = (PROJ, FWD)


class _TimedNumpy:
    """Stands in for ``numpy`` inside rnnkit.cells: ``matmul`` is timed, the rest forwarded.

    The engine's products, told apart by the function and the shapes (feature-major:
    states (H, B), gates (G*H, B); the step's N = T*B rows for the weight gradients)."""

    def __init__(self, totals: dict, counts: dict, D: int, H: int, N: int):
        self._totals, self._counts = totals, counts
        self._D, self._H, self._N = D, H, N

    def __getattr__(self, name):
        return getattr(np, name)

    def matmul(self, a, b, *args, **kwargs):
        caller = sys._getframe(1).f_code.co_name
        if caller == "direction_forward":
            role = FWD if (a.ndim == 2 and b.ndim == 2 and a.shape[1] == self._H
                           and a.shape[0] != self._N) else PROJ
        elif a.shape[:2] == (self._H, self._N):
            role = DWH
        elif a.shape[:2] == (self._D, self._N):
            role = DWX
        elif a.shape[0] == self._N:
            role = DX
        else:  # W_h (H, G*H) @ dg (G*H, B)
            role = BWD
        t0 = time.perf_counter()
        out = np.matmul(a, b, *args, **kwargs)
        self._totals[role] += time.perf_counter() - t0
        self._counts[role] += 1
        return out


def _timed(fn, totals: dict, key: str):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        totals[key] += time.perf_counter() - t0
        return out

    return wrapper


def profile_step(B: int, T: int, H: int, layers: int, reps: int, seed: int):
    """Median breakdown (seconds per training step) of the rnnkit LSTM step of
    ``bench.py`` (``LanguageModel.train_batch`` and ``Adam.step``), on the engine
    rnnkit.compiled selects now."""
    import rnnkit.cells as cells
    import rnnkit.recurrent as recurrent

    model, batch = bench.make_model(bench.TrainConfig("lstm", layers, B, T, H), seed)
    train_step = bench.rnnkit_train_step(model, batch)
    opt = train_step.opt
    totals: dict = defaultdict(float)
    counts: dict = defaultdict(int)
    saved = (cells.np, recurrent.direction_forward, recurrent.direction_backward,
             model.rnn.forward, model.rnn.backward, opt.step)
    cells.np = _TimedNumpy(totals, counts, bench.V, H, T * B)
    recurrent.direction_forward = _timed(saved[1], totals, "kernel forward")
    recurrent.direction_backward = _timed(saved[2], totals, "kernel backward")
    model.rnn.forward = _timed(saved[3], totals, "layer forward")
    model.rnn.backward = _timed(saved[4], totals, "layer backward")
    opt.step = _timed(saved[5], totals, "adam")

    def step():
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        train_step()
        totals["step"] += time.perf_counter() - t0
        totals["page faults"] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults

    rows = []
    try:
        for _ in range(2):  # warm-up
            step()
        gc.collect()
        gc.disable()
        for _ in range(reps):
            totals.clear()
            counts.clear()
            step()
            rows.append((dict(totals), dict(counts)))
    finally:
        gc.enable()
        cells.np, recurrent.direction_forward, recurrent.direction_backward = saved[:3]
        del model.rnn.forward, model.rnn.backward, opt.step  # back to the methods
    # the repetition with the median total stands for all (its parts add up)
    rows.sort(key=lambda r: r[0]["step"])
    tot, cnt = rows[len(rows) // 2]
    return tot, cnt, [r[0]["step"] for r in rows]


def gemm_shapes(B: int, T: int, H: int, D: int, V: int):
    """(label, m, k, n, calls per step, transposed A, transposed B) of the step's products
    (the one-hot input needs no product: its projection is a look-up)."""
    N, G = T * B, 4 * H
    return [
        ("x @ W_x (one-hot: a look-up)", N, D, G, 0, False, False),
        ("W_h^T @ h^T (per step)", G, H, B, T, False, False),
        ("W_h @ dg^T (per step)", H, G, B, T, False, False),
        ("h @ W_h (per step, batch-major)", B, H, G, 0, False, False),
        ("dg @ W_h.T (per step, batch-major)", B, G, H, 0, False, False),
        ("dW_x = x.T @ dg", D, N, G, 1, True, False),
        ("dW_h = h.T @ dg", H, N, G, 1, True, False),
        ("dx = dg @ W_x.T", N, G, D, 0, False, True),
        ("logits = h @ W_y", N, H, V, 1, False, False),
        ("dW_y = h.T @ dz", H, N, V, 1, True, False),
        ("dh = dz @ W_y.T", N, V, H, 1, False, True),
        ("reference 1024^3", 1024, 1024, 1024, 0, False, False),
    ]


def time_gemm(m, k, n, trans_a, trans_b, torch, reps: int):
    """Median seconds of one float32 (m, k) @ (k, n) product, numpy and torch, operands laid
    out as in the engine (transposed views where it uses them)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    a_op = a.T if trans_a else a
    b_op = b.T if trans_b else b
    out = np.empty((m, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ta_op = ta.T if trans_a else ta
    tb_op = tb.T if trans_b else tb
    tout = torch.empty((m, n))
    # repeat small products within one timed call (about 1 GFLOP per call), so that a call
    # lasts milliseconds and waking the thread pools at its start does not count
    inner = min(max(1, round(5e8 / (m * k * n))), 1000)

    def run_np():
        for _ in range(inner):
            np.matmul(a_op, b_op, out=out)

    def run_torch():
        for _ in range(inner):
            torch.matmul(ta_op, tb_op, out=tout)

    times = bench.time_interleaved([run_np, run_torch], reps, 2)
    return statistics.median(times[0]) / inner, statistics.median(times[1]) / inner


def print_profile(engine: str, result, B: int, T: int, H: int, L: int) -> None:
    """Print the breakdown ``profile_step`` returned."""
    tot, cnt, steps = result
    step = tot["step"]
    mm = {k: v for k, v in tot.items() if k in cnt}  # the matrix products, by role
    mm_total = sum(mm.values())
    kernels = tot["kernel forward"] + tot["kernel backward"]
    elementwise = kernels - mm_total
    layer_rest = tot["layer forward"] + tot["layer backward"] - kernels
    print(f"rnnkit LSTM training step ({engine}), (B, T, H) = ({B}, {T}, {H}), {L} layer(s): "
          f"median {statistics.median(steps) * 1e3:.1f} ms "
          f"(min {min(steps) * 1e3:.1f}, max {max(steps) * 1e3:.1f}); "
          f"breakdown of the median repetition:")
    print(f"{'part':<46}{'calls':>7}{'ms':>9}{'share':>8}")
    print("-" * 70)
    for k in sorted(mm, key=lambda k: -mm[k]):
        print(f"  {k:<44}{cnt[k]:>7}{mm[k] * 1e3:>9.2f}{mm[k] / step:>8.1%}")
    print(f"{'matrix products in the kernels':<46}{'':>7}{mm_total * 1e3:>9.2f}"
          f"{mm_total / step:>8.1%}")
    print(f"{'element-wise work in the kernels':<46}{'':>7}{elementwise * 1e3:>9.2f}"
          f"{elementwise / step:>8.1%}")
    mm_fwd = sum(v for k, v in mm.items() if k in FORWARD_ROLES)
    for phase, kern, mm_part in (("forward", tot["kernel forward"], mm_fwd),
                                 ("backward", tot["kernel backward"], mm_total - mm_fwd)):
        ew = kern - mm_part
        print(f"  {'of it in direction_' + phase:<44}{'':>7}{ew * 1e3:>9.2f}{ew / step:>8.1%}")
    print(f"{'layer outside the kernels (checks, transposes)':<46}{'':>7}"
          f"{layer_rest * 1e3:>9.2f}{layer_rest / step:>8.1%}")
    rest = step - tot["layer forward"] - tot["layer backward"] - tot["adam"]
    print(f"{'model outside the layer (output layer, loss)':<46}{'':>7}{rest * 1e3:>9.2f}"
          f"{rest / step:>8.1%}")
    print(f"{'Adam':<46}{'':>7}{tot['adam'] * 1e3:>9.2f}{tot['adam'] / step:>8.1%}")
    print(f"{'total':<46}{'':>7}{step * 1e3:>9.2f}{1:>8.0%}")
    print(f"minor page faults in the step: {tot['page faults']:.0f} (first touches of freshly "
          f"allocated arrays; they are counted in the parts above)")
    print()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Profile rnnkit's LSTM training step (matrix products vs element-wise "
        "work) and time float32 matrix products of the same shapes in numpy and PyTorch.")
    ap.add_argument("--batch", type=int, default=32, help="B, sequences per batch (default 32)")
    ap.add_argument("--steps", type=int, default=100, help="T, time steps (default 100)")
    ap.add_argument("--hidden", type=int, default=256, help="H, hidden units (default 256)")
    ap.add_argument("--layers", type=int, default=1, help="stacked LSTM layers (default 1)")
    ap.add_argument("--reps", type=int, default=15,
                    help="timed repetitions of the step and of each product (default 15)")
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

    torch.set_num_threads(args.threads)
    B, T, H, L = args.batch, args.steps, args.hidden, args.layers
    print(f"machine: {bench.cpu_model()}; numpy {np.__version__} BLAS: "
          f"{bench.describe_blas(blas)}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    for v in bench.OPENBLAS_VARS:
        print(f"env: {v} is " + ("SET (warning: can slow numpy's BLAS)" if v in os.environ
                                 else "unset"))
    print(f"load average at start: {bench.load_average()}")
    print()

    import rnnkit.compiled

    engines = [("numpy engine", False, 1)]
    if rnnkit.compiled.available():
        inside = ("the recurrent products run inside the compiled calls and count as "
                  "element-wise work here")
        engines.insert(0, (f"compiled kernels, batch unsplit (set_threads(1)); {inside}",
                           True, 1))
        n = rnnkit.compiled.shards(B)
        if n > 1:
            engines.insert(0, (f"compiled kernels, batch split across {n} threads; {inside}",
                               True, None))
    else:
        print(f"(no compiled kernels: {rnnkit.compiled.unavailable_reason()})")
    for name, compiled, threads in engines:
        previous = rnnkit.compiled.set_enabled(compiled)
        previous_threads = rnnkit.compiled.threads()
        if threads is not None:
            rnnkit.compiled.set_threads(threads)
        try:
            print_profile(name, profile_step(B, T, H, L, args.reps, args.seed), B, T, H, L)
        finally:
            rnnkit.compiled.set_enabled(previous)
            rnnkit.compiled.set_threads(previous_threads)

    print("float32 matrix products of the same shapes, alone (median per product):")
    print(f"{'product':<36}{'m x k x n':>18}{'calls':>7}{'numpy us':>10}{'GFLOP/s':>9}"
          f"{'torch us':>10}{'GFLOP/s':>9}")
    print("-" * 87)
    sum_np = sum_t = flops = 0.0
    for label, m, k, n, calls, tra, trb in gemm_shapes(B, T, H, bench.V, bench.V):
        t_np, t_t = time_gemm(m, k, n, tra, trb, torch, max(5, args.reps // 2))
        f = 2.0 * m * k * n
        if calls:
            sum_np += calls * t_np
            sum_t += calls * t_t
            flops += calls * f
        print(f"{label:<36}{f'{m}x{k}x{n}':>18}{calls:>7}{t_np * 1e6:>10.1f}"
              f"{f / t_np / 1e9:>9.1f}{t_t * 1e6:>10.1f}{f / t_t / 1e9:>9.1f}")
    print(f"all products of one step ({flops / 1e9:.2f} GFLOP): numpy {sum_np * 1e3:.1f} ms "
          f"({flops / sum_np / 1e9:.1f} GFLOP/s), torch {sum_t * 1e3:.1f} ms "
          f"({flops / sum_t / 1e9:.1f} GFLOP/s)")
    print(f"load average at end: {bench.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
