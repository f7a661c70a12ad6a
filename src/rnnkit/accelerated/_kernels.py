"""The compiled kernels (numba) of :mod:`rnnkit.accelerated`.

Each step kernel fuses the element-wise work of one time step of :mod:`rnnkit.cells` into
one pass over the ``(B, H)`` units: the same equations, in the same gate order, for the
same arrays. The matrix products stay numpy's (the wrappers in
:mod:`rnnkit.accelerated.steps` make them). Plain loops that the compiler vectorises for
whatever processor it runs on: no vector width or instruction set is assumed.

``tanh`` is the one transcendental function (``sigmoid(x) = (1 + tanh(x / 2)) / 2``, as in
the cells). In float64 it is the C library's ``tanh``; in float32, a rational
approximation (Eigen's ``ptanh_float``: a degree 13/6 odd rational function on the range
clamped to +-7.9053, where tanh rounds to +-1 in float32), made of multiplications,
additions and one division, which vectorise: about 10x faster per element than a call to
the C library's ``tanhf``, with a relative error under 3e-7 (a few units in the last
place; ``tests/test_accelerated.py`` checks it against float64).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

# numba's options of every kernel: compiled once and cached on disk; no GIL; fused
# multiply-adds allowed ("contract"), nothing else that changes results
_JIT = {"cache": True, "nogil": True, "fastmath": {"contract"}, "error_model": "numpy",
        "boundscheck": False}

_CLAMP = np.float32(7.90531110763549805)
# numerator (odd powers, x^13 .. x^1) and denominator (even powers, x^6 .. x^0)
_P = tuple(np.float32(c) for c in (-2.76076847742355e-16, 2.00018790482477e-13,
                                   -8.60467152213735e-11, 5.12229709037114e-08,
                                   1.48572235717979e-05, 6.37261928875436e-04,
                                   4.89352455891786e-03))
_Q = tuple(np.float32(c) for c in (1.19825839466702e-06, 1.18534705686654e-04,
                                   2.26843463243900e-03, 4.89352518554385e-03))


def tanh(x):  # pragma: no cover - the Python body is never run: see the overload
    """tanh for the kernels (float32: the rational approximation; float64: libm)."""
    return math.tanh(x)


@njit
def _tanh32(x):
    x = _CLAMP if x > _CLAMP else x
    x = -_CLAMP if x < -_CLAMP else x
    x2 = x * x
    p = _P[0]
    p = p * x2 + _P[1]
    p = p * x2 + _P[2]
    p = p * x2 + _P[3]
    p = p * x2 + _P[4]
    p = p * x2 + _P[5]
    p = p * x2 + _P[6]
    q = _Q[0]
    q = q * x2 + _Q[1]
    q = q * x2 + _Q[2]
    q = q * x2 + _Q[3]
    return (p * x) / q


@overload(tanh)
def _tanh_impl(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    return lambda x: math.tanh(x)


@njit
def _sigmoid(x, half):
    return half + half * tanh(half * x)


@njit(**_JIT)
def tanh_array(x, out):
    """out = tanh(x), element-wise over flat arrays (for the tests of the approximation)."""
    for k in range(x.size):
        out[k] = tanh(x[k])


# --------------------------------------------------------------------------- RNN
@njit(**_JIT)
def rnn_forward(xw, h, relu):
    """h = tanh(h + xw) (relu: max(0, .)) in place: h (B, H) holds h_in @ W_h."""
    B, H = h.shape
    zero = h.dtype.type(0)
    for b in range(B):
        for j in range(H):
            v = h[b, j] + xw[b, j]
            if relu:
                h[b, j] = v if v > zero else zero
            else:
                h[b, j] = tanh(v)


@njit(**_JIT)
def rnn_backward(dh, dh_out, h, da, relu):
    """dh += dh_out; da = dh * (1 - h^2) (relu: dh * (h > 0)). All (B, H)."""
    B, H = h.shape
    one, zero = h.dtype.type(1), h.dtype.type(0)
    for b in range(B):
        for j in range(H):
            g = dh[b, j]
            if dh_out is not None:
                g += dh_out[b, j]
                dh[b, j] = g
            hv = h[b, j]
            if relu:
                da[b, j] = g if hv > zero else zero
            else:
                da[b, j] = g * (one - hv * hv)


# --------------------------------------------------------------------------- LSTM
@njit(**_JIT)
def lstm_forward(a, rec, c_prev, c, tanh_c, h):
    """a += rec, then the gates i, f, g, o activated in place, c = f * c_prev + i * g,
    tanh_c = tanh(c), h = o * tanh_c. a, rec (B, 4H); the others (B, H)."""
    B, H = h.shape
    half = h.dtype.type(0.5)
    for b in range(B):
        for j in range(H):
            i = _sigmoid(a[b, j] + rec[b, j], half)
            f = _sigmoid(a[b, H + j] + rec[b, H + j], half)
            g = tanh(a[b, 2 * H + j] + rec[b, 2 * H + j])
            o = _sigmoid(a[b, 3 * H + j] + rec[b, 3 * H + j], half)
            a[b, j], a[b, H + j], a[b, 2 * H + j], a[b, 3 * H + j] = i, f, g, o
            cv = f * c_prev[b, j] + i * g
            tc = tanh(cv)
            c[b, j] = cv
            tanh_c[b, j] = tc
            h[b, j] = o * tc


@njit(**_JIT)
def lstm_backward(dh, dh_out, dc, a, c_prev, tanh_c, da):
    """The element-wise part of :func:`rnnkit.cells.lstm_backward`: dh += dh_out, da =
    [di, df, dg, do], dc becomes dc * f. a, da (B, 4H); the others (B, H)."""
    B, H = dh.shape
    one = dh.dtype.type(1)
    for b in range(B):
        for j in range(H):
            g_h = dh[b, j]
            if dh_out is not None:
                g_h += dh_out[b, j]
                dh[b, j] = g_h
            i, f = a[b, j], a[b, H + j]
            g, o = a[b, 2 * H + j], a[b, 3 * H + j]
            tc = tanh_c[b, j]
            g_c = dc[b, j] + g_h * o * (one - tc * tc)
            da[b, 3 * H + j] = g_h * tc * (o * (one - o))
            da[b, j] = g_c * g * (i * (one - i))
            da[b, H + j] = g_c * c_prev[b, j] * (f * (one - f))
            da[b, 2 * H + j] = g_c * i * (one - g * g)
            dc[b, j] = g_c * f


# --------------------------------------------------------------------------- GRU
@njit(**_JIT)
def gru_gates_rz(a, rec, H):
    """The r and z gates: a[:, :2H] = sigmoid(a[:, :2H] + rec[:, :2H]). a, rec (B, 3H)."""
    B = a.shape[0]
    half = a.dtype.type(0.5)
    for b in range(B):
        for j in range(2 * H):
            a[b, j] = _sigmoid(a[b, j] + rec[b, j], half)


@njit(**_JIT)
def gru_forward_after(a, rec, b_hn, h_prev, hn, h):
    """Reset after: r, z activated; hn = rec_n + b_hn; n = tanh(a_n + r * hn);
    h = (1 - z) * n + z * h_prev. a, rec (B, 3H); b_hn (H,) or None; the others (B, H)."""
    B, H = h.shape
    half, one = h.dtype.type(0.5), h.dtype.type(1)
    for b in range(B):
        for j in range(H):
            r = _sigmoid(a[b, j] + rec[b, j], half)
            z = _sigmoid(a[b, H + j] + rec[b, H + j], half)
            q = rec[b, 2 * H + j]
            if b_hn is not None:
                q += b_hn[j]
            n = tanh(a[b, 2 * H + j] + r * q)
            a[b, j], a[b, H + j], a[b, 2 * H + j] = r, z, n
            hn[b, j] = q
            h[b, j] = (one - z) * n + z * h_prev[b, j]


@njit(**_JIT)
def gru_reset_input(a, h_in, hn):
    """Reset before: hn = r * h_in, the input of the second product. a (B, 3H)."""
    B, H = hn.shape
    for b in range(B):
        for j in range(H):
            hn[b, j] = a[b, j] * h_in[b, j]


@njit(**_JIT)
def gru_finish_before(a, rec_n, h_prev, h):
    """Reset before: n = tanh(a_n + rec_n), h = (1 - z) * n + z * h_prev, where rec_n
    (B, H) = (r * h_in) @ W_hn. a (B, 3H); the others (B, H)."""
    B, H = h.shape
    one = h.dtype.type(1)
    for b in range(B):
        for j in range(H):
            n = tanh(a[b, 2 * H + j] + rec_n[b, j])
            z = a[b, H + j]
            a[b, 2 * H + j] = n
            h[b, j] = (one - z) * n + z * h_prev[b, j]


@njit(**_JIT)
def gru_backward_after(dh, dh_out, a, h_prev, hn, da, drec):
    """Reset after, the element-wise part of :func:`rnnkit.cells.gru_backward`: da =
    [dr, dz, dn], drec = [dr, dz, dn * r], dh becomes dh * z. a, da, drec (B, 3H)."""
    B, H = dh.shape
    one = dh.dtype.type(1)
    for b in range(B):
        for j in range(H):
            g = dh[b, j]
            if dh_out is not None:
                g += dh_out[b, j]
            r, z, n = a[b, j], a[b, H + j], a[b, 2 * H + j]
            dn = g * (one - z) * (one - n * n)
            dz = g * (h_prev[b, j] - n) * (z * (one - z))
            dr = dn * hn[b, j] * (r * (one - r))
            da[b, j], da[b, H + j], da[b, 2 * H + j] = dr, dz, dn
            drec[b, j], drec[b, H + j], drec[b, 2 * H + j] = dr, dz, dn * r
            dh[b, j] = g * z


@njit(**_JIT)
def gru_backward_before_n(dh, dh_out, a, h_prev, da):
    """Reset before, first part: dh += dh_out; dn and dz into da (B, 3H)."""
    B, H = dh.shape
    one = dh.dtype.type(1)
    for b in range(B):
        for j in range(H):
            g = dh[b, j]
            if dh_out is not None:
                g += dh_out[b, j]
                dh[b, j] = g
            z, n = a[b, H + j], a[b, 2 * H + j]
            da[b, 2 * H + j] = g * (one - z) * (one - n * n)
            da[b, H + j] = g * (h_prev[b, j] - n) * (z * (one - z))


@njit(**_JIT)
def gru_backward_before_r(dh, dq, a, h_in, da, dh_in):
    """Reset before, second part, with dq = dn @ W_hn.T (B, H): dr into da, dh_in = dq *
    r (the products add [dr, dz] @ [W_hr, W_hz].T to it), dh becomes dh * z."""
    B, H = dh.shape
    one = dh.dtype.type(1)
    for b in range(B):
        for j in range(H):
            r, z = a[b, j], a[b, H + j]
            da[b, j] = dq[b, j] * h_in[b, j] * (r * (one - r))
            dh_in[b, j] = dq[b, j] * r
            dh[b, j] = dh[b, j] * z


# --------------------------------------------------------------------------- others
@njit(**_JIT)
def one_hot_weight_gradient(ids, dG, D):
    """dW_x (D, G*H) of one-hot inputs: row v sums the rows of dG (N, G*H) whose id is v,
    in the order of the positions."""
    N, GH = dG.shape
    out = np.zeros((D, GH), dtype=dG.dtype)
    for k in range(N):
        v = ids[k]
        for j in range(GH):
            out[v, j] += dG[k, j]
    return out


@njit(**_JIT)
def adam_update(p, g, m, v, wd, c1, b2, c2, sbc2, eps, step):
    """One Adam update in place of the flat arrays p, g, m, v, as
    :class:`rnnkit.optim.Adam` computes it with numpy: ``g = g + wd * p`` (if wd);
    ``m += (g - m) * c1``; ``v = v * b2 + g * g * c2``; ``p -= m / (sqrt(v) / sbc2 + eps) *
    step``, every constant in the arrays' dtype."""
    for k in range(p.size):
        gk = g[k] + wd * p[k] if wd != 0 else g[k]
        m[k] = m[k] + (gk - m[k]) * c1
        v[k] = v[k] * b2 + (gk * gk) * c2
        p[k] = p[k] - (m[k] / (np.sqrt(v[k]) / sbc2 + eps)) * step
