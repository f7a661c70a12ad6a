"""One time step of the RNN, LSTM and GRU cells, forward and backward, in textbook form.

This module is the math of rnnkit's recurrent layers, written once. The sequence loop
(:mod:`rnnkit.sequence`) calls these functions once per time step, forward and back; so
does every one-step path (``layer.step``, the ``*Cell`` layers), and the optional compiled
backend (:mod:`rnnkit.accelerated`) is tested against them. Each line of a function is an
equation of its docstring.

Letters: B examples (batch), D input features, H hidden units. Every array is one row per
example: ``x_t (B, D)``, ``h (B, H)``. ``@`` is the matrix product, ``*`` element-wise.

Parameters of one cell, weights stacked per gate (the gate blocks side by side):

========  =========  =============  =============  ==========================
cell      gates      W_x            W_h            biases
========  =========  =============  =============  ==========================
rnn       (one)      ``(D, H)``     ``(H, H)``     ``b (H,)``
lstm      i, f, g, o ``(D, 4H)``    ``(H, 4H)``    ``b (4H,)``
gru       r, z, n    ``(D, 3H)``    ``(H, 3H)``    ``b (3H,)``, ``b_hn (H,)``
========  =========  =============  =============  ==========================

The input side ``xw = x_t @ W_x + b`` of every step is one product over all steps, formed
by the sequence loop before the first step; a forward step receives its rows ``xw``
``(B, G*H)`` and adds its one recurrent product. ``h_in`` is the previous state as it
enters the recurrent product: ``h_prev``, or ``h_prev * rec_mask`` under recurrent dropout.

A backward step receives ``dh_next``, the gradient that reaches ``h_t`` from step t+1, and
``dh_out``, the gradient of the loss with respect to the output ``h_t`` itself (or None):
their sum is the gradient of ``h_t`` (backpropagation through time). It writes ``da``,
the gradient of the step's pre-activations, which the sequence loop keeps for the weight
gradients of all steps (one product each), and ``dh_in = da @ W_h.T``, the gradient that
reaches ``h_in`` through the recurrent product.

Results are written into arrays the caller passes (``out`` arguments): the loop hands in
views of its sequence arrays, so that no step allocates. Reading them, ``np.multiply(f,
c_prev, out=c)`` is ``c = f * c_prev``.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The logistic function ``sigmoid(x) = 1 / (1 + exp(-x))``, element-wise.

    Computed as ``(1 + tanh(x / 2)) / 2``, the same function, which never overflows (where
    ``exp(-x)`` does for x below -89 in float32). x and out: any shape; out may be x.
    """
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def gates(a: np.ndarray, n: int) -> list[np.ndarray]:
    """The n gate blocks of a stacked array: a (B, n*H) -> n views (B, H), in order."""
    H = a.shape[-1] // n
    return [a[..., k * H : (k + 1) * H] for k in range(n)]


def _dh(dh_next: np.ndarray, dh_out: np.ndarray | None) -> np.ndarray:
    """dh = dh_next + dh_out: the whole gradient that reaches h_t (B, H), in dh_next."""
    if dh_out is not None:
        dh_next += dh_out
    return dh_next


# --------------------------------------------------------------------------- RNN
def rnn_forward(xw, h_in, W_h, h, relu: bool = False) -> None:
    """One step of the Elman RNN::

        h = tanh(xw + h_in @ W_h)          (relu: h = max(0, xw + h_in @ W_h))

    xw (B, H) = x_t @ W_x + b; h_in (B, H); W_h (H, H). Writes h (B, H).
    """
    np.matmul(h_in, W_h, out=h)
    h += xw
    if relu:
        np.maximum(h, 0, out=h)
    else:
        np.tanh(h, out=h)


