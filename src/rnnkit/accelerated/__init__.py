"""The optional compiled backend (numba), behind one switch and chosen in one place.

With the ``fast`` extra installed (``pip install 'rnnkit[fast]'``, which brings numba), the
sequence loop (:mod:`rnnkit.sequence`) runs the step functions of :mod:`.steps` instead of
those of :mod:`rnnkit.cells`, and :class:`rnnkit.optim.Adam` its fused update: the same
equations and the same arrays, with the element-wise work of a time step in one compiled
pass instead of some twenty numpy calls. The matrix products stay numpy's. Every caller
asks :func:`kernels` which to use; that is the one place where the choice is made.

The results agree with the numpy engine within float rounding (relative 1e-5 in float32,
1e-12 in float64; ``tests/test_accelerated.py`` compares every kind, form and option) and
are deterministic: the same inputs give the same bits on the same machine. They are not
bit for bit those of numpy (the kernels sum in their own order, may fuse a multiply and an
add, and use their own float32 tanh; see :mod:`._kernels`). Nothing here reads another
library's memory, calls private symbols, assumes a processor, or changes a process-wide
setting.

numba compiles the kernels on their first use (a few seconds, once: they are cached on
disk). Without numba, or inside ``with rnnkit.accelerated.disabled():``, the numpy engine
runs.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

__all__ = ["available", "enabled", "set_enabled", "disabled", "unavailable_reason",
           "kernels"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_lock = threading.Lock()
_wanted = True  # set_enabled(); the kernels run when wanted and available
_state: dict = {}  # "steps": the compiled step functions, or "reason": why there are none


def set_enabled(flag: bool) -> bool:
    """Use the compiled kernels when they are available (True, the default) or always the
    numpy engine (False). Returns the previous setting."""
    global _wanted
    if not isinstance(flag, bool):
        raise TypeError(f"flag must be True or False, got {flag!r}")
    previous, _wanted = _wanted, flag
    return previous


@contextlib.contextmanager
def disabled():
    """``with rnnkit.accelerated.disabled():`` runs the block on the numpy engine."""
    previous = set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


def available() -> bool:
    """Whether the compiled kernels can be used here (numba imports and the kernels load).
    The first call imports numba."""
    return _load() is not None


def enabled() -> bool:
    """Whether the engine uses the compiled kernels now (available and not disabled)."""
    return _wanted and available()


def unavailable_reason() -> str | None:
    """Why the kernels are not available (e.g. numba is not installed), or None."""
    _load()
    return _state.get("reason")


def kernels(dtype=np.float32):
    """The compiled step functions (module :mod:`.steps`) if they are enabled and
    available for dtype (float32 or float64), else None: the numpy engine's
    :mod:`rnnkit.cells` is to be used."""
    if not _wanted or np.dtype(dtype) not in _DTYPES:
        return None
    return _load()


def _load():
    if "steps" in _state or "reason" in _state:
        return _state.get("steps")
    with _lock:
        if "steps" not in _state and "reason" not in _state:
            try:
                from . import steps
            except ImportError as e:
                _state["reason"] = f"numba is not installed ({e})"
            except Exception as e:  # e.g. a numba that cannot compile the kernels
                _state["reason"] = f"the compiled kernels failed to load: {e!r}"
            else:
                _state["steps"] = steps
    return _state.get("steps")
