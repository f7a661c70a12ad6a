"""The recurrent layers ``RNN``, ``LSTM`` and ``GRU``: deep, bidirectional, with dropout.

Public layout is batch-first: ``x (B, T, D)``, ``out (B, T, dirs*H)`` (or ``(B, T, H)``
when a bidirectional layer merges by sum/mul/ave). States are ``(num_layers*dirs, B, H)``
ordered ``layer 0 forward, layer 0 reverse, layer 1 forward, ...`` as in PyTorch; the
LSTM state is the pair ``(h, c)``.

Every layer follows one contract::

    out, state, cache = layer.forward(x, state=None, mask=None)
    dx, dstate, grads = layer.backward(dout, cache, dstate=None)

``grads`` is keyed like ``layer.params``. The cache is a self-contained record: any
number of forwards may be followed by their backwards in any order.

Parameter names: ``l{k}.W_x (D_k, G*H)``, ``l{k}.W_h (H, G*H)``, ``l{k}.b (G*H,)``, GRU
reset-after also ``l{k}.b_hn (H,)``; the reverse direction uses ``l{k}_reverse.``; a
learned initial state adds ``h0 (num_layers*dirs, H)`` (and LSTM ``c0``). Gate orders are
those of :mod:`rnnkit.cells` (LSTM ``i, f, g, o``; GRU ``r, z, n``), the same as PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import initializers, sequence
from ._checks import (
    as_dtype,
    as_rng,
    check_array,
    check_choice,
    check_ids,
    check_positive_int,
    check_probability,
    shape_str,
)
from .bidirectional import MERGES, merge, merge_backward, reverse_index, time_gather
from .sequence import Trace


@dataclass
class RecurrentCache:
    """Everything ``Recurrent.backward`` needs from one forward call.

    dirs: per layer, a list of one or two :class:`~rnnkit.sequence.Trace`;
    drop: per layer, the inverted-dropout mask applied to its output (or None);
    mask (T, B) bool or None; rev_idx (T, B) gather index of the reverse direction;
    outs: per layer, the per-direction outputs (T, B, H) used by the merge;
    state_from_param: whether the initial state came from the learned ``h0``/``c0``;
    time_major: the layout of forward's x and out (and so of backward's dout and dx);
    ids: whether x held one-hot ids (then backward returns no dx);
    owner: the layer that made it, as (id of the layer, its class name, its configuration,
    its parameters' shapes and dtypes): backward refuses the cache of another layer or of
    another configuration.
    """

    dirs: list
    drop: list
    mask: np.ndarray | None
    rev_idx: np.ndarray | None
    outs: list
    batch: int
    steps: int
    state_from_param: bool
    time_major: bool = False
    ids: bool = False
    owner: tuple = ()


class Recurrent:
    """A (deep, optionally bidirectional) recurrent layer. Use RNN, LSTM or GRU.

    Args:
        input_size: D, features per step of x.
        hidden_size: H, units per direction.
        num_layers: stacked layers; layer k>0 reads layer k-1's (merged) output.
        bidirectional: add a reverse direction to every layer.
        merge: how the two directions' outputs are combined, ``concat`` (B, T, 2H),
            ``sum``, ``mul`` or ``ave`` (B, T, H). Applied after every layer.
        dropout: inverted dropout on the outputs of every layer but the last, in
            training mode (``layer.train()``, the default, as in PyTorch).
        recurrent_dropout: inverted dropout on the previous state where it enters the
            recurrent product, one mask per sequence reused at every step (Gal &
            Ghahramani 2016; Keras' ``recurrent_dropout``; PyTorch has none).
        variational: draw the ``dropout`` mask once per sequence and reuse it at every
            step (variational dropout) instead of anew at every step.
        bias: whether the layers have biases.
        initial_state: ``"zeros"`` or ``"learned"`` (parameters ``h0``/``c0``), used when
            ``forward`` is called without a state.
        return_sequences: ``True`` gives out (B, T, dirs*H); ``False`` gives (B, dirs*H), the
            final states of the top layer (forward: last valid step; reverse: first step),
            merged like the outputs.
        dtype: float32 (default) or float64.
        rng: a seed or ``np.random.Generator`` for initialisation and dropout.
        init: the initialisation scheme, a name or a dict with its argument:
            ``"default"`` (weights U(-1/sqrt(H), 1/sqrt(H)), as PyTorch; biases zero),
            ``"glorot_orthogonal"`` (Keras), ``"identity"`` (IRNN, ``scale``),
            ``"uniform"`` (``range``, char-rnn's 0.08), ``"chrono"`` (LSTM/GRU gate
            biases, ``t_max``); see :mod:`rnnkit.initializers`.
    """

    kind = "rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        merge: str = "concat",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        variational: bool = False,
        bias: bool = True,
        initial_state: str = "zeros",
        return_sequences: bool = True,
        dtype=np.float32,
        rng=None,
        init="default",
    ):
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.num_layers = check_positive_int(num_layers, "num_layers")
        self.bidirectional = bool(bidirectional)
        self.merge = check_choice(merge, "merge", MERGES)
        self.dropout = check_probability(dropout, "dropout")
        self.recurrent_dropout = check_probability(recurrent_dropout, "recurrent_dropout")
        self.variational = bool(variational)
        self.bias = bool(bias)
        self.initial_state = check_choice(initial_state, "initial_state", ("zeros", "learned"))
        self.return_sequences = bool(return_sequences)
        self.dtype = as_dtype(dtype)
        self.rng = as_rng(rng)
        self.init = initializers.as_scheme(init, self.kind)
        self.training = True
        self.params: dict[str, np.ndarray] = {}
        self._init_params()

    # ------------------------------------------------------------------ structure
    @property
    def num_directions(self) -> int:
        """2 for a bidirectional layer, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features per step of the output: dirs*H for concat, else H."""
        if self.bidirectional and self.merge == "concat":
            return 2 * self.hidden_size
        return self.hidden_size

    def _prefixes(self, layer: int) -> list[str]:
        names = [f"l{layer}."]
        if self.bidirectional:
            names.append(f"l{layer}_reverse.")
        return names

    def _direction_params(self, prefix: str) -> dict:
        """The parameters of one direction (prefix ``l{k}.`` or ``l{k}_reverse.``) by their
        names in :mod:`rnnkit.cells` (``W_x``, ``W_h``, ...)."""
        n = len(prefix)
        return {k[n:]: v for k, v in self.params.items() if k[:n] == prefix}

    def _extra_config(self) -> dict:
        return {}

    def config(self) -> dict:
        """The constructor arguments (JSON-serialisable), enough to rebuild the layer."""
        return {
            "kind": self.kind,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "merge": self.merge,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "variational": self.variational,
            "bias": self.bias,
            "initial_state": self.initial_state,
            "return_sequences": self.return_sequences,
            "dtype": self.dtype.name,
            "init": dict(self.init),
            **self._extra_config(),
        }

    def __repr__(self) -> str:
        return _describe(type(self).__name__, self.config())

    def _init_params(self) -> None:
        """Draw the parameters from the layer's rng with its ``init`` scheme."""
        H = self.hidden_size
        for layer in range(self.num_layers):
            D = self.input_size if layer == 0 else self.output_size
            for prefix in self._prefixes(layer):
                p = initializers.direction(self.init, self.kind, D, H, self.bias,
                                           getattr(self, "forget_bias", 0.0),
                                           getattr(self, "reset_after", False), self.rng,
                                           self.dtype)
                self.params.update({prefix + k: v for k, v in p.items()})
        if self.initial_state == "learned":
            n = self.num_layers * self.num_directions
            self.params["h0"] = np.zeros((n, H), dtype=self.dtype)
            if self.kind == "lstm":
                self.params["c0"] = np.zeros((n, H), dtype=self.dtype)

    def train(self) -> Recurrent:
        """Training mode: dropout is applied. Returns self."""
        self.training = True
        return self

    def eval(self) -> Recurrent:
        """Inference mode: dropout is off. Returns self."""
        self.training = False
        return self

    def num_parameters(self) -> int:
        """Total number of parameter entries."""
        return int(sum(p.size for p in self.params.values()))

    def zero_state(self, batch_size: int):
        """Zeros of the state's shape: (num_layers*dirs, B, H), LSTM a pair of them."""
        shape = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        h = np.zeros(shape, dtype=self.dtype)
        return (h, h.copy()) if self.kind == "lstm" else h

    # ------------------------------------------------------------------ checks
    def _check_state(self, state, B: int, name: str = "state", finite: bool = True):
        """Return (h0, c0 or None) as (L*dirs, B, H) arrays of the layer's dtype (finite:
        also check that they hold no NaN or inf)."""
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        if self.kind == "lstm":
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(
                    f"{name} of an LSTM must be a pair (h, c) of arrays {shape_str(shape)}, "
                    f"got {type(state).__name__}"
                )
            h = check_array(state[0], f"{name}[0] (h)", shape, self.dtype, finite)
            c = check_array(state[1], f"{name}[1] (c)", shape, self.dtype, finite)
            return h, c
        if isinstance(state, (tuple, list)):
            raise TypeError(f"{name} of a {self.kind.upper()} is one array {shape_str(shape)}, "
                            f"got a {type(state).__name__}")
        return check_array(state, name, shape, self.dtype, finite), None

    # ------------------------------------------------------------------ forward
    def _run_direction(self, prefix, x, h0, c0, mask, rec_mask=None, ids=None) -> Trace:
        return sequence.forward(self.kind, self._direction_params(prefix), x, h0, c0, mask,
                                rec_mask=rec_mask, ids=ids, **self._kernel_options())

    def _dropout_mask(self, shape, p: float) -> np.ndarray:
        """Inverted-dropout multipliers: 0 with probability p, else 1/(1-p)."""
        keep = 1.0 - p
        return (self.rng.random(shape) < keep).astype(self.dtype) / self.dtype.type(keep)

    def _kernel_options(self) -> dict:
        return {}

    def forward(self, x, state=None, mask=None, lengths=None, time_major: bool = False):
        """Run the layer over a batch of sequences.

        Args:
            x: (B, T, D) float array; or (B, T) integer ids in [0, D) for one-hot inputs
                ``x = eye(D)[ids]`` (the same result, without forming them: the first
                layer's input product becomes a row look-up; backward then returns no dx).
            state: initial state, (L*dirs, B, H) (LSTM: a pair (h, c)); None for zeros or
                the learned initial state.
            mask: (B, T) bool, True at valid steps; or ``lengths`` (B,) ints (valid steps
                are a prefix). Padded steps leave the state unchanged, output zeros and get
                no gradient; each sequence's final state is the one at its last valid step
                and its reverse direction starts there.
            time_major: x is (T, B, D) (ids (T, B)) and out (T, B, out_features), as in
                PyTorch's default ``batch_first=False``; mask stays (B, T).
        Returns:
            out: (B, T, out_features), or (B, out_features) if not return_sequences;
            state: final state, (L*dirs, B, H) (LSTM: (h, c));
            cache: a :class:`RecurrentCache` for ``backward``.
        """
        inp, ids, T, B = self._check_input(x, time_major)
        m = sequence.time_mask(mask, lengths, B, T)
        from_param = state is None and self.initial_state == "learned"
        if state is None:
            h0, c0 = self._initial_state(B, copy=False)
        else:
            h0, c0 = self._check_state(state, B)
        rev_idx = reverse_index(T, B, m) if self.bidirectional else None
        cache = RecurrentCache([], [], m, rev_idx, [], B, T, from_param, time_major,
                               ids is not None, self._owner())
        finals = []
        for layer in range(self.num_layers):
            inp = self._forward_layer(layer, inp, h0, c0, cache, finals)
        h_n = np.stack([tr.hs[-1] for tr in finals])
        state_out = (h_n, np.stack([tr.cs[-1] for tr in finals])) if c0 is not None else h_n
        if self.return_sequences:
            out = inp if time_major else inp.transpose(1, 0, 2)
        else:
            out = merge(list(h_n[-self.num_directions:]), self.merge)
        return out, state_out, cache

    def _check_input(self, x, time_major: bool):
        """The first layer's input, time-major: (T, B, D) floats or (T, B) one-hot ids;
        the ids (or None), T and B."""
        ids = None
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu" and x.ndim == 2:
            x = ids = check_ids(x, "x", self.input_size)
        else:
            x = check_array(x, "x", ("T", "B", self.input_size) if time_major
                            else ("B", "T", self.input_size), self.dtype)
        if x.size == 0:
            raise ValueError(f"x must have at least one sequence and one step, got shape "
                             f"{shape_str(x.shape)}")
        if not time_major:
            x = np.ascontiguousarray(np.swapaxes(x, 0, 1))
            ids = None if ids is None else x
        return x, ids, x.shape[0], x.shape[1]

    def _forward_layer(self, layer: int, inp, h0, c0, cache: RecurrentCache, finals: list):
        """Both directions of one layer over inp (T, B, D_k) (layer 0 with one-hot inputs:
        ids (T, B)); appends to the cache and to finals (the traces, for the final state).
        Returns the merged, masked, dropped-out output (T, B, out_features)."""
        B, m, rev = cache.batch, cache.mask, cache.rev_idx
        traces, outs = [], []
        for d, prefix in enumerate(self._prefixes(layer)):
            s = layer * self.num_directions + d
            xi = inp if d == 0 else time_gather(inp, rev)
            rec_mask = None
            if self.recurrent_dropout > 0 and self.training:
                rec_mask = self._dropout_mask((B, self.hidden_size), self.recurrent_dropout)
            one_hot = layer == 0 and cache.ids
            tr = self._run_direction(prefix, None if one_hot else xi, h0[s],
                                     None if c0 is None else c0[s], m, rec_mask,
                                     ids=xi if one_hot else None)
            traces.append(tr)
            outs.append(tr.hs[1:] if d == 0 else time_gather(tr.hs[1:], rev))
        finals.extend(traces)
        y = merge(outs, self.merge)
        if m is not None:
            y = y * m[:, :, None]
        drop = None
        if self.dropout > 0 and self.training and layer < self.num_layers - 1:
            drop = self._dropout_mask((1,) + y.shape[1:] if self.variational else y.shape,
                                      self.dropout)
            y = y * drop
        cache.dirs.append(traces)
        cache.drop.append(drop)
        cache.outs.append(outs)
        return y

    def step(self, x, state=None):
        """One time step for inference (generation): no cache, no dropout.

        x (B, D) floats, or (B,) integer ids in [0, D) for one-hot inputs; state (L, B, H)
        (LSTM: (h, c)) or None for the initial state. Returns out (B, H), the top layer's
        new hidden state, and the new state. Unidirectional layers only (a reverse
        direction needs the whole sequence). The same step functions as :meth:`forward`,
        on the current weights (nothing is prepared ahead).
        """
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional layer: the reverse direction of "
                             "a bidirectional layer reads the sequence from its end")
        ids = None
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
            ids = check_ids(x, "x", self.input_size, ndim=1)
            B = ids.shape[0]
        else:
            x = check_array(x, "x", ("B", self.input_size), self.dtype)
            B = x.shape[0]
        if state is None:
            h, c = self._initial_state(B)
        else:  # shape and dtype: a state is carried from call to call (no scan for NaN)
            h, c = self._check_state(state, B, finite=False)
        h_new = np.empty_like(h)
        c_new = None if c is None else np.empty_like(c)
        opts = self._kernel_options()
        inp = None if ids is not None else x  # the input of layer k
        for k in range(self.num_layers):
            sequence.step(self.kind, self._direction_params(f"l{k}."), inp, h[k],
                          None if c is None else c[k], h_new[k],
                          None if c is None else c_new[k], ids if k == 0 else None, **opts)
            inp = h_new[k]
        return h_new[-1], ((h_new, c_new) if c is not None else h_new)

    def _initial_state(self, B: int, copy: bool = True):
        """The initial state for a batch of B: zeros or the learned h0 (and c0), as
        (L*dirs, B, H) arrays (h, c or None); with copy=False, read-only broadcast views
        of the learned state."""
        n = self.num_layers * self.num_directions
        if self.initial_state == "learned":
            spread = np.repeat if copy else _broadcast
            h = spread(self.params["h0"][:, None, :], B, axis=1)
            c = spread(self.params["c0"][:, None, :], B, axis=1) if self.kind == "lstm" else None
            return h, c
        h = np.zeros((n, B, self.hidden_size), dtype=self.dtype)
        return h, (np.zeros_like(h) if self.kind == "lstm" else None)

    # ------------------------------------------------------------------ backward
    def backward(self, dout, cache: RecurrentCache, dstate=None, need_dx: bool = True,
                 dh_steps: dict | None = None):
        """Backpropagation through time.

        Args:
            dout: gradient of the loss w.r.t. ``out``, same shape as ``out`` (time-major if
                forward was); None for zero.
            cache: the cache returned by the matching ``forward``.
            dstate: gradient w.r.t. the final state (same structure as the state), or None.
            need_dx: False when x is data that needs no gradient (as PyTorch skips inputs
                without ``requires_grad``): dx is then None and its product is not formed.
                One-hot ids never get one.
            dh_steps: None, or a dict that receives, for inspection, the whole gradient of
                every step's state: ``dh_steps[(layer, "forward" or "reverse")]`` (T, B, H)
                (time-major, in the sequence's own time order; :mod:`rnnkit.inspect`).
        Returns:
            dx (B, T, D) ((T, B, D) if time-major) or None, dstate0 (gradient w.r.t. the
            initial state, same structure as the state), grads (dict keyed like ``params``).
        """
        self._check_cache(cache)
        dy, dh_n, dc_n = self._upstream(dout, cache, dstate)
        n = self.num_layers * self.num_directions
        dh0 = np.zeros((n, cache.batch, self.hidden_size), dtype=self.dtype)
        dc0 = np.zeros_like(dh0) if self.kind == "lstm" else None
        grads: dict[str, np.ndarray] = {}
        for layer in range(self.num_layers - 1, -1, -1):
            dy = self._backward_layer(layer, dy, cache, dh_n, dc_n, dh0, dc0, grads,
                                      (need_dx and not cache.ids) or layer > 0, dh_steps)
        if self.initial_state == "learned":
            # the learned h0 (c0) is broadcast over the batch: its gradient sums over it
            from_param = cache.state_from_param
            grads["h0"] = dh0.sum(axis=1) if from_param else np.zeros_like(self.params["h0"])
            if self.kind == "lstm":
                grads["c0"] = (dc0.sum(axis=1) if from_param
                               else np.zeros_like(self.params["c0"]))
        dx = dy if dy is None or cache.time_major else dy.transpose(1, 0, 2)
        dstate0 = (dh0, dc0) if self.kind == "lstm" else dh0
        return dx, dstate0, {k: grads[k] for k in self.params}

    def _owner(self) -> tuple:
        """What a cache records of the layer that made it (see :meth:`_check_cache`)."""
        shapes = tuple((k, v.shape, v.dtype.str) for k, v in self.params.items())
        return id(self), type(self).__name__, self.config(), shapes

    def _check_cache(self, cache) -> None:
        """Refuse what is not a cache of this layer's own forward, in its configuration."""
        if not isinstance(cache, RecurrentCache):
            raise TypeError(f"cache must be the RecurrentCache returned by forward, got "
                            f"{type(cache).__name__}")
        if cache.owner == self._owner():
            return
        made_by = _describe(*cache.owner[1:3]) if cache.owner else "an unknown layer"
        if cache.owner and cache.owner[0] == id(self):
            why = "this layer's configuration or parameter shapes changed since its forward"
        else:
            why = f"it was made by another layer, {made_by}"
        raise ValueError(f"cache does not belong to this layer ({self!r}): {why}; pass the "
                         "cache that this layer's forward returned")

    def _upstream(self, dout, cache: RecurrentCache, dstate):
        """Checked upstream gradients: dy (T, B, out_features) of the top layer's output
        (None when it is not returned), dh_n, dc_n (L*dirs, B, H) of the final state."""
        B, T, H = cache.batch, cache.steps, self.hidden_size
        F = self.output_size
        if self.return_sequences:
            dshape = (T, B, F) if cache.time_major else (B, T, F)
        else:
            dshape = (B, F)
        dout = (np.zeros(dshape, dtype=self.dtype) if dout is None
                else check_array(dout, "dout", dshape, self.dtype))
        n, dirs = self.num_layers * self.num_directions, self.num_directions
        if dstate is None:
            dh_n = np.zeros((n, B, H), dtype=self.dtype)
            dc_n = np.zeros((n, B, H), dtype=self.dtype) if self.kind == "lstm" else None
        else:
            dh_n, dc_n = self._check_state(dstate, B, "dstate")
            dh_n = dh_n.copy()
        if self.return_sequences:
            dy = dout if cache.time_major else np.ascontiguousarray(dout.transpose(1, 0, 2))
            return dy, dh_n, dc_n
        # out = merge(final states of the top layer)
        tops = [tr.hs[-1] for tr in cache.dirs[-1]]
        for d, g in enumerate(merge_backward(dout, tops, self.merge)):
            dh_n[n - dirs + d] += g
        return None, dh_n, dc_n

    def _backward_layer(self, layer, dy, cache, dh_n, dc_n, dh0, dc0, grads, need_dx,
                        dh_steps=None):
        """Both directions of one layer, backward: dy (T, B, out_features) the gradient of
        the layer's output (or None); fills dh0, dc0 and grads; returns the gradient of the
        layer's input (T, B, D_k), or None."""
        m, rev = cache.mask, cache.rev_idx
        ddirs = [None] * self.num_directions
        if dy is not None:
            if cache.drop[layer] is not None:
                dy = dy * cache.drop[layer]
            if m is not None:
                dy = dy * m[:, :, None]
            ddirs = merge_backward(dy, cache.outs[layer], self.merge)
        dx_total = None
        for d, prefix in enumerate(self._prefixes(layer)):
            s = layer * self.num_directions + d
            dd = ddirs[d] if d == 0 or ddirs[d] is None else time_gather(ddirs[d], rev)
            steps = None if dh_steps is None else np.empty(
                (cache.steps, cache.batch, self.hidden_size), dtype=self.dtype)
            dx, dh0[s], dc, g = sequence.backward(cache.dirs[layer][d], dd, dh_n[s],
                                                  None if dc_n is None else dc_n[s], need_dx,
                                                  steps)
            if steps is not None:
                dh_steps[(layer, ("forward", "reverse")[d])] = (
                    steps if d == 0 else time_gather(steps, rev))
            if dc0 is not None:
                dc0[s] = dc
            grads.update({prefix + k: v for k, v in g.items()})
            if dx is not None:
                dx = dx if d == 0 else time_gather(dx, rev)
                dx_total = dx if dx_total is None else dx_total + dx
        return dx_total

    __call__ = forward


def _describe(name: str, config: dict) -> str:
    """How a layer prints: ``LSTM(input_size=8, hidden_size=16, ...)``, from its class name
    and :meth:`Recurrent.config`."""
    args = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "kind")
    return f"{name}({args})"


