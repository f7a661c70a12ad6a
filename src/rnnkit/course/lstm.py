"""The LSTM, written as the course's equations ("Building your Recurrent Neural Network -
Step by Step", sections 2 and 3.2).

Column layout, one example per column; the gate matrices act on the stacked column
``concat = [a_prev; xt]``, so their first n_a columns multiply ``a_prev`` and their last
n_x columns ``xt``::

    xt (n_x, m)   a_prev, a_next, c_prev, c_next (n_a, m)   yt_pred (n_y, m)
    x (n_x, m, T_x)   a, c (n_a, m, T_x)   y (n_y, m, T_x)
    Wf, Wi, Wc, Wo (n_a, n_a+n_x)   bf, bi, bc, bo (n_a, 1)   Wy (n_y, n_a)   by (n_y, 1)

Gates: forget ``ft`` (Γf), update ``it`` (Γu), candidate ``cct`` (c̃), output ``ot`` (Γo).
"""

from __future__ import annotations

import numpy as np

from . import _validate
from .rnn_utils import sigmoid, softmax

GRADIENTS = ("dWf", "dWi", "dWc", "dWo", "dbf", "dbi", "dbc", "dbo")  # summed over the steps


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    """One step of the LSTM, the course's equations (1)-(6)::

        concat = [a_prev; xt]                       (n_a+n_x, m)
        ft     = sigmoid(Wf concat + bf)            forget gate Γf
        it     = sigmoid(Wi concat + bi)            update gate Γu
        cct    = tanh(Wc concat + bc)               candidate c̃
        c_next = ft * c_prev + it * cct
        ot     = sigmoid(Wo concat + bo)            output gate Γo
        a_next = ot * tanh(c_next)
        yt_pred = softmax(Wy a_next + by)

    Args:
        xt: input at step t, (n_x, m).
        a_prev, c_prev: hidden state and memory cell at step t-1, (n_a, m).
        parameters: dict with ``Wf, Wi, Wc, Wo (n_a, n_a+n_x)`` (hidden-state columns
            first), ``bf, bi, bc, bo (n_a, 1)``, ``Wy (n_y, n_a)``, ``by (n_y, 1)``.
    Returns:
        a_next (n_a, m), c_next (n_a, m), yt_pred (n_y, m) and cache =
        ``(a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)``, the gates
        each (n_a, m).
    """
    p, xt, a_prev, c_prev = _validate.forward_inputs(
        "lstm_cell_forward", "lstm", parameters, xt, {"a_prev": a_prev, "c_prev": c_prev})
    Wf, bf, Wi, bi = p["Wf"], p["bf"], p["Wi"], p["bi"]
    Wc, bc, Wo, bo = p["Wc"], p["bc"], p["Wo"], p["bo"]
    Wy, by = p["Wy"], p["by"]

    concat = np.concatenate([a_prev, xt])
    ft = sigmoid(Wf @ concat + bf)
    it = sigmoid(Wi @ concat + bi)
    cct = np.tanh(Wc @ concat + bc)
    c_next = ft * c_prev + it * cct
    ot = sigmoid(Wo @ concat + bo)
    a_next = ot * np.tanh(c_next)
    yt_pred = softmax(Wy @ a_next + by)

    cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)
    return a_next, c_next, yt_pred, cache


def lstm_forward(x, a0, parameters):
    """The LSTM over T_x steps: :func:`lstm_cell_forward` at t = 0, 1, ..., T_x-1.

    Starts from ``a<0> = a0`` and a memory cell of zeros, ``c<0> = 0``, as the course.

    Args:
        x: inputs of every step, (n_x, m, T_x).
        a0: initial hidden state, (n_a, m).
        parameters: as :func:`lstm_cell_forward`.
    Returns:
        a (n_a, m, T_x) hidden states, y (n_y, m, T_x) predictions, c (n_a, m, T_x)
        memory cells, and caches = ``(list of the T_x step caches, x)``.
    """
    p, x, a0 = _validate.forward_inputs("lstm_forward", "lstm", parameters, x, {"a0": a0},
                                        sequence=True)
    n_x, m, T_x = x.shape
    n_y, n_a = p["Wy"].shape

    caches = []
    a = np.zeros((n_a, m, T_x), dtype=x.dtype)
    c = np.zeros((n_a, m, T_x), dtype=x.dtype)
    y = np.zeros((n_y, m, T_x), dtype=x.dtype)
    a_next = a0
    c_next = np.zeros((n_a, m), dtype=x.dtype)
    for t in range(T_x):
        a_next, c_next, yt, cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t] = a_next
        c[:, :, t] = c_next
        y[:, :, t] = yt
        caches.append(cache)

    caches = (caches, x)
    return a, y, c, caches


