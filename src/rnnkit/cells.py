"""The math of one recurrent direction: RNN, LSTM and GRU, forward and backward through time.

Everything else in rnnkit (the layers, the cells, the course API, the models) runs on the
functions of this module: there is one implementation of each equation.

Letters: T time steps, B batch, D input features, H hidden units, G gates per unit.
All arrays here are **time-major**: ``x (T, B, D)``, hidden states ``hs (T+1, B, H)``
with ``hs[0]`` the initial state and ``hs[t+1]`` the state after step ``t``.

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

from dataclasses import dataclass, field

import numpy as np

KINDS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# --------------------------------------------------------------------------- helpers
def sigmoid_(a: np.ndarray) -> np.ndarray:
    """In-place logistic sigmoid, computed as 0.5*tanh(a/2)+0.5 (no overflow). a: any shape."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def _project(x: np.ndarray, W_x: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Input projections of all steps in one product. x (T, B, D) -> (T, B, G*H)."""
    T, B, D = x.shape
    out = np.matmul(x.reshape(T * B, D), W_x).reshape(T, B, W_x.shape[1])
    if b is not None:
        out += b
    return out


def _weight_grads(x, hs_prev, dgx, dgh, need_dx: bool, W_x):
    """Weight gradients of all steps, one product each.

    x (T, B, D), hs_prev (T, B, H) states fed to each step, dgx (T, B, G*H) gradients of the
    input-side pre-activations, dgh (T, B, G*H) of the recurrent-side ones.
    Returns dW_x (D, GH), dW_h (H, GH), db (GH,), dx (T, B, D) or None.
    """
    T, B, D = x.shape
    GH = dgx.shape[2]
    dgx2 = dgx.reshape(T * B, GH)
    dW_x = np.matmul(x.reshape(T * B, D).T, dgx2)
    dW_h = np.matmul(hs_prev.reshape(T * B, -1).T, dgh.reshape(T * B, GH))
    db = dgx2.sum(axis=0)
    dx = np.matmul(dgx2, W_x.T).reshape(T, B, D) if need_dx else None
    return dW_x, dW_h, db, dx


@dataclass
class DirCache:
    """What one direction's forward keeps for its backward (time-major arrays).

    x (T, B, D) input; hs (T+1, B, H) states; cs (T+1, B, H) LSTM cells; acts (T, B, G*H)
    activated gates; aux: kind-specific arrays (LSTM tanh(c), GRU recurrent products);
    mask (T, B, 1) bool or None; params: the arrays used, by name.
    """

    kind: str
    x: np.ndarray
    hs: np.ndarray
    acts: np.ndarray
    params: dict
    mask: np.ndarray | None = None
    rec_mask: np.ndarray | None = None
    cs: np.ndarray | None = None
    aux: dict = field(default_factory=dict)
    nonlinearity: str = "tanh"
    reset_after: bool = True


