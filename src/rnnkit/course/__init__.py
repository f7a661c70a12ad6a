"""The seeds' step-by-step API: the functions of the "Sequence Models" course, week 1.

"Building your Recurrent Neural Network - Step by Step" and "Dinosaurus Island -
Character level language model", with the course's names, argument orders, shapes,
parameter dicts, caches and gradient dicts, so that every equation can be seen and
checked. Guide: ``docs/course.md``.

Letters and layout (the course's **column layout**: one column per example)::

    n_x  input features       n_a  hidden units       n_y  outputs
    m    examples (batch)     T_x  time steps
    x (n_x, m, T_x)   xt (n_x, m)   a (n_a, m, T_x)   a_prev, a_next (n_a, m)

**One implementation of the math.** The recurrent steps are not written here: every
function converts its column-layout arrays to the engine's row layout
(:mod:`rnnkit.cells`, time-major ``(T, m, D)``, ``pre = x @ W_x + h @ W_h + b``) and
calls :func:`~rnnkit.cells.direction_forward` / :func:`~rnnkit.cells.direction_backward`.
Only the output layer ``softmax(Wya a + by)`` and the Dinosaurus loss live here.

========  ====================================================================
cell      conversion to the engine
========  ====================================================================
RNN       ``W_x = Wax.T``, ``W_h = Waa.T``, ``b = ba[:, 0]``
LSTM      ``W = [Wi; Wf; Wc; Wo]`` (engine gate order i, f, g, o; Γu = i, c̃ = g):
          ``W_h`` from the hidden columns ``[:, :n_a]``, ``W_x`` from the input
          columns ``[:, n_a:]`` of each ``(n_a, n_a+n_x)`` matrix, transposed
GRU       engine ``reset_after=False``, gates r, z, n with ``z = 1 - Γu``: the
          engine's z-weights are ``-Wu`` and its z-bias ``-bu`` (so ``dWu = -dW_z``)
========  ====================================================================

The Dinosaurus functions (:func:`sample`, :func:`model`) reproduce the course's
published outputs, which fix their randomness with ``np.random.seed``. That use of
numpy's **global** random state is a deliberate compatibility exception confined to this
module; the rest of rnnkit takes a ``np.random.Generator`` or a seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import numpy as np

from .._checks import check_array
from ..cells import direction_backward, direction_forward
from .gru import gru_backward, gru_cell_backward, gru_cell_forward, gru_forward
from .lstm import lstm_backward, lstm_cell_backward, lstm_cell_forward, lstm_forward
from .rnn import rnn_backward, rnn_cell_backward, rnn_cell_forward, rnn_forward
from .rnn_utils import sigmoid, softmax

__all__ = [
    "softmax",
    "sigmoid",
    "rnn_cell_forward",
    "rnn_forward",
    "rnn_cell_backward",
    "rnn_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "lstm_cell_backward",
    "lstm_backward",
    "gru_cell_forward",
    "gru_forward",
    "gru_cell_backward",
    "gru_backward",
    "clip",
    "sample",
    "optimize",
    "model",
    "load_dinos",
    "char_maps",
]


# =========================================================================== checks
def _fmt(dims, sizes) -> str:
    sym = "(" + ", ".join(s for s, _ in dims) + ")"
    num = "(" + ", ".join(str(n) for n in sizes) + ")"
    return sym if sym == num else f"{sym} = {num}"


def _check(x, name: str, dims, dtype=None) -> np.ndarray:
    """Check a float array against ``dims`` = ((symbol, size or None), ...).

    Non-float arrays raise TypeError; a wrong rank or size, or NaN/inf, ValueError. The
    message names the argument and the expected shape both in symbols and in numbers.
    """
    x = check_array(x, name, tuple(s for s, _ in dims), dtype)
    if any(n is not None and g != n for g, (_, n) in zip(x.shape, dims, strict=True)):
        want = [n if n is not None else g for g, (_, n) in zip(x.shape, dims, strict=True)]
        raise ValueError(
            f"{name} must have shape {_fmt(dims, want)}, got "
            f"({', '.join(str(g) for g in x.shape)})"
        )
    return x


def _dtype(*arrays) -> np.dtype:
    """float64 if any float array is float64, else float32 (non-floats are rejected later)."""
    kinds = [a.dtype for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return np.result_type(np.float32, *kinds) if kinds else np.dtype(np.float64)


def _params(parameters, names, fname: str) -> list:
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


def _gated_params(parameters, gates, fname, dtype=None, output=True):
    """Checked LSTM/GRU parameters: W{g} (n_a, n_a+n_x), b{g} (n_a, 1) for each gate g."""
    names = [p for g in gates for p in (f"W{g}", f"b{g}")] + (["Wy", "by"] if output else [])
    got = _params(parameters, names, fname)
    dtype = dtype or _dtype(*got)
    first = f"W{gates[0]}"
    W0 = _check(got[0], f"parameters['{first}']", (("n_a", None), ("n_a+n_x", None)), dtype)
    n_a, cols = W0.shape
    n_x = cols - n_a
    if n_x < 1:
        raise ValueError(
            f"parameters['{first}'] must have shape (n_a, n_a+n_x) with n_x >= 1, got "
            f"({n_a}, {cols})"
        )
    w_dims, b_dims = (("n_a", n_a), ("n_a+n_x", n_a + n_x)), (("n_a", n_a), ("1", 1))
    out = {}
    for k, name in enumerate(names[: 2 * len(gates)]):
        dims = w_dims if name[0] == "W" else b_dims
        out[name] = _check(got[k], f"parameters['{name}']", dims, dtype)
    n_y = None
    if output:
        Wy = _check(got[-2], "parameters['Wy']", (("n_y", None), ("n_a", n_a)), dtype)
        n_y = Wy.shape[0]
        out["Wy"] = Wy
        out["by"] = _check(got[-1], "parameters['by']", (("n_y", n_y), ("1", 1)), dtype)
    return out, n_x, n_a, n_y


def _cache_error(fname: str, what: str) -> TypeError:
    return TypeError(f"cache must be the {what} returned by {fname}")


def _cached_dtype(a_next) -> np.dtype:
    """dtype of a cached state a_next (n_a, m), which must be a float array."""
    if not isinstance(a_next, np.ndarray) or a_next.dtype.kind != "f" or a_next.ndim != 2:
        raise TypeError("the cache's first entry must be the state a_next, a float array "
                        f"(n_a, m), got {type(a_next).__name__}")
    return a_next.dtype


# =========================================================================== shared
def _log_softmax(z: np.ndarray) -> np.ndarray:
    s = z - z.max(axis=0, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=0, keepdims=True))


def _to_engine(x: np.ndarray) -> np.ndarray:
    """Column layout (n, m, T) -> the engine's time-major rows (T, m, n), contiguous."""
    return np.ascontiguousarray(x.transpose(2, 1, 0))