def lstm_cell_backward(da_next, dc_next, cache):
    """Backward pass of one LSTM step (the output layer is not included).

    The course's equations, with their common factor named ``dc``, the gradient that
    reaches c_next from both dc_next and, through ``a_next = ot * tanh(c_next)``, da_next::

        dc   = dc_next + ot * (1 - tanh(c_next)**2) * da_next
        dot  = da_next * tanh(c_next) * ot * (1 - ot)
        dcct = dc * it * (1 - cct**2)
        dit  = dc * cct * it * (1 - it)
        dft  = dc * c_prev * ft * (1 - ft)
        dW_g = d_g concat^T,   db_g = sum over the m columns of d_g    (g = f, i, c, o)
        da_prev = Wf[:, :n_a]^T dft + Wi[:, :n_a]^T dit + Wc[:, :n_a]^T dcct + Wo[:, :n_a]^T dot
        dxt     = the same with the input columns W_g[:, n_a:]
        dc_prev = dc * ft

    (``dot``, ``dcct``, ``dit``, ``dft`` are the gradients w.r.t. the gates' arguments
    before the sigmoid or tanh.)

    Args:
        da_next, dc_next: gradients of the loss w.r.t. a_next and c_next, (n_a, m).
        cache: the cache of :func:`lstm_cell_forward`.
    Returns:
        dict ``dxt (n_x, m)``, ``da_prev (n_a, m)``, ``dc_prev (n_a, m)``,
        ``dWf, dWi, dWc, dWo (n_a, n_a+n_x)``, ``dbf, dbi, dbc, dbo (n_a, 1)``.
    """
    cache, p = _validate.cell_cache("lstm", cache, "lstm_cell_backward")
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, _ = cache
    da_next = _validate.grad_input(da_next, "da_next", a_next)
    dc_next = _validate.grad_input(dc_next, "dc_next", a_next)
    Wf, Wi, Wc, Wo = p["Wf"], p["Wi"], p["Wc"], p["Wo"]
    n_a = a_next.shape[0]

    dc = dc_next + ot * (1 - np.tanh(c_next) ** 2) * da_next
    dot = da_next * np.tanh(c_next) * ot * (1 - ot)
    dcct = dc * it * (1 - cct**2)
    dit = dc * cct * it * (1 - it)
    dft = dc * c_prev * ft * (1 - ft)

    concat = np.concatenate([a_prev, xt])
    dWf, dbf = dft @ concat.T, np.sum(dft, axis=1, keepdims=True)
    dWi, dbi = dit @ concat.T, np.sum(dit, axis=1, keepdims=True)
    dWc, dbc = dcct @ concat.T, np.sum(dcct, axis=1, keepdims=True)
    dWo, dbo = dot @ concat.T, np.sum(dot, axis=1, keepdims=True)

    da_prev = (Wf[:, :n_a].T @ dft + Wi[:, :n_a].T @ dit + Wc[:, :n_a].T @ dcct
               + Wo[:, :n_a].T @ dot)
    dc_prev = dc * ft
    dxt = (Wf[:, n_a:].T @ dft + Wi[:, n_a:].T @ dit + Wc[:, n_a:].T @ dcct
           + Wo[:, n_a:].T @ dot)

    return {"dxt": dxt, "da_prev": da_prev, "dc_prev": dc_prev, "dWf": dWf, "dWi": dWi,
            "dWc": dWc, "dWo": dWo, "dbf": dbf, "dbi": dbi, "dbc": dbc, "dbo": dbo}


def lstm_backward(da, caches):
    """Backpropagation through time for the LSTM.

    For t = T_x-1, ..., 0: ``lstm_cell_backward(da[:, :, t] + da_prevt, dc_prevt,
    caches[t])``, where ``da_prevt``, ``dc_prevt`` are what step t+1 sent back to a<t>
    and c<t> (zero at the last step); ``dx[:, :, t]`` is that step's ``dxt``, and every
    ``dW_g``, ``db_g`` is the sum over the steps. ``da0`` is what reaches a0 (c<0> = 0 is
    not a parameter, so no dc0 is returned).

    Args:
        da: gradient of the loss w.r.t. every hidden state, (n_a, m, T_x), as it comes
            from the outputs. Its number of steps sets T_x (the first T_x cached steps are
            used; no gradient reaches the memory cell after step T_x).
        caches: the caches of :func:`lstm_forward`.
    Returns:
        dict ``dx (n_x, m, T_x)``, ``da0 (n_a, m)``, ``dWf, dWi, dWc, dWo (n_a, n_a+n_x)``,
        ``dbf, dbi, dbc, dbo (n_a, 1)``.
    """
    caches, x, da = _validate.sequence_caches("lstm", caches, da)
    n_a, m, T_x = da.shape
    n_x = x.shape[0]

    dx = np.zeros((n_x, m, T_x), dtype=da.dtype)
    sums = {k: np.zeros((n_a, n_a + n_x) if k[1] == "W" else (n_a, 1), dtype=da.dtype)
            for k in GRADIENTS}
    da_prevt = np.zeros((n_a, m), dtype=da.dtype)
    dc_prevt = np.zeros((n_a, m), dtype=da.dtype)
    for t in reversed(range(T_x)):
        gradients = lstm_cell_backward(da[:, :, t] + da_prevt, dc_prevt, caches[t])
        dx[:, :, t] = gradients["dxt"]
        da_prevt = gradients["da_prev"]
        dc_prevt = gradients["dc_prev"]
        for k in GRADIENTS:  # dWf += gradients["dWf"], ..., dbo += gradients["dbo"]
            sums[k] += gradients[k]
    da0 = da_prevt

    return {"dx": dx, "da0": da0, **sums}
