"""One recurrent direction over T time steps: the loop around the cells' step functions.

:func:`forward` runs a direction over a sequence and returns a :class:`Trace`, the record
of every step that :func:`backward` needs for backpropagation through time; :func:`step`
runs one step for inference (no trace). The equations are those of :mod:`rnnkit.cells`;
this module only arranges the work around them:

* the input side ``x_t @ W_x + b`` of all T steps is **one product**, formed before the
  first step (one-hot inputs: a row look-up of ``W_x + b``, step by step);
* each step then makes **one recurrent product** (the GRU's reset-before form, two) inside
  its step function, into arrays allocated once per call and reused at every step; the
  arrays of all steps come from the workspace (:mod:`rnnkit._workspace`), which hands out
  the memory of earlier calls' arrays that nobody holds any more (fresh memory costs
  page faults that, on a virtual machine, took as long as the products);
* the backward keeps the gradient of every step's pre-activations, ``dG (T, B, G*H)``, and
  forms the **weight gradients of all steps at once**, one product each.

Arrays are **time-major**: ``x (T, B, D)``, one-hot ``ids (T, B)``, states ``hs (T+1, B,
H)`` with ``hs[0]`` the initial state and ``hs[t+1]`` the state after step t. Parameters
of one direction, as in :mod:`rnnkit.cells`: ``W_x (D, G*H)``, ``W_h (H, G*H)``, optional
``b (G*H,)`` and (GRU reset after) ``b_hn (H,)``.

Masks: ``mask (T, B)`` bool. Where it is False the step is skipped: the state is carried
unchanged and the step gets no gradient. Recurrent dropout (Gal & Ghahramani 2016):
``rec_mask (B, H)`` multiplies the previous state where it enters the recurrent product,
the same mask at every step; the state carried to the next step is not masked.

The step functions are chosen in one place, :func:`rnnkit.accelerated.kernels`: the
compiled ones when the optional backend is enabled, else those of :mod:`rnnkit.cells`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import accelerated, cells
from ._checks import shape_str
from ._linalg import product
from ._workspace import empty

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
KINDS = tuple(GATES)


@dataclass(eq=False)
class Trace:
    """What one direction's forward keeps for its backward.

    kind, params (the arrays used, by name), nonlinearity (RNN), reset_after (GRU);
    x (T, B, D) the input or None, with ids (T, B) for one-hot inputs; mask (T, B) bool or
    None; rec_mask (B, H) or None. hs (T+1, B, H) the states; acts (T, B, G*H): LSTM and
    GRU the activated gates, RNN the input projection; LSTM cs (T+1, B, H) the cells; GRU
    hn (T, B, H) (see :func:`rnnkit.cells.gru_forward`).
    """

    kind: str
    params: dict
    x: np.ndarray | None
    ids: np.ndarray | None
    hs: np.ndarray
    acts: np.ndarray
    mask: np.ndarray | None = None
    rec_mask: np.ndarray | None = None
    nonlinearity: str = "tanh"
    reset_after: bool = True
    cs: np.ndarray | None = None
    hn: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """T, the number of time steps."""
        return self.hs.shape[0] - 1


def _ops(dtype):
    """The step functions to run: the compiled ones (:mod:`rnnkit.accelerated`) when
    enabled, else :mod:`rnnkit.cells`."""
    return accelerated.kernels(dtype) or cells


def time_mask(mask, lengths, B: int, T: int) -> np.ndarray | None:
    """A layer's ``mask`` (B, T) (bool or 0/1, True at valid steps) or ``lengths`` (B,)
    (valid steps a prefix), checked, as the loop's (T, B) bool mask; None when every step
    is valid."""
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
    return np.ascontiguousarray(mask.T)


# --------------------------------------------------------------------------- forward
def input_projection(params: dict, x: np.ndarray | None, ids: np.ndarray | None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """``x_t @ W_x + b`` for every step at once: (T, B, G*H).

    x (T, B, D) floats, or None and ids (T, B) ints in [0, D) for one-hot inputs
    ``x = eye(D)[ids]``, whose product is the row look-up ``(W_x + b)[ids]`` (the same
    result without forming the one-hot vectors). out: an array to write into, or None
    for one from the workspace (:mod:`rnnkit._workspace`).
    """
    W_x, b = params["W_x"], params.get("b")
    GH = W_x.shape[1]
    if out is None:
        out = empty((x if x is not None else ids).shape[:2] + (GH,), W_x.dtype)
    if x is None:
        Wb = W_x if b is None else W_x + b
        return np.take(Wb, ids, axis=0, out=out, mode="clip")  # ids were checked
    T, B, D = x.shape
    xw = product(x.reshape(T * B, D), W_x, out=out.reshape(T * B, GH)).reshape(T, B, GH)
    if b is not None:
        xw += b
    return xw


def forward(kind: str, params: dict, x: np.ndarray | None, h0: np.ndarray,
            c0: np.ndarray | None = None, mask: np.ndarray | None = None,
            rec_mask: np.ndarray | None = None, ids: np.ndarray | None = None,
            nonlinearity: str = "tanh", reset_after: bool = True) -> Trace:
    """Run one direction over all T steps.

    kind ``"rnn"``, ``"lstm"`` or ``"gru"``; params as in the module text; x (T, B, D), or
    None and ids (T, B) for one-hot inputs; h0, c0 (B, H) the initial state (c0 LSTM
    only); mask (T, B) bool or None; rec_mask (B, H) or None. Returns the :class:`Trace`,
    whose ``hs (T+1, B, H)`` (LSTM also ``cs``) hold every state.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    H, GH = params["W_h"].shape
    dt = params["W_h"].dtype
    if ids is None:
        xw = input_projection(params, x, None)
    else:  # one-hot: filled step by step, below
        xw = empty(ids.shape + (GH,), dt)
        Wb = params["W_x"] if params.get("b") is None else params["W_x"] + params["b"]
    T, B = xw.shape[:2]
    hs = empty((T + 1, B, H), dt)
    hs[0] = h0
    tr = Trace(kind, params, x, ids, hs, xw, mask, rec_mask, nonlinearity, reset_after)
    if kind == "lstm":
        tr.cs = empty((T + 1, B, H), dt)
        tr.cs[0] = c0
    elif kind == "gru":
        tr.hn = empty((T, B, H), dt)
    ops = _ops(dt)
    rec = np.empty(xw.shape[1:], dtype=dt)  # the recurrent product of one step
    h_in = np.empty((B, H), dtype=dt) if rec_mask is not None else None
    for t in range(T):
        if ids is not None:
            # the rows of W_x + b for step t, looked up just before the step reads them
            # (all steps at once would write the whole (T, B, G*H) array to memory and
            # read it back: 7 of 77 ms of an LSTM training step at (32, 100, 256))
            np.take(Wb, ids[t], axis=0, out=xw[t], mode="clip")  # ids were checked
        if rec_mask is None:
            hp = hs[t]
        else:
            hp = np.multiply(hs[t], rec_mask, out=h_in)
        _forward_step(ops, tr, t, hp, rec)
        if mask is not None:
            _carry(tr, t, mask[t])
    return tr


