"""Sequence layers ``RNN``, ``LSTM``, ``GRU`` and their one-step cells.

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
from .cells import GATES, DirCache, Stepper, direction_backward, direction_forward

MERGES = ("concat", "sum", "mul", "ave")


@dataclass
class RecurrentCache:
    """Everything ``Recurrent.backward`` needs from one forward call.

    dirs: per layer, a list of one or two :class:`~rnnkit.cells.DirCache`;
    drop: per layer, the inverted-dropout mask applied to its output (or None);
    mask (T, B, 1) bool or None; rev_idx (T, B) gather index of the reverse direction;
    outs: per layer, the per-direction outputs (T, B, H) used by the merge;
    state_from_param: whether the initial state came from the learned ``h0``/``c0``;
    time_major: the layout of forward's x and out (and so of backward's dout and dx);
    ids: whether x held one-hot ids (then backward returns no dx).
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

    Initialisation: weights ~ U(-1/sqrt(H), 1/sqrt(H)) (as PyTorch), biases zero.
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
        p = self.params
        return {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}

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
            **self._extra_config(),
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "kind")
        return f"{type(self).__name__}({args})"

    def _init_params(self) -> None:
        H, G = self.hidden_size, GATES[self.kind]
        k = 1.0 / np.sqrt(H)
        for layer in range(self.num_layers):
            D = self.input_size if layer == 0 else self.output_size
            for prefix in self._prefixes(layer):
                self.params[prefix + "W_x"] = self.rng.uniform(-k, k, (D, G * H)).astype(self.dtype)
                self.params[prefix + "W_h"] = self.rng.uniform(-k, k, (H, G * H)).astype(self.dtype)
                if self.bias:
                    self.params[prefix + "b"] = self._initial_bias(G * H)
                    if self.kind == "gru" and self.reset_after:
                        self.params[prefix + "b_hn"] = np.zeros(H, dtype=self.dtype)
        if self.initial_state == "learned":
            n = self.num_layers * self.num_directions
            self.params["h0"] = np.zeros((n, H), dtype=self.dtype)
            if self.kind == "lstm":
                self.params["c0"] = np.zeros((n, H), dtype=self.dtype)

    def _initial_bias(self, size: int) -> np.ndarray:
        return np.zeros(size, dtype=self.dtype)

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
    def _check_state(self, state, B: int, name: str = "state"):
        """Return (h0, c0 or None) as (L*dirs, B, H) arrays of the layer's dtype."""
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        if self.kind == "lstm":
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(
                    f"{name} of an LSTM must be a pair (h, c) of arrays {shape_str(shape)}, "
                    f"got {type(state).__name__}"
                )
            h = check_array(state[0], f"{name}[0] (h)", shape, self.dtype)
            c = check_array(state[1], f"{name}[1] (c)", shape, self.dtype)
            return h, c
        if isinstance(state, (tuple, list)):
            raise TypeError(f"{name} of a {self.kind.upper()} is one array {shape_str(shape)}, "
                            f"got a {type(state).__name__}")
        return check_array(state, name, shape, self.dtype), None

    def _check_mask(self, mask, lengths, B: int, T: int):
        """Return the mask as (T, B, 1) bool (time-major) or None."""
        if mask is not None and lengths is not None:
            raise ValueError("give either mask or lengths, not both")
        if lengths is not None:
            lengths = np.asarray(lengths)
            if lengths.shape != (B,) or lengths.dtype.kind not in "iu":
                raise ValueError(
                    f"lengths must be an integer array of shape ({B},), got "
                    f"{lengths.dtype} {shape_str(lengths.shape)}"
                )
            if (lengths < 0).any() or (lengths > T).any():
                raise ValueError(f"lengths must be in [0, {T}], got {lengths.tolist()}")
            mask = np.arange(T)[None, :] < lengths[:, None]
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.shape != (B, T):
            raise ValueError(
                f"mask must have shape (B, T) = ({B}, {T}), got {shape_str(mask.shape)}"
            )
        if mask.dtype != bool:
            if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
                raise ValueError(f"mask must be boolean (or 0/1), True marking a valid step; "
                                 f"got dtype {mask.dtype} with other values")
            mask = mask.astype(bool)
        if mask.all():
            return None
        return np.ascontiguousarray(mask.T)[:, :, None]

    # ------------------------------------------------------------------ forward
    def _run_direction(self, prefix, x, h0, c0, mask, rec_mask=None, ids=None) -> DirCache:
        return direction_forward(self.kind, self._direction_params(prefix), x, h0, c0, mask,
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
        ids = None
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu" and x.ndim == 2:
            ids = check_ids(x, "x", self.input_size)
            T, B = ids.shape if time_major else ids.shape[::-1]
        else:
            x = check_array(x, "x", ("T", "B", self.input_size) if time_major
                            else ("B", "T", self.input_size), self.dtype)
            T, B = x.shape[:2] if time_major else x.shape[1::-1]
        if B == 0 or T == 0:
            shape = (x if ids is None else ids).shape
            raise ValueError(f"x must have at least one sequence and one step, got shape "
                             f"{shape_str(shape)}")
        m = self._check_mask(mask, lengths, B, T)
        H, dirs = self.hidden_size, self.num_directions
        from_param = state is None and self.initial_state == "learned"
        if state is None:
            if from_param:
                h0 = np.broadcast_to(self.params["h0"][:, None, :], (dirs * self.num_layers, B, H))
                c0 = (np.broadcast_to(self.params["c0"][:, None, :], h0.shape)
                      if self.kind == "lstm" else None)
            else:
                zeros = np.zeros((dirs * self.num_layers, B, H), dtype=self.dtype)
                h0, c0 = zeros, (zeros if self.kind == "lstm" else None)
        else:
            h0, c0 = self._check_state(state, B)

        rev_idx = None
        if self.bidirectional:
            if m is None:
                rev_idx = np.broadcast_to(np.arange(T - 1, -1, -1)[:, None], (T, B))
            else:
                rev_idx = _reverse_within_mask(m[:, :, 0])
        if ids is not None:  # (T, B) ids of the first layer's one-hot inputs
            inp = ids if time_major else np.ascontiguousarray(ids.T)
        else:
            inp = x if time_major else np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D)
        dir_caches, drops, outs = [], [], []
        h_final, c_final = [], []
        for layer in range(self.num_layers):
            caches, douts = [], []
            for d, prefix in enumerate(self._prefixes(layer)):
                s = layer * dirs + d
                xi = inp if d == 0 else _time_gather(inp, rev_idx)
                rec_mask = None
                if self.recurrent_dropout > 0 and self.training:
                    rec_mask = self._dropout_mask((B, H), self.recurrent_dropout)
                one_hot = layer == 0 and ids is not None
                dc = self._run_direction(prefix, None if one_hot else xi, h0[s],
                                         None if c0 is None else c0[s], m, rec_mask,
                                         ids=xi if one_hot else None)
                caches.append(dc)
                o = dc.hs[1:]
                douts.append(o if d == 0 else _time_gather(o, rev_idx))
                h_final.append(dc.hs[-1])
                if self.kind == "lstm":
                    c_final.append(dc.c_last)  # (B, H) without the whole cs
            y = _merge(douts, self.merge)
            if m is not None:
                y = y * m
            drop = None
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                shape = (1,) + y.shape[1:] if self.variational else y.shape
                drop = self._dropout_mask(shape, self.dropout)
                y = y * drop
            dir_caches.append(caches)
            drops.append(drop)
            outs.append(douts)
            inp = y
        h_n = np.stack(h_final)
        state_out = (h_n, np.stack(c_final)) if self.kind == "lstm" else h_n
        if self.return_sequences:
            out = inp if time_major else inp.transpose(1, 0, 2)
        else:
            top = h_n[-dirs:]
            out = _merge(list(top), self.merge)
        cache = RecurrentCache(dir_caches, drops, m, rev_idx, outs, B, T, from_param,
                               time_major, ids is not None)
        return out, state_out, cache

    def step(self, x, state=None):
        """One time step for inference (generation): no cache, no dropout.

        x (B, D); state (L, B, H) (LSTM: (h, c)) or None for the initial state.
        Returns out (B, H), the top layer's new hidden state, and the new state.
        Only for unidirectional layers (a reverse direction needs the whole sequence).
        """
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional layer: the reverse direction of "
                             "a bidirectional layer reads the sequence from its end")
        x = check_array(x, "x", ("B", self.input_size), self.dtype)
        B = x.shape[0]
        if state is None:
            if self.initial_state == "learned":
                h = np.repeat(self.params["h0"][:, None, :], B, axis=1)
                c = (np.repeat(self.params["c0"][:, None, :], B, axis=1)
                     if self.kind == "lstm" else None)
            else:
                h = np.zeros((self.num_layers, B, self.hidden_size), dtype=self.dtype)
                c = np.zeros_like(h) if self.kind == "lstm" else None
        else:
            h, c = self._check_state(state, B)
        inp = x[None]
        hs, cs = [], []
        for layer in range(self.num_layers):
            dc = self._run_direction(f"l{layer}.", inp, h[layer], None if c is None else c[layer],
                                     None)
            hs.append(dc.hs[1])
            if c is not None:
                cs.append(dc.cs[1])
            inp = dc.hs[1:]
        h_new = np.stack(hs)
        return hs[-1], ((h_new, np.stack(cs)) if c is not None else h_new)

    def stepper(self) -> LayerStepper:
        """A fast one-step path for generation, with a snapshot of the current weights.

        ``stepper.step(x (B, D), state) -> (out (B, H), state)`` computes what
        :meth:`step` computes (no dropout), and ``stepper.step_ids(ids (B,), state)`` the
        same for one-hot inputs ``x = eye(D)[ids]`` by a row look-up. The weights are read
        once, here: make a new stepper after they change. Unidirectional layers only.
        """
        if self.bidirectional:
            raise ValueError("stepper() needs a unidirectional layer: the reverse direction "
                             "of a bidirectional layer reads the sequence from its end")
        return LayerStepper(self)

    # ------------------------------------------------------------------ backward
    def backward(self, dout, cache: RecurrentCache, dstate=None, need_dx: bool = True):
        """Backpropagation through time.

        Args:
            dout: gradient of the loss w.r.t. ``out``, same shape as ``out`` (time-major if
                forward was); None for zero.
            cache: the cache returned by the matching ``forward``.
            dstate: gradient w.r.t. the final state (same structure as the state), or None.
            need_dx: False when x is data that needs no gradient (as PyTorch skips inputs
                without ``requires_grad``): dx is then None and its product is not formed.
                One-hot ids never get one.
        Returns:
            dx (B, T, D) ((T, B, D) if time-major) or None, dstate0 (gradient w.r.t. the
            initial state, same structure as the state), grads (dict keyed like ``params``).
        """
        if not isinstance(cache, RecurrentCache):
            raise TypeError(f"cache must be the RecurrentCache returned by forward, got "
                            f"{type(cache).__name__}")
        B, T, H = cache.batch, cache.steps, self.hidden_size
        dirs, L = self.num_directions, self.num_layers
        m = cache.mask
        out_features = self.output_size
        if self.return_sequences:
            dshape = (T, B, out_features) if cache.time_major else (B, T, out_features)
        else:
            dshape = (B, out_features)
        if dout is None:
            dout = np.zeros(dshape, dtype=self.dtype)
        dout = check_array(dout, "dout", dshape, self.dtype)
        n = L * dirs
        if dstate is None:
            dh_n = np.zeros((n, B, H), dtype=self.dtype)
            dc_n = np.zeros((n, B, H), dtype=self.dtype) if self.kind == "lstm" else None
        else:
            dh_n, dc_n = self._check_state(dstate, B, "dstate")
            dh_n = dh_n.copy()
        if self.return_sequences:
            dy = dout if cache.time_major else np.ascontiguousarray(dout.transpose(1, 0, 2))
        else:
            # out = merge(final states of the top layer)
            for d, g in enumerate(_merge_backward(dout, list(_top_finals(cache, dirs)),
                                                  self.merge)):
                dh_n[n - dirs + d] += g
            dy = None
        grads: dict[str, np.ndarray] = {}
        dh0 = np.zeros((n, B, H), dtype=self.dtype)
        dc0 = np.zeros((n, B, H), dtype=self.dtype) if self.kind == "lstm" else None
        for layer in range(L - 1, -1, -1):
            if dy is not None:
                if cache.drop[layer] is not None:
                    dy = dy * cache.drop[layer]
                if m is not None:
                    dy = dy * m
                ddirs = _merge_backward(dy, cache.outs[layer], self.merge)
            else:
                ddirs = [None] * dirs
            dx_total = None
            for d, prefix in enumerate(self._prefixes(layer)):
                s = layer * dirs + d
                dd = ddirs[d]
                if d == 1 and dd is not None:
                    dd = _time_gather(dd, cache.rev_idx)
                dx, dh, dc, g = direction_backward(
                    cache.dirs[layer][d], dd, dh_n[s], None if dc_n is None else dc_n[s],
                    need_dx=(need_dx and not cache.ids) or layer > 0,
                )
                if dx is not None:
                    if d == 1:
                        dx = _time_gather(dx, cache.rev_idx)
                    dx_total = dx if dx_total is None else dx_total + dx
                dh0[s] = dh
                if dc0 is not None:
                    dc0[s] = dc
                for k, v in g.items():
                    grads[prefix + k] = v
            dy = dx_total
        if cache.state_from_param:
            grads["h0"] = dh0.sum(axis=1)
            if self.kind == "lstm":
                grads["c0"] = dc0.sum(axis=1)
        elif self.initial_state == "learned":
            grads["h0"] = np.zeros_like(self.params["h0"])
            if self.kind == "lstm":
                grads["c0"] = np.zeros_like(self.params["c0"])
        dx = dy if dy is None or cache.time_major else dy.transpose(1, 0, 2)
        dstate0 = (dh0, dc0) if self.kind == "lstm" else dh0
        return dx, dstate0, {k: grads[k] for k in self.params}

    __call__ = forward


