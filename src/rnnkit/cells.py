"""The math of one recurrent direction: RNN, LSTM and GRU, forward and backward through time.

Everything else in rnnkit (the layers, the cells, the course API, the models) runs on the
functions of this module: one implementation of each equation for sequences, and
:class:`Stepper`, the same equations one step at a time for generation (tested against
the sequence forward).

Letters: T time steps, B batch, D input features, H hidden units, G gates per unit.
The arguments and results are **time-major**: ``x (T, B, D)``, hidden states
``hs (T+1, B, H)`` with ``hs[0]`` the initial state and ``hs[t+1]`` the state after step ``t``.

Two engines run these functions, with the same results bit for bit: the numpy code
below (the reference, always available) and, when numba is installed, compiled kernels
(:mod:`rnnkit.compiled`) that fuse the element-wise work of each step into one pass and
leave the matrix products to numpy. The kernels reproduce the numpy code's operations
one for one; each kernel's docstring names the lines it reproduces. The one exception:
with several cores, the compiled LSTM splits a large enough batch into shards, one per
core (:func:`rnnkit.compiled.set_threads`), whose recurrent products (and input-weight
gradient of one-hot inputs) are rnnkit's own kernels: the same up to the rounding of
those sums.

Inside, the recurrence runs **feature-major**: one step's state is ``h^T (H, B)`` and its
gates ``(G*H, B)``, so that the recurrent product is ``W_h^T @ h^T`` (1.2-1.9x faster on
OpenBLAS than ``h @ W_h`` for these shapes) and every gate block is a contiguous
``(H, B)`` array for the element-wise work. The LSTM's gates are kept in the order
o, i, f, g inside, so that its three sigmoid gates are one block, and the rows of the
weights that feed a sigmoid gate are scaled by 1/2 once per call: ``sigmoid(a) =
tanh(a/2)/2 + 1/2``, so one ``tanh`` over all the gates of a step activates them (scaling
by a power of two is exact). Parameters and gradients are always in the documented order
below.

Parameters of one direction (weights stacked per gate, gate blocks contiguous):

========  =============  ==========================================================
kind      gate order     arrays
========  =============  ==========================================================
rnn       (one block)    ``W_x (D, H)``, ``W_h (H, H)``, ``b (H,)``
lstm      i, f, g, o     ``W_x (D, 4H)``, ``W_h (H, 4H)``, ``b (4H,)``
gru       r, z, n        ``W_x (D, 3H)``, ``W_h (H, 3H)``, ``b (3H,)``, ``b_hn (H,)``
========  =============  ==========================================================

Equations (``*`` element-wise, ``@`` matrix product, rows are examples)::

    rnn   h_t = tanh(x_t @ W_x + h_{t-1} @ W_h + b)            (or relu)

    lstm  [i, f, g, o] = x_t @ W_x + h_{t-1} @ W_h + b          (pre-activations)
          i, f, o = sigmoid(.)   g = tanh(.)
          c_t = f * c_{t-1} + i * g
          h_t = o * tanh(c_t)

    gru   [a_r, a_z, a_n] = x_t @ W_x + b
          r = sigmoid(a_r + h_{t-1} @ W_hr)      z = sigmoid(a_z + h_{t-1} @ W_hz)
          reset after  (PyTorch / cuDNN):  n = tanh(a_n + r * (h_{t-1} @ W_hn + b_hn))
          reset before (Cho et al.; the seeds): n = tanh(a_n + (r * h_{t-1}) @ W_hn)
          h_t = (1 - z) * n + z * h_{t-1}

``z`` is the fraction of the old state that is kept (PyTorch and Keras); the seeds' update
gate is ``Γu = 1 - z``. ``b_hn`` exists only in the reset-after form.

Masks: ``mask (T, B, 1)`` bool. Where it is False the step is skipped: the state is
carried unchanged and the step receives no gradient.

Recurrent dropout (Gal & Ghahramani 2016; Keras' ``recurrent_dropout``): ``rec_mask (B, H)``
multiplies the previous state where it enters the recurrent products, with the same mask
at every step: ``h_{t-1} @ W_h`` becomes ``(h_{t-1} * rec_mask) @ W_h`` (GRU reset before:
``(r * h_{t-1} * rec_mask) @ W_hn``). The state carried to the next step is not masked.
"""

from __future__ import annotations

import functools
from functools import cached_property

import numpy as np

from . import _workspace
from . import compiled as _compiled
from ._workspace import empty as _empty

KINDS = ("rnn", "lstm", "gru")
_CHUNK_ELEMS = 1 << 16  # elements of gate arrays per chunk of steps in the backward
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# --------------------------------------------------------------------------- layout
def _rot(kind: str, H: int) -> int:
    """Gate columns moved from the end of the documented order to the front inside: the
    LSTM's o block (i, f, g, o -> o, i, f, g); 0 for the others (same order)."""
    return H if kind == "lstm" else 0


def _n_sigmoid(kind: str, H: int) -> int:
    """Rows of the inside gate order that are sigmoid gates (they come first)."""
    return {"rnn": 0, "lstm": 3 * H, "gru": 2 * H}[kind]


def _inside_rows(W: np.ndarray, rot: int, n_sig: int) -> np.ndarray:
    """W (K, G*H) -> a new W^T (G*H, K) C-contiguous, gate rows in inside order, the
    sigmoid rows scaled by 1/2 (exact)."""
    GH = W.shape[1]
    Wt = _empty((GH, W.shape[0]), W.dtype)
    Wt[:rot] = W[:, GH - rot :].T
    Wt[rot:] = W[:, : GH - rot].T
    if n_sig:
        Wt[:n_sig] *= 0.5
    return Wt


def _inside_cols(W: np.ndarray, rot: int) -> np.ndarray:
    """W (..., G*H) with its gate columns (last axis) in inside order, C-contiguous."""
    if not rot:
        return np.ascontiguousarray(W)
    GH = W.shape[-1]
    out = _empty(W.shape, W.dtype)
    out[..., :rot] = W[..., GH - rot :]
    out[..., rot:] = W[..., : GH - rot]
    return out


def _documented_cols(W: np.ndarray, rot: int) -> np.ndarray:
    """Inverse of :func:`_inside_cols`, for gradients (..., G*H)."""
    if not rot:
        return W
    GH = W.shape[-1]
    out = _empty(W.shape, W.dtype)
    out[..., GH - rot :] = W[..., :rot]
    out[..., : GH - rot] = W[..., rot:]
    return out


