"""Argument checks of the course functions.

Every message names the argument and the expected shape both in the course's symbols and
in numbers, e.g. ``parameters['Waa'] must have shape (n_a, n_a) = (5, 5), got (5, 4)``.
A non-float array raises TypeError; a wrong rank or size, NaN/inf or a missing dict key
ValueError. The checks are kept apart so that the cell functions show only the equations.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._checks import check_array

# the gates of the gated cells, in the order of their parameters (W{g}, b{g})
GATES = {"lstm": ("f", "i", "c", "o"), "gru": ("u", "r", "c")}
# what each cell function caches, as the messages about a wrong cache name it
CACHE_FIELDS = {
    "rnn": "(a_next, a_prev, xt, parameters)",
    "lstm": "(a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)",
    "gru": "(a_next, a_prev, ut, rt, cct, xt, parameters)",
}


def _fmt(dims, sizes) -> str:
    sym = "(" + ", ".join(s for s, _ in dims) + ")"
    num = "(" + ", ".join(str(n) for n in sizes) + ")"
    return sym if sym == num else f"{sym} = {num}"


def check(x, name: str, dims, dtype=None) -> np.ndarray:
    """Check a float array against ``dims`` = ((symbol, size or None), ...).

    Returns ``x`` itself when it already has ``dtype``, else a converted copy.
    """
    x = check_array(x, name, tuple(s for s, _ in dims), dtype)
    if any(n is not None and g != n for g, (_, n) in zip(x.shape, dims, strict=True)):
        want = [n if n is not None else g for g, (_, n) in zip(x.shape, dims, strict=True)]
        raise ValueError(
            f"{name} must have shape {_fmt(dims, want)}, got "
            f"({', '.join(str(g) for g in x.shape)})"
        )
    return x


def common_dtype(*arrays) -> np.dtype:
    """float64 if any float array is float64, else float32 (non-floats are rejected later)."""
    kinds = [a.dtype for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return np.result_type(np.float32, *kinds) if kinds else np.dtype(np.float64)


def get_params(parameters, names, fname: str) -> list:
    """Return ``[parameters[n] for n in names]`` or raise a clear error."""
    if not isinstance(parameters, Mapping):
        raise TypeError(
            f"parameters must be a dict with keys {', '.join(names)}, got "
            f"{type(parameters).__name__}"
        )
    missing = [n for n in names if n not in parameters]
    if missing:
        raise ValueError(
            f"parameters is missing {', '.join(repr(n) for n in missing)}: {fname} needs "
            f"{', '.join(names)}"
        )
    return [parameters[n] for n in names]


def rnn_params(parameters, fname, dtype, output=True) -> dict:
    """Checked RNN parameters Wax (n_a, n_x), Waa (n_a, n_a), ba (n_a, 1)[, Wya, by]."""
    names = ["Wax", "Waa", "ba"] + (["Wya", "by"] if output else [])
    got = get_params(parameters, names, fname)
    Wax = check(got[0], "parameters['Wax']", (("n_a", None), ("n_x", None)), dtype)
    n_a = Wax.shape[0]
    p = {"Wax": Wax,
         "Waa": check(got[1], "parameters['Waa']", (("n_a", n_a), ("n_a", n_a)), dtype),
         "ba": check(got[2], "parameters['ba']", (("n_a", n_a), ("1", 1)), dtype)}
    if output:
        p["Wya"] = check(got[3], "parameters['Wya']", (("n_y", None), ("n_a", n_a)), dtype)
        n_y = p["Wya"].shape[0]
        p["by"] = check(got[4], "parameters['by']", (("n_y", n_y), ("1", 1)), dtype)
    return p


def gated_params(parameters, gates, fname, dtype, output=True) -> dict:
    """Checked LSTM/GRU parameters: W{g} (n_a, n_a+n_x), b{g} (n_a, 1) for each gate g."""
    names = [p for g in gates for p in (f"W{g}", f"b{g}")] + (["Wy", "by"] if output else [])
    got = get_params(parameters, names, fname)
    first = f"W{gates[0]}"
    W0 = check(got[0], f"parameters['{first}']", (("n_a", None), ("n_a+n_x", None)), dtype)
    n_a, cols = W0.shape
    if cols - n_a < 1:
        raise ValueError(
            f"parameters['{first}'] must have shape (n_a, n_a+n_x) with n_x >= 1, got "
            f"({n_a}, {cols})"
        )
    w_dims, b_dims = (("n_a", n_a), ("n_a+n_x", cols)), (("n_a", n_a), ("1", 1))
    p = {}
    for k, name in enumerate(names[: 2 * len(gates)]):
        p[name] = check(got[k], f"parameters['{name}']", w_dims if name[0] == "W" else b_dims,
                        dtype)
    if output:
        p["Wy"] = check(got[-2], "parameters['Wy']", (("n_y", None), ("n_a", n_a)), dtype)
        n_y = p["Wy"].shape[0]
        p["by"] = check(got[-1], "parameters['by']", (("n_y", n_y), ("1", 1)), dtype)
    return p


def params(kind, parameters, fname, dtype, output=True) -> dict:
    """The checked parameters of a cell of ``kind`` ("rnn", "lstm" or "gru")."""
    if kind == "rnn":
        return rnn_params(parameters, fname, dtype, output)
    return gated_params(parameters, GATES[kind], fname, dtype, output)


def forward_inputs(fname, kind, parameters, x, states, sequence=False):
    """Check the arguments of a forward function; return ``(p, x, *states)``, all checked.

    x is ``xt (n_x, m)``, or ``x (n_x, m, T_x)`` when ``sequence``; ``states`` maps the
    names of the state arguments to their arrays, each ``(n_a, m)``. Every array is
    returned in one dtype: float64 if any input is float64, else float32.
    """
    values = parameters.values() if isinstance(parameters, Mapping) else ()
    dtype = common_dtype(x, *states.values(), *values)
    p = params(kind, parameters, fname, dtype)
    W = p["Wax"] if kind == "rnn" else p[f"W{GATES[kind][0]}"]  # (n_a, n_x) or (n_a, n_a+n_x)
    n_a = W.shape[0]
    n_x = W.shape[1] - (0 if kind == "rnn" else n_a)
    if sequence:
        x = check(x, "x", (("n_x", n_x), ("m", None), ("T_x", None)), dtype)
    else:
        x = check(x, "xt", (("n_x", n_x), ("m", None)), dtype)
    m = x.shape[1]
    return (p, x, *(check(s, name, (("n_a", n_a), ("m", m)), dtype)
                    for name, s in states.items()))


def cell_cache(kind, cache, fname) -> tuple:
    """Check the cache of a cell's forward; return it and its checked parameters ``p``.

    ``p`` holds the parameters without the output layer, in the dtype of the cached
    state ``a_next`` (the cache's first entry).
    """
    fields = CACHE_FIELDS[kind]
    if not isinstance(cache, tuple) or len(cache) != fields.count(",") + 1:
        raise TypeError(f"cache must be the tuple {fields} returned by {kind}_cell_forward")
    a_next = cache[0]
    if not isinstance(a_next, np.ndarray) or a_next.dtype.kind != "f" or a_next.ndim != 2:
        raise TypeError("the cache's first entry must be the state a_next, a float array "
                        f"(n_a, m), got {type(a_next).__name__}")
    return cache, params(kind, cache[-1], fname, a_next.dtype, output=False)


def grad_input(g, name, a_next) -> np.ndarray:
    """Check an upstream gradient such as da_next against the cached state (n_a, m)."""
    n_a, m = a_next.shape
    return check(g, name, (("n_a", n_a), ("m", m)), a_next.dtype)


def sequence_caches(kind, caches, da) -> tuple:
    """Check the caches of a sequence forward and the gradient ``da`` (n_a, m, T_x).

    Returns ``(list of step caches, x, da)``. ``da`` may have fewer steps than the
    forward pass (the first T_x cached steps are then used), never more.
    """
    fields, fname = CACHE_FIELDS[kind], f"{kind}_forward"
    n = fields.count(",") + 1
    if (not isinstance(caches, tuple) or len(caches) != 2 or not isinstance(caches[0], list)
            or not caches[0]
            or not all(isinstance(c, tuple) and len(c) == n for c in caches[0])):
        raise TypeError(f"caches must be the pair (list of per-step caches {fields}, x) "
                        f"returned by {fname}")
    steps, x = caches
    a1 = check(steps[0][0], "caches[0][0][0] (a_next)", (("n_a", None), ("m", None)))
    n_a, m = a1.shape
    x = check(x, "caches[1] (x)", (("n_x", None), ("m", m), ("T_x", len(steps))))
    da = check(da, "da", (("n_a", n_a), ("m", m), ("T_x", None)), a1.dtype)
    if not 1 <= da.shape[2] <= len(steps):
        raise ValueError(f"da has {da.shape[2]} time steps but the caches of {fname} hold "
                         f"{len(steps)}; expected 1 <= T_x <= {len(steps)}")
    return steps, x, da