def _outputs(W: np.ndarray, b: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """softmax(W a + b) at every step: hs (T, m, n_a) -> (n_y, m, T)."""
    z = np.einsum("ya,tma->ytm", W, hs) + b[:, :, None]
    return softmax(z).transpose(0, 2, 1)


def _stack_gates(mats, n_a):
    """Course gate matrices (n_a, n_a+n_x) -> engine W_x (n_x, G*n_a), W_h (n_a, G*n_a)."""
    W_x = np.ascontiguousarray(np.concatenate([W[:, n_a:].T for W in mats], axis=1))
    W_h = np.ascontiguousarray(np.concatenate([W[:, :n_a].T for W in mats], axis=1))
    return W_x, W_h


def _unstack_gate(grads, k, n_a, sign=1.0):
    """Gate k of the engine's gradients -> course (dW (n_a, n_a+n_x), db (n_a, 1))."""
    sl = slice(k * n_a, (k + 1) * n_a)
    dW = np.concatenate([grads["W_h"][:, sl].T, grads["W_x"][:, sl].T], axis=1)
    db = grads["b"][sl][:, None]
    if sign != 1.0:
        dW, db = -dW, -db
    return dW, db


def _check_seq_caches(caches, n_fields, fname, what):
    if (not isinstance(caches, tuple) or len(caches) != 2 or not isinstance(caches[0], list)
            or not caches[0] or not all(isinstance(c, tuple) and len(c) == n_fields
                                        for c in caches[0])):
        raise TypeError(f"caches must be the pair (list of per-step caches {what}, x) "
                        f"returned by {fname}")
    return caches[0]


def _seq_steps(da, steps, n_a, fname):
    """Check da (n_a, m, T) against the caches; T = da's steps (at most the cached ones)."""
    m = steps[0][0].shape[1]
    da = _check(da, "da", (("n_a", n_a), ("m", m), ("T_x", None)))
    T = da.shape[2]
    if not 1 <= T <= len(steps):
        raise ValueError(f"da has {T} time steps but the caches of {fname} hold "
                         f"{len(steps)}; expected 1 <= T_x <= {len(steps)}")
    return da, T


# =========================================================================== Dinosaurus
_DINO_GRADS = ("dWaa", "dWax", "dWya", "db", "dby")


def clip(gradients, maxValue):
    """Clip every gradient element-wise to [-maxValue, maxValue], in place (as the course).

    Args:
        gradients: dict with ``dWaa, dWax, dWya, db, dby`` (float arrays of any shape);
            the arrays themselves are clipped (``np.clip(..., out=...)``).
        maxValue: positive number.
    Returns:
        a new dict holding exactly those five (clipped) arrays; other keys are dropped.
    """
    if isinstance(maxValue, bool) or not isinstance(maxValue, (int, float, np.floating,
                                                                 np.integer)):
        raise TypeError(f"maxValue must be a positive number, got {maxValue!r}")
    if not maxValue > 0:
        raise ValueError(f"maxValue must be a positive number, got {maxValue}")
    got = _params(gradients, _DINO_GRADS, "clip")
    for name, g in zip(_DINO_GRADS, got, strict=True):
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError(f"gradients['{name}'] must be a float numpy array, got "
                            f"{getattr(g, 'dtype', type(g).__name__)}")
        np.clip(g, -maxValue, maxValue, out=g)
    return dict(zip(_DINO_GRADS, got, strict=True))


def _dino_params(parameters, fname):
    """Checked Dinosaurus parameters Wax (n_a, V), Waa, Wya (V, n_a), b (n_a, 1), by (V, 1)."""
    names = ("Wax", "Waa", "Wya", "b", "by")
    got = _params(parameters, names, fname)
    dt = np.float64
    Wax = _check(got[0], "parameters['Wax']", (("n_a", None), ("vocab_size", None)), dt)
    n_a, V = Wax.shape
    Waa = _check(got[1], "parameters['Waa']", (("n_a", n_a), ("n_a", n_a)), dt)
    Wya = _check(got[2], "parameters['Wya']", (("vocab_size", V), ("n_a", n_a)), dt)
    b = _check(got[3], "parameters['b']", (("n_a", n_a), ("1", 1)), dt)
    by = _check(got[4], "parameters['by']", (("vocab_size", V), ("1", 1)), dt)
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": b, "by": by}, n_a, V


def _dino_engine(p) -> dict:
    return {"W_x": p["Wax"].T, "W_h": p["Waa"].T, "b": p["b"][:, 0]}


def _check_newline(char_to_ix, V):
    if not isinstance(char_to_ix, Mapping) or "\n" not in char_to_ix:
        raise ValueError("char_to_ix must be a dict mapping characters to indices that "
                         "includes the newline '\\n'")
    nl = char_to_ix["\n"]
    if isinstance(nl, bool) or not isinstance(nl, (int, np.integer)) or not 0 <= nl < V:
        raise ValueError(f"char_to_ix['\\n'] must be an index in [0, {V}), got {nl!r}")
    return int(nl)


def sample(parameters, char_to_ix, seed):
    """Sample a name, one character at a time, feeding each sample back in (the course's).

    Starts from a zero input x<1> and a zero state. At each step: ``a = tanh(Wax x +
    Waa a_prev + b)``, ``y = softmax(Wya a + by)``, then ``np.random.seed(counter + seed)``
    and ``idx = np.random.choice(range(vocab_size), p=y)``; x becomes the one-hot of idx
    and both ``seed`` and ``counter`` are incremented. Stops after the newline index or
    after 50 characters (then a newline index is appended).

    Uses numpy's global random state (the course's protocol, kept for reproducibility).

    Args:
        parameters: dict with ``Wax (n_a, vocab_size)``, ``Waa (n_a, n_a)``,
            ``Wya (vocab_size, n_a)``, ``b (n_a, 1)``, ``by (vocab_size, 1)``.
        char_to_ix: dict character -> index; must contain ``'\\n'``.
        seed: int.
    Returns:
        list of the sampled indices (Python ints), ending with the newline index.
    """
    p, n_a, V = _dino_params(parameters, "sample")
    newline = _check_newline(char_to_ix, V)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    engine = _dino_engine(p)
    x = np.zeros((1, 1, V))
    h = np.zeros((1, n_a))
    indices: list[int] = []
    idx, counter = -1, 0
    while idx != newline and counter != 50:
        h = direction_forward("rnn", engine, x, h).hs[1]  # (1, n_a)
        y = softmax(p["Wya"] @ h.T + p["by"])
        np.random.seed(counter + seed)  # noqa: NPY002 - the course's protocol
        idx = int(np.random.choice(range(V), p=y.ravel()))  # noqa: NPY002
        indices.append(idx)
        x = np.zeros((1, 1, V))
        x[0, 0, idx] = 1.0
        seed += 1
        counter += 1
    if counter == 50:
        indices.append(newline)
    return indices


def _dino_sequences(X, Y, V):
    if not isinstance(X, (list, tuple)) or not isinstance(Y, (list, tuple)):
        raise TypeError(f"X and Y must be lists of indices, got {type(X).__name__} and "
                        f"{type(Y).__name__}")
    if len(X) != len(Y) or not X:
        raise ValueError(f"X and Y must be non-empty and of the same length, got {len(X)} "
                         f"and {len(Y)}")
    for name, seq, none_ok in (("X", X, True), ("Y", Y, False)):
        for t, ix in enumerate(seq):
            if ix is None and none_ok:
                continue
            if isinstance(ix, bool) or not isinstance(ix, (int, np.integer)) or not 0 <= ix < V:
                allowed = f"an index in [0, {V})" + (" or None" if none_ok else "")
                raise ValueError(f"{name}[{t}] must be {allowed}, got {ix!r}")


def _dino_step(X, Y, a_prev, p, learning_rate):
    """Forward, backward, clip at 5 and SGD update of ``p`` in place (inputs checked)."""
    T, V = len(X), p["by"].shape[0]
    x = np.zeros((T, 1, V))
    for t, ix in enumerate(X):
        if ix is not None:  # None is the zero input of the first step
            x[t, 0, ix] = 1.0
    dc = direction_forward("rnn", _dino_engine(p), x, a_prev.T)
    A = dc.hs[1:, 0, :].T  # (n_a, T)
    Z = p["Wya"] @ A + p["by"]  # (V, T)
    cols = np.arange(T)
    loss = float(-_log_softmax(Z)[Y, cols].sum())  # L = sum_t -log y_hat<t>[Y<t>]
    dZ = softmax(Z)
    dZ[Y, cols] -= 1.0
    dA = p["Wya"].T @ dZ  # (n_a, T): what every step's output sends back to its state
    _, _, _, g = direction_backward(dc, np.ascontiguousarray(dA.T)[:, None, :], need_dx=False)
    gradients = {"dWaa": g["W_h"].T.copy(), "dWax": g["W_x"].T.copy(), "dWya": dZ @ A.T,
                 "db": g["b"][:, None].copy(), "dby": dZ.sum(axis=1, keepdims=True)}
    gradients = clip(gradients, 5)
    for name in ("Wax", "Waa", "Wya", "b", "by"):
        p[name] += -learning_rate * gradients["d" + name]
    return loss, gradients, dc.hs[T].T.copy()


def optimize(X, Y, a_prev, parameters, learning_rate=0.01):
    """One step of the Dinosaurus training: forward, backward, clip at 5, SGD update.

    Loss ``L = sum_t -log(y_hat<t>[Y[t]])`` of the character RNN; gradients clipped
    element-wise to [-5, 5] (:func:`clip`); then ``W -= learning_rate * dW`` for every
    parameter, in place in ``parameters`` (as the course).

    Args:
        X: list of T indices into the vocabulary; ``None`` means a zero input vector.
        Y: list of T target indices (X shifted one to the left, then the newline).
        a_prev: hidden state before the first step, (n_a, 1).
        parameters: dict with ``Wax (n_a, vocab_size)``, ``Waa (n_a, n_a)``,
            ``Wya (vocab_size, n_a)``, ``b (n_a, 1)``, ``by (vocab_size, 1)`` (float64;
            updated in place).
        learning_rate: positive number.
    Returns:
        loss (float), gradients (dict ``dWaa, dWax, dWya, db, dby``, clipped), and the
        last hidden state a_last (n_a, 1).
    """
    p, n_a, V = _dino_params(parameters, "optimize")
    if any(p[k] is not parameters[k] for k in p):
        raise TypeError("parameters must hold float64 numpy arrays (they are updated in place)")
    _dino_sequences(X, Y, V)
    a_prev = _check(a_prev, "a_prev", (("n_a", n_a), ("1", 1)), np.float64)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.floating)):
        raise TypeError(f"learning_rate must be a positive number, got {learning_rate!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate}")
    return _dino_step(X, Y, a_prev, p, learning_rate)