def _time_major(aT: np.ndarray) -> np.ndarray:
    """(T, H, B) -> (T, B, H) C-contiguous copy (in a pooled array)."""
    out = _empty((aT.shape[0], aT.shape[2], aT.shape[1]), aT.dtype)
    np.copyto(out, aT.transpose(0, 2, 1))
    return out


def _feature_major(a: np.ndarray, dtype) -> np.ndarray:
    """(T, B, H) -> (T, H, B) C-contiguous copy of dtype (in a pooled array)."""
    out = _empty((a.shape[0], a.shape[2], a.shape[1]), dtype)
    np.copyto(out, a.transpose(0, 2, 1))
    return out


def clear_workspace() -> None:
    """Let go of the arrays the engine keeps for reuse between calls (this thread's)."""
    _workspace.clear()


# --------------------------------------------------------------------------- cache
class DirCache:
    """What one direction's forward keeps for its backward.

    Inside (feature-major) arrays: ``hT (T+1, H, B)`` states, ``gT (T, G*H, B)`` activated
    gates in inside order, ``cT (T+1, H, B)`` LSTM cells, ``aux`` (LSTM ``tanh_c``, GRU
    ``hn``, each ``(T, H, B)``). ``x (T, B, D)`` the input (None for one-hot inputs, whose
    ``ids (T, B)`` are kept instead), ``mask (T, B, 1)`` bool or None,
    ``rec_mask (B, H)`` or None, ``params`` the arrays used, by name.

    Time-major views for readers, made on first use: ``hs (T+1, B, H)``, ``cs
    (T+1, B, H)``, ``acts (T, B, G*H)`` activated gates in the documented order. The states
    are kept in one of the two layouts, hT or hs, and the other is made from it when it is
    first asked for; the LSTM's ``tanh_c`` likewise, from cT, when it was not kept (with
    ``np.tanh``, the same bits). A forward split across threads keeps ``shards`` instead of
    gT and cT, which are joined when first asked for.
    """

    def __init__(self, kind, x, params, hT, gT, cT=None, aux=None, mask=None,
                 rec_mask=None, nonlinearity="tanh", reset_after=True, ids=None, hs=None):
        self.kind, self.x, self.params, self.ids = kind, x, params, ids
        self._hT, self._hs, self._gT, self._cT = hT, hs, gT, cT
        self.aux = {} if aux is None else aux
        self.mask, self.rec_mask = mask, rec_mask
        self.nonlinearity, self.reset_after = nonlinearity, reset_after
        # a forward split across threads keeps each shard's arrays instead of gT and cT:
        # [(b0, b1, gT (T, GH, b1-b0), cT (T+1, H, b1-b0))], the batch columns b0:b1
        self.shards: list | None = None

    def _joined(self, k: int) -> np.ndarray:
        """gT (k = 2) or cT (k = 3) of a split forward, its shards side by side."""
        first = self.shards[0][k]
        B = self.shards[-1][1]
        out = np.empty(first.shape[:2] + (B,), dtype=first.dtype)
        for sh in self.shards:
            out[:, :, sh[0] : sh[1]] = sh[k]
        return out

    @property
    def gT(self) -> np.ndarray:
        """Activated gates (T, G*H, B), inside order."""
        if self._gT is None and self.shards is not None:
            self._gT = self._joined(2)
        return self._gT

    @gT.setter
    def gT(self, value):
        self._gT = value

    @property
    def cT(self) -> np.ndarray | None:
        """LSTM cells (T+1, H, B), feature-major, or None."""
        if self._cT is None and self.shards is not None:
            self._cT = self._joined(3)
        return self._cT

    @cT.setter
    def cT(self, value):
        self._cT = value

    @property
    def c_last(self) -> np.ndarray:
        """LSTM: the last cell state (B, H)."""
        if self._cT is None and self.shards is not None:
            return np.concatenate([sh[3][-1].T for sh in self.shards])
        return self.cT[-1].T

    @property
    def hT(self) -> np.ndarray:
        """States (T+1, H, B), feature-major."""
        if self._hT is None:
            self._hT = _feature_major(self._hs, self._hs.dtype)
        return self._hT

    @property
    def hs(self) -> np.ndarray:
        """States (T+1, B, H), ``hs[0]`` the initial one."""
        if self._hs is None:
            self._hs = _time_major(self._hT)
        return self._hs

    @property
    def tanh_c(self) -> np.ndarray:
        """LSTM: tanh of the cells after each step, (T, H, B)."""
        if "tanh_c" not in self.aux:
            self.aux["tanh_c"] = np.tanh(self.cT[1:])
        return self.aux["tanh_c"]

    @cached_property
    def cs(self) -> np.ndarray | None:
        """LSTM cells (T+1, B, H), or None."""
        return None if self.cT is None else _time_major(self.cT)

    @cached_property
    def acts(self) -> np.ndarray:
        """Activated gates (T, B, G*H) in the documented order (LSTM i, f, g, o)."""
        a = self.gT.transpose(0, 2, 1)
        return _documented_cols(np.ascontiguousarray(a), _rot(self.kind, self.hs.shape[2]))

    @classmethod
    def from_time_major(cls, kind, x, hs, acts, params, cs=None, aux=None, mask=None,
                        rec_mask=None, nonlinearity="tanh", reset_after=True) -> DirCache:
        """A cache from time-major arrays (``hs, cs (T+1, B, H)``, ``acts (T, B, G*H)`` in
        the documented order, ``aux`` arrays (T, B, H)), e.g. rebuilt from step caches."""
        H = hs.shape[2]
        a = _inside_cols(acts, _rot(kind, H))

        def fm(v):
            return np.ascontiguousarray(np.asarray(v).transpose(0, 2, 1))

        dc = cls(kind, x, params, fm(hs), fm(a), None if cs is None else fm(cs),
                 {k: fm(v) for k, v in (aux or {}).items()}, mask, rec_mask, nonlinearity,
                 reset_after, hs=hs)
        if cs is not None:
            dc.__dict__["cs"] = cs
        return dc