def rnn_backward(dh_next, dh_out, h, W_h, da, dh_in, relu: bool = False) -> None:
    """The gradients of one RNN step::

        dh = dh_next + dh_out
        da = dh * (1 - h^2)                (relu: da = dh * (h > 0))
        dh_in = da @ W_h.T

    dh_next (B, H), overwritten; dh_out (B, H) or None; h (B, H) the step's output; W_h
    (H, H). Writes da (B, H), the gradient of the pre-activation, and dh_in (B, H).
    """
    dh = _dh(dh_next, dh_out)
    if relu:
        np.multiply(dh, h > 0, out=da)
    else:
        np.multiply(dh, 1 - h * h, out=da)
    np.matmul(da, W_h.T, out=dh_in)


# --------------------------------------------------------------------------- LSTM
def lstm_forward(a, h_in, c_prev, W_h, rec, c, h) -> None:
    """One step of the LSTM (Hochreiter & Schmidhuber 1997, with a forget gate)::

        [a_i, a_f, a_g, a_o] = xw + h_in @ W_h           pre-activations of the gates
        i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
        c = f * c_prev + i * g
        h = o * tanh(c)

    a (B, 4H) holds xw = x_t @ W_x + b on entry and the activated gates [i, f, g, o] on
    return (the backward step needs them). h_in, c_prev (B, H); W_h (H, 4H); rec (B, 4H)
    scratch for the product. Writes c and h (B, H).
    """
    np.matmul(h_in, W_h, out=rec)
    a += rec
    i, f, g, o = gates(a, 4)
    sigmoid(i, out=i)
    sigmoid(f, out=f)
    np.tanh(g, out=g)
    sigmoid(o, out=o)
    np.multiply(f, c_prev, out=c)
    c += i * g
    np.multiply(o, np.tanh(c), out=h)


def lstm_backward(dh_next, dh_out, dc, a, c_prev, c, W_h, da, dh_in) -> None:
    """The gradients of one LSTM step (``s' = s (1 - s)``, ``tanh' = 1 - tanh^2``)::

        dh = dh_next + dh_out
        do = dh * tanh(c) * o (1 - o)
        dc = dc + dh * o * (1 - tanh(c)^2)
        di = dc * g * i (1 - i)
        df = dc * c_prev * f (1 - f)
        dg = dc * i * (1 - g^2)
        dc_prev = dc * f
        dh_in = [di, df, dg, do] @ W_h.T

    dh_next (B, H), overwritten; dh_out (B, H) or None; dc (B, H) the gradient of c_t on
    entry, of c_{t-1} on return; a (B, 4H) the activated gates [i, f, g, o]; c_prev, c
    (B, H) the cell states before and after the step (tanh(c) is taken again: storing it
    for every step costs more memory traffic than the tanh); W_h (H, 4H). Writes da =
    [di, df, dg, do] (B, 4H) and dh_in (B, H).
    """
    dh = _dh(dh_next, dh_out)
    tanh_c = np.tanh(c)
    i, f, g, o = gates(a, 4)
    di, df, dg, do = gates(da, 4)
    np.multiply(dh * tanh_c, o * (1 - o), out=do)
    dc += dh * o * (1 - tanh_c * tanh_c)
    np.multiply(dc * g, i * (1 - i), out=di)
    np.multiply(dc * c_prev, f * (1 - f), out=df)
    np.multiply(dc * i, 1 - g * g, out=dg)
    dc *= f
    np.matmul(da, W_h.T, out=dh_in)


