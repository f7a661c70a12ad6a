"""The GRU of the lecture ("Gated Recurrent Unit"), written as its equations.

The full GRU of the lecture, with the relevance gate Γr applied to c_prev before the
product with Wc (the "reset before" form of Cho et al., 2014)::

    Γu = sigmoid(Wu [c_prev; xt] + bu)            update gate
    Γr = sigmoid(Wr [c_prev; xt] + br)            relevance gate
    c̃  = tanh(Wc [Γr * c_prev; xt] + bc)          candidate
    c  = Γu * c̃ + (1 - Γu) * c_prev,   a = c

In the GRU the memory cell is the hidden state (``a = c``), so the functions take and
return ``a`` like the RNN and the LSTM. The notebook has no GRU; the parameter names follow
its style. Column layout, one example per column::

    xt (n_x, m)   a_prev, a_next (n_a, m)   yt_pred (n_y, m)
    x (n_x, m, T_x)   a (n_a, m, T_x)   y (n_y, m, T_x)
    Wu, Wr, Wc (n_a, n_a+n_x) (hidden-state columns first)   bu, br, bc (n_a, 1)
    Wy (n_y, n_a)   by (n_y, 1)
"""

from __future__ import annotations

import numpy as np

from . import _validate
from .rnn_utils import sigmoid, softmax

GRADIENTS = ("dWu", "dWr", "dWc", "dbu", "dbr", "dbc")  # summed over the steps


def gru_cell_forward(xt, a_prev, parameters):
    """One step of the GRU (the lecture's equations, c = a)::

        c_prev = a_prev
        ut  = sigmoid(Wu [c_prev; xt] + bu)           update gate Γu
        rt  = sigmoid(Wr [c_prev; xt] + br)           relevance gate Γr
        cct = tanh(Wc [rt * c_prev; xt] + bc)         candidate c̃
        a_next = c_next = ut * cct + (1 - ut) * c_prev
        yt_pred = softmax(Wy a_next + by)

    Args:
        xt: input at step t, (n_x, m).
        a_prev: state at step t-1 (= c_prev), (n_a, m).
        parameters: dict with ``Wu, Wr, Wc (n_a, n_a+n_x)`` (hidden-state columns first),
            ``bu, br, bc (n_a, 1)``, ``Wy (n_y, n_a)``, ``by (n_y, 1)``.
    Returns:
        a_next (n_a, m), yt_pred (n_y, m) and cache =
        ``(a_next, a_prev, ut, rt, cct, xt, parameters)``, the gates each (n_a, m).
    """
    p, xt, a_prev = _validate.forward_inputs("gru_cell_forward", "gru", parameters, xt,
                                             {"a_prev": a_prev})
    Wu, bu, Wr, br, Wc, bc = p["Wu"], p["bu"], p["Wr"], p["br"], p["Wc"], p["bc"]
    Wy, by = p["Wy"], p["by"]

    c_prev = a_prev  # the GRU's memory cell is its state
    concat = np.concatenate([c_prev, xt])
    ut = sigmoid(Wu @ concat + bu)
    rt = sigmoid(Wr @ concat + br)
    cct = np.tanh(Wc @ np.concatenate([rt * c_prev, xt]) + bc)
    c_next = ut * cct + (1 - ut) * c_prev
    a_next = c_next
    yt_pred = softmax(Wy @ a_next + by)

    cache = (a_next, a_prev, ut, rt, cct, xt, parameters)
    return a_next, yt_pred, cache


def gru_forward(x, a0, parameters):
    """The GRU over T_x steps: :func:`gru_cell_forward` at t = 0, 1, ..., T_x-1.

    Args:
        x: inputs of every step, (n_x, m, T_x).
        a0: initial state, (n_a, m).
        parameters: as :func:`gru_cell_forward`.
    Returns:
        a (n_a, m, T_x) states, y (n_y, m, T_x) predictions and
        caches = ``(list of the T_x step caches, x)``.
    """
    p, x, a0 = _validate.forward_inputs("gru_forward", "gru", parameters, x, {"a0": a0},
                                        sequence=True)
    n_x, m, T_x = x.shape
    n_y, n_a = p["Wy"].shape

    caches = []
    a = np.zeros((n_a, m, T_x), dtype=x.dtype)
    y = np.zeros((n_y, m, T_x), dtype=x.dtype)
    a_next = a0
    for t in range(T_x):
        a_next, yt, cache = gru_cell_forward(x[:, :, t], a_next, parameters)
        a[:, :, t] = a_next
        y[:, :, t] = yt
        caches.append(cache)

    caches = (caches, x)
    return a, y, caches


