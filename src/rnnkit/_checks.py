"""Argument checks shared by every public entry point.

Each check raises ``TypeError`` or ``ValueError`` with a message that names the argument,
what it received and what was expected, so that a user never sees a numpy broadcasting
traceback or gets a silently wrong answer.
"""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def shape_str(shape) -> str:
    """(2, 3) -> "(2, 3)"; (2,) -> "(2,)", as Python prints shapes."""
    inner = ", ".join(str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def check_array(x, name: str, shape: tuple, dtype=None, finite: bool = True) -> np.ndarray:
    """Check that ``x`` is a float array of ``shape`` and return it as ``dtype``.

    ``shape`` holds ints for fixed sizes and strings for free sizes (a string matches any
    size and only names it in the message, e.g. ``("B", "T", 8)``). A non-float array
    raises TypeError; a wrong rank or size, or a NaN/inf when ``finite``, ValueError.
    """
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple)) or np.isscalar(x):
            x = np.asarray(x)
        else:
            raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype.kind not in "f":
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got dtype {x.dtype}"
        )
    if x.ndim != len(shape):
        raise ValueError(f"{name} must have {len(shape)} dimensions {shape_str(shape)}, got "
                         f"shape {shape_str(x.shape)}")
    for got, want in zip(x.shape, shape, strict=True):
        if isinstance(want, int) and got != want:
            raise ValueError(f"{name} must have shape {shape_str(shape)}, got "
                             f"{shape_str(x.shape)}")
    if dtype is not None and x.dtype != dtype:
        x = x.astype(dtype)
    if finite and x.size and not (np.isfinite(x.max()) and np.isfinite(x.min())):
        # max and min propagate NaN and show +-inf: two passes without a temporary
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= minimum, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_choice(value, name: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError listing them."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def check_probability(value, name: str) -> float:
    """Return ``value`` as a float in [0, 1), else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def as_rng(seed_or_rng, name: str = "rng") -> np.random.Generator:
    """Turn ``None``, an int seed or a ``np.random.Generator`` into a Generator."""
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if seed_or_rng is None or is_int(seed_or_rng) or (
        isinstance(seed_or_rng, (list, tuple)) and seed_or_rng
        and all(is_int(v) for v in seed_or_rng)
    ):
        return np.random.default_rng(seed_or_rng)
    raise TypeError(
        f"{name} must be None, an int seed or a numpy.random.Generator (or a list of int "
        f"seeds), got "
        f"{type(seed_or_rng).__name__}"
    )


def check_ids(ids, name: str, vocab_size: int, ndim: int | None = None) -> np.ndarray:
    """Check an integer index array with values in [0, vocab_size); return it as intp."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of token ids, got dtype {ids.dtype}")
    if ndim is not None and ids.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {shape_str(ids.shape)}")
    lo, hi = (ids.flat[0], ids.flat[0]) if ids.size == 1 else (
        (ids.min(), ids.max()) if ids.size else (0, 0))
    if lo < 0 or hi >= vocab_size:
        bad = ids[(ids < 0) | (ids >= vocab_size)][0]
        raise ValueError(f"{name} holds id {bad}, outside the vocabulary [0, {vocab_size})")
    return ids.astype(np.intp, copy=False)