# --------------------------------------------------------------------------- forward
def direction_forward(
    kind: str,
    params: dict,
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    nonlinearity: str = "tanh",
    reset_after: bool = True,
    rec_mask: np.ndarray | None = None,
) -> DirCache:
    """Run one direction over all T steps.

    params: ``W_x (D, G*H)``, ``W_h (H, G*H)``, optional ``b (G*H,)`` and (GRU reset
    after) ``b_hn (H,)``. x (T, B, D); h0, c0 (B, H); mask (T, B, 1) bool or None;
    rec_mask (B, H) recurrent-dropout multipliers or None.
    Returns the cache, whose ``hs (T+1, B, H)`` (and LSTM ``cs``) hold every state.
    """
    W_x, W_h, b = params["W_x"], params["W_h"], params.get("b")
    T, B, _ = x.shape
    H = W_h.shape[0]
    dt = W_h.dtype
    acts = _project(x, W_x, b)  # (T, B, G*H), becomes the activated gates in place
    hs = np.empty((T + 1, B, H), dtype=dt)
    hs[0] = h0
    cache = DirCache(kind, x, hs, acts, params, mask, rec_mask, nonlinearity=nonlinearity,
                     reset_after=reset_after)
    rec = np.empty((B, W_h.shape[1]), dtype=dt)  # recurrent product of one step
    hm = np.empty((B, H), dtype=dt) if rec_mask is not None else None

    def rec_in(h):
        """The previous state as it enters the recurrent product (masked if dropout)."""
        if rec_mask is None:
            return h
        return np.multiply(h, rec_mask, out=hm)

    if kind == "rnn":
        relu = nonlinearity == "relu"
        for t in range(T):
            a = acts[t]
            np.matmul(rec_in(hs[t]), W_h, out=rec)
            a += rec
            if relu:
                np.maximum(a, 0, out=a)
            else:
                np.tanh(a, out=a)
            hs[t + 1] = a
            if mask is not None:
                np.copyto(hs[t + 1], hs[t], where=~mask[t])
    elif kind == "lstm":
        cs = np.empty((T + 1, B, H), dtype=dt)
        cs[0] = c0
        tanh_c = np.empty((T, B, H), dtype=dt)
        ig = np.empty((B, H), dtype=dt)
        for t in range(T):
            a = acts[t]
            np.matmul(rec_in(hs[t]), W_h, out=rec)
            a += rec
            sigmoid_(a[:, : 2 * H])
            np.tanh(a[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])
            sigmoid_(a[:, 3 * H :])
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            c = cs[t + 1]
            np.multiply(f, cs[t], out=c)
            np.multiply(i, g, out=ig)
            c += ig
            np.tanh(c, out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=hs[t + 1])
            if mask is not None:
                np.copyto(hs[t + 1], hs[t], where=~mask[t])
                np.copyto(c, cs[t], where=~mask[t])
        cache.cs = cs
        cache.aux["tanh_c"] = tanh_c
    elif kind == "gru":
        hn = np.empty((T, B, H), dtype=dt)  # reset after: h@W_hn+b_hn; before: r*h_prev
        b_hn = params.get("b_hn")
        W_hrz, W_hn = W_h[:, : 2 * H], W_h[:, 2 * H :]
        tmp = np.empty((B, H), dtype=dt)
        for t in range(T):
            a = acts[t]
            h_prev = hs[t]
            if reset_after:
                np.matmul(rec_in(h_prev), W_h, out=rec)
                a[:, : 2 * H] += rec[:, : 2 * H]
                sigmoid_(a[:, : 2 * H])
                np.copyto(hn[t], rec[:, 2 * H :])
                if b_hn is not None:
                    hn[t] += b_hn
                np.multiply(a[:, :H], hn[t], out=tmp)
            else:
                h_in = rec_in(h_prev)
                np.matmul(h_in, W_hrz, out=rec[:, : 2 * H])
                a[:, : 2 * H] += rec[:, : 2 * H]
                sigmoid_(a[:, : 2 * H])
                np.multiply(a[:, :H], h_in, out=hn[t])
                np.matmul(hn[t], W_hn, out=tmp)
            n = a[:, 2 * H :]
            n += tmp
            np.tanh(n, out=n)
            # h = n + z * (h_prev - n)
            h = hs[t + 1]
            np.subtract(h_prev, n, out=h)
            h *= a[:, H : 2 * H]
            h += n
            if mask is not None:
                np.copyto(h, h_prev, where=~mask[t])
        cache.aux["hn"] = hn
    else:  # pragma: no cover - guarded by the layers
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return cache


