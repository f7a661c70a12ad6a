"""The basic RNN, written as the course's equations ("Building your Recurrent Neural
Network - Step by Step", sections 1 and 3.1).

Column layout, one example per column::

    xt (n_x, m)   a_prev, a_next (n_a, m)   yt_pred (n_y, m)
    x (n_x, m, T_x)   a (n_a, m, T_x)   y_pred (n_y, m, T_x)
    Wax (n_a, n_x)   Waa (n_a, n_a)   Wya (n_y, n_a)   ba (n_a, 1)   by (n_y, 1)
"""

from __future__ import annotations

import numpy as np

from . import _validate
from .rnn_utils import softmax


def rnn_cell_forward(xt, a_prev, parameters):
    """One step of the basic RNN::

        a_next  = tanh(Waa a_prev + Wax xt + ba)
        yt_pred = softmax(Wya a_next + by)

    Args:
        xt: input at step t, (n_x, m).
        a_prev: hidden state at step t-1, (n_a, m).
        parameters: dict with ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``, ``Wya (n_y, n_a)``,
            ``ba (n_a, 1)``, ``by (n_y, 1)``.
    Returns:
        a_next (n_a, m), yt_pred (n_y, m) (each column sums to 1) and
        cache = ``(a_next, a_prev, xt, parameters)`` for :func:`rnn_cell_backward`.
    """
    p, xt, a_prev = _validate.forward_inputs("rnn_cell_forward", "rnn", parameters, xt,
                                             {"a_prev": a_prev})
    Wax, Waa, Wya, ba, by = p["Wax"], p["Waa"], p["Wya"], p["ba"], p["by"]

    a_next = np.tanh(Waa @ a_prev + Wax @ xt + ba)
    yt_pred = softmax(Wya @ a_next + by)

    cache = (a_next, a_prev, xt, parameters)
    return a_next, yt_pred, cache


def rnn_forward(x, a0, parameters):
    """The basic RNN over T_x steps: :func:`rnn_cell_forward` at t = 0, 1, ..., T_x-1.

    ``a<t> = tanh(Waa a<t-1> + Wax x<t> + ba)``, ``y_pred<t> = softmax(Wya a<t> + by)``,
    starting from ``a<0> = a0``.

    Args:
        x: inputs of every step, (n_x, m, T_x).
        a0: initial hidden state, (n_a, m).
        parameters: as :func:`rnn_cell_forward`.
    Returns:
        a (n_a, m, T_x) hidden states, y_pred (n_y, m, T_x) predictions, and
        caches = ``(list of the T_x step caches (a_next, a_prev, xt, parameters), x)``.
    """
    p, x, a0 = _validate.forward_inputs("rnn_forward", "rnn", parameters, x, {"a0": a0},
                                        sequence=True)
    n_x, m, T_x = x.shape
    n_y, n_a = p["Wya"].shape

    caches = []
    a = np.zeros((n_a, m, T_x), dtype=x.dtype)
    y_pred = np.zeros((n_y, m, T_x), dtype=x.dtype)
    a_next = a0
    for t in range(T_x):
        a_next, yt_pred, cache = rnn_cell_forward(x[:, :, t], a_next, parameters)
        a[:, :, t] = a_next
        y_pred[:, :, t] = yt_pred
        caches.append(cache)

    caches = (caches, x)
    return a, y_pred, caches


def rnn_cell_backward(da_next, cache):
    """Backward pass of one RNN step (the output layer is not included)::

        dtanh   = (1 - a_next**2) * da_next          tanh'(u) = 1 - tanh(u)**2
        dxt     = Wax^T dtanh        dWax = dtanh xt^T
        da_prev = Waa^T dtanh        dWaa = dtanh a_prev^T
        dba     = sum over the m columns of dtanh

    Args:
        da_next: gradient of the loss w.r.t. a_next, (n_a, m).
        cache: the cache of :func:`rnn_cell_forward`.
    Returns:
        dict ``dxt (n_x, m)``, ``da_prev (n_a, m)``, ``dWax (n_a, n_x)``,
        ``dWaa (n_a, n_a)``, ``dba (n_a, 1)``.
    """
    (a_next, a_prev, xt, _), p = _validate.cell_cache("rnn", cache, "rnn_cell_backward")
    da_next = _validate.grad_input(da_next, "da_next", a_next)
    Wax, Waa = p["Wax"], p["Waa"]

    dtanh = (1 - a_next**2) * da_next
    dxt = Wax.T @ dtanh
    dWax = dtanh @ xt.T
    da_prev = Waa.T @ dtanh
    dWaa = dtanh @ a_prev.T
    dba = np.sum(dtanh, axis=1, keepdims=True)

    return {"dxt": dxt, "da_prev": da_prev, "dWax": dWax, "dWaa": dWaa, "dba": dba}


def rnn_backward(da, caches):
    """Backpropagation through time for the basic RNN.

    For t = T_x-1, ..., 0: ``rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])``, where
    ``da_prevt`` is the gradient that step t+1 sent back to a<t> (zero at the last step);
    ``dx[:, :, t]`` is that step's ``dxt``, and ``dWax``, ``dWaa``, ``dba`` are the sums
    over the steps. ``da0`` is what reaches the initial state.

    Args:
        da: gradient of the loss w.r.t. every hidden state, (n_a, m, T_x), as it comes
            from the outputs (not including the recurrence). Its number of steps sets
            T_x (the first T_x cached steps are used).
        caches: the caches of :func:`rnn_forward`.
    Returns:
        dict ``dx (n_x, m, T_x)``, ``da0 (n_a, m)``, ``dWax (n_a, n_x)``,
        ``dWaa (n_a, n_a)``, ``dba (n_a, 1)``.
    """
    caches, x, da = _validate.sequence_caches("rnn", caches, da)
    n_a, m, T_x = da.shape
    n_x = x.shape[0]

    dx = np.zeros((n_x, m, T_x), dtype=da.dtype)
    dWax = np.zeros((n_a, n_x), dtype=da.dtype)
    dWaa = np.zeros((n_a, n_a), dtype=da.dtype)
    dba = np.zeros((n_a, 1), dtype=da.dtype)
    da_prevt = np.zeros((n_a, m), dtype=da.dtype)
    for t in reversed(range(T_x)):
        gradients = rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])
        dx[:, :, t] = gradients["dxt"]
        da_prevt = gradients["da_prev"]
        dWax += gradients["dWax"]
        dWaa += gradients["dWaa"]
        dba += gradients["dba"]
    da0 = da_prevt

    return {"dx": dx, "da0": da0, "dWax": dWax, "dWaa": dWaa, "dba": dba}
