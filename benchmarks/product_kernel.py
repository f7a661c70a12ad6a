"""rnnkit's product kernel against OpenBLAS on one core, at the split LSTM's shapes.

A split LSTM shard (``rnnkit.compiled.set_threads``) forms, per time step, the forward
product ``(4H, H) @ (H, Bs)`` and the backward product ``(H, 4H) @ (4H, Bs)`` for its Bs
columns of the batch, on one core. This times both with rnnkit's own kernel
(``rnnkit._kernels.product``) and with numpy's OpenBLAS (``cblas_?gemm``, called from the
same compiled loop, one thread), 200 products per call, interleaved repetitions, medians:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/product_kernel.py

``--concurrent`` runs the same loop on two threads at once (each with its own output), as
the two shards of a split do; the times are then of the two together.

Then the split's input-weight gradient of one-hot inputs: ``rnnkit._kernels.
one_hot_grad_rows`` (sums by id, the gate rows shared between 2 threads) against the
product with the one-hot matrix that the numpy engine forms (``np.matmul``, 2 threads),
for the positions N = B*T and gate rows G*H of bench.py's LSTM configurations.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (limits the thread pools' spinning; describes the BLAS)
import numpy as np  # noqa: E402

# (H, Bs): the shard shapes of bench.py's LSTM configurations on 2 threads
SHAPES = [(128, 16), (256, 16), (512, 32), (100, 16)]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=15,
                    help="interleaved repetitions of each loop (default 15)")
    ap.add_argument("--calls", type=int, default=200,
                    help="products per timed loop (default 200, a shard's per training "
                         "step at T = 100)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                    help="the arrays' float type (default float32)")
    ap.add_argument("--concurrent", action="store_true",
                    help="run each loop on two threads at once, as two shards do")
    return ap.parse_args(argv)


def loops(fast, concurrent: bool, jobs: list):
    """A callable running jobs[0], or all the jobs at once on their own threads."""
    if concurrent:
        return functools.partial(fast.run_shards, jobs)
    return jobs[0]


def main(argv=None) -> int:
    args = parse_args(argv)
    import numba

    import rnnkit.compiled
    from rnnkit import _kernels

    if not rnnkit.compiled.available():
        print(f"rnnkit's compiled kernels are unavailable: "
              f"{rnnkit.compiled.unavailable_reason()}")
        return 1
    fast = rnnkit.compiled.kernels()
    dt = np.dtype(args.dtype)
    blas = fast.blas(dt)
    if blas is None:
        print("numpy's OpenBLAS was not found: nothing to compare with")
        return 1

    @numba.njit(nogil=True)
    def own_loop(a, b, c, n):
        for _ in range(n):
            _kernels._product(a, b, c)

    @numba.njit(nogil=True)
    def blas_loop(blas, a, b, c, n):
        for _ in range(n):
            _kernels._gemm(blas, a, b, c)

    print(f"numpy {np.__version__}, numba {numba.__version__}; CPU: {bench.cpu_model()}")
    print("numpy BLAS (threadpoolctl): " + bench.describe_blas(bench.numpy_blas_info()))
    print(f"{args.dtype}, {args.calls} products per loop, {args.reps} interleaved "
          f"repetitions, medians; OpenBLAS on 1 thread; "
          + ("two loops at once on two threads" if args.concurrent else "one thread"))
    rng = np.random.default_rng(0)
    rows = []
    previous = fast._blas["get_threads"]()
    fast._blas["set_threads"](1)
    fast._blas["shutdown"] and fast._blas["shutdown"]()
    try:
        for H, Bs in SHAPES:
            for name, M, K in (("forward W_h^T @ h", 4 * H, H), ("backward W_h @ d", H, 4 * H)):
                a = rng.uniform(-0.1, 0.1, (M, K)).astype(dt)
                b = rng.uniform(-1, 1, (K, Bs)).astype(dt)
                n = args.calls
                # two outputs: the second for the second thread of --concurrent
                own = loops(fast, args.concurrent,
                            [functools.partial(own_loop, a, b, np.empty((M, Bs), dt), n)
                             for _ in range(2)])
                ref = loops(fast, args.concurrent,
                            [functools.partial(blas_loop, blas, a, b, np.empty((M, Bs), dt),
                                               n) for _ in range(2)])
                own()
                ref()
                times = bench.time_interleaved([own, ref], args.reps, 1)
                t_own, t_ref = (statistics.median(t) / n for t in times)
                flops = 2 * M * K * Bs * (2 if args.concurrent else 1)
                rows.append((f"{name}  {M}x{K}x{Bs}", t_own * 1e6, flops / t_own / 1e9,
                             t_ref * 1e6, flops / t_ref / 1e9, t_own / t_ref))
    finally:
        fast._blas["set_threads"](previous)
    grad_rows = one_hot_rows(fast, dt, args.reps, rng)
    head = (f"{'product (m x k x n)':<34}{'rnnkit us':>10}{'GFLOP/s':>9}{'OpenBLAS us':>13}"
            f"{'GFLOP/s':>9}{'ratio':>7}")
    print(head)
    print("-" * len(head))
    for label, a, ga, b, gb, r in rows:
        print(f"{label:<34}{a:>10.1f}{ga:>9.0f}{b:>13.1f}{gb:>9.0f}{r:>7.2f}")
    print()
    head = (f"{'one-hot input-weight gradient (GH, N, V)':<44}{'rnnkit ms':>10}"
            f"{'matmul ms':>11}{'ratio':>7}")
    print(head)
    print("-" * len(head))
    for label, a, b in grad_rows:
        print(f"{label:<44}{a:>10.2f}{b:>11.2f}{a / b:>7.2f}")
    return 0


def one_hot_rows(fast, dt, reps: int, rng) -> list:
    """Time the split's one-hot input-weight gradient against the numpy engine's product
    (2 threads each): rows (label, rnnkit ms, matmul ms)."""
    from rnnkit import _kernels
    from rnnkit.cells import _bounds

    rows = []
    V = 65
    for GH, N in ((512, 3200), (1024, 3200), (2048, 6400)):
        dG = rng.uniform(-1, 1, (GH, N)).astype(dt)
        ids = rng.integers(0, V, N)
        out = np.empty((GH, V), dt)
        x = np.zeros((N, V), dt)
        prod = np.empty((V, GH), dt)

        def own(dG=dG, ids=ids, out=out, GH=GH):
            fast.run_shards([functools.partial(_kernels.one_hot_grad_rows, dG, ids, out, g0, g1)
                             for g0, g1 in _bounds(GH, 2)])

        def ref(dG=dG, ids=ids, x=x, prod=prod, N=N):  # as rnnkit.cells forms it
            x.fill(0)
            x[np.arange(N), ids] = 1
            np.matmul(x.T, dG.T, out=prod)

        times = bench.time_interleaved([own, ref], reps, 2)
        a, b = (statistics.median(t) * 1e3 for t in times)
        rows.append((f"{GH} x {N} x {V}", a, b))
    return rows


if __name__ == "__main__":
    sys.exit(main())
