"""The LSTM recurrence alone: what a faster per-step product would buy, against oneDNN.

The LSTM rows of ``bench.py`` miss their targets against PyTorch's LSTM, which runs in
oneDNN's fused kernel (on some processors its per-step products are also faster than
numpy's OpenBLAS at these shapes: ``profile_lstm.py``). This script measures how far the
other ways of driving the per-step products would take rnnkit, on the recurrence alone: T
steps forward and back, inputs of one feature (so that the input side costs nothing in
either library), the weight gradients included, float32.

* ``rnnkit engine``: :func:`rnnkit.sequence.forward` and :func:`~rnnkit.sequence.backward`
  as they run in the library (the accelerated kernels when numba is installed), a Python
  loop over the steps with one numpy product per step.
* ``compiled loop, numpy's BLAS``: the same kernels and the same products, but the whole
  loop compiled by numba (its ``np.dot`` calls SciPy's BLAS): what the Python loop costs.
  Needs numba and scipy.
* ``compiled loop, MKL packed``: the whole loop compiled, each product made by Intel MKL's
  pre-packed GEMM (the public ``cblas_sgemm_pack`` / ``cblas_sgemm_compute``: W_h packed
  once per pass, not at every call as OpenBLAS does), called through ctypes. Needs numba
  and the ``mkl`` wheel (``pip install mkl``, about 700 MB); a prototype, not part of
  rnnkit.
* ``torch``: ``nn.LSTM(1, H)`` forward and ``out.backward(dout)`` (oneDNN's LSTM).

Then the per-step products alone: numpy, torch.mm and MKL's plain and packed GEMM.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lstm_recurrence.py
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (first: it limits the thread pools' spinning)
import numpy as np  # noqa: E402

ROW_MAJOR, NO_TRANS, B_MATRIX, PACKED = 101, 111, 162, 151
SIZES = [(32, 128), (32, 256), (64, 512)]


def mkl_library():
    """Intel MKL's single dynamic library from the ``mkl`` wheel, or None."""
    try:
        files = importlib.metadata.distribution("mkl").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name.startswith("libmkl_rt.so"):
            lib = ctypes.CDLL(str(f.locate()))
            p, i = ctypes.c_void_p, ctypes.c_int
            lib.cblas_sgemm.argtypes = [i] * 6 + [ctypes.c_float, p, i, p, i,
                                                  ctypes.c_float, p, i]
            lib.cblas_sgemm.restype = None
            lib.cblas_sgemm_pack_get_size.argtypes = [i] * 4
            lib.cblas_sgemm_pack_get_size.restype = ctypes.c_size_t
            lib.cblas_sgemm_pack.argtypes = [i] * 6 + [ctypes.c_float, p, i, p]
            lib.cblas_sgemm_pack.restype = None
            lib.cblas_sgemm_compute.argtypes = [i] * 6 + [p, i, p, i, ctypes.c_float, p, i]
            lib.cblas_sgemm_compute.restype = None
            return lib
    return None


