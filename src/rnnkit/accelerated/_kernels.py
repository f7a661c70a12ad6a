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


# Every kernel walks the examples b and, inside, the units j of each gate block through
# views of the rows (``ai = a[b, :H]``, ...): indices from ``range(H)`` are known to be
# non-negative, which lets the compiler vectorise the loop over j (an index such as
# ``a[b, H + j]`` keeps numba's check for negative indices and does not vectorise).


# --------------------------------------------------------------------------- RNN
@njit(**_JIT)
def rnn_forward(xw, h, relu):
    """h = tanh(h + xw) (relu: max(0, .)) in place: h (B, H) holds h_in @ W_h."""
    B, H = h.shape
    zero = h.dtype.type(0)
    for b in range(B):
        hb, xb = h[b], xw[b]
        for j in range(H):
            v = hb[j] + xb[j]
            if relu:
                hb[j] = v if v > zero else zero
            else:
                hb[j] = tanh(v)


@njit(**_JIT)
def rnn_backward(dh, dh_out, h, da, relu):
    """dh += dh_out; da = dh * (1 - h^2) (relu: dh * (h > 0)). All (B, H)."""
    B, H = h.shape
    one, zero = h.dtype.type(1), h.dtype.type(0)
    for b in range(B):
        dhb, hb, dab = dh[b], h[b], da[b]
        if dh_out is not None:
            ob = dh_out[b]
            for j in range(H):
                dhb[j] += ob[j]
        for j in range(H):
            if relu:
                dab[j] = dhb[j] if hb[j] > zero else zero
            else:
                dab[j] = dhb[j] * (one - hb[j] * hb[j])


# --------------------------------------------------------------------------- LSTM
@njit(**_JIT)
def lstm_forward(a, rec, c_prev, c, h):
    """a += rec, then the gates i, f, g, o activated in place, c = f * c_prev + i * g,
    h = o * tanh(c). a, rec (B, 4H); the others (B, H)."""
    B, H = h.shape
    half = h.dtype.type(0.5)
    for b in range(B):
        ar, rr = a[b], rec[b]
        ai, af, ag, ao = ar[:H], ar[H : 2 * H], ar[2 * H : 3 * H], ar[3 * H :]
        ri, rf, rg, ro = rr[:H], rr[H : 2 * H], rr[2 * H : 3 * H], rr[3 * H :]
        cp, cb, hb = c_prev[b], c[b], h[b]
        for j in range(H):
            i = _sigmoid(ai[j] + ri[j], half)
            f = _sigmoid(af[j] + rf[j], half)
            g = tanh(ag[j] + rg[j])
            o = _sigmoid(ao[j] + ro[j], half)
            ai[j], af[j], ag[j], ao[j] = i, f, g, o
            cv = f * cp[j] + i * g
            cb[j], hb[j] = cv, o * tanh(cv)


@njit(**_JIT)
def lstm_backward(dh, dh_out, dc, a, c_prev, c, da):
    """The element-wise part of :func:`rnnkit.cells.lstm_backward`: dh += dh_out, da =
    [di, df, dg, do], dc becomes dc * f. a, da (B, 4H); the others (B, H)."""
    B, H = dh.shape
    one = dh.dtype.type(1)
    for b in range(B):
        ar, dr = a[b], da[b]
        ai, af, ag, ao = ar[:H], ar[H : 2 * H], ar[2 * H : 3 * H], ar[3 * H :]
        di, df, dg, do = dr[:H], dr[H : 2 * H], dr[2 * H : 3 * H], dr[3 * H :]
        dhb, dcb, cp, cb = dh[b], dc[b], c_prev[b], c[b]
        if dh_out is not None:
            ob = dh_out[b]
            for j in range(H):
                dhb[j] += ob[j]
        for j in range(H):
            i, f, g, o, tc, g_h = ai[j], af[j], ag[j], ao[j], tanh(cb[j]), dhb[j]
            g_c = dcb[j] + g_h * o * (one - tc * tc)
            do[j] = g_h * tc * (o * (one - o))
            di[j] = g_c * g * (i * (one - i))
            df[j] = g_c * cp[j] * (f * (one - f))
            dg[j] = g_c * i * (one - g * g)
            dcb[j] = g_c * f


# --------------------------------------------------------------------------- GRU
@njit(**_JIT)
def gru_gates_rz(a, rec, H):
    """The r and z gates: a[:, :2H] = sigmoid(a[:, :2H] + rec[:, :2H]). a, rec (B, 3H)."""
    B = a.shape[0]
    half = a.dtype.type(0.5)
    for b in range(B):
        ar, rr = a[b, : 2 * H], rec[b, : 2 * H]
        for j in range(2 * H):
            ar[j] = _sigmoid(ar[j] + rr[j], half)


