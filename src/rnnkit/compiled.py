"""Optional compiled kernels (numba) for the per-step work of the recurrent engine.

The numpy engine in :mod:`rnnkit.cells` spends a third of an LSTM training step in some 25
element-wise passes per time step (gates, cell update, their derivatives), each a separate
numpy call over a small ``(H, B)`` block. With the ``fast`` extra installed
(``pip install 'rnnkit[fast]'``, which brings numba), those passes are fused into one
compiled kernel per time step, forward and backward, for the RNN, the LSTM and both forms
of the GRU; so are :class:`rnnkit.optim.Adam`'s update and the LSTM's generation step of
batch 1. The matrix products stay numpy's.

**The results are those of the numpy engine, bit for bit**, on the same machine:

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
models, Adam, generation) and compares the results byte for byte. Without numba, or after
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
import threading

import numpy as np

__all__ = ["available", "enabled", "set_enabled", "disabled", "unavailable_reason"]

_lock = threading.Lock()
_wanted = True  # set_enabled(); the kernels run when wanted and available
_state: dict = {}  # "kernels": the compiled namespace, or "reason": why there is none


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
           "adam_update", "apply_loop")


class _Kernels:
    """The compiled kernels (module :mod:`rnnkit._kernels`, as attributes named in
    ``KERNELS``) and numpy's tanh loops."""

    def __init__(self, module, tanh: dict):
        for name in KERNELS:
            setattr(self, name, getattr(module, name))
        self._tanh = tanh

    def tanh_loop(self, dtype) -> tuple:
        """``(fn, data)``, the kernels' ``loop`` argument: numpy's tanh loop for dtype."""
        return self._tanh[np.dtype(dtype)]


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