def _forward_step(ops, tr: Trace, t: int, h_in: np.ndarray, rec: np.ndarray) -> None:
    """Step t of the forward: the cell's step function on the trace's arrays."""
    p, hs = tr.params, tr.hs
    if tr.kind == "lstm":
        ops.lstm_forward(tr.acts[t], h_in, tr.cs[t], p["W_h"], rec, tr.cs[t + 1], hs[t + 1])
    elif tr.kind == "gru":
        ops.gru_forward(tr.acts[t], hs[t], h_in, p["W_h"], p.get("b_hn"), rec, tr.hn[t],
                        hs[t + 1], tr.reset_after)
    else:
        ops.rnn_forward(tr.acts[t], h_in, p["W_h"], hs[t + 1], tr.nonlinearity == "relu")


def _carry(tr: Trace, t: int, valid: np.ndarray) -> None:
    """Masked step: where ``valid`` (B,) is False the state of step t is carried."""
    skip = ~valid[:, None]
    np.copyto(tr.hs[t + 1], tr.hs[t], where=skip)
    if tr.cs is not None:
        np.copyto(tr.cs[t + 1], tr.cs[t], where=skip)


# --------------------------------------------------------------------------- one step
def step(kind: str, params: dict, x: np.ndarray | None, h: np.ndarray,
         c: np.ndarray | None, h_new: np.ndarray, c_new: np.ndarray | None = None,
         ids: np.ndarray | None = None, nonlinearity: str = "tanh",
         reset_after: bool = True) -> None:
    """One step for inference, with no trace: the same step functions as :func:`forward`.

    x (B, D), or None and ids (B,) for one-hot inputs; h, c (B, H) the state (c LSTM
    only). Writes the new state into h_new, c_new (B, H).
    """
    W_x, b, W_h = params["W_x"], params.get("b"), params["W_h"]
    xw = W_x[ids] if x is None else x @ W_x  # (B, G*H); one-hot: the rows of W_x
    if b is not None:
        xw += b
    ops = _ops(xw.dtype)
    rec = np.empty_like(xw)
    if kind == "lstm":
        ops.lstm_forward(xw, h, c, W_h, rec, c_new, h_new)
    elif kind == "gru":
        ops.gru_forward(xw, h, h, W_h, params.get("b_hn"), rec, np.empty_like(h), h_new,
                        reset_after)
    else:
        ops.rnn_forward(xw, h, W_h, h_new, nonlinearity == "relu")