# --------------------------------------------------------------------------- GRU
def gru_forward(a, h_prev, h_in, W_h, b_hn, rec, hn, h, reset_after: bool = True) -> None:
    """One step of the GRU (Cho et al. 2014), in either form::

        [a_r, a_z, a_n] = xw                               input side of the gates
        r = sigmoid(a_r + h_in @ W_hr)     z = sigmoid(a_z + h_in @ W_hz)
        reset after (PyTorch, cuDNN):      n = tanh(a_n + r * (h_in @ W_hn + b_hn))
        reset before (Cho et al., seeds):  n = tanh(a_n + (r * h_in) @ W_hn)
        h = (1 - z) * n + z * h_prev

    ``z`` is the share of the old state that is kept (PyTorch's and Keras' z); the seeds'
    update gate is ``1 - z``. W_h (H, 3H) = [W_hr, W_hz, W_hn]; b_hn (H,) or None.

    a (B, 3H) holds xw = x_t @ W_x + b on entry and the activated gates [r, z, n] on
    return; h_prev, h_in (B, H); rec (B, 3H) scratch. Writes hn (B, H), the recurrent
    term that r multiplies (reset after: ``h_in @ W_hn + b_hn``; reset before: ``r * h_in``,
    the input of the second product), and h (B, H).
    """
    H = h.shape[-1]
    r, z, n = gates(a, 3)
    rz = a[:, : 2 * H]
    if reset_after:
        np.matmul(h_in, W_h, out=rec)
        rz += rec[:, : 2 * H]
        np.add(rec[:, 2 * H :], 0 if b_hn is None else b_hn, out=hn)
        sigmoid(rz, out=rz)
        n += r * hn
    else:
        np.matmul(h_in, W_h[:, : 2 * H], out=rec[:, : 2 * H])
        rz += rec[:, : 2 * H]
        sigmoid(rz, out=rz)
        np.multiply(r, h_in, out=hn)
        n += hn @ W_h[:, 2 * H :]
    np.tanh(n, out=n)
    np.multiply(1 - z, n, out=h)
    h += z * h_prev


def gru_backward(dh_next, dh_out, a, h_prev, h_in, hn, W_h, da, drec, dh_in,
                 reset_after: bool = True) -> None:
    """The gradients of one GRU step::

        dh = dh_next + dh_out
        dn = dh * (1 - z) * (1 - n^2)                     (the gradient of a_n)
        dz = dh * (h_prev - n) * z (1 - z)
        reset after:   dhn = dn * r                       (of h_in @ W_hn + b_hn)
                       dr = dn * hn * r (1 - r)
                       dh_in = [dr, dz, dhn] @ W_h.T
        reset before:  dq = dn @ W_hn.T                   (of q = r * h_in = hn)
                       dr = dq * h_in * r (1 - r)
                       dh_in = [dr, dz] @ [W_hr, W_hz].T + dq * r
        dh_prev = dh * z + dh_in

    dh_next (B, H): the gradient reaching h_t from step t+1; on return ``dh * z``, the
    part of the gradient of h_prev that passes through no product (the loop adds dh_in).
    dh_out (B, H) or None; a (B, 3H) the activated gates [r, z, n]; h_prev, h_in, hn
    (B, H) as in the forward; W_h (H, 3H). Writes da = [dr, dz, dn] (B, 3H), the gradient
    of the input side x_t @ W_x + b, and dh_in (B, H). Reset after, also drec = [dr, dz,
    dhn] (B, 3H), the gradient of the recurrent side h_in @ W_h (+ b_hn); reset before,
    drec is not used (the gradients of the recurrent weights follow from da, h_in and hn).
    """
    H = dh_in.shape[-1]
    dh = _dh(dh_next, dh_out)
    r, z, n = gates(a, 3)
    dr, dz, dn = gates(da, 3)
    np.multiply(dh * (1 - z), 1 - n * n, out=dn)
    np.multiply(dh * (h_prev - n), z * (1 - z), out=dz)
    if reset_after:
        np.multiply(dn * hn, r * (1 - r), out=dr)
        drec[:, : 2 * H] = da[:, : 2 * H]
        np.multiply(dn, r, out=drec[:, 2 * H :])
        np.matmul(drec, W_h.T, out=dh_in)
    else:
        dq = dn @ W_h[:, 2 * H :].T
        np.multiply(dq * h_in, r * (1 - r), out=dr)
        np.matmul(da[:, : 2 * H], W_h[:, : 2 * H].T, out=dh_in)
        dh_in += dq * r
    dh *= z