def mkl_pack(lib, W: np.ndarray, M: int) -> np.ndarray:
    """W (K, N) float32 packed by MKL as the B operand of (M, K) @ (K, N) products."""
    K, N = W.shape
    size = lib.cblas_sgemm_pack_get_size(B_MATRIX, M, N, K)
    buf = np.empty(size // 4 + 16, np.float32)
    lib.cblas_sgemm_pack(ROW_MAJOR, B_MATRIX, NO_TRANS, M, N, K, 1.0, W.ctypes.data, N,
                         buf.ctypes.data)
    return buf


def compiled_loops(lib):
    """The forward and backward loops compiled whole: {name: (forward, backward,
    prepare)}, prepare(W, M) giving the weight operand the loops take for M rows.

    forward(xw (T, B, 4H) in: x W_x + b, out: the gates; hs, cs (T+1, B, H); W (H, 4H)
    or its MKL packing; rec (B, 4H)); backward(dhs (T, B, H); acts, cs; W.T (4H, H) or
    its packing; dG (T, B, 4H); dh, dc, dh_in (B, H)).
    """
    from numba import njit

    from rnnkit.accelerated import _kernels as k

    fwd_k, bwd_k = k.lstm_forward, k.lstm_backward
    opts = {"nogil": True, "fastmath": {"contract"}, "error_model": "numpy",
            "boundscheck": False}

    @njit(**opts)
    def fwd_blas(xw, hs, cs, W, rec):
        for t in range(xw.shape[0]):
            np.dot(hs[t], W, rec)
            fwd_k(xw[t], rec, cs[t], cs[t + 1], hs[t + 1])

    @njit(**opts)
    def bwd_blas(dhs, acts, cs, WT, dG, dh, dc, dh_in):
        for t in range(dhs.shape[0] - 1, -1, -1):
            bwd_k(dh, dhs[t], dc, acts[t], cs[t], cs[t + 1], dG[t])
            np.dot(dG[t], WT, dh_in)
            dh, dh_in = dh_in, dh

    loops = {"compiled loop, numpy's BLAS": (fwd_blas, bwd_blas, lambda W, M: W)}
    if lib is None:
        return loops
    compute = lib.cblas_sgemm_compute
    zero = np.float32(0.0)

    @njit(**opts)
    def fwd_mkl(xw, hs, cs, Wp, rec):
        T, B, G = xw.shape
        for t in range(T):
            compute(ROW_MAJOR, NO_TRANS, PACKED, B, G, G // 4, hs[t].ctypes, G // 4,
                    Wp.ctypes, G, zero, rec.ctypes, G)
            fwd_k(xw[t], rec, cs[t], cs[t + 1], hs[t + 1])

    @njit(**opts)
    def bwd_mkl(dhs, acts, cs, WTp, dG, dh, dc, dh_in):
        T, B, H = dhs.shape
        for t in range(T - 1, -1, -1):
            bwd_k(dh, dhs[t], dc, acts[t], cs[t], cs[t + 1], dG[t])
            compute(ROW_MAJOR, NO_TRANS, PACKED, B, H, 4 * H, dG[t].ctypes, 4 * H,
                    WTp.ctypes, H, zero, dh_in.ctypes, H)
            dh, dh_in = dh_in, dh

    loops["compiled loop, MKL packed"] = (fwd_mkl, bwd_mkl,
                                          lambda W, M: mkl_pack(lib, W, M))
    return loops


def passes(B: int, T: int, H: int, lib, seed: int) -> dict:
    """{name: one forward + backward pass of the recurrence}, each checked against torch."""
    import torch

    from rnnkit import LSTM, sequence
    from rnnkit.interop import to_torch

    rng = np.random.default_rng(seed)
    layer = LSTM(1, H, dtype=np.float32, rng=rng)
    layer.params["l0.b"][:] = rng.uniform(-0.5, 0.5, 4 * H)
    p = {name: layer.params[f"l0.{name}"] for name in ("W_x", "W_h", "b")}
    x = rng.standard_normal((T, B, 1)).astype(np.float32)
    dout = rng.standard_normal((T, B, H)).astype(np.float32)
    zeros = np.zeros((B, H), np.float32)
    W, WT = p["W_h"], np.ascontiguousarray(p["W_h"].T)

    def engine():
        tr = sequence.forward("lstm", p, x, zeros, zeros)
        _, _, _, g = sequence.backward(tr, dout, need_dx=False)
        return tr.hs[1:], g["W_h"]

    def compiled(fwd, bwd, prepare):
        def run():
            xw = sequence.input_projection(p, x, None)
            hs, cs = np.zeros((T + 1, B, H), np.float32), np.zeros((T + 1, B, H), np.float32)
            fwd(xw, hs, cs, prepare(W, B), np.empty((B, 4 * H), np.float32))
            dG = np.empty_like(xw)
            bwd(dout, xw, cs, prepare(WT, B), dG, np.zeros_like(zeros), np.zeros_like(zeros),
                np.empty_like(zeros))
            dG2 = dG.reshape(T * B, 4 * H)
            dW_h = hs[:-1].reshape(T * B, H).T @ dG2
            dG2.sum(axis=0), x.reshape(T * B, 1).T @ dG2  # db, dW_x
            return hs[1:], dW_h
        return run

    m = to_torch(layer)
    m.batch_first = False  # time-major, as the arrays here
    tx, tdout = torch.from_numpy(x), torch.from_numpy(dout)

    def torch_pass():
        m.zero_grad(set_to_none=True)
        out, _ = m(tx)
        out.backward(tdout)
        return out.detach().numpy(), m.weight_hh_l0.grad.numpy().T

    runs = {"rnnkit engine": engine}
    for name, loop in compiled_loops(lib).items():
        runs[name] = compiled(*loop)
    runs["torch"] = torch_pass
    ref_h, ref_g = engine()
    for name, run in runs.items():
        h, g = run()
        dh, dg = np.abs(h - ref_h).max(), np.abs(g - ref_g).max() / np.abs(ref_g).max()
        if dh > 1e-4 or dg > 1e-4:
            raise SystemExit(f"{name} disagrees with the engine: h {dh:.1e}, dW_h {dg:.1e}")
    return runs


def products(B: int, H: int, lib) -> dict:
    """{name: (forward product, backward product)}: 200 calls of each, per-step shapes."""
    import torch

    rng = np.random.default_rng(0)
    G = 4 * H
    h, W = rng.standard_normal((B, H), np.float32), rng.standard_normal((H, G), np.float32)
    d, WT = rng.standard_normal((B, G), np.float32), rng.standard_normal((G, H), np.float32)
    out, dh = np.empty((B, G), np.float32), np.empty((B, H), np.float32)
    th, tW, td, tWT = (torch.from_numpy(a) for a in (h, W, d, WT))
    tout, tdh = torch.from_numpy(out.copy()), torch.from_numpy(dh.copy())

    def repeat(f):
        return lambda: [f() for _ in range(200)]

    cases = {"numpy (OpenBLAS)": (lambda: np.matmul(h, W, out=out),
                                  lambda: np.matmul(d, WT, out=dh)),
             "torch.mm": (lambda: torch.mm(th, tW, out=tout),
                          lambda: torch.mm(td, tWT, out=tdh))}
    if lib is not None:
        a = [x.ctypes.data for x in (h, W, out, d, WT, dh)]
        Wp, WTp = mkl_pack(lib, W, B), mkl_pack(lib, WT, B)
        cases["MKL cblas_sgemm"] = (
            lambda: lib.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, B, G, H, 1.0, a[0], H,
                                    a[1], G, 0.0, a[2], G),
            lambda: lib.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, B, H, G, 1.0, a[3], G,
                                    a[4], H, 0.0, a[5], H))
        cases["MKL packed"] = (
            lambda: lib.cblas_sgemm_compute(ROW_MAJOR, NO_TRANS, PACKED, B, G, H, a[0], H,
                                            Wp.ctypes.data, G, 0.0, a[2], G),
            lambda: lib.cblas_sgemm_compute(ROW_MAJOR, NO_TRANS, PACKED, B, H, G, a[3], G,
                                            WTp.ctypes.data, H, 0.0, a[5], H))
    return {name: (repeat(f), repeat(b)) for name, (f, b) in cases.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Time the LSTM recurrence alone (forward + "
                                 "backward, T steps) in rnnkit's engine, in a loop compiled "
                                 "whole with numpy's BLAS or MKL's packed GEMM, and in "
                                 "PyTorch; then the per-step products alone.")
    ap.add_argument("--steps", type=int, default=100, help="T, time steps (default 100)")
    ap.add_argument("--reps", type=int, default=11,
                    help="timed repetitions of each pass (default 11)")
    ap.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")
    args = ap.parse_args(argv)
    bench.set_numpy_threads(2)
    blas = bench.numpy_blas_info()
    import torch

    torch.set_num_threads(2)
    lib = mkl_library()
    print("measured on:", bench.machine_summary(blas, 2))
    print("MKL:", "the mkl wheel's libmkl_rt" if lib else "not installed (pip install mkl)")
    print(f"\nLSTM recurrence, T = {args.steps}, input size 1, forward + backward with the "
          f"weight gradients, float32; median ms of {args.reps}; ratio to torch")
    for B, H in SIZES:
        runs = passes(B, args.steps, H, lib, args.seed)
        times = bench.time_interleaved(list(runs.values()), args.reps, 2)
        med = {n: statistics.median(t) for n, t in zip(runs, times, strict=True)}
        print(f"  (B, H) = ({B}, {H})")
        for name, s in med.items():
            print(f"    {name:<30}{s * 1e3:>9.2f} ms{s / med['torch']:>8.2f}")
    print("\nper-step products alone, us per call (median of 200-call repetitions), GFLOP/s")
    for B, H in SIZES:
        flop = 2.0 * B * H * 4 * H
        print(f"  ({B}, {H}) @ ({H}, {4 * H}) and ({B}, {4 * H}) @ ({4 * H}, {H})")
        for name, (f, b) in products(B, H, lib).items():
            tf, tb = (statistics.median(t) / 200
                      for t in bench.time_interleaved([f, b], args.reps, 2))
            print(f"    {name:<20}{tf * 1e6:>8.1f} us {flop / tf / 1e9:>5.0f}"
                  f"{tb * 1e6:>10.1f} us {flop / tb / 1e9:>5.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