# --------------------------------------------------------------------------- backward
def backward(tr: Trace, dhs: np.ndarray | None, dh_last: np.ndarray | None = None,
             dc_last: np.ndarray | None = None, need_dx: bool = True,
             dh_steps: np.ndarray | None = None):
    """Backpropagation through time for one direction.

    dhs (T, B, H): the gradient of the loss with respect to each step's output state
    ``hs[1:]`` (or None); dh_last, dc_last (B, H): with respect to the final state (or
    None). need_dx: False skips the input gradient. dh_steps: None, or a (T, B, H) array
    that receives the whole gradient of each step's state h_t (for inspection: how the
    gradient shrinks or grows with the distance to the loss). Returns ``dx (T, B, D) or
    None, dh0 (B, H), dc0 (B, H) or None, grads`` with grads holding ``W_x, W_h`` and, when
    the direction has them, ``b, b_hn``.
    """
    T, B, H = tr.steps, tr.hs.shape[1], tr.hs.shape[2]
    dt = tr.hs.dtype
    ops = _ops(dt)
    dG = empty(tr.acts.shape, dt)  # the gradients of every step's pre-activations
    drec = empty(dG.shape, dt) if tr.kind == "gru" and tr.reset_after else None
    dh = np.zeros((B, H), dtype=dt) if dh_last is None else np.array(dh_last, dtype=dt)
    dc = None
    if tr.kind == "lstm":
        dc = np.zeros((B, H), dtype=dt) if dc_last is None else np.array(dc_last, dtype=dt)
    dh_in = np.empty((B, H), dtype=dt)
    # W_h.T as a C-contiguous array: the products dh_in = da @ W_h.T of every step run
    # 1.1-1.3x faster than on the transposed view (benchmarks/README.md)
    W_h = np.asfortranarray(tr.params["W_h"])
    for t in range(T - 1, -1, -1):
        keep = None
        if tr.mask is not None:
            keep = _hold(tr.mask[t], dh, dc)
        dh_out = None if dhs is None else dhs[t]
        if dh_steps is not None:
            np.add(dh, 0 if dh_out is None else dh_out, out=dh_steps[t])
            if keep is not None:
                dh_steps[t] += keep[0]
        _backward_step(ops, tr, t, W_h, dh, dh_out, dc, dG[t],
                       None if drec is None else drec[t], dh_in)
        if tr.rec_mask is not None:
            dh_in *= tr.rec_mask
        if tr.kind == "gru":
            dh += dh_in  # dh * z + dh_in
        else:
            dh, dh_in = dh_in, dh
        if keep is not None:
            dh += keep[0]
            if dc is not None:
                dc += keep[1]
    grads = weight_gradients(tr, dG, drec)
    dx = None
    if need_dx and tr.x is not None:
        D = tr.x.shape[2]
        dx = np.matmul(dG.reshape(T * B, -1), tr.params["W_x"].T).reshape(T, B, D)
    return dx, dh, dc, grads