# --------------------------------------------------------------------------- forward
def direction_forward(
    kind: str,
    params: dict,
    x: np.ndarray | None,
    h0: np.ndarray,
    c0: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    nonlinearity: str = "tanh",
    reset_after: bool = True,
    rec_mask: np.ndarray | None = None,
    ids: np.ndarray | None = None,
) -> DirCache:
    """Run one direction over all T steps.

    params: ``W_x (D, G*H)``, ``W_h (H, G*H)``, optional ``b (G*H,)`` and (GRU reset
    after) ``b_hn (H,)``. x (T, B, D), or None and ``ids (T, B)`` ints in [0, D) for
    one-hot inputs ``x = eye(D)[ids]`` (the input product becomes a row look-up, with the
    same result); h0, c0 (B, H); mask (T, B, 1) bool or None; rec_mask (B, H)
    recurrent-dropout multipliers or None.
    Returns the cache, whose ``hs (T+1, B, H)`` (and LSTM ``cs``) hold every state.
    """
    if kind not in KINDS:  # pragma: no cover - guarded by the layers
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    W_x, W_h, b = params["W_x"], params["W_h"], params.get("b")
    T, B = ids.shape if x is None else x.shape[:2]
    H, GH = W_h.shape
    D = W_x.shape[0]
    dt = W_h.dtype
    rot, S = _rot(kind, H), _n_sigmoid(kind, H)
    WhT = _inside_rows(W_h, rot, S)  # (GH, H)
    fast = _compiled.kernels()
    if (fast is not None and kind == "lstm" and mask is None and rec_mask is None
            and fast.blas(dt) is not None and _compiled.shards(B) > 1):
        return _lstm_forward_split(fast, _compiled.shards(B), params, x, ids, h0, c0, WhT)
    # input projections of all steps, (T, GH, B); they become the activated gates in place
    gT = _empty((T, GH, B), dt)
    Wb = None
    if x is None:
        # one-hot inputs: the projection is column ids[t, b] of (W_x + b)^T, exactly what
        # the product with the one-hot vectors (and the bias column) gives
        Wb = _inside_rows(W_x if b is None else np.add(W_x, b, out=_empty(W_x.shape, dt)),
                          rot, S)  # (GH, D)
        if fast is None:  # the kernels read the columns themselves
            for t in range(T):  # ids were checked: clip (the fast mode) changes nothing
                np.take(Wb, ids[t], axis=1, out=gT[t], mode="clip")
    else:
        # (GH, D) or, with a bias, (GH, D+1): the bias is a last column, multiplied by a row
        # of ones appended to the inputs (cheaper than adding it to the projections)
        WxT = _inside_rows(W_x if b is None else np.concatenate([W_x, b[None, :]]), rot, S)
        if B >= 8:  # T products (GH, D[+1]) @ (D[+1], B), straight into their places
            xT = x.transpose(0, 2, 1)
            if b is not None:
                xT = np.concatenate([xT, np.ones((T, 1, B), dtype=dt)], axis=1,
                                    out=_empty((T, D + 1, B), dt))
            np.matmul(WxT, xT, out=gT)
        else:  # one product (T*B, D) @ (D, GH), then (T, B, GH) -> (T, GH, B)
            P = np.matmul(x.reshape(T * B, D), WxT[:, :D].T).reshape(T, B, GH)
            if b is not None:
                P += WxT[:, D]
            np.copyto(gT, P.transpose(0, 2, 1))
    rmT = None if rec_mask is None else np.ascontiguousarray(rec_mask.T)
    hm = np.empty((H, B), dtype=dt) if rmT is not None else None
    rec = np.empty((GH, B), dtype=dt)  # recurrent product of one step
    if fast is not None:
        # the same operations, fused per step (rnnkit.compiled); bit-identical results.
        # The kernels write the states time-major (hs) and keep only the last two
        # feature-major ones, for the next product; without a mask the LSTM's tanh(c) is
        # not kept either (its backward takes it again from c, the same bits).
        loop = fast.tanh_loop(dt)
        m2 = None if mask is None else mask[:, :, 0]  # (T, B)
        hs = _empty((T + 1, B, H), dt)
        hs[0] = h0
        hbuf = np.empty((2, H, B), dtype=dt)
        hbuf[0] = h0.T
        if rmT is not None:
            np.multiply(hbuf[0], rmT, out=hm)
        cache = DirCache(kind, x, params, None, gT, mask=mask, rec_mask=rec_mask,
                         nonlinearity=nonlinearity, reset_after=reset_after, ids=ids, hs=hs)
        if kind == "lstm":
            cT = _empty((T + 1, H, B), dt)
            cT[0] = c0.T
            tanh_c = None if mask is None else _empty((T, H, B), dt)
            tc = np.empty((H, B), dtype=dt)
            blas = fast.blas(dt) if m2 is None and rmT is None else None
            if blas is not None:  # all steps in one call, the same operations
                fast.lstm_forward_shard(loop, blas, False, WhT, gT, rec, Wb, ids, cT, tc, hbuf,
                                        hs)
            for t in range(T if blas is None else 0):
                hp, h = hbuf[t & 1], hbuf[(t + 1) & 1]
                np.matmul(WhT, hp if rmT is None else hm, out=rec)
                fast.lstm_forward_step(loop, gT, rec, Wb, ids, cT,
                                       tc if tanh_c is None else tanh_c[t], hp, h, hs, t, m2,
                                       rmT, hm)
            cache.cT = cT
            if tanh_c is not None:
                cache.aux["tanh_c"] = tanh_c
        elif kind == "rnn":
            relu = nonlinearity == "relu"
            for t in range(T):
                hp, h = hbuf[t & 1], hbuf[(t + 1) & 1]
                np.matmul(WhT, hp if rmT is None else hm, out=rec)
                fast.rnn_forward_step(loop, gT, rec, Wb, ids, hp, h, hs, t, relu, m2, rmT, hm)
        else:  # gru
            hn = _empty((T, H, B), dt)  # reset after: W_hn^T h + b_hn; before: r * h_in
            b_hn = params.get("b_hn") if reset_after else None
            for t in range(T):
                hp, h = hbuf[t & 1], hbuf[(t + 1) & 1]
                hin = hp if rmT is None else hm
                if reset_after:
                    np.matmul(WhT, hin, out=rec)
                else:
                    np.matmul(WhT[:S], hin, out=rec[:S])
                fast.gru_forward_step(loop, gT, rec, Wb, ids, hn, b_hn, hp, h, hs, t,
                                      reset_after, m2, rmT, hm)
                if not reset_after:
                    np.matmul(WhT[S:], hn[t], out=rec[S:])
                    fast.gru_forward_finish(loop, gT, rec, hp, h, hs, t, True, m2, rmT, hm)
            cache.aux["hn"] = hn
        return cache

    m = None if mask is None else mask[:, :, 0][:, None, :]  # (T, 1, B)

    def rec_in(h):
        """The previous state as it enters the recurrent product (masked if dropout)."""
        return h if rmT is None else np.multiply(h, rmT, out=hm)

    hT = _empty((T + 1, H, B), dt)
    hT[0] = h0.T
    cache = DirCache(kind, x, params, hT, gT, mask=mask, rec_mask=rec_mask,
                     nonlinearity=nonlinearity, reset_after=reset_after, ids=ids)
    if kind == "rnn":
        relu = nonlinearity == "relu"
        for t in range(T):
            g = gT[t]
            np.matmul(WhT, rec_in(hT[t]), out=rec)
            g += rec
            if relu:
                np.maximum(g, 0, out=g)
            else:
                np.tanh(g, out=g)
            np.copyto(hT[t + 1], g)
            if m is not None:
                np.copyto(hT[t + 1], hT[t], where=~m[t])
    elif kind == "lstm":
        cT = _empty((T + 1, H, B), dt)
        cT[0] = c0.T
        tanh_c = _empty((T, H, B), dt)
        ig = np.empty((H, B), dtype=dt)
        for t in range(T):
            g = gT[t]
            np.matmul(WhT, rec_in(hT[t]), out=rec)
            g += rec
            np.tanh(g, out=g)  # sigmoid rows were pre-scaled by 1/2
            s = g[:S]
            s *= 0.5
            s += 0.5
            o, i, f, gg = g[:H], g[H : 2 * H], g[2 * H : S], g[S:]
            c = cT[t + 1]
            np.multiply(f, cT[t], out=c)
            np.multiply(i, gg, out=ig)
            c += ig
            np.tanh(c, out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=hT[t + 1])
            if m is not None:
                np.copyto(hT[t + 1], hT[t], where=~m[t])
                np.copyto(c, cT[t], where=~m[t])
        cache.cT = cT
        cache.aux["tanh_c"] = tanh_c
    else:  # gru
        hn = _empty((T, H, B), dt)  # reset after: W_hn^T h + b_hn; before: r * h_in
        b_hn = params.get("b_hn")
        b_hn = None if b_hn is None else b_hn[:, None]
        tmp = np.empty((H, B), dtype=dt)
        for t in range(T):
            g = gT[t]
            h_prev = hT[t]
            rz = g[:S]
            if reset_after:
                np.matmul(WhT, rec_in(h_prev), out=rec)
                rz += rec[:S]
                if b_hn is None:
                    np.copyto(hn[t], rec[S:])
                else:
                    np.add(rec[S:], b_hn, out=hn[t])
            else:
                h_in = rec_in(h_prev)
                np.matmul(WhT[:S], h_in, out=rec[:S])
                rz += rec[:S]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            r, z, n = g[:H], g[H:S], g[S:]
            if reset_after:
                np.multiply(r, hn[t], out=tmp)
            else:
                np.multiply(r, h_in, out=hn[t])
                np.matmul(WhT[S:], hn[t], out=tmp)
            n += tmp
            np.tanh(n, out=n)
            # h = n + z * (h_prev - n)
            h = hT[t + 1]
            np.subtract(h_prev, n, out=h)
            h *= z
            h += n
            if m is not None:
                np.copyto(h, h_prev, where=~m[t])
        cache.aux["hn"] = hn
    return cache