@njit(**_JIT)
def gru_forward_after(a, rec, b_hn, h_prev, hn, h):
    """Reset after: r, z activated; hn = rec_n + b_hn; n = tanh(a_n + r * hn);
    h = (1 - z) * n + z * h_prev. a, rec (B, 3H); b_hn (H,) or None; the others (B, H)."""
    B, H = h.shape
    half, one = h.dtype.type(0.5), h.dtype.type(1)
    for b in range(B):
        ar, rr = a[b], rec[b]
        a_r, a_z, a_n = ar[:H], ar[H : 2 * H], ar[2 * H :]
        r_r, r_z, r_n = rr[:H], rr[H : 2 * H], rr[2 * H :]
        hp, hnb, hb = h_prev[b], hn[b], h[b]
        for j in range(H):
            r = _sigmoid(a_r[j] + r_r[j], half)
            z = _sigmoid(a_z[j] + r_z[j], half)
            q = r_n[j]
            if b_hn is not None:
                q += b_hn[j]
            n = tanh(a_n[j] + r * q)
            a_r[j], a_z[j], a_n[j] = r, z, n
            hnb[j] = q
            hb[j] = (one - z) * n + z * hp[j]


@njit(**_JIT)
def gru_reset_input(a, h_in, hn):
    """Reset before: hn = r * h_in, the input of the second product. a (B, 3H)."""
    B, H = hn.shape
    for b in range(B):
        rb, xb, hnb = a[b, :H], h_in[b], hn[b]
        for j in range(H):
            hnb[j] = rb[j] * xb[j]


@njit(**_JIT)
def gru_finish_before(a, rec_n, h_prev, h):
    """Reset before: n = tanh(a_n + rec_n), h = (1 - z) * n + z * h_prev, where rec_n
    (B, H) = (r * h_in) @ W_hn. a (B, 3H); the others (B, H)."""
    B, H = h.shape
    one = h.dtype.type(1)
    for b in range(B):
        a_z, a_n = a[b, H : 2 * H], a[b, 2 * H :]
        rn, hp, hb = rec_n[b], h_prev[b], h[b]
        for j in range(H):
            n = tanh(a_n[j] + rn[j])
            z = a_z[j]
            a_n[j] = n
            hb[j] = (one - z) * n + z * hp[j]


@njit(**_JIT)
def gru_backward_after(dh, dh_out, a, h_prev, hn, da, drec):
    """Reset after, the element-wise part of :func:`rnnkit.cells.gru_backward`: da =
    [dr, dz, dn], drec = [dr, dz, dn * r], dh becomes dh * z. a, da, drec (B, 3H)."""
    B, H = dh.shape
    one = dh.dtype.type(1)
    for b in range(B):
        ar, dr_, rr = a[b], da[b], drec[b]
        a_r, a_z, a_n = ar[:H], ar[H : 2 * H], ar[2 * H :]
        d_r, d_z, d_n = dr_[:H], dr_[H : 2 * H], dr_[2 * H :]
        e_r, e_z, e_n = rr[:H], rr[H : 2 * H], rr[2 * H :]
        dhb, hp, hnb = dh[b], h_prev[b], hn[b]
        if dh_out is not None:
            ob = dh_out[b]
            for j in range(H):
                dhb[j] += ob[j]
        for j in range(H):
            g, r, z, n = dhb[j], a_r[j], a_z[j], a_n[j]
            dn = g * (one - z) * (one - n * n)
            dz = g * (hp[j] - n) * (z * (one - z))
            dr = dn * hnb[j] * (r * (one - r))
            d_r[j], d_z[j], d_n[j] = dr, dz, dn
            e_r[j], e_z[j], e_n[j] = dr, dz, dn * r
            dhb[j] = g * z


@njit(**_JIT)
def gru_backward_before_n(dh, dh_out, a, h_prev, da):
    """Reset before, first part: dh += dh_out; dn and dz into da (B, 3H)."""
    B, H = dh.shape
    one = dh.dtype.type(1)
    for b in range(B):
        a_z, a_n = a[b, H : 2 * H], a[b, 2 * H :]
        d_z, d_n = da[b, H : 2 * H], da[b, 2 * H :]
        dhb, hp = dh[b], h_prev[b]
        if dh_out is not None:
            ob = dh_out[b]
            for j in range(H):
                dhb[j] += ob[j]
        for j in range(H):
            g, z, n = dhb[j], a_z[j], a_n[j]
            d_n[j] = g * (one - z) * (one - n * n)
            d_z[j] = g * (hp[j] - n) * (z * (one - z))


@njit(**_JIT)
def gru_backward_before_r(dh, dq, a, h_in, da, dh_in):
    """Reset before, second part, with dq = dn @ W_hn.T (B, H): dr into da, dh_in = dq *
    r (the products add [dr, dz] @ [W_hr, W_hz].T to it), dh becomes dh * z."""
    B, H = dh.shape
    one = dh.dtype.type(1)
    for b in range(B):
        a_r, a_z, d_r = a[b, :H], a[b, H : 2 * H], da[b, :H]
        dhb, dqb, xb, dib = dh[b], dq[b], h_in[b], dh_in[b]
        for j in range(H):
            r = a_r[j]
            d_r[j] = dqb[j] * xb[j] * (r * (one - r))
            dib[j] = dqb[j] * r
            dhb[j] = dhb[j] * a_z[j]


# --------------------------------------------------------------------------- others
@njit(**_JIT)
def one_hot_weight_gradient(ids, dG, D):
    """dW_x (D, G*H) of one-hot inputs: row v sums the rows of dG (N, G*H) whose id is v,
    in the order of the positions."""
    N, GH = dG.shape
    out = np.zeros((D, GH), dtype=dG.dtype)
    for k in range(N):
        row, src = out[ids[k]], dG[k]
        for j in range(GH):
            row[j] += src[j]
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