def _broadcast(a: np.ndarray, B: int, axis: int) -> np.ndarray:
    """a with its axis of size 1 broadcast to size B (a read-only view)."""
    shape = list(a.shape)
    shape[axis] = B
    return np.broadcast_to(a, shape)


class RNN(Recurrent):
    """Elman RNN: ``h_t = tanh(x_t @ W_x + h_{t-1} @ W_h + b)`` (or relu).

    See :class:`Recurrent` for the arguments; ``nonlinearity`` is ``"tanh"`` or ``"relu"``.
    """

    kind = "rnn"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", **kwargs):
        self.nonlinearity = check_choice(nonlinearity, "nonlinearity", ("tanh", "relu"))
        super().__init__(input_size, hidden_size, num_layers, **kwargs)

    def _kernel_options(self):
        return {"nonlinearity": self.nonlinearity}

    def _extra_config(self):
        return {"nonlinearity": self.nonlinearity}


class LSTM(Recurrent):
    """Long short-term memory, gates ``i, f, g, o``; state (h, c).

    See :class:`Recurrent` for the arguments; ``forget_bias`` (default 1.0) initialises
    the forget-gate biases (Jozefowicz et al. 2015; Keras' ``unit_forget_bias``).
    """

    kind = "lstm"

    def __init__(self, input_size, hidden_size, num_layers=1, forget_bias=1.0, **kwargs):
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float)):
            raise TypeError(f"forget_bias must be a number, got {forget_bias!r}")
        if not np.isfinite(forget_bias):
            raise ValueError(f"forget_bias must be a finite number, got {forget_bias!r}")
        self.forget_bias = float(forget_bias)
        super().__init__(input_size, hidden_size, num_layers, **kwargs)

    def _extra_config(self):
        return {"forget_bias": self.forget_bias}


class GRU(Recurrent):
    """Gated recurrent unit, gates ``r, z, n``; ``h_t = (1 - z) * n + z * h_{t-1}``.

    ``reset_after=True`` (default) is the PyTorch/cuDNN form
    ``n = tanh(x@W_xn + b_n + r * (h@W_hn + b_hn))``; ``False`` is the form of the seeds and
    Cho et al. 2014, ``n = tanh(x@W_xn + b_n + (r * h)@W_hn)``. See :class:`Recurrent`.
    """

    kind = "gru"

    def __init__(self, input_size, hidden_size, num_layers=1, reset_after=True, **kwargs):
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, num_layers, **kwargs)

    def _kernel_options(self):
        return {"reset_after": self.reset_after}

    def _extra_config(self):
        return {"reset_after": self.reset_after}


# --------------------------------------------------------------------------- cells
