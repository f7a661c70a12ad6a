"""The one-step layers ``RNNCell``, ``LSTMCell`` and ``GRUCell`` (as PyTorch's ``*Cell``).

A cell is a layer over one time step: ``forward(x (B, D), state) -> (state', cache)`` and
``backward(dstate', cache) -> (dx, dstate, grads)``. It runs the one-step sequence of a
one-layer :class:`~rnnkit.recurrent.Recurrent`, so the same step functions of
:mod:`rnnkit.cells` as every other path. Parameters ``W_x, W_h, b`` (GRU reset after: also
``b_hn``) as in :mod:`rnnkit.cells`.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_array, shape_str
from .recurrent import GRU, LSTM, RNN, Recurrent, RecurrentCache


class _Cell:
    """One time step: ``forward(x (B, D), state) -> (state', cache)``.

    Runs the same code as the sequence layers (a one-step sequence). ``backward(dstate',
    cache) -> (dx (B, D), dstate, grads)``. Parameters ``W_x, W_h, b`` (GRU reset after:
    also ``b_hn``) as in :mod:`rnnkit.cells`.
    """

    layer_cls = Recurrent

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, rng=None, **kw):
        self._layer = self.layer_cls(input_size, hidden_size, 1, bias=bias, dtype=dtype,
                                     rng=rng, **kw)
        self.params = {k[3:]: v for k, v in self._layer.params.items()}
        self._layer.params = {"l0." + k: v for k, v in self.params.items()}
        self.input_size, self.hidden_size, self.dtype = input_size, hidden_size, self._layer.dtype

    def _sync(self):
        self._layer.params = {"l0." + k: v for k, v in self.params.items()}

    def _layer_state(self, state, B: int, name: str):
        """Check a cell state (B, H) (LSTM: pair) and return the layer's (1, B, H) form."""
        shape = (B, self.hidden_size)
        if self._layer.kind == "lstm":
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(f"{name} of an LSTMCell must be a pair (h, c) of arrays "
                                f"{shape_str(shape)}, got {type(state).__name__}")
            h = check_array(state[0], f"{name}[0] (h)", shape, self.dtype)
            c = check_array(state[1], f"{name}[1] (c)", shape, self.dtype)
            return h[None], c[None]
        if isinstance(state, (tuple, list)):
            raise TypeError(f"{name} of a {type(self).__name__} is one array "
                            f"{shape_str(shape)}, got a {type(state).__name__}")
        return check_array(state, name, shape, self.dtype)[None]

    def forward(self, x, state=None):
        """x (B, D); state (B, H) (LSTM: (h, c)) or None for zeros.

        Returns the new state (B, H) (LSTM: (h, c)) and a cache."""
        self._sync()
        x = check_array(x, "x", ("B", self.input_size), self.dtype)
        if state is not None:
            state = self._layer_state(state, x.shape[0], "state")
        _, s, cache = self._layer.forward(x[:, None, :], state)
        if self._layer.kind == "lstm":
            return (s[0][0], s[1][0]), cache
        return s[0], cache

    def backward(self, dstate, cache):
        """dstate: gradient w.r.t. the new state, (B, H) (LSTM: (dh, dc)).

        Returns dx (B, D), dstate_prev (B, H) (LSTM: (dh, dc)), grads keyed like params."""
        if not isinstance(cache, RecurrentCache):
            raise TypeError(f"cache must be the cache returned by forward, got "
                            f"{type(cache).__name__}")
        dstate = self._layer_state(dstate, cache.batch, "dstate")
        dx, ds, g = self._layer.backward(None, cache, dstate)
        grads = {k[3:]: v for k, v in g.items()}
        if self._layer.kind == "lstm":
            return dx[:, 0], (ds[0][0], ds[1][0]), grads
        return dx[:, 0], ds[0], grads

    __call__ = forward


class RNNCell(_Cell):
    """One step of :class:`RNN`: ``h' = tanh(x @ W_x + h @ W_h + b)`` (``nonlinearity``)."""

    layer_cls = RNN


class LSTMCell(_Cell):
    """One step of :class:`LSTM`: state (h, c), gates i, f, g, o."""

    layer_cls = LSTM


class GRUCell(_Cell):
    """One step of :class:`GRU` (``reset_after`` selects the form)."""

    layer_cls = GRU
