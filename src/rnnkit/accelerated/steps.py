"""The step functions of :mod:`rnnkit.cells` on the compiled kernels.

Each function has the signature and the results of its namesake in :mod:`rnnkit.cells`
(to float rounding, and the float32 tanh's few units in the last place): the matrix
products are numpy's, the element-wise work one compiled pass (:mod:`._kernels`).
"""

from __future__ import annotations

import numpy as np

from . import _kernels as _k

one_hot_weight_gradient = _k.one_hot_weight_gradient
adam_update = _k.adam_update


def rnn_forward(xw, h_in, W_h, h, relu: bool = False) -> None:
    """:func:`rnnkit.cells.rnn_forward`."""
    np.matmul(h_in, W_h, out=h)
    _k.rnn_forward(xw, h, relu)


def rnn_backward(dh_next, dh_out, h, W_h, da, dh_in, relu: bool = False) -> None:
    """:func:`rnnkit.cells.rnn_backward`."""
    _k.rnn_backward(dh_next, dh_out, h, da, relu)
    np.matmul(da, W_h.T, out=dh_in)


def lstm_forward(a, h_in, c_prev, W_h, rec, c, h) -> None:
    """:func:`rnnkit.cells.lstm_forward`."""
    np.matmul(h_in, W_h, out=rec)
    _k.lstm_forward(a, rec, c_prev, c, h)


def lstm_backward(dh_next, dh_out, dc, a, c_prev, c, W_h, da, dh_in) -> None:
    """:func:`rnnkit.cells.lstm_backward`."""
    _k.lstm_backward(dh_next, dh_out, dc, a, c_prev, c, da)
    np.matmul(da, W_h.T, out=dh_in)


def gru_forward(a, h_prev, h_in, W_h, b_hn, rec, hn, h, reset_after: bool = True) -> None:
    """:func:`rnnkit.cells.gru_forward`."""
    H = h.shape[-1]
    if reset_after:
        np.matmul(h_in, W_h, out=rec)
        _k.gru_forward_after(a, rec, b_hn, h_prev, hn, h)
        return
    np.matmul(h_in, W_h[:, : 2 * H], out=rec[:, : 2 * H])
    _k.gru_gates_rz(a, rec, H)
    _k.gru_reset_input(a, h_in, hn)
    rec_n = rec[:, 2 * H :]
    np.matmul(hn, W_h[:, 2 * H :], out=rec_n)
    _k.gru_finish_before(a, rec_n, h_prev, h)


def gru_backward(dh_next, dh_out, a, h_prev, h_in, hn, W_h, da, drec, dh_in,
                 reset_after: bool = True) -> None:
    """:func:`rnnkit.cells.gru_backward`."""
    H = dh_in.shape[-1]
    if reset_after:
        _k.gru_backward_after(dh_next, dh_out, a, h_prev, hn, da, drec)
        np.matmul(drec, W_h.T, out=dh_in)
        return
    _k.gru_backward_before_n(dh_next, dh_out, a, h_prev, da)
    dq = da[:, 2 * H :] @ W_h[:, 2 * H :].T
    _k.gru_backward_before_r(dh_next, dq, a, h_in, da, dh_in)
    dh_in += da[:, : 2 * H] @ W_h[:, : 2 * H].T