def gru_cell_backward(da_next, cache):
    """Backward pass of one GRU step (the output layer is not included).

    With ``c_prev = a_prev`` and ``dc_next = da_next``, the chain rule through the
    equations of :func:`gru_cell_forward`::

        dcct = dc_next * ut * (1 - cct**2)             w.r.t. the argument of tanh
        dut  = dc_next * (cct - c_prev) * ut * (1 - ut)    ... of Γu's sigmoid
        drc  = Wc[:, :n_a]^T dcct                      w.r.t. rt * c_prev
        drt  = drc * c_prev * rt * (1 - rt)            w.r.t. the argument of Γr's sigmoid
        dWu = dut [c_prev; xt]^T    dWr = drt [c_prev; xt]^T    dWc = dcct [rt * c_prev; xt]^T
        db_g = sum over the m columns of d_g           (g = u, r, c)
        da_prev = dc_next * (1 - ut) + drc * rt + Wu[:, :n_a]^T dut + Wr[:, :n_a]^T drt
        dxt     = Wu[:, n_a:]^T dut + Wr[:, n_a:]^T drt + Wc[:, n_a:]^T dcct

    Args:
        da_next: gradient of the loss w.r.t. a_next (= c_next), (n_a, m).
        cache: the cache of :func:`gru_cell_forward`.
    Returns:
        dict ``dxt (n_x, m)``, ``da_prev (n_a, m)``, ``dWu, dWr, dWc (n_a, n_a+n_x)``,
        ``dbu, dbr, dbc (n_a, 1)``.
    """
    (a_next, a_prev, ut, rt, cct, xt, _), p = _validate.cell_cache("gru", cache,
                                                                   "gru_cell_backward")
    da_next = _validate.grad_input(da_next, "da_next", a_next)
    Wu, Wr, Wc = p["Wu"], p["Wr"], p["Wc"]
    n_a = a_next.shape[0]

    c_prev, dc_next = a_prev, da_next
    dcct = dc_next * ut * (1 - cct**2)
    dut = dc_next * (cct - c_prev) * ut * (1 - ut)
    drc = Wc[:, :n_a].T @ dcct
    drt = drc * c_prev * rt * (1 - rt)

    concat = np.concatenate([c_prev, xt])
    dWu, dbu = dut @ concat.T, np.sum(dut, axis=1, keepdims=True)
    dWr, dbr = drt @ concat.T, np.sum(drt, axis=1, keepdims=True)
    dWc = dcct @ np.concatenate([rt * c_prev, xt]).T
    dbc = np.sum(dcct, axis=1, keepdims=True)

    da_prev = dc_next * (1 - ut) + drc * rt + Wu[:, :n_a].T @ dut + Wr[:, :n_a].T @ drt
    dxt = Wu[:, n_a:].T @ dut + Wr[:, n_a:].T @ drt + Wc[:, n_a:].T @ dcct

    return {"dxt": dxt, "da_prev": da_prev, "dWu": dWu, "dWr": dWr, "dWc": dWc,
            "dbu": dbu, "dbr": dbr, "dbc": dbc}


def gru_backward(da, caches):
    """Backpropagation through time for the GRU.

    For t = T_x-1, ..., 0: ``gru_cell_backward(da[:, :, t] + da_prevt, caches[t])``,
    where ``da_prevt`` is what step t+1 sent back to a<t> (zero at the last step);
    ``dx[:, :, t]`` is that step's ``dxt``, and every ``dW_g``, ``db_g`` is the sum over
    the steps. ``da0`` is what reaches the initial state.

    Args:
        da: gradient of the loss w.r.t. every state, (n_a, m, T_x), as it comes from the
            outputs. Its number of steps sets T_x (the first T_x cached steps are used).
        caches: the caches of :func:`gru_forward`.
    Returns:
        dict ``dx (n_x, m, T_x)``, ``da0 (n_a, m)``, ``dWu, dWr, dWc (n_a, n_a+n_x)``,
        ``dbu, dbr, dbc (n_a, 1)``.
    """
    caches, x, da = _validate.sequence_caches("gru", caches, da)
    n_a, m, T_x = da.shape
    n_x = x.shape[0]

    dx = np.zeros((n_x, m, T_x), dtype=da.dtype)
    sums = {k: np.zeros((n_a, n_a + n_x) if k[1] == "W" else (n_a, 1), dtype=da.dtype)
            for k in GRADIENTS}
    da_prevt = np.zeros((n_a, m), dtype=da.dtype)
    for t in reversed(range(T_x)):
        gradients = gru_cell_backward(da[:, :, t] + da_prevt, caches[t])
        dx[:, :, t] = gradients["dxt"]
        da_prevt = gradients["da_prev"]
        for k in GRADIENTS:  # dWu += gradients["dWu"], ..., dbc += gradients["dbc"]
            sums[k] += gradients[k]
    da0 = da_prevt

    return {"dx": dx, "da0": da0, **sums}