def _top_finals(cache: RecurrentCache, dirs: int):
    return [dc.hs[-1] for dc in cache.dirs[-1][:dirs]]


def _reverse_within_mask(mask_tb: np.ndarray) -> np.ndarray:
    """Gather index (T, B) that reverses each sequence's valid steps among themselves.

    Padded steps map to themselves, so reversing twice is the identity.
    """
    T, B = mask_tb.shape
    idx = np.tile(np.arange(T)[:, None], (1, B))
    for b in range(B):
        valid = np.flatnonzero(mask_tb[:, b])
        idx[valid, b] = valid[::-1]
    return idx


def _time_gather(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """a (T, B, F) (or ids (T, B)) -> a[idx[t, b], b] as a new contiguous array."""
    return np.take_along_axis(a, idx if a.ndim == 2 else idx[:, :, None], axis=0)


def _merge(parts: list, merge: str) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    a, b = parts
    if merge == "concat":
        return np.concatenate([a, b], axis=-1)
    if merge == "sum":
        return a + b
    if merge == "mul":
        return a * b
    return (a + b) * a.dtype.type(0.5)


def _merge_backward(dy: np.ndarray, parts: list, merge: str) -> list:
    if len(parts) == 1:
        return [dy]
    a, b = parts
    if merge == "concat":
        H = a.shape[-1]
        return [dy[..., :H], dy[..., H:]]
    if merge == "sum":
        return [dy, dy]
    if merge == "mul":
        return [dy * b, dy * a]
    half = dy * dy.dtype.type(0.5)
    return [half, half]


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
        self.forget_bias = float(forget_bias)
        super().__init__(input_size, hidden_size, num_layers, **kwargs)

    def _initial_bias(self, size):
        b = np.zeros(size, dtype=self.dtype)
        H = self.hidden_size
        b[H : 2 * H] = self.forget_bias
        return b

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
class LayerStepper:
    """One step at a time with a snapshot of a :class:`Recurrent` layer's weights; made by
    :meth:`Recurrent.stepper`. States as in :meth:`Recurrent.step`: (L, B, H), LSTM (h, c);
    None for the layer's initial state."""

    def __init__(self, layer: Recurrent):
        self.layer = layer
        self.input_size, self.hidden_size = layer.input_size, layer.hidden_size
        self.num_layers, self.kind = layer.num_layers, layer.kind
        self.kernel = Stepper(layer.kind, [layer._direction_params(f"l{k}.")
                                           for k in range(layer.num_layers)],
                              **layer._kernel_options())
        self._last = None
        self.h0 = layer.params.get("h0")
        self.c0 = layer.params.get("c0")
        if self.h0 is not None:
            self.h0, self.c0 = self.h0.copy(), None if self.c0 is None else self.c0.copy()

    def _state(self, state, B: int):
        if state is None:
            L, H, dt = self.num_layers, self.hidden_size, self.layer.dtype
            if self.h0 is None:
                h = np.zeros((L, B, H), dtype=dt)
                return h, (np.zeros_like(h) if self.kind == "lstm" else None)
            h = np.repeat(self.h0[:, None, :], B, axis=1)
            return h, (np.repeat(self.c0[:, None, :], B, axis=1) if self.kind == "lstm"
                       else None)
        return self.layer._check_state(state, B)

    def _out(self, h, c):
        state = (h, c) if c is not None else h
        self._last = state  # the next call may pass it back unchecked
        return h[-1], state

    def _carried(self, state, B: int):
        if state is not None and state is self._last:
            h, c = (state if self.kind == "lstm" else (state, None))
            if h.shape[1] == B:
                return h, c
        return self._state(state, B)

    def step(self, x, state=None):
        """x (B, D); state or None. Returns out (B, H) (the top layer's h) and the state."""
        x = check_array(x, "x", ("B", self.input_size), self.layer.dtype)
        h, c = self._carried(state, x.shape[0])
        return self._out(*self.kernel.step(x, h, c))

    def step_ids(self, ids, state=None):
        """ids (B,) ints in [0, D): the step for one-hot inputs. Returns out, state."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or ids.size == 0:
            raise ValueError(f"ids must be a non-empty 1-d array of ints, got {ids!r}")
        lo, hi = (ids[0], ids[0]) if ids.size == 1 else (ids.min(), ids.max())
        if lo < 0 or hi >= self.input_size:
            raise ValueError(f"ids must be in [0, {self.input_size}), got {ids.tolist()}")
        h, c = self._carried(state, ids.shape[0])
        return self._out(*self.kernel.step(None, h, c, ids=ids))


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
