"""Optional compiled kernels (numba) for the per-step work of the recurrent engine.

The numpy engine in :mod:`rnnkit.cells` spends a third of an LSTM training step in some 25
element-wise passes per time step (gates, cell update, their derivatives), each a separate
numpy call over a small ``(H, B)`` block. With the ``fast`` extra installed
(``pip install 'rnnkit[fast]'``, which brings numba), those passes are fused into one
compiled kernel per time step, forward and backward, for the RNN, the LSTM and both forms
of the GRU; so are :class:`rnnkit.optim.Adam`'s update and the LSTM's generation step of
batch 1. The matrix products stay numpy's.

**The LSTM recurrence on two cores.** Element-wise work in numpy runs on one core while
the BLAS uses all of them, and the recurrence of one time step depends on the one before.
But the columns of the batch are independent: on a machine with 2 or more cores the
compiled LSTM (without a mask or recurrent dropout, with at least 8 columns of the batch
per thread) splits its batch into shards, one per thread (:func:`set_threads`), and each
shard runs all its time steps, forward and backward, in one compiled call on its own core.
The weight gradients of all steps stay large numpy products on all cores. The recurrent
products of a shard, ``(G*H, H) @ (H, Bs)`` and ``(H, G*H) @ (G*H, Bs)`` for its Bs
columns, are rnnkit's own kernel (``rnnkit._kernels.product``): blocks of 8 rows by 64
bytes of columns (16 float32) whose sums stay in registers for the whole inner dimension,
one fused multiply-add per term, in order. OpenBLAS packs the weight matrix again at every
call of such a thin product; this kernel reads it as it is, and runs these shapes 1.3-1.5x
faster than OpenBLAS on one core at H = 128 to 512, as fast at H = 100
(``benchmarks/product_kernel.py``). With dense inputs (D features) the same product forms
a step's input projection too, ``[W_x^T | b | W_h^T] @ [x_t^T; 1; h_prev]`` (sums of
D + 1 + H terms), and in the backward its input gradient, ``[W_h; W_x] @ d``: on two cores
these run at about 200 GFLOP/s where a product over all steps in OpenBLAS reaches 140-160.
With one-hot inputs, the input-weight gradient of a split is formed as sums by id, in the
order of the positions, with the gate rows shared out between the threads
(``rnnkit._kernels.one_hot_grad_rows``; 2-3x faster than the product with the one-hot
matrix on this project's machine). Every column of a product and every row of that
gradient gets the same operations whatever the thread, so **a split's results do not
depend on the number of threads**, and they are the same from run to run; they differ from
the numpy engine's (and from ``set_threads(1)``) by the rounding of those sums only
(relative differences of at most 2e-7 in the float32 training steps of
``benchmarks/bench.py``). While a split runs, OpenBLAS is set to one thread process-wide
and its idle workers are stopped (it restarts them at its next product on several
threads): do not run numpy matrix products in other threads of the process at the same
time, or call ``set_threads(1)``. Without a split (a batch under 16, ``set_threads(1)``),
an LSTM without a mask or recurrent dropout still runs all its steps in one compiled call,
calling numpy's BLAS (OpenBLAS, found at load time and checked to give ``np.matmul``'s
bits) with its usual threads: the same calls as the numpy engine's step loop.

**Otherwise the results are those of the numpy engine, bit for bit** (and with
``set_threads(1)``, always), on the same machine:

- every kernel performs the same IEEE operations as the numpy code, on the same values and
  in the same order (``((1 - o) * o) * tanh_c`` where numpy does ``1 - o``, ``*= o``,
  ``*= tanh_c``), in the array's own precision (float32 stays float32) and without fused
  multiply-adds;
- ``tanh``, the one transcendental function, is not reimplemented: the kernels call
  numpy's own inner loop of ``np.tanh`` for the dtype (the same function, chosen by numpy
  for this CPU, that ``np.tanh`` runs). Its address is read from the ufunc when the kernels
  are first needed, and checked: a probe array must come out of it exactly as out of
  ``np.tanh``, otherwise the kernels are not used.

``tests/test_compiled.py`` runs the engine both ways (every kind and form, float32 and
float64, small and large batches, masks, recurrent dropout, one-hot ids, whole layers and
models, Adam, generation) and compares the results byte for byte; the split LSTM against
the numpy engine (to rounding) and across thread counts (byte for byte), the product
kernel against float64 products (within the error bound of a K-term sum) and the one-hot
gradient against ``np.add.at`` (byte for byte). Without numba, or after
``set_enabled(False)`` (a process-wide switch), the engine runs the numpy code. A
difference that remains: the numpy code honours ``np.errstate(...='raise')`` in its
element-wise passes, the kernels do not check floating-point errors.

numba compiles each kernel on its first use for a combination of argument types (a few
seconds in all) and caches it on disk (numba's ``cache=True``), so later processes start
at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["available", "enabled", "set_enabled", "disabled", "unavailable_reason",
           "threads", "set_threads"]

_lock = threading.Lock()
_wanted = True  # set_enabled(); the kernels run when wanted and available
_state: dict = {}  # "kernels": the compiled namespace, or "reason": why there is none
_threads: list = []  # set_threads(); empty: the default, min(2, usable cores)


def set_enabled(flag: bool) -> bool:
    """Use the compiled kernels when they are available (True, the default) or always the
    numpy engine (False). The results are the same either way. Returns the previous
    setting."""
    global _wanted
    if not isinstance(flag, bool):
        raise TypeError(f"flag must be True or False, got {flag!r}")
    previous, _wanted = _wanted, flag
    return previous


@contextlib.contextmanager
def disabled():
    """``with rnnkit.compiled.disabled():`` runs the block on the numpy engine."""
    previous = set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


def threads() -> int:
    """How many threads the compiled LSTM recurrence splits a batch across (see
    :func:`set_threads`). By default 2, or fewer when this process may use fewer cores or
    numpy's BLAS is set to fewer threads (e.g. ``OPENBLAS_NUM_THREADS=1`` or
    threadpoolctl's ``threadpool_limits(1)``)."""
    if _threads:
        return _threads[0]
    try:
        n = min(2, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        n = min(2, os.cpu_count() or 1)
    k = _state.get("kernels")
    if k is not None and k._blas:
        n = min(n, max(1, k._blas["get_threads"]()))
    return n


def set_threads(n: int | None) -> int:
    """Split the batch of the compiled LSTM recurrence across n threads (1: never; None:
    back to the default of :func:`threads`). Returns the previous value.

    With n > 1, an LSTM direction without a mask or recurrent dropout and with a batch of
    at least 8 columns per thread runs as n independent shards of the batch, each on its
    own core with its own recurrent products (rnnkit's product kernel, see the module's
    text). Its results then differ from the numpy engine's (and from ``set_threads(1)``)
    by the rounding of those products (and of the input-weight gradient of one-hot
    inputs) only; they are the same for every n > 1 and from run to run. With n = 1 every
    result is the numpy engine's, bit for bit."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    previous = threads()
    _threads[:] = [] if n is None else [n]
    return previous


def shards(batch: int) -> int:
    """How many shards the compiled LSTM recurrence splits a batch of this size into (1
    when it is not split): each shard has at least 8 columns."""
    return max(1, min(threads(), batch // 8))


def available() -> bool:
    """Whether the compiled kernels can be used here (numba imports, numpy's tanh loop
    passed its check). The first call imports numba and makes that check."""
    return _load() is not None


def enabled() -> bool:
    """Whether the engine uses the compiled kernels now (available and not disabled)."""
    return _wanted and available()


def unavailable_reason() -> str | None:
    """Why the kernels are not available (e.g. numba is not installed), or None."""
    _load()
    return _state.get("reason")


def kernels():
    """The compiled kernels if they are enabled, else None (used by :mod:`rnnkit.cells`)."""
    if not _wanted:
        return None
    return _load()


def _load():
    if "kernels" in _state or "reason" in _state:
        return _state.get("kernels")
    with _lock:
        if "kernels" not in _state and "reason" not in _state:
            try:
                _state["kernels"] = _build()
            except _Unavailable as e:
                _state["reason"] = str(e)
            except Exception as e:  # e.g. a numba that cannot compile the probe kernel
                _state["reason"] = f"the compiled kernels failed to load: {e!r}"
    return _state.get("kernels")


class _Unavailable(Exception):
    pass


# --------------------------------------------------------------------------- numpy's loops
def _ufunc_loop(ufunc: np.ufunc, dtype) -> tuple[int, int]:
    """The address of numpy's inner loop of a one-input ufunc for dtype -> dtype, and of its
    data pointer, read from the ``PyUFuncObject`` (numpy's public C struct: after the
    object header come ``int nin, nout, nargs, identity``, then the ``functions`` and
    ``data`` arrays, ``int ntypes, reserved1``, ``name`` and ``types``)."""
    base = id(ufunc)
    head = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)
    ptr = ctypes.sizeof(ctypes.c_void_p)
    nin, nout, nargs, _ = (ctypes.c_int * 4).from_address(base + head)
    if (nin, nout, nargs) != (1, 1, 2):
        raise _Unavailable(f"unexpected layout of numpy's ufunc object for {ufunc.__name__}")
    functions = ctypes.c_void_p.from_address(base + head + 16).value
    data = ctypes.c_void_p.from_address(base + head + 16 + ptr).value
    ntypes = ctypes.c_int.from_address(base + head + 16 + 2 * ptr).value
    name = ctypes.c_char_p.from_address(base + head + 24 + 2 * ptr).value
    types = ctypes.c_void_p.from_address(base + head + 24 + 3 * ptr).value
    if name != ufunc.__name__.encode() or not functions or not types or not 0 < ntypes < 64:
        raise _Unavailable(f"unexpected layout of numpy's ufunc object for {ufunc.__name__}")
    codes = ctypes.string_at(types, ntypes * nargs)
    num = np.dtype(dtype).num
    for k in range(ntypes):
        if codes[2 * k] == num and codes[2 * k + 1] == num:
            fn = ctypes.c_void_p.from_address(functions + k * ptr).value
            fdata = ctypes.c_void_p.from_address(data + k * ptr).value if data else None
            if not fn:
                break
            return fn, fdata or 0
    raise _Unavailable(f"numpy has no {np.dtype(dtype).name} loop for {ufunc.__name__}")


def _probe(dtype) -> np.ndarray:
    """Values that exercise every branch of a tanh implementation, at odd lengths and
    offsets (the tails of the vector loops)."""
    rng = np.random.default_rng(12345)
    parts = [rng.standard_normal(4099) * s for s in (0.01, 0.3, 1.0, 3.0, 10.0)]
    special = [0.0, -0.0, 1e-30, -1e-30, 1e-8, 8.0, 9.1, -9.1, 20.0, 50.0, 1e30, -1e30,
               np.inf, -np.inf, np.nan]
    x = np.concatenate(parts + [np.array(special)]).astype(dtype)
    x[5000] = np.finfo(dtype).tiny / 4  # a subnormal
    return x


# the kernels of rnnkit._kernels that the engine, the stepper and Adam call
KERNELS = ("rnn_forward_step", "rnn_backward_step", "lstm_forward_step", "lstm_backward_step",
           "gru_forward_step", "gru_forward_finish", "gru_backward_step",
           "gru_backward_reset_before", "gru_backward_finish", "lstm_stepper_gates",
           "adam_update", "apply_loop", "lstm_forward_shard", "lstm_backward_shard",
           "one_hot_grad_rows", "lstm_forward_shard_dense", "lstm_backward_shard_dense")


class _Kernels:
    """The compiled kernels (module :mod:`rnnkit._kernels`, as attributes named in
    ``KERNELS``), numpy's tanh loops and, where found, numpy's BLAS."""

    def __init__(self, module, tanh: dict):
        for name in KERNELS:
            setattr(self, name, getattr(module, name))
        self.gemm_kernel = module.gemm
        self._tanh = tanh
        self._blas: dict | None = None
        self._pool = None
        self._pool_lock = threading.Lock()
        self._warm: set = set()  # (kernel, argument kinds) run_shards has called before

    def tanh_loop(self, dtype) -> tuple:
        """``(fn, data)``, the kernels' ``loop`` argument: numpy's tanh loop for dtype."""
        return self._tanh[np.dtype(dtype)]

    def blas(self, dtype) -> tuple | None:
        """The addresses of numpy's BLAS ``cblas_?gemm`` and ``cblas_?gemv`` for dtype (the
        kernels' ``blas`` argument), checked to give ``np.matmul``'s bits, or None where
        they were not found (the LSTM recurrence then runs step by step from Python,
        unsplit)."""
        if self._blas is None:
            self._blas = _find_blas(self.gemm_kernel)
        return self._blas.get(np.dtype(dtype))

    def run_shards(self, jobs: list) -> None:
        """Run the callables ``jobs`` at once, the first in this thread and each other one
        in a thread of the pool, with numpy's BLAS limited to one thread meanwhile (its
        thread count is process-wide: products in other threads of the process run on
        one thread too until the jobs end). The first exception is raised once all have
        finished.

        The first time a kernel comes with a given kind of arguments (``functools.partial``
        jobs: the kernel and, for each argument, None or its dtype or type), the jobs run
        one after the other in this thread instead: numba compiles the kernel for those
        argument types (or loads it from its cache) on that first call, and that happens
        in one thread rather than in several at once (numba's compiler has had bugs with
        concurrent first calls). The results are the same either way."""
        first = jobs[0]
        key = None
        if isinstance(first, functools.partial):
            key = (first.func, tuple(None if a is None else getattr(a, "dtype", type(a))
                                     for a in first.args))
        get_blas, set_blas = self._blas["get_threads"], self._blas["set_threads"]
        error = None
        with self._pool_lock:  # one split at a time: the thread count is restored in order
            previous = get_blas()
            set_blas(1)
            if key is not None and key not in self._warm:
                try:
                    for job in jobs:
                        job()
                finally:
                    set_blas(previous)
                self._warm.add(key)
                return
            if len(jobs) > 1 and (self._pool is None or self._pool._max_workers < len(jobs) - 1):
                self._pool = ThreadPoolExecutor(len(jobs) - 1, thread_name_prefix="rnnkit")
            try:
                if len(jobs) > 1 and self._blas["shutdown"] is not None:
                    # OpenBLAS' idle workers spin for a while after each product (about
                    # 0.1 s by default) and would take the cores from the shards; it starts
                    # them again at its next product on several threads
                    self._blas["shutdown"]()
                futures = [self._pool.submit(job) for job in jobs[1:]]
                try:
                    jobs[0]()
                except BaseException as e:  # wait for the others before raising
                    error = e
                for f in futures:
                    try:
                        f.result()
                    except BaseException as e:
                        error = error or e
            finally:
                set_blas(previous)
        if error is not None:
            raise error


# ILP64 names first: numpy's own OpenBLAS (numpy 2: scipy-openblas64, numpy 1.2x: openblas64_)
_BLAS_NAMES = {np.dtype(np.float32): [("scipy_cblas_sgemm64_", "scipy_cblas_sgemv64_"),
                                      ("cblas_sgemm64_", "cblas_sgemv64_")],
               np.dtype(np.float64): [("scipy_cblas_dgemm64_", "scipy_cblas_dgemv64_"),
                                      ("cblas_dgemm64_", "cblas_dgemv64_")]}


def _blas_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries numpy may have loaded: those in numpy's wheel
    first, then any other mapped into this process (Linux)."""
    here = os.path.dirname(np.__file__)
    paths = sorted(glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*"))
                   + glob.glob(os.path.join(here, ".dylibs", "*openblas*")))
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "openblas" in os.path.basename(path) and path not in paths:
                    paths.append(path)
    except OSError:  # pragma: no cover - not Linux
        pass
    return paths