def _hold(valid: np.ndarray, dh: np.ndarray, dc: np.ndarray | None) -> tuple:
    """Masked step, backward: set aside the gradients of the examples whose step is
    skipped (they pass to the step before unchanged) and zero them for the step."""
    skip = ~valid[:, None]
    keep = (np.where(skip, dh, 0), None if dc is None else np.where(skip, dc, 0))
    dh *= valid[:, None]
    if dc is not None:
        dc *= valid[:, None]
    return keep


def _backward_step(ops, tr: Trace, t: int, W_h, dh, dh_out, dc, da, drec, dh_in) -> None:
    """Step t of the backward: the cell's backward step function on the trace's arrays."""
    hs = tr.hs
    h_in = hs[t] if tr.rec_mask is None else hs[t] * tr.rec_mask
    if tr.kind == "lstm":
        ops.lstm_backward(dh, dh_out, dc, tr.acts[t], tr.cs[t], tr.cs[t + 1], W_h, da, dh_in)
    elif tr.kind == "gru":
        ops.gru_backward(dh, dh_out, tr.acts[t], hs[t], h_in, tr.hn[t], W_h, da, drec,
                         dh_in, tr.reset_after)
    else:
        ops.rnn_backward(dh, dh_out, hs[t + 1], W_h, da, dh_in, tr.nonlinearity == "relu")


def weight_gradients(tr: Trace, dG: np.ndarray, drec: np.ndarray | None) -> dict:
    """The gradients of the direction's parameters from those of every step's
    pre-activations, one product each: ``dW_x = x^T dG``, ``dW_h = h_in^T dG`` (GRU: the
    recurrent side), ``db = sum of dG``. dG (T, B, G*H); drec (T, B, 3H) GRU reset after."""
    T, B, GH = dG.shape
    H = tr.hs.shape[2]
    dG2 = dG.reshape(T * B, GH)
    grads = {}
    if tr.x is None:  # one-hot inputs: row v of dW_x sums the steps whose id is v
        grads["W_x"] = _one_hot_weight_gradient(tr.ids.reshape(T * B), dG2,
                                                tr.params["W_x"].shape[0])
    else:
        grads["W_x"] = tr.x.reshape(T * B, -1).T @ dG2
    h_in = tr.hs[:-1] if tr.rec_mask is None else tr.hs[:-1] * tr.rec_mask
    h_in = h_in.reshape(T * B, H)
    if tr.kind == "gru" and tr.reset_after:
        drec2 = drec.reshape(T * B, GH)
        grads["W_h"] = h_in.T @ drec2
        if tr.params.get("b_hn") is not None:
            grads["b_hn"] = drec2[:, 2 * H :].sum(axis=0)
    elif tr.kind == "gru":  # the n block multiplies q = r * h_in
        dW_h = np.empty((H, GH), dtype=dG.dtype)
        np.matmul(h_in.T, dG2[:, : 2 * H], out=dW_h[:, : 2 * H])
        np.matmul(tr.hn.reshape(T * B, H).T, dG2[:, 2 * H :], out=dW_h[:, 2 * H :])
        grads["W_h"] = dW_h
    else:
        grads["W_h"] = h_in.T @ dG2
    if tr.params.get("b") is not None:
        # one-hot: every position adds its row of dG to exactly one row of dW_x, so the
        # rows of dW_x sum to the sum of dG (a pass over D rows instead of T*B)
        grads["b"] = (grads["W_x"] if tr.x is None else dG2).sum(axis=0)
    return grads


def _one_hot_weight_gradient(ids: np.ndarray, dG: np.ndarray, D: int) -> np.ndarray:
    """dW_x (D, G*H) of one-hot inputs ``x = eye(D)[ids]``: ``x^T @ dG``, whose row v sums
    the rows of dG (N, G*H) at the positions where ids (N,) is v."""
    fast = accelerated.kernels(dG.dtype)
    if fast is not None:
        return fast.one_hot_weight_gradient(ids, dG, D)
    x = np.zeros((ids.size, D), dtype=dG.dtype)
    x[np.arange(ids.size), ids] = 1
    return x.T @ dG