# --------------------------------------------------------------------------- backward
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
    x, hs, acts = cache.x, cache.hs, cache.acts
    T, B, _ = x.shape
    H = hs.shape[2]
    dt = hs.dtype
    W_h = p["W_h"]
    W_hT = np.ascontiguousarray(W_h.T)  # contiguous: the per-step product is faster
    dh = np.zeros((B, H), dtype=dt) if dh_last is None else np.array(dh_last, dtype=dt)
    dg = np.empty_like(acts)  # gradients of the pre-activations, all steps
    # the states as they entered the recurrent products (for dW_h)
    h_in_all = hs[:-1] if rm is None else hs[:-1] * rm
    keep = None
    grads = {}
    if kind == "rnn":
        relu = cache.nonlinearity == "relu"
        for t in range(T - 1, -1, -1):
            if mask is not None:
                keep = np.where(mask[t], 0, dh)
            if dhs is not None:
                dh += dhs[t]
            if mask is not None:
                dh *= mask[t]
            h = acts[t]
            d = dg[t]
            if relu:
                np.multiply(dh, h > 0, out=d)
            else:
                np.multiply(h, h, out=d)
                np.subtract(1, d, out=d)
                d *= dh
            np.matmul(d, W_hT, out=dh)
            if rm is not None:
                dh *= rm
            if keep is not None:
                dh += keep
        dgh = dg
        dc = None
    elif kind == "lstm":
        cs, tanh_c = cache.cs, cache.aux["tanh_c"]
        dc = np.zeros((B, H), dtype=dt) if dc_last is None else np.array(dc_last, dtype=dt)
        tmp = np.empty((B, H), dtype=dt)
        keep_c = None
        for t in range(T - 1, -1, -1):
            if mask is not None:
                keep = np.where(mask[t], 0, dh)
                keep_c = np.where(mask[t], 0, dc)
            if dhs is not None:
                dh += dhs[t]
            if mask is not None:
                dh *= mask[t]
                dc *= mask[t]
            a = acts[t]
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            d = dg[t]
            di, df, dgg, do = d[:, :H], d[:, H : 2 * H], d[:, 2 * H : 3 * H], d[:, 3 * H :]
            tc = tanh_c[t]
            # do = dh * tanh(c) * o * (1 - o)
            np.multiply(dh, tc, out=do)
            np.subtract(1, o, out=tmp)
            tmp *= o
            do *= tmp
            # dc += dh * o * (1 - tanh(c)^2)
            np.multiply(tc, tc, out=tmp)
            np.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp
            # di = dc * g * i * (1 - i)
            np.subtract(1, i, out=tmp)
            tmp *= i
            np.multiply(dc, g, out=di)
            di *= tmp
            # df = dc * c_prev * f * (1 - f)
            np.subtract(1, f, out=tmp)
            tmp *= f
            np.multiply(dc, cs[t], out=df)
            df *= tmp
            # dg = dc * i * (1 - g^2)
            np.multiply(g, g, out=tmp)
            np.subtract(1, tmp, out=tmp)
            tmp *= i
            np.multiply(dc, tmp, out=dgg)
            dc *= f
            np.matmul(d, W_hT, out=dh)
            if rm is not None:
                dh *= rm
            if keep is not None:
                dh += keep
                dc += keep_c
        dgh = dg
    elif kind == "gru":
        hn = cache.aux["hn"]
        reset_after = cache.reset_after
        # the recurrent side differs from the input side only in the n block
        dgh = np.empty_like(dg)
        tmp = np.empty((B, H), dtype=dt)
        if not reset_after:
            W_hrzT = np.ascontiguousarray(W_h[:, : 2 * H].T)
            W_hnT = np.ascontiguousarray(W_h[:, 2 * H :].T)
            drh = np.empty((B, H), dtype=dt)
        db_hn = np.zeros(H, dtype=dt) if p.get("b_hn") is not None else None
        for t in range(T - 1, -1, -1):
            if mask is not None:
                keep = np.where(mask[t], 0, dh)
            if dhs is not None:
                dh += dhs[t]
            if mask is not None:
                dh *= mask[t]
            a = acts[t]
            r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
            h_prev = hs[t]
            d = dg[t]
            dr, dz, dn = d[:, :H], d[:, H : 2 * H], d[:, 2 * H :]
            # dz = dh * (h_prev - n) * z * (1 - z)
            np.subtract(h_prev, n, out=dz)
            dz *= dh
            np.subtract(1, z, out=tmp)
            tmp *= z
            dz *= tmp
            # dn = dh * (1 - z) * (1 - n^2)
            np.subtract(1, z, out=dn)
            dn *= dh
            np.multiply(n, n, out=tmp)
            np.subtract(1, tmp, out=tmp)
            dn *= tmp
            dgh_t = dgh[t]
            if reset_after:
                # dr = dn * (h@W_hn + b_hn) * r * (1 - r); recurrent n block: dn * r
                np.multiply(dn, hn[t], out=dr)
                np.subtract(1, r, out=tmp)
                tmp *= r
                dr *= tmp
                dgh_t[:, : 2 * H] = d[:, : 2 * H]
                np.multiply(dn, r, out=dgh_t[:, 2 * H :])
                if db_hn is not None:
                    db_hn += dgh_t[:, 2 * H :].sum(axis=0)
                dh *= z
                drec = np.matmul(dgh_t, W_hT)
                if rm is not None:
                    drec *= rm
                dh += drec
            else:
                # d(r*h_prev) = dn @ W_hn^T; dr = that * h_prev * r * (1 - r)
                np.matmul(dn, W_hnT, out=drh)
                h_in = h_prev if rm is None else h_prev * rm
                np.multiply(drh, h_in, out=dr)
                np.subtract(1, r, out=tmp)
                tmp *= r
                dr *= tmp
                dgh_t[:] = d
                dh *= z
                drh *= r
                drh += np.matmul(d[:, : 2 * H], W_hrzT)
                if rm is not None:
                    drh *= rm
                dh += drh
            if keep is not None:
                dh += keep
        if db_hn is not None:
            grads["b_hn"] = db_hn
        dc = None
        if not reset_after:
            # the n block of W_h multiplies r * h_prev, not h_prev
            dW_x, dW_h, db, dx = _weight_grads(x, h_in_all, dg, dgh, need_dx, p["W_x"])
            T_B = T * B
            dW_h[:, 2 * H :] = np.matmul(hn.reshape(T_B, H).T, dg[:, :, 2 * H :].reshape(T_B, H))
            grads.update(W_x=dW_x, W_h=dW_h)
            if "b" in p and p["b"] is not None:
                grads["b"] = db
            return dx, dh, dc, grads
    dW_x, dW_h, db, dx = _weight_grads(x, h_in_all, dg, dgh, need_dx, p["W_x"])
    grads.update(W_x=dW_x, W_h=dW_h)
    if p.get("b") is not None:
        grads["b"] = db
    return dx, dh, dc, grads