def _find_blas(gemm_kernel) -> dict:
    """``{dtype: (gemm address, gemv address)}`` and the functions ``"get_threads"``,
    ``"set_threads"`` (``openblas_get/set_num_threads``, process-wide) and ``"shutdown"`` (OpenBLAS'
    ``blas_thread_shutdown_``, or None) of the first library whose ILP64 gemm and gemv
    give the bits of ``np.matmul`` on a probe; {} if none."""
    rng = np.random.default_rng(7)
    for path in _blas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        pattern = next((f"{pre}openblas_%s_num_threads{post}"
                        for pre, post in [("scipy_", "64_"), ("", "64_"), ("", "")]
                        if hasattr(lib, f"{pre}openblas_get_num_threads{post}")), None)
        if pattern is None:
            continue
        get_threads, set_threads = getattr(lib, pattern % "get"), getattr(lib, pattern % "set")
        get_threads.restype, get_threads.argtypes = ctypes.c_int, []
        set_threads.restype, set_threads.argtypes = None, [ctypes.c_int]
        found = {}
        for dt, candidates in _BLAS_NAMES.items():
            for names in candidates:
                fns = tuple(ctypes.cast(getattr(lib, n, None) or 0, ctypes.c_void_p).value
                            for n in names)
                if not all(fns):
                    continue
                a = rng.standard_normal((67, 45)).astype(dt)
                same = True
                for n in (19, 1):  # gemm, and gemv for one column
                    b = rng.standard_normal((45, n)).astype(dt)
                    c = np.empty((67, n), dtype=dt)
                    gemm_kernel(fns, a, b, c)
                    same = same and c.tobytes() == np.matmul(a, b).tobytes()
                if same:
                    found[dt] = fns
                break
        if len(found) == len(_BLAS_NAMES):
            found["get_threads"], found["set_threads"] = get_threads, set_threads
            shutdown = getattr(lib, "blas_thread_shutdown_", None)
            if shutdown is not None:
                shutdown.restype, shutdown.argtypes = ctypes.c_int, []
            found["shutdown"] = shutdown
            return found
    return {}


def _build() -> _Kernels:
    try:
        from . import _kernels
    except ImportError as e:
        raise _Unavailable(f"numba is not installed ({e}); pip install 'rnnkit[fast]'") from None
    tanh = {np.dtype(dt): _ufunc_loop(np.tanh, dt) for dt in (np.float32, np.float64)}
    k = _Kernels(_kernels, tanh)
    for dt in tanh:
        x = _probe(dt)
        out = np.empty_like(x)
        k.apply_loop(k.tanh_loop(dt), x, out)
        bits = np.uint32 if dt.itemsize == 4 else np.uint64
        if not np.array_equal(out.view(bits), np.tanh(x).view(bits)):
            raise _Unavailable(f"numpy's {dt.name} tanh loop, called directly, did not "
                               "reproduce np.tanh")
    return k