def _bounds(B: int, n: int) -> list:
    """The batch columns of n shards: [(b0, b1), ...], as equal as can be."""
    return [(B * k // n, B * (k + 1) // n) for k in range(n)]


def _lstm_forward_split(fast, n, params, x, ids, h0, c0, WhT) -> DirCache:
    """The compiled LSTM forward (no mask, no recurrent dropout) as n independent shards
    of the batch, each on its own thread with its own single-threaded recurrent products
    (:func:`rnnkit.compiled.set_threads`): the same per-step kernels as the unsplit path,
    with rnnkit's product kernel for the recurrent products (``_kernels.product``). With
    dense inputs that product forms the input projection too: ``[W_x^T | b | W_h^T] @
    [x_t^T; 1; h_prev]``, one per step (``_kernels.lstm_forward_shard_dense``). Each shard
    keeps its gates and cells; the states go into one hs (T+1, B, H)."""
    W_x, b = params["W_x"], params.get("b")
    T, B = ids.shape if x is None else x.shape[:2]
    GH, H = WhT.shape
    D = W_x.shape[0]
    dt = WhT.dtype
    rot, S = _rot("lstm", H), _n_sigmoid("lstm", H)
    loop, blas = fast.tanh_loop(dt), fast.blas(dt)
    if x is None:  # one-hot inputs: the kernels read columns of (W_x + b)^T
        Wb = _inside_rows(W_x if b is None else np.add(W_x, b, out=_empty(W_x.shape, dt)),
                          rot, S)
    else:  # dense inputs: [W_x^T | b | W_h^T] @ [x_t^T; 1; h_prev], one product per step
        Wb = None
        WxT = _inside_rows(W_x if b is None else np.concatenate([W_x, b[None, :]]), rot, S)
        Wcat = np.concatenate([WxT, WhT], axis=1)  # (GH, K)
        off = WxT.shape[1]  # the row of the stacked input where h_prev starts
    hs = _empty((T + 1, B, H), dt)
    hs[0] = h0
    shards, jobs = [], []
    for b0, b1 in _bounds(B, n):
        Bs = b1 - b0
        gT = _empty((T, GH, Bs), dt)
        cT = _empty((T + 1, H, Bs), dt)
        cT[0] = c0[b0:b1].T
        hbuf = np.empty((2, H, Bs), dtype=dt)
        hbuf[0] = h0[b0:b1].T
        tc = np.empty((H, Bs), dtype=dt)
        shards.append((b0, b1, gT, cT))
        if x is None:
            ids_s = np.ascontiguousarray(ids[:, b0:b1])
            rec = np.empty((GH, Bs), dtype=dt)
            jobs.append(functools.partial(fast.lstm_forward_shard, loop, blas, True, WhT, gT,
                                          rec, Wb, ids_s, cT, tc, hbuf, hs[:, b0:b1]))
        else:
            stacked = np.empty((Wcat.shape[1], Bs), dtype=dt)
            stacked[D:off] = 1  # the bias row, if any
            jobs.append(functools.partial(fast.lstm_forward_shard_dense, loop, Wcat, x, b0, off,
                                          gT, cT, tc, hbuf, stacked, hs[:, b0:b1]))
    fast.run_shards(jobs)
    cache = DirCache("lstm", x, params, None, None, ids=ids, hs=hs)
    cache.shards = shards
    return cache


def _lstm_backward_split(fast, cache, Wh, dhs, dh, dc, dG, WxI=None, dx=None) -> None:
    """The backward of :func:`_lstm_forward_split`, shard by shard on the same threads:
    dh, dc (H, B) come in as the gradients of the last state and leave as those of the
    first; each shard writes its columns of dG (GH, T, B). With dx (T, B, D), the input
    gradient too, from the same per-step product: ``[W_h; W_x] @ d``, WxI = W_x (D, GH)
    in inside order."""
    dt = dh.dtype
    loop, blas = fast.tanh_loop(dt), fast.blas(dt)
    H = dh.shape[0]
    GH = Wh.shape[1]
    Wcat2 = None if dx is None else np.concatenate([Wh, WxI], axis=0)  # (H + D, GH)
    parts, jobs = [], []
    for b0, b1, gT, cT in cache.shards:
        Bs = b1 - b0
        dc_s = np.ascontiguousarray(dc[:, b0:b1])
        if dx is None:
            dh_s = np.ascontiguousarray(dh[:, b0:b1])
        else:  # the per-step product's output; its first H rows are dh
            DO = np.empty((Wcat2.shape[0], Bs), dtype=dt)
            dh_s = DO[:H]
            dh_s[...] = dh[:, b0:b1]
        d, tc = np.empty((GH, Bs), dtype=dt), np.empty((H, Bs), dtype=dt)
        parts.append((b0, b1, dh_s, dc_s))
        dhs_s = None if dhs is None else dhs[:, b0:b1]
        if dx is None:
            jobs.append(functools.partial(fast.lstm_backward_shard, loop, blas, True, Wh, gT,
                                          cT, tc, dhs_s, dh_s, dc_s, d, dG[:, :, b0:b1],
                                          False))
        else:
            jobs.append(functools.partial(fast.lstm_backward_shard_dense, loop, Wcat2, gT, cT,
                                          tc, dhs_s, dh_s, dc_s, d, dG[:, :, b0:b1], DO,
                                          dx[:, b0:b1]))
    fast.run_shards(jobs)
    for b0, b1, dh_s, dc_s in parts:
        dh[:, b0:b1] = dh_s
        dc[:, b0:b1] = dc_s


# --------------------------------------------------------------------------- backward
def _finish_step(dh, rmT, keep, dc=None, keep_c=None, drec=None):
    """The numpy code's end of the last backward step after its product, for the compiled
    path (whose kernels do it at the start of the next step): RNN / LSTM ``dh *= rmT``,
    GRU (reset after) ``drec *= rmT``, ``dh += drec``; then ``dh += keep`` (LSTM also
    ``dc += keep_c``)."""
    if drec is not None:
        if rmT is not None:
            drec *= rmT
        dh += drec
    elif rmT is not None:
        dh *= rmT
    if keep is not None:
        dh += keep
        if keep_c is not None:
            dc += keep_c


def direction_backward(
    cache: DirCache,
    dhs: np.ndarray | None,
    dh_last: np.ndarray | None = None,
    dc_last: np.ndarray | None = None,
    need_dx: bool = True,
):
    """Backpropagation through time for one direction.

    dhs (T, B, H): gradient of the loss w.r.t. each step's output state ``hs[1:]`` (or None);
    dh_last, dc_last (B, H): gradients w.r.t. the final state (or None).
    Returns ``dx (T, B, D) or None, dh0 (B, H), dc0 (B, H) or None, grads`` where grads
    holds ``W_x, W_h`` and, when present, ``b, b_hn``.
    """
    kind, p, mask, rm = cache.kind, cache.params, cache.mask, cache.rec_mask
    x = cache.x
    D, (H, GH) = p["W_x"].shape[0], p["W_h"].shape
    T, B = cache.hs.shape[0] - 1, cache.hs.shape[1]
    dt = p["W_h"].dtype
    fast = _compiled.kernels()
    split = cache.shards is not None and fast is not None and fast.blas(dt) is not None
    dx_split = None  # the input gradient, when a split backward forms it
    gT = None if split else cache.gT  # a split forward keeps its shards' gates apart
    rot, S = _rot(kind, H), _n_sigmoid(kind, H)
    Wh = _inside_cols(p["W_h"], rot)  # (H, GH): dh_prev = Wh @ d
    dh = np.zeros((H, B), dtype=dt) if dh_last is None else np.array(dh_last.T, dtype=dt,
                                                                      order="C")
    if dhs is not None:
        dhs = np.asarray(dhs, dtype=dt)
    dhsT = None if dhs is None or fast is not None else _feature_major(dhs, dt)
    m = None if mask is None else mask[:, :, 0][:, None, :]  # (T, 1, B)
    rmT = None if rm is None else np.ascontiguousarray(rm.T)
    # gradients of the pre-activations of all steps, (GH, T, B) for the weight gradients;
    # with a small batch a step's (GH, B) block would be strided, so (T, GH, B) until then
    small = B < 8
    dG = _empty((T, GH, B) if small else (GH, T, B), dt)
    steps = dG if small else dG.transpose(1, 0, 2)  # (T, GH, B) view
    tmp = np.empty((H, B), dtype=dt)
    keep = keep_c = None
    dc = None
    grads = {}
    # Factors of the step gradients that do not depend on the recurrence are formed ahead,
    # for a chunk of steps at a time small enough to stay in cache (Kbuf); the loop then
    # multiplies them by the incoming gradient in place and stores the result in dG.
    chunk = max(1, _CHUNK_ELEMS // (GH * B))
    Kbuf = None if fast is not None else np.empty((min(chunk, T), GH, B), dtype=dt)
    if fast is not None:
        # the same operations, fused per step (rnnkit.compiled); bit-identical results.
        # Each kernel call first finishes the step before it (after its product).
        m2 = None if mask is None else mask[:, :, 0]  # (T, B)
        keep = None if m is None else np.empty((H, B), dtype=dt)
        d = np.empty((GH, B), dtype=dt)  # the step's gate gradients, for its product
        if kind == "lstm":
            dc = np.zeros((H, B), dtype=dt) if dc_last is None else np.array(
                dc_last.T, dtype=dt, order="C")
        if split:
            WxI = None
            if need_dx and x is not None:  # formed with the recurrent products
                dx_split, WxI = _empty((T, B, D), dt), _inside_cols(p["W_x"], rot)
            _lstm_backward_split(fast, cache, Wh, dhs, dh, dc, dG, WxI, dx_split)
        elif kind == "lstm":
            loop = fast.tanh_loop(dt)
            cT, tanh_c = cache.cT, cache.aux.get("tanh_c")
            tc = np.empty((H, B), dtype=dt)  # tanh(c) of a step, when the cache has none
            keep_c = None if m is None else np.empty((H, B), dtype=dt)
            blas = fast.blas(dt) if m is None and rmT is None else None
            if blas is not None:  # all steps in one call (tanh(c) again from c: same bits)
                fast.lstm_backward_shard(loop, blas, False, Wh, gT, cT, tc, dhs, dh, dc, d, dG,
                                         small)
            for t in range(T - 1 if blas is None else -1, -1, -1):
                fast.lstm_backward_step(loop, t, gT, cT, tanh_c, tc, dhs, m2, rmT, dh, dc,
                                        keep, keep_c, d, dG, small, t < T - 1)
                np.matmul(Wh, d, out=dh)
            _finish_step(dh, rmT, keep, dc, keep_c)
        elif kind == "rnn":
            relu = cache.nonlinearity == "relu"
            for t in range(T - 1, -1, -1):
                fast.rnn_backward_step(t, gT, dhs, relu, m2, rmT, dh, keep, d, dG, small,
                                       t < T - 1)
                np.matmul(Wh, d, out=dh)
            _finish_step(dh, rmT, keep)
        else:  # gru
            reset_after = cache.reset_after
            hn, hs = cache.aux["hn"], cache.hs
            hp = np.empty((H, B), dtype=dt)  # h_prev of a step, from hs
            drec = np.empty((H, B), dtype=dt)
            gh = np.empty((GH, B), dtype=dt)  # reset after: [dr; dz; dn * r]
            dnr = _empty((H, T, B), dt) if reset_after else None
            if reset_after:
                for t in range(T - 1, -1, -1):
                    fast.gru_backward_step(t, gT, hn, hs, hp, dhs, m2, rmT, dh, drec, keep,
                                           d, gh, dG, dnr, small, t < T - 1)
                    np.matmul(Wh, gh, out=drec)
                _finish_step(dh, rmT, keep, drec=drec)
            else:
                W_hrz, W_hn = np.ascontiguousarray(Wh[:, :S]), np.ascontiguousarray(Wh[:, S:])
                drh = np.empty((H, B), dtype=dt)
                for t in range(T - 1, -1, -1):
                    fast.gru_backward_step(t, gT, hn, hs, hp, dhs, m2, rmT, dh, drec, keep,
                                           d, gh, dG, None, small, False)
                    np.matmul(W_hn, d[S:], out=drh)
                    fast.gru_backward_reset_before(t, gT, hp, rmT, dh, drh, d, dG, small)
                    np.matmul(W_hrz, d[:S], out=drec)
                    fast.gru_backward_finish(dh, drh, drec, rmT, m2, keep)
    elif kind == "rnn":
        relu = cache.nonlinearity == "relu"
        for t1 in range(T, 0, -chunk):
            t0 = max(0, t1 - chunk)
            hg, K = gT[t0:t1], Kbuf[: t1 - t0]
            if relu:
                np.greater(hg, 0, out=K)
            else:  # tanh' = 1 - h^2
                np.multiply(hg, hg, out=K)
                np.subtract(1, K, out=K)
            for t in range(t1 - 1, t0 - 1, -1):
                if m is not None:
                    keep = np.where(m[t], 0, dh)
                if dhsT is not None:
                    dh += dhsT[t]
                if m is not None:
                    dh *= m[t]
                d = Kbuf[t - t0]
                d *= dh
                np.matmul(Wh, d, out=dh)
                if rmT is not None:
                    dh *= rmT
                if keep is not None:
                    dh += keep
            steps[t0:t1] = K  # the chunk's step gradients, one copy
    elif kind == "lstm":
        cT, tanh_c = cache.cT, cache.tanh_c
        dc = np.zeros((H, B), dtype=dt) if dc_last is None else np.array(dc_last.T, dtype=dt,
                                                                          order="C")
        E = _empty((T, H, B), dt)  # o * (1 - tanh(c)^2): dc += dh * E
        for t1 in range(T, 0, -chunk):
            t0 = max(0, t1 - chunk)
            g, K = gT[t0:t1], Kbuf[: t1 - t0]  # (n, GH, B) each
            o, i, gg = g[:, :H], g[:, H : 2 * H], g[:, S:]
            tc, e = tanh_c[t0:t1], E[t0:t1]
            # activation derivatives: sigmoid' = s (1 - s) (o, i, f), tanh' = 1 - g^2
            np.subtract(1, g[:, :S], out=K[:, :S])
            K[:, :S] *= g[:, :S]
            np.multiply(gg, gg, out=K[:, S:])
            np.subtract(1, K[:, S:], out=K[:, S:])
            # d = [do, di, df, dg] = [dh * tanh(c), dc * g, dc * c_prev, dc * i] * those
            K[:, :H] *= tc
            K[:, H : 2 * H] *= gg
            K[:, 2 * H : S] *= cT[t0:t1]
            K[:, S:] *= i
            np.multiply(tc, tc, out=e)
            np.subtract(1, e, out=e)
            e *= o
            for t in range(t1 - 1, t0 - 1, -1):
                if m is not None:
                    keep = np.where(m[t], 0, dh)
                    keep_c = np.where(m[t], 0, dc)
                if dhsT is not None:
                    dh += dhsT[t]
                if m is not None:
                    dh *= m[t]
                    dc *= m[t]
                np.multiply(dh, E[t], out=tmp)
                dc += tmp
                d = Kbuf[t - t0]
                d[:H] *= dh
                d3 = d[H:].reshape(3, H, B)
                d3 *= dc
                dc *= gT[t, 2 * H : S]  # f
                np.matmul(Wh, d, out=dh)
                if rmT is not None:
                    dh *= rmT
                if keep is not None:
                    dh += keep
                    dc += keep_c
            steps[t0:t1] = K  # the chunk's step gradients, one copy
    else:  # gru
        hn, hT = cache.aux["hn"], cache.hT
        reset_after = cache.reset_after
        dnr = _empty((H, T, B), dt) if reset_after else None  # recurrent n block: dn * r
        Gbuf = np.empty((min(chunk, T), GH, B), dtype=dt)  # reset after: [dr; dz; dn * r]
        one_minus_z = np.empty((min(chunk, T), H, B), dtype=dt)
        drec = np.empty((H, B), dtype=dt)
        if not reset_after:
            W_hrz, W_hn = np.ascontiguousarray(Wh[:, :S]), np.ascontiguousarray(Wh[:, S:])
            drh = np.empty((H, B), dtype=dt)
        for t1 in range(T, 0, -chunk):
            t0 = max(0, t1 - chunk)
            g, K, w = gT[t0:t1], Kbuf[: t1 - t0], one_minus_z[: t1 - t0]
            r, z, n = g[:, :H], g[:, H:S], g[:, S:]
            # K = [dr, dz, dn] / their incoming factor:
            # dz = dh * (h_prev - n) * z (1 - z); dn = dh * (1 - z) (1 - n^2);
            # dr = dn * q * r (1 - r), q = W_hn^T h + b_hn (reset after) or
            # q = h_in (before, where dn is first multiplied by W_hn)
            np.subtract(1, z, out=w)
            np.subtract(hT[t0:t1], n, out=K[:, H:S])
            K[:, H:S] *= z
            K[:, H:S] *= w
            np.multiply(n, n, out=K[:, S:])
            np.subtract(1, K[:, S:], out=K[:, S:])
            K[:, S:] *= w
            np.subtract(1, r, out=K[:, :H])
            K[:, :H] *= r
            if reset_after:
                K[:, :H] *= hn[t0:t1]
            else:
                K[:, :H] *= hT[t0:t1]
                if rmT is not None:
                    K[:, :H] *= rmT
            for t in range(t1 - 1, t0 - 1, -1):
                if m is not None:
                    keep = np.where(m[t], 0, dh)
                if dhsT is not None:
                    dh += dhsT[t]
                if m is not None:
                    dh *= m[t]
                d = K[t - t0]
                d2 = d[H:].reshape(2, H, B)
                d2 *= dh  # dz, dn
                r_t = gT[t, :H]
                if reset_after:
                    d[:H] *= d[S:]  # dr
                    gh = Gbuf[t - t0]
                    np.copyto(gh[:S], d[:S])
                    np.multiply(d[S:], r_t, out=gh[S:])
                    np.matmul(Wh, gh, out=drec)
                    dh *= gT[t, H:S]  # z
                    if rmT is not None:
                        drec *= rmT
                    dh += drec
                else:
                    np.matmul(W_hn, d[S:], out=drh)  # d(r * h_in)
                    d[:H] *= drh  # dr
                    dh *= gT[t, H:S]  # z
                    drh *= r_t
                    np.matmul(W_hrz, d[:S], out=drec)
                    drh += drec
                    if rmT is not None:
                        drh *= rmT
                    dh += drh
                if keep is not None:
                    dh += keep
            steps[t0:t1] = K
            if reset_after:
                dnr[:, t0:t1] = Gbuf[: t1 - t0, S:].transpose(1, 0, 2)
    # weight gradients of all steps, one product each
    TB = T * B
    if small:
        dG = _empty((GH, T, B), dt)
        np.copyto(dG, steps.transpose(1, 0, 2))
    dG2 = dG.reshape(GH, TB)
    hs = cache.hs[:-1]  # (T, B, H): the states fed to each step
    h_in = (hs if rm is None else np.multiply(hs, rm, out=_empty(hs.shape, dt))).reshape(TB, H)
    if kind != "gru":
        dW_h = np.matmul(h_in.T, dG2.T, out=_empty((H, GH), dt))  # (H, GH) inside order
    else:  # the r, z blocks as for the input side; the n block below
        dW_h = _empty((H, GH), dt)
        np.matmul(h_in.T, dG2[:S].T, out=dW_h[:, :S])
        if cache.reset_after:
            np.matmul(h_in.T, dnr.reshape(H, TB).T, out=dW_h[:, S:])
            if p.get("b_hn") is not None:
                grads["b_hn"] = dnr.reshape(H, TB).sum(axis=1)
        else:  # the n block of W_h multiplies r * h_in
            hn_rows = _time_major(cache.aux["hn"]).reshape(TB, H)
            np.matmul(hn_rows.T, dG2[S:].T, out=dW_h[:, S:])
    dx = dx_split
    if dx is None and need_dx and x is not None:  # one-hot inputs (ids): no gradient
        dx = np.matmul(dG2.T, _inside_cols(p["W_x"], rot).T, out=_empty((TB, D), dt))
        dx = dx.reshape(T, B, D)
    if x is None and split:  # one-hot ids: sums by id in time order, rows on the threads
        dWxT = _empty((GH, D), dt)
        ids = np.ascontiguousarray(cache.ids.reshape(TB))
        fast.run_shards([functools.partial(fast.one_hot_grad_rows, dG2, ids, dWxT, g0, g1)
                         for g0, g1 in _bounds(GH, len(cache.shards))])
        grads["W_x"] = _documented_cols(np.ascontiguousarray(dWxT.T), rot)
    else:
        if x is None:  # the one-hot rows of the ids, (T*B, D)
            x = _empty((TB, D), dt)
            x.fill(0)
            x[np.arange(TB), cache.ids.reshape(TB)] = 1
        grads["W_x"] = _documented_cols(np.matmul(x.reshape(TB, D).T, dG2.T,
                                                  out=_empty((D, GH), dt)), rot)
    grads["W_h"] = _documented_cols(dW_h, rot)
    if p.get("b") is not None:
        grads["b"] = _documented_cols(dG2.sum(axis=1), rot)
    dh0 = dh.T
    dc0 = None if dc is None else dc.T
    return dx, dh0, dc0, {k: grads[k] for k in ("W_x", "W_h", "b", "b_hn") if k in grads}


# --------------------------------------------------------------------------- one step
class Stepper:
    """Inference one step at a time (generation), with the weights prepared once.

    The same equations as :func:`direction_forward` for one step, with no cache. It takes a
    snapshot of the weights when it is made: make a new one after the parameters change.
    RNN and LSTM layers run feature-major with one product per layer: the gates are
    ``[W_x; W_h]^T @ [x; h]`` (GH, B), a matrix-vector product at batch 1 that reads each
    weight once (the first layer's one-hot input is a look-up instead); the GRU, whose
    ``n`` gate keeps the input and recurrent parts apart, runs batch-major.

    layers: one params dict per stacked layer (``W_x (D_k, G*H)``, ``W_h``, ``b``,
    ``b_hn`` as in :func:`direction_forward`).
    """

    def __init__(self, kind: str, layers: list, nonlinearity: str = "tanh",
                 reset_after: bool = True):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.relu, self.reset_after = kind, nonlinearity == "relu", reset_after
        H = layers[0]["W_h"].shape[0]
        self.H, self.num_layers = H, len(layers)
        rot, S = _rot(kind, H), _n_sigmoid(kind, H)
        self.S = S
        self.dtype = layers[0]["W_h"].dtype
        self.b, self.b_hn = [], []
        for p in layers:
            b = p.get("b")
            self.b.append(None if b is None else _inside_rows(b[None, :], rot, S)[:, 0])
            b_hn = p.get("b_hn")
            self.b_hn.append(None if b_hn is None else np.array(b_hn))
        # rows of the first layer's W_x (D, GH) with its bias added: one-hot inputs
        Wx0 = _inside_rows(layers[0]["W_x"], rot, S).T
        self.Wxb0 = np.ascontiguousarray(Wx0 if self.b[0] is None else Wx0 + self.b[0])
        if kind == "gru":
            self.Wx = [np.ascontiguousarray(_inside_rows(p["W_x"], rot, S).T)
                       for p in layers]  # (D, GH)
            self.Wh = [np.ascontiguousarray(_inside_rows(p["W_h"], rot, S).T)
                       for p in layers]  # (H, GH)
            if not reset_after:
                self.Wh_rz = [np.ascontiguousarray(W[:, :S]) for W in self.Wh]
                self.Wh_n = [np.ascontiguousarray(W[:, S:]) for W in self.Wh]
        else:
            # [W_x; W_h]^T (GH, D_k + H) per layer, and the first layer's W_h^T (GH, H)
            self.Wc = [_inside_rows(np.concatenate([p["W_x"], p["W_h"]]), rot, S)
                       for p in layers]
            self.D = [p["W_x"].shape[0] for p in layers]
            self.WhT0 = np.ascontiguousarray(self.Wc[0][:, self.D[0]:])
            self.bT = [None if b is None else b[:, None] for b in self.b]

    def step(self, x, h, c=None, ids=None):
        """One step of every layer.

        x (B, D) the first layer's input, or ``ids`` (B,) ints for one-hot inputs
        (``x = eye(D)[ids]``, a row look-up); h, c (L, B, H) the state (c for the LSTM).
        Returns the new h, c (L, B, H) (c None but for the LSTM); ``h[-1]`` is the output.
        """
        B = h.shape[1]
        h_new = np.empty((self.num_layers, B, self.H), dtype=self.dtype)
        c_new = np.empty_like(h_new) if self.kind == "lstm" else None
        if self.kind != "gru":
            self._step_combined(x, h, c, ids, h_new, c_new)
            return h_new, c_new
        # GRU
        for k in range(self.num_layers):
            if k == 0 and ids is not None:
                # the rows of the ids (a view for batch 1)
                xin = self.Wxb0[ids[0]][None] if B == 1 else self.Wxb0[ids]
            else:
                xin = np.matmul(x if k == 0 else h_new[k - 1], self.Wx[k])
                if self.b[k] is not None:
                    xin += self.b[k]
            self._gru_layer(k, xin, h[k], h_new[k])
        return h_new, c_new

    def _step_combined(self, x, h, c, ids, h_new, c_new):
        """RNN / LSTM: per layer the gates a = [W_x; W_h]^T @ [x; h] (+ b), (GH, B)."""
        H, S, B = self.H, self.S, h.shape[1]
        # batch 1 (generation) of an LSTM: the element-wise work in one compiled kernel
        fast = _compiled.kernels() if B == 1 and self.kind == "lstm" else None
        loop = None if fast is None else fast.tanh_loop(self.dtype)
        for k in range(self.num_layers):
            one_hot = k == 0 and ids is not None
            if one_hot:
                a = np.matmul(self.WhT0, h[0].T)
            else:
                D = self.D[k]
                z = np.empty((D + H, B), dtype=self.dtype)
                z[:D] = (x if k == 0 else h_new[k - 1]).T
                z[D:] = h[k].T
                a = np.matmul(self.Wc[k], z)
            if fast is not None:
                fast.lstm_stepper_gates(loop, a, self.Wxb0, int(ids[0]) if one_hot else -1,
                                        self.bT[k], c[k], h_new[k], c_new[k])
                continue
            if one_hot:
                a += self.Wxb0[ids[0]][:, None] if B == 1 else self.Wxb0[ids].T  # a view at 1
            elif self.bT[k] is not None:
                a += self.bT[k]
            out = h_new[k].T  # (H, B) view
            if self.kind == "rnn":
                if self.relu:
                    np.maximum(a, 0, out=out)
                else:
                    np.tanh(a, out=out)
                continue
            np.tanh(a, out=a)  # sigmoid rows pre-scaled by 1/2
            s = a[:S]
            s *= 0.5
            s += 0.5
            o, i, f, g = a[:H], a[H : 2 * H], a[2 * H : S], a[S:]
            cn = c_new[k].T
            np.multiply(f, c[k].T, out=cn)
            i *= g
            cn += i
            np.tanh(cn, out=out)
            out *= o

    def _gru_layer(self, k, xin, h_prev, h_out):
        """One GRU layer: xin (B, GH) the input part incl. bias, h_prev (B, H); writes
        h_out (B, H)."""
        H, S = self.H, self.S
        a = xin if xin.base is None else xin.copy()  # written to below
        rz, n = a[:, :S], a[:, S:]
        if self.reset_after:
            rec = np.matmul(h_prev, self.Wh[k])
            rz += rec[:, :S]
            hn = rec[:, S:]
            if self.b_hn[k] is not None:
                hn += self.b_hn[k]
        else:
            rz += np.matmul(h_prev, self.Wh_rz[k])
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z = a[:, :H], a[:, H:S]
        if self.reset_after:
            hn *= r
            n += hn
        else:
            n += np.matmul(r * h_prev, self.Wh_n[k])
        np.tanh(n, out=n)
        np.subtract(h_prev, n, out=h_out)
        h_out *= z
        h_out += n
