"""Shared test utilities: layer kinds, random parameters and the linear-functional loss.

The loss of every gradient test is a random linear functional of all the outputs::

    L = sum(out * R1) + sum(h_n * R2) (+ sum(c_n * R3) for an LSTM)

so that ``dout = R1`` and ``dstate = R2`` (LSTM ``(R2, R3)``) are its exact upstream gradients.
"""

from __future__ import annotations

import numpy as np

import rnnkit
from rnnkit.gradcheck import numerical_gradient, rel_error

# (layer class, cell class, extra constructor arguments, test id)
KINDS = [
    (rnnkit.RNN, rnnkit.RNNCell, {"nonlinearity": "tanh"}, "rnn-tanh"),
    (rnnkit.RNN, rnnkit.RNNCell, {"nonlinearity": "relu"}, "rnn-relu"),
    (rnnkit.LSTM, rnnkit.LSTMCell, {}, "lstm"),
    (rnnkit.GRU, rnnkit.GRUCell, {"reset_after": True}, "gru"),
    (rnnkit.GRU, rnnkit.GRUCell, {"reset_after": False}, "gru-reset-before"),
]
KIND_IDS = [k[3] for k in KINDS]
LAYER_KINDS = [(k[0], k[2]) for k in KINDS]
CELL_KINDS = [(k[1], k[2]) for k in KINDS]


def randomize(params: dict, rng: np.random.Generator, scale: float = 0.7) -> None:
    """Fill every array of ``params`` in place with U(-scale, scale) (biases included)."""
    for p in params.values():
        p[...] = rng.uniform(-scale, scale, p.shape)


def make_layer(cls, kw, input_size=3, hidden_size=2, seed=0, dtype=np.float64, **more):
    """A layer with every parameter (biases and learned states too) random and non-zero."""
    layer = cls(input_size, hidden_size, dtype=dtype, rng=seed, **kw, **more)
    rng = np.random.default_rng(seed + 1000)
    randomize(layer.params, rng)
    if kw.get("nonlinearity") == "relu":
        # mostly positive weights and biases keep tiny relu layers from dying (a check of an
        # all-zero gradient proves nothing)
        for k, p in layer.params.items():
            if "W_" in k:
                p[...] = rng.uniform(-0.1, 0.7, p.shape)
            elif k.endswith(".b"):
                p[...] = rng.uniform(0.1, 0.6, p.shape)
    return layer


def is_lstm(layer) -> bool:
    return layer.kind == "lstm"


def random_state(layer, B: int, rng: np.random.Generator, scale: float = 0.5):
    """A random initial state of ``layer`` for a batch of B: (L*dirs, B, H), LSTM (h, c)."""
    shape = (layer.num_layers * layer.num_directions, B, layer.hidden_size)
    h = rng.uniform(-scale, scale, shape).astype(layer.dtype)
    if is_lstm(layer):
        return h, rng.uniform(-scale, scale, shape).astype(layer.dtype)
    return h


def state_arrays(state) -> list:
    """The arrays of a state (one array, or the LSTM pair) as a list."""
    return list(state) if isinstance(state, (tuple, list)) else [state]


def probes(out, state, rng: np.random.Generator):
    """Random R1 shaped like ``out`` and R2 (LSTM (R2, R3)) shaped like ``state``."""
    R1 = rng.standard_normal(out.shape).astype(out.dtype)
    Rs = [rng.standard_normal(s.shape).astype(s.dtype) for s in state_arrays(state)]
    return R1, (tuple(Rs) if isinstance(state, tuple) else Rs[0])


def linear_loss(out, state, R1, Rstate) -> float:
    """L = sum(out * R1) + sum(h_n * R2) (+ sum(c_n * R3)), as a Python float."""
    total = float(np.sum(out * R1))
    for s, r in zip(state_arrays(state), state_arrays(Rstate), strict=True):
        total += float(np.sum(s * r))
    return total


def layer_gradcheck(layer, x, state=None, mask=None, lengths=None, seed=0, rng_seed=None,
                    tol=1e-6):
    """Finite-difference check of every parameter, the input and the initial state.

    Runs ``layer.forward`` then ``layer.backward(R1, cache, dstate=R2)`` for the linear
    functional loss and compares every gradient with central differences. ``rng_seed``
    re-seeds ``layer.rng`` before every forward (fixes a dropout mask). Returns the
    relative errors by name; asserts each is below ``tol`` and that the gradients are not
    all zero.
    """

    def run():
        if rng_seed is not None:
            layer.rng = np.random.default_rng(rng_seed)
        return layer.forward(x, state, mask=mask, lengths=lengths)

    out, st, cache = run()
    R1, Rs = probes(out, st, np.random.default_rng(seed + 7))
    dx, dstate0, grads = layer.backward(R1, cache, dstate=Rs)
    assert set(grads) == set(layer.params)

    def f():
        o, s, _ = run()
        return linear_loss(o, s, R1, Rs)

    checks = {"x": (x, dx)}
    if state is not None:
        for name, s, g in zip(("h0_state", "c0_state"), state_arrays(state),
                              state_arrays(dstate0), strict=False):
            checks[name] = (s, g)
    for name, p in layer.params.items():
        checks[name] = (p, grads[name])
    errors = {}
    for name, (arr, analytic) in checks.items():
        assert analytic.shape == arr.shape, name
        num = numerical_gradient(f, arr)
        errors[name] = rel_error(num, analytic)
    assert max(errors.values()) < tol, errors
    # a check of zeros against zeros proves nothing: the weights must receive gradient
    for name in ("x", *[k for k in layer.params if "W_" in k]):
        assert np.abs(checks[name][1]).max() > 1e-6, f"{name}: gradient is all zero"
    return errors


def cell_gradcheck(cell, x, state, seed=0, tol=1e-6):
    """Finite-difference check of a cell's parameters, input and state (see layer_gradcheck)."""
    new, cache = cell.forward(x, state)
    rng = np.random.default_rng(seed + 7)
    Rs = [rng.standard_normal(s.shape) for s in state_arrays(new)]
    dnew = tuple(Rs) if isinstance(new, tuple) else Rs[0]
    dx, dprev, grads = cell.backward(dnew, cache)
    assert set(grads) == set(cell.params)

    def f():
        s, _ = cell.forward(x, state)
        return sum(float(np.sum(a * r)) for a, r in zip(state_arrays(s), Rs, strict=True))

    checks = {"x": (x, dx)}
    for name, s, g in zip(("h", "c"), state_arrays(state), state_arrays(dprev), strict=False):
        checks[name] = (s, g)
    for name, p in cell.params.items():
        checks[name] = (p, grads[name])
    errors = {name: rel_error(numerical_gradient(f, a), g) for name, (a, g) in checks.items()}
    assert max(errors.values()) < tol, errors
    for name in ("x", "W_x", "W_h"):
        assert np.abs(checks[name][1]).max() > 1e-6, f"{name}: gradient is all zero"
    return errors