def _initialize_parameters(n_a, n_x, n_y):
    np.random.seed(1)  # noqa: NPY002 - the course's protocol
    Wax = np.random.randn(n_a, n_x) * 0.01  # noqa: NPY002
    Waa = np.random.randn(n_a, n_a) * 0.01  # noqa: NPY002
    Wya = np.random.randn(n_y, n_a) * 0.01  # noqa: NPY002
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": np.zeros((n_a, 1)),
            "by": np.zeros((n_y, 1))}


def _get_sample(indices, ix_to_char) -> str:
    txt = "".join(ix_to_char[ix] for ix in indices)
    return txt[0].upper() + txt[1:]


def model(data_x, ix_to_char, char_to_ix, num_iterations=35000, n_a=50, dino_names=7,
          vocab_size=27, verbose=False):
    """Train the Dinosaurus character-level RNN and print sampled names (the course's).

    Protocol (it reproduces the course's printed output for the same inputs):
    parameters from ``np.random.seed(1)``: ``Wax, Waa, Wya ~ randn * 0.01`` drawn in
    that order, biases zero; smoothed loss starting at ``-log(1/vocab_size) * dino_names``,
    updated as ``0.999 * loss + 0.001 * current``; the examples are the stripped lines,
    shuffled once after ``np.random.seed(0)``; iteration j trains on
    ``examples[j % len(examples)]`` with ``X = [None] + indices`` and
    ``Y = indices + [newline]`` through :func:`optimize` (learning rate 0.01), carrying the
    hidden state across iterations. Every 2000 iterations it prints
    ``Iteration: %d, Loss: %f`` and ``dino_names`` names from :func:`sample` with seeds
    0, 1, 2, ... (first letter capitalised).

    Uses numpy's global random state (the course's protocol, kept for reproducibility).

    Args:
        data_x: the training names, a list of strings, one name per line, already
            lower-cased, as the course calls it: ``model(data.split("\\n"), ...)``.
        ix_to_char: dict index -> character; char_to_ix: dict character -> index
            (see :func:`char_maps`).
        num_iterations: number of SGD steps (one name each).
        n_a: hidden units. dino_names: names sampled at each report.
        vocab_size: number of characters (indices 0 .. vocab_size-1).
        verbose: also print the course's debugging lines (X and Y of the first example).
    Returns:
        parameters (dict ``Wax (n_a, vocab_size)``, ``Waa (n_a, n_a)``,
        ``Wya (vocab_size, n_a)``, ``b (n_a, 1)``, ``by (vocab_size, 1)``) and the last
        sampled name (capitalised, ending with ``'\\n'``; ``"abc"`` if none was sampled).
    """
    if isinstance(data_x, str) or not isinstance(data_x, (list, tuple)):
        raise TypeError("data_x must be a list of names (strings), e.g. "
                        f"load_dinos().split('\\n'), got {type(data_x).__name__}")
    for name, val, least in (("num_iterations", num_iterations, 0), ("n_a", n_a, 1),
                             ("dino_names", dino_names, 0), ("vocab_size", vocab_size, 1)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {val!r}")
    examples = []
    for i, line in enumerate(data_x):
        if not isinstance(line, str):
            raise TypeError(f"data_x[{i}] must be a string, got {type(line).__name__}")
        examples.append(line.strip())
    if not examples:
        raise ValueError("data_x must hold at least one name")
    if not isinstance(char_to_ix, Mapping) or not isinstance(ix_to_char, Mapping):
        raise TypeError("char_to_ix and ix_to_char must be dicts (see char_maps)")
    newline = _check_newline(char_to_ix, vocab_size)
    for i, name in enumerate(examples):
        for ch in name:
            ix = char_to_ix.get(ch)
            if ix is None or not 0 <= ix < vocab_size:
                raise ValueError(f"data_x[{i}] = {name!r} has the character {ch!r}, which "
                                 f"char_to_ix does not map into [0, {vocab_size})")
    for ix in range(vocab_size):
        if ix not in ix_to_char:
            raise ValueError(f"ix_to_char has no character for index {ix}")

    parameters = _initialize_parameters(n_a, vocab_size, vocab_size)
    loss = -np.log(1.0 / vocab_size) * dino_names
    np.random.seed(0)  # noqa: NPY002 - the course's protocol
    np.random.shuffle(examples)  # noqa: NPY002
    a_prev = np.zeros((n_a, 1))
    last_dino_name = "abc"
    for j in range(num_iterations):
        idx = j % len(examples)
        single_example_ix = [char_to_ix[ch] for ch in examples[idx]]
        X = [None] + single_example_ix
        Y = single_example_ix + [newline]
        curr_loss, _, a_prev = _dino_step(X, Y, a_prev, parameters, 0.01)
        if verbose and j in (0, len(examples) - 1, len(examples)):
            print("j = ", j, "idx = ", idx)
        if verbose and j == 0:
            print("single_example =", examples[idx])
            print("single_example_chars", list(examples[idx]))
            print("single_example_ix", single_example_ix)
            print(" X = ", X, "\n", "Y =       ", Y, "\n")
        loss = loss * 0.999 + curr_loss * 0.001
        if j % 2000 == 0:
            print(f"Iteration: {j}, Loss: {loss:f}" + "\n")
            for seed in range(dino_names):
                last_dino_name = _get_sample(sample(parameters, char_to_ix, seed), ix_to_char)
                print(last_dino_name.replace("\n", ""))
            print("\n")
    return parameters, last_dino_name


def load_dinos() -> str:
    """The course's ``dinos.txt`` (1,536 dinosaur names, one per line), lower-cased.

    Returns the text (19,909 characters, no trailing newline); ``text.split("\\n")`` is
    the list of names that :func:`model` takes.
    """
    return resources.files("rnnkit").joinpath("data/dinos.txt").read_text("ascii").lower()


def char_maps(text: str):
    """The course's vocabulary maps: sorted characters of ``text``, enumerated.

    For the dinosaur names: ``'\\n' -> 0``, ``'a' -> 1``, ..., ``'z' -> 26``.
    Returns ``char_to_ix`` (dict str -> int) and ``ix_to_char`` (dict int -> str).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    chars = sorted(set(text))
    return {ch: i for i, ch in enumerate(chars)}, dict(enumerate(chars))
