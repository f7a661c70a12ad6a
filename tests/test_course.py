"""The course API (rnnkit.course): published outputs, finite differences, layer parity, errors.

Published values come from the deeplearning.ai "Sequence Models" week-1 notebooks
("Building your Recurrent Neural Network - Step by Step", "Dinosaurus Island"); each test
rebuilds the notebook's seeded inputs. docs/course.md lists the versions and the
published values that are not the gradient (and why).
"""

import ast
import contextlib
import copy
import io
import re
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import course as C
from rnnkit.gradcheck import numerical_gradient, rel_error

LSTM_DRAW = [("Wf", (5, 8)), ("bf", (5, 1)), ("Wi", (5, 8)), ("bi", (5, 1)), ("Wo", (5, 8)),
             ("bo", (5, 1)), ("Wc", (5, 8)), ("bc", (5, 1))]


def draw(spec):
    """The notebooks draw parameters one after the other from the global seeded stream."""
    return {k: np.random.randn(*s) for k, s in spec}  # noqa: NPY002


# ============================================================== published forward values
def test_rnn_cell_forward_published():
    np.random.seed(1)  # noqa: NPY002
    xt, a_prev = np.random.randn(3, 10), np.random.randn(5, 10)  # noqa: NPY002
    p = draw([("Waa", (5, 5)), ("Wax", (5, 3)), ("Wya", (2, 5)), ("ba", (5, 1)), ("by", (2, 1))])
    a_next, yt_pred, cache = C.rnn_cell_forward(xt, a_prev, p)
    np.testing.assert_allclose(a_next[4], [0.59584544, 0.18141802, 0.61311866, 0.99808218,
                                           0.85016201, 0.99980978, -0.18887155, 0.99815551,
                                           0.6531151, 0.82872037], atol=1e-8)
    np.testing.assert_allclose(yt_pred[1], [0.9888161, 0.01682021, 0.21140899, 0.36817467,
                                            0.98988387, 0.88945212, 0.36920224, 0.9966312,
                                            0.9982559, 0.17746526], atol=1e-8)
    assert a_next.shape == (5, 10) and yt_pred.shape == (2, 10)
    np.testing.assert_allclose(yt_pred.sum(axis=0), 1.0, rtol=1e-14)
    assert len(cache) == 4 and cache[1] is a_prev and cache[2] is xt and cache[3] is p


def test_rnn_forward_published():
    np.random.seed(1)  # noqa: NPY002
    x, a0 = np.random.randn(3, 10, 4), np.random.randn(5, 10)  # noqa: NPY002
    p = draw([("Waa", (5, 5)), ("Wax", (5, 3)), ("Wya", (2, 5)), ("ba", (5, 1)), ("by", (2, 1))])
    a, y_pred, caches = C.rnn_forward(x, a0, p)
    np.testing.assert_allclose(a[4][1], [-0.99999375, 0.77911235, -0.99861469, -0.99833267],
                               atol=1e-8)
    np.testing.assert_allclose(y_pred[1][3], [0.79560373, 0.86224861, 0.11118257, 0.81515947],
                               atol=1e-8)
    np.testing.assert_allclose(caches[1][1][3], [-1.1425182, -0.34934272, -0.20889423,
                                                 0.58662319], atol=1e-8)
    assert a.shape == (5, 10, 4) and y_pred.shape == (2, 10, 4) and len(caches) == 2
    # the per-step caches are the course's (a_next, a_prev, xt, parameters)
    steps = caches[0]
    assert len(steps) == 4 and steps[0][1] is a0
    for t in range(4):
        np.testing.assert_array_equal(steps[t][0], a[:, :, t])
        np.testing.assert_array_equal(steps[t][2], x[:, :, t])
        if t:
            np.testing.assert_array_equal(steps[t][1], a[:, :, t - 1])


def test_lstm_cell_forward_published():
    np.random.seed(1)  # noqa: NPY002
    xt, a_prev, c_prev = (np.random.randn(*s) for s in ((3, 10), (5, 10), (5, 10)))  # noqa: NPY002
    p = draw(LSTM_DRAW + [("Wy", (2, 5)), ("by", (2, 1))])
    a_next, c_next, yt, cache = C.lstm_cell_forward(xt, a_prev, c_prev, p)
    np.testing.assert_allclose(a_next[4], [-0.66408471, 0.0036921, 0.02088357, 0.22834167,
                                           -0.85575339, 0.00138482, 0.76566531, 0.34631421,
                                           -0.00215674, 0.43827275], atol=1e-8)
    np.testing.assert_allclose(c_next[2], [0.63267805, 1.00570849, 0.35504474, 0.20690913,
                                           -1.64566718, 0.11832942, 0.76449811, -0.0981561,
                                           -0.74348425, -0.26810932], atol=1e-8)
    np.testing.assert_allclose(yt[1], [0.79913913, 0.15986619, 0.22412122, 0.15606108,
                                       0.97057211, 0.31146381, 0.00943007, 0.12666353,
                                       0.39380172, 0.07828381], atol=1e-8)
    np.testing.assert_allclose(cache[1][3], [-0.16263996, 1.03729328, 0.72938082, -0.54101719,
                                             0.02752074, -0.30821874, 0.07651101, -1.03752894,
                                             1.41219977, -0.37647422], atol=1e-8)
    assert len(cache) == 10
    # the cached gates are the seeds' equations (1)-(6)
    _, _, _, _, ft, it, cct, ot, _, _ = cache
    np.testing.assert_allclose(c_next, ft * c_prev + it * cct, rtol=1e-13)
    np.testing.assert_allclose(a_next, ot * np.tanh(c_next), rtol=1e-13)
    concat = np.vstack([a_prev, xt])
    np.testing.assert_allclose(ft, 1 / (1 + np.exp(-(p["Wf"] @ concat + p["bf"]))), rtol=1e-13)


def test_lstm_forward_published():
    np.random.seed(1)  # noqa: NPY002
    x, a0 = np.random.randn(3, 10, 7), np.random.randn(5, 10)  # noqa: NPY002
    p = draw(LSTM_DRAW + [("Wy", (2, 5)), ("by", (2, 1))])
    a, y, c, caches = C.lstm_forward(x, a0, p)
    assert a[4][3][6] == pytest.approx(0.172117767533, abs=1e-12)
    assert y[1][4][3] == pytest.approx(0.95087346185, abs=1e-11)
    assert c[1][2][1] == pytest.approx(-0.855544916718, abs=1e-12)
    np.testing.assert_allclose(caches[1][1][1], [0.82797464, 0.23009474, 0.76201118, -0.22232814,
                                                 -0.20075807, 0.18656139, 0.41005165], atol=1e-8)
    assert a.shape == c.shape == (5, 10, 7) and y.shape == (2, 10, 7) and len(caches) == 2
    assert len(caches[0]) == 7 and all(len(s) == 10 for s in caches[0])


# ============================================================== published backward values
def _rnn_backward_case():
    np.random.seed(1)  # noqa: NPY002
    x, a0 = np.random.randn(3, 10, 4), np.random.randn(5, 10)  # noqa: NPY002
    p = draw([("Wax", (5, 3)), ("Waa", (5, 5)), ("Wya", (2, 5)), ("ba", (5, 1)), ("by", (2, 1))])
    _, _, caches = C.rnn_forward(x, a0, p)
    return x, a0, p, caches, np.random.randn(5, 10, 4)  # noqa: NPY002


def test_rnn_cell_backward_published():
    # the 2021 notebook (parameters drawn Wax, Waa, Wya, ba, by)
    np.random.seed(1)  # noqa: NPY002
    xt, a_prev = np.random.randn(3, 10), np.random.randn(5, 10)  # noqa: NPY002
    p = draw([("Wax", (5, 3)), ("Waa", (5, 5)), ("Wya", (2, 5)), ("ba", (5, 1)), ("by", (2, 1))])
    _, _, cache = C.rnn_cell_forward(xt, a_prev, p)
    g = C.rnn_cell_backward(np.random.randn(5, 10), cache)  # noqa: NPY002
    assert g["dxt"][1][2] == pytest.approx(-1.3872130506, abs=1e-10)
    assert g["da_prev"][2][3] == pytest.approx(-0.152399493774, abs=1e-12)
    assert g["dWax"][3][1] == pytest.approx(0.410772824935, abs=1e-12)
    assert g["dWaa"][1][2] == pytest.approx(1.15034506685, abs=1e-11)
    assert g["dba"][4, 0] == pytest.approx(0.20023491, abs=1e-8)
    assert {k: v.shape for k, v in g.items()} == {
        "dxt": (3, 10), "da_prev": (5, 10), "dWax": (5, 3), "dWaa": (5, 5), "dba": (5, 1)}


def test_rnn_cell_backward_v2_value_comes_from_a_stale_ba():
    # "v2" prints dxt[1][2] = -0.46056410305888: its test cell draws `b` but passes the `ba`
    # left over from the rnn_forward cell. With that ba our function gives the same numbers.
    np.random.seed(1)  # noqa: NPY002
    for shape in ((3, 10, 4), (5, 10), (5, 5), (5, 3), (2, 5)):
        np.random.randn(*shape)  # noqa: NPY002
    stale_ba = np.random.randn(5, 1)  # noqa: NPY002
    np.random.seed(1)  # noqa: NPY002
    xt, a_prev = np.random.randn(3, 10), np.random.randn(5, 10)  # noqa: NPY002
    p = draw([("Wax", (5, 3)), ("Waa", (5, 5)), ("Wya", (2, 5)), ("b", (5, 1)), ("by", (2, 1))])
    p["ba"] = stale_ba
    _, _, cache = C.rnn_cell_forward(xt, a_prev, p)
    g = C.rnn_cell_backward(np.random.randn(5, 10), cache)  # noqa: NPY002
    assert g["dxt"][1][2] == pytest.approx(-0.4605641030588796, abs=1e-13)
    assert g["da_prev"][2][3] == pytest.approx(0.08429686538067674, abs=1e-13)
    assert g["dWax"][3][1] == pytest.approx(0.3930818739219304, abs=1e-13)
    assert g["dWaa"][1][2] == pytest.approx(-0.2848395578696066, abs=1e-13)
    assert g["dba"][4, 0] == pytest.approx(0.80517166, abs=1e-8)


def test_rnn_backward_published():
    _, _, _, caches, da = _rnn_backward_case()
    g = C.rnn_backward(da, caches)
    np.testing.assert_allclose(g["dx"][1][2], [-2.07101689, -0.59255627, 0.02466855,
                                               0.01483317], atol=1e-8)
    assert g["da0"][2][3] == pytest.approx(-0.314942375127, abs=1e-12)
    assert g["dWax"][3][1] == pytest.approx(11.2641044965, abs=1e-10)
    assert g["dWaa"][1][2] == pytest.approx(2.30333312658, abs=1e-11)
    assert g["dba"][4, 0] == pytest.approx(-0.74747722, abs=1e-8)


def test_rnn_backward_published_case_is_the_gradient():
    x, a0, p, caches, da = _rnn_backward_case()
    g = C.rnn_backward(da, caches)

    def loss():
        return float((C.rnn_forward(x, a0, p)[0] * da).sum())

    for name in ("Wax", "Waa", "ba"):
        assert rel_error(numerical_gradient(loss, p[name]), g["d" + name]) < 1e-8
    assert rel_error(numerical_gradient(loss, x), g["dx"]) < 1e-8
    assert rel_error(numerical_gradient(loss, a0), g["da0"]) < 1e-8


def _lstm_cell_backward_case():
    np.random.seed(1)  # noqa: NPY002
    xt, a_prev, c_prev = (np.random.randn(*s) for s in ((3, 10), (5, 10), (5, 10)))  # noqa: NPY002
    p = draw(LSTM_DRAW + [("Wy", (2, 5)), ("by", (2, 1))])
    *_, cache = C.lstm_cell_forward(xt, a_prev, c_prev, p)
    da_next, dc_next = np.random.randn(5, 10), np.random.randn(5, 10)  # noqa: NPY002
    return xt, a_prev, c_prev, p, cache, da_next, dc_next


def test_lstm_cell_backward_published():
    *_, cache, da_next, dc_next = _lstm_cell_backward_case()
    g = C.lstm_cell_backward(da_next, dc_next, cache)
    expected = {("dxt", 1, 2): 3.23055911511, ("da_prev", 2, 3): -0.0639621419711,
                ("dc_prev", 2, 3): 0.797522038797, ("dWf", 3, 1): -0.147954838164,
                ("dWi", 1, 2): 1.05749805523, ("dWc", 3, 1): 2.30456216369,
                ("dWo", 1, 2): 0.331311595289, ("dbf", 4, 0): 0.18864637,
                ("dbi", 4, 0): -0.40142491, ("dbc", 4, 0): 0.25587763, ("dbo", 4, 0): 0.13893342}
    for (name, i, j), want in expected.items():
        assert g[name][i][j] == pytest.approx(want, abs=1e-8), name
    shapes = {k: v.shape for k, v in g.items()}
    assert shapes == {"dxt": (3, 10), "da_prev": (5, 10), "dc_prev": (5, 10), "dWf": (5, 8),
                      "dWi": (5, 8), "dWc": (5, 8), "dWo": (5, 8), "dbf": (5, 1), "dbi": (5, 1),
                      "dbc": (5, 1), "dbo": (5, 1)}


def _lstm_backward_case():
    np.random.seed(1)  # noqa: NPY002
    x, a0 = np.random.randn(3, 10, 7), np.random.randn(5, 10)  # noqa: NPY002
    p = draw(LSTM_DRAW)
    p["Wy"], p["by"] = np.zeros((2, 5)), np.zeros((2, 1))
    *_, caches = C.lstm_forward(x, a0, p)
    return x, a0, p, caches, np.random.randn(5, 10, 4)  # noqa: NPY002


# The 2021 notebook's expected output (da has 4 steps, the forward 7): the true gradient.
LSTM_BACKWARD_2021 = {("da0", 2, 3): 0.312770310257, ("dWf", 3, 1): -0.0809802310938,
                      ("dWi", 1, 2): 0.40512433093, ("dWc", 3, 1): -0.0793746735512,
                      ("dWo", 1, 2): 0.038948775763, ("dbf", 4, 0): -0.15745657,
                      ("dbi", 4, 0): -0.50848333, ("dbc", 4, 0): -0.42510818,
                      ("dbo", 4, 0): -0.17958196}
# The "v2" notebook's printed output: its lstm_backward never passed da_prev / dc_prev back
# to the earlier steps, so these are NOT the gradient (only the last step's dx agrees).
LSTM_BACKWARD_V2 = {("da0", 2, 3): -0.0959115019540047, ("dWf", 3, 1): -0.06981985612744011,
                    ("dWi", 1, 2): 0.10237182024854766, ("dWc", 3, 1): -0.062498379492745254,
                    ("dWo", 1, 2): 0.04843891314443009, ("dbf", 4, 0): -0.0565788,
                    ("dbi", 4, 0): -0.15399065, ("dbc", 4, 0): -0.29691142,
                    ("dbo", 4, 0): -0.29798344}


def test_lstm_backward_published():
    *_, caches, da = _lstm_backward_case()
    g = C.lstm_backward(da, caches)
    np.testing.assert_allclose(g["dx"][1][2], [0.00218254, 0.28205375, -0.48292508,
                                               -0.43281115], atol=1e-8)
    for (name, i, j), want in LSTM_BACKWARD_2021.items():
        assert g[name][i][j] == pytest.approx(want, abs=1e-8), name
    assert g["dx"].shape == (3, 10, 4) and g["da0"].shape == (5, 10)


def test_lstm_backward_v2_values_are_not_the_gradient():
    x, a0, p, caches, da = _lstm_backward_case()
    # the v2 numbers are per-step gradients with nothing carried back through a and c ...
    totals, dx = {}, np.zeros((3, 10, 4))
    for t in reversed(range(4)):
        g = C.lstm_cell_backward(da[:, :, t], np.zeros((5, 10)), caches[0][t])
        dx[:, :, t] = g["dxt"]
        for k, v in g.items():
            if k[:2] in ("dW", "db"):
                totals[k] = totals.get(k, 0) + v
    totals["da0"] = g["da_prev"]
    np.testing.assert_allclose(dx[1][2], [-0.00173313, 0.08287442, -0.30545663, -0.43281115],
                               atol=1e-8)
    for (name, i, j), want in LSTM_BACKWARD_V2.items():
        assert totals[name][i][j] == pytest.approx(want, abs=1e-8), name
    # ... while finite differences of sum(a[:, :, :4] * da) agree with lstm_backward
    g = C.lstm_backward(da, caches)

    def loss():
        return float((C.lstm_forward(x, a0, p)[0][:, :, :4] * da).sum())

    for name in ("Wf", "Wi", "bc", "bo"):
        num = numerical_gradient(loss, p[name])
        assert rel_error(num, g["d" + name]) < 1e-8
        assert rel_error(num, totals["d" + name]) > 1e-2
    assert rel_error(numerical_gradient(loss, a0), g["da0"]) < 1e-8


# ============================================================== finite differences
def _rnn_params(rng, n_x, n_a, n_y):
    return {"Wax": rng.standard_normal((n_a, n_x)), "Waa": rng.standard_normal((n_a, n_a)) * 0.5,
            "Wya": rng.standard_normal((n_y, n_a)), "ba": rng.standard_normal((n_a, 1)),
            "by": rng.standard_normal((n_y, 1))}


def _gated_params(rng, gates, n_x, n_a, n_y):
    p = {}
    for g in gates:
        p["W" + g] = rng.standard_normal((n_a, n_a + n_x)) * 0.6
        p["b" + g] = rng.standard_normal((n_a, 1))
    p["Wy"], p["by"] = rng.standard_normal((n_y, n_a)), rng.standard_normal((n_y, 1))
    return p


def _assert_grads(loss, arrays, grads, tol=1e-7):
    for name, arr in arrays.items():
        err = rel_error(numerical_gradient(loss, arr), grads[name])
        assert err < tol, (name, err)


def test_rnn_cell_backward_finite_differences():
    rng = np.random.default_rng(0)
    p = _rnn_params(rng, 3, 4, 2)
    xt, a_prev = rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    R = rng.standard_normal((4, 2))
    g = C.rnn_cell_backward(R, C.rnn_cell_forward(xt, a_prev, p)[2])

    def loss():
        return float((C.rnn_cell_forward(xt, a_prev, p)[0] * R).sum())

    _assert_grads(loss, {"dxt": xt, "da_prev": a_prev, "dWax": p["Wax"], "dWaa": p["Waa"],
                         "dba": p["ba"]}, g)


def test_rnn_backward_finite_differences():
    rng = np.random.default_rng(1)
    p = _rnn_params(rng, 3, 4, 2)
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    R = rng.standard_normal((4, 2, 5))
    g = C.rnn_backward(R, C.rnn_forward(x, a0, p)[2])

    def loss():
        return float((C.rnn_forward(x, a0, p)[0] * R).sum())

    _assert_grads(loss, {"dx": x, "da0": a0, "dWax": p["Wax"], "dWaa": p["Waa"],
                         "dba": p["ba"]}, g)


def test_lstm_cell_backward_finite_differences():
    rng = np.random.default_rng(2)
    p = _gated_params(rng, "fico", 3, 4, 2)
    xt, a_prev, c_prev = (rng.standard_normal(s) for s in ((3, 2), (4, 2), (4, 2)))
    Ra, Rc = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    g = C.lstm_cell_backward(Ra, Rc, C.lstm_cell_forward(xt, a_prev, c_prev, p)[3])

    def loss():
        a_next, c_next, _, _ = C.lstm_cell_forward(xt, a_prev, c_prev, p)
        return float((a_next * Ra).sum() + (c_next * Rc).sum())

    arrays = {"dxt": xt, "da_prev": a_prev, "dc_prev": c_prev}
    arrays.update({f"d{k}": p[k] for k in ("Wf", "Wi", "Wc", "Wo", "bf", "bi", "bc", "bo")})
    _assert_grads(loss, arrays, g)


@pytest.mark.parametrize("T_da", [4, 2])
def test_lstm_backward_finite_differences(T_da):
    # T_da < T_x: the number of steps comes from da (the course's own test does this)
    rng = np.random.default_rng(3)
    p = _gated_params(rng, "fico", 3, 4, 2)
    x, a0 = rng.standard_normal((3, 2, 4)), rng.standard_normal((4, 2))
    R = rng.standard_normal((4, 2, T_da))
    g = C.lstm_backward(R, C.lstm_forward(x, a0, p)[3])
    assert g["dx"].shape == (3, 2, T_da)

    def loss():
        return float((C.lstm_forward(x, a0, p)[0][:, :, :T_da] * R).sum())

    arrays = {"da0": a0}
    arrays.update({f"d{k}": p[k] for k in ("Wf", "Wi", "Wc", "Wo", "bf", "bi", "bc", "bo")})
    _assert_grads(loss, arrays, g)
    assert rel_error(numerical_gradient(loss, x)[:, :, :T_da], g["dx"]) < 1e-7


def test_gru_cell_backward_finite_differences():
    rng = np.random.default_rng(4)
    p = _gated_params(rng, "urc", 3, 4, 2)
    xt, a_prev = rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    R = rng.standard_normal((4, 2))
    g = C.gru_cell_backward(R, C.gru_cell_forward(xt, a_prev, p)[2])

    def loss():
        return float((C.gru_cell_forward(xt, a_prev, p)[0] * R).sum())

    arrays = {"dxt": xt, "da_prev": a_prev}
    arrays.update({f"d{k}": p[k] for k in ("Wu", "Wr", "Wc", "bu", "br", "bc")})
    _assert_grads(loss, arrays, g)


def test_gru_backward_finite_differences():
    rng = np.random.default_rng(5)
    p = _gated_params(rng, "urc", 3, 4, 2)
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    R = rng.standard_normal((4, 2, 5))
    g = C.gru_backward(R, C.gru_forward(x, a0, p)[2])

    def loss():
        return float((C.gru_forward(x, a0, p)[0] * R).sum())

    arrays = {"dx": x, "da0": a0}
    arrays.update({f"d{k}": p[k] for k in ("Wu", "Wr", "Wc", "bu", "br", "bc")})
    _assert_grads(loss, arrays, g)


# ============================================================== the sequence loops
def _params_of(kind, rng, n_x=3, n_a=4, n_y=2):
    if kind == "rnn":
        return _rnn_params(rng, n_x, n_a, n_y)
    return _gated_params(rng, {"lstm": "fico", "gru": "urc"}[kind], n_x, n_a, n_y)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_sequence_backward_is_the_loop_over_its_cell_backward(kind):
    # the course's loop, by hand: each step gets da<t> plus what step t+1 sent back
    rng = np.random.default_rng(16)
    p = _params_of(kind, rng)
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    R = rng.standard_normal((4, 2, 5))
    caches = getattr(C, f"{kind}_forward")(x, a0, p)[-1]
    g = getattr(C, f"{kind}_backward")(R, caches)
    da_prevt, dc_prevt, sums = np.zeros((4, 2)), np.zeros((4, 2)), {}
    for t in reversed(range(5)):
        if kind == "lstm":
            gt = C.lstm_cell_backward(R[:, :, t] + da_prevt, dc_prevt, caches[0][t])
            dc_prevt = gt.pop("dc_prev")
        else:
            gt = getattr(C, f"{kind}_cell_backward")(R[:, :, t] + da_prevt, caches[0][t])
        np.testing.assert_array_equal(g["dx"][:, :, t], gt.pop("dxt"))
        da_prevt = gt.pop("da_prev")
        sums = {k: sums.get(k, 0.0) + v for k, v in gt.items()}
    np.testing.assert_array_equal(g["da0"], da_prevt)
    assert set(g) == {"dx", "da0", *sums}
    for k, v in sums.items():
        np.testing.assert_allclose(g[k], v, rtol=1e-14, atol=1e-15)


# ============================================================== the seeds' equations
def _sigmoid(z):
    return 1 / (1 + np.exp(-z))  # the course's form (the inputs here are moderate)


def _softmax(z):
    return np.exp(z) / np.exp(z).sum(axis=0)


def test_rnn_matches_the_seeds_equations():
    # an independent, direct transcription of the seeds' RNN and its derivatives (1)-(5)
    rng = np.random.default_rng(17)
    p = _rnn_params(rng, 3, 4, 2)
    Wax, Waa, ba, Wya, by = p["Wax"], p["Waa"], p["ba"], p["Wya"], p["by"]
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    a, y_pred, caches = C.rnn_forward(x, a0, p)
    a_prev = a0
    for t in range(5):
        a_t = np.tanh(Waa @ a_prev + Wax @ x[:, :, t] + ba)
        np.testing.assert_allclose(a[:, :, t], a_t, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(y_pred[:, :, t], _softmax(Wya @ a_t + by), rtol=1e-12)
        a_prev = a_t
    # the backward of step 2, with tanh' written from the pre-activation as in the seeds
    xt, a_prev = x[:, :, 2], a[:, :, 1]
    da_next = rng.standard_normal((4, 2))
    dz = da_next * (1 - np.tanh(Wax @ xt + Waa @ a_prev + ba) ** 2)
    g = C.rnn_cell_backward(da_next, caches[0][2])
    want = {"dWax": dz @ xt.T, "dWaa": dz @ a_prev.T, "dba": dz.sum(axis=1, keepdims=True),
            "dxt": Wax.T @ dz, "da_prev": Waa.T @ dz}
    for k, v in want.items():
        np.testing.assert_allclose(g[k], v, rtol=1e-12, atol=1e-14, err_msg=k)


def test_lstm_matches_the_seeds_equations():
    # an independent, direct transcription of the seeds' LSTM (equations 1-6, c<0> = 0)
    # and of the notebook's backward equations written out in full
    rng = np.random.default_rng(18)
    p = _gated_params(rng, "fico", 3, 4, 2)
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    a, y, c, caches = C.lstm_forward(x, a0, p)
    a_t, c_t = a0, np.zeros((4, 2))
    for t in range(5):
        concat = np.vstack([a_t, x[:, :, t]])
        gf = _sigmoid(p["Wf"] @ concat + p["bf"])
        gu = _sigmoid(p["Wi"] @ concat + p["bi"])
        cct = np.tanh(p["Wc"] @ concat + p["bc"])
        c_prev, c_t = c_t, gf * c_t + gu * cct
        go = _sigmoid(p["Wo"] @ concat + p["bo"])
        a_t = go * np.tanh(c_t)
        np.testing.assert_allclose(a[:, :, t], a_t, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c[:, :, t], c_t, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(y[:, :, t], _softmax(p["Wy"] @ a_t + p["by"]), rtol=1e-12)
        cached = caches[0][t]
        for got, want in zip(cached[2:8], (concat[:4], c_prev, gf, gu, cct, go), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # the backward of the last step
    da_next, dc_next = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    th = np.tanh(c_t)
    dgo = da_next * th * go * (1 - go)
    dcct = (dc_next * gu + go * (1 - th**2) * gu * da_next) * (1 - cct**2)
    dgu = (dc_next * cct + go * (1 - th**2) * cct * da_next) * gu * (1 - gu)
    dgf = (dc_next * c_prev + go * (1 - th**2) * c_prev * da_next) * gf * (1 - gf)
    d = {"f": dgf, "i": dgu, "c": dcct, "o": dgo}
    want = {f"dW{k}": v @ concat.T for k, v in d.items()}
    want.update({f"db{k}": v.sum(axis=1, keepdims=True) for k, v in d.items()})
    want["da_prev"] = sum(p[f"W{k}"][:, :4].T @ v for k, v in d.items())
    want["dxt"] = sum(p[f"W{k}"][:, 4:].T @ v for k, v in d.items())
    want["dc_prev"] = dc_next * gf + go * (1 - th**2) * gf * da_next
    g = C.lstm_cell_backward(da_next, dc_next, caches[0][4])
    assert set(g) == set(want)
    for k, v in want.items():
        np.testing.assert_allclose(g[k], v, rtol=1e-12, atol=1e-14, err_msg=k)


def test_gru_matches_the_seeds_equations():
    # an independent, direct implementation of the lecture's GRU (c = a)
    rng = np.random.default_rng(7)
    p = _gated_params(rng, "urc", 3, 4, 2)
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    a, y, caches = C.gru_forward(x, a0, p)
    c = a0
    for t in range(5):
        xt = x[:, :, t]
        gu = _sigmoid(p["Wu"] @ np.vstack([c, xt]) + p["bu"])
        gr = _sigmoid(p["Wr"] @ np.vstack([c, xt]) + p["br"])
        cct = np.tanh(p["Wc"] @ np.vstack([gr * c, xt]) + p["bc"])
        c = gu * cct + (1 - gu) * c
        np.testing.assert_allclose(a[:, :, t], c, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(y[:, :, t], _softmax(p["Wy"] @ c + p["by"]), rtol=1e-12)
        a_next, _, ut, rt, cc, _, _ = caches[0][t]
        np.testing.assert_allclose(ut, gu, rtol=1e-12)
        np.testing.assert_allclose(rt, gr, rtol=1e-12)
        np.testing.assert_allclose(cc, cct, rtol=1e-12)
    a1, y1, _ = C.gru_cell_forward(x[:, :, 0], a0, p)
    np.testing.assert_allclose(a1, a[:, :, 0], rtol=1e-14)
    np.testing.assert_allclose(y1, y[:, :, 0], rtol=1e-14)


def test_sigmoid_is_stable_and_is_the_logistic_function():
    z = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(C.sigmoid(z), _sigmoid(z), rtol=1e-15)
    for dtype in (np.float32, np.float64):  # no overflow (the tests raise on it)
        s = C.sigmoid(np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype))
        assert s.dtype == dtype
        np.testing.assert_array_equal(s[[0, 2, 4]], [0.0, 0.5, 1.0])
        assert 0 <= s[1] < 1e-43 and s[3] == 1.0
    # an LSTM step with saturated gates, in float32
    rng = np.random.default_rng(19)
    p = {k: (v * 100).astype(np.float32) for k, v in _gated_params(rng, "fico", 3, 4, 2).items()}
    xt, a_prev, c_prev = (rng.standard_normal(s).astype(np.float32) for s in
                          ((3, 2), (4, 2), (4, 2)))
    a_next, c_next, _, _ = C.lstm_cell_forward(xt, a_prev, c_prev, p)
    assert a_next.dtype == np.float32 and np.isfinite(c_next).all()


# ============================================================== parity with the layers
# The layers' gates in order, as the course's gates and the sign they enter with:
# LSTM i, f, g, o = it (Γu), ft (Γf), cct (c̃), ot (Γo); GRU r, z, n = rt, 1 - ut, cct, where
# z = 1 - Γu = sigmoid(-(Wu [a_prev; x] + bu)): the layer's z-weights are -Wu, its bias -bu.
LAYER_GATES = {"lstm": (("i", 1), ("f", 1), ("c", 1), ("o", 1)),
               "gru": (("r", 1), ("u", -1), ("c", 1))}


def _course_layer(kind, p, n_x, n_a):
    """A float64 one-layer rnnkit layer holding the course's parameters ``p``."""
    if kind == "rnn":
        layer = rnnkit.RNN(n_x, n_a, dtype=np.float64)
        layer.params.update({"l0.W_x": p["Wax"].T.copy(), "l0.W_h": p["Waa"].T.copy(),
                             "l0.b": p["ba"][:, 0].copy()})
        return layer
    if kind == "lstm":
        layer = rnnkit.LSTM(n_x, n_a, dtype=np.float64)
    else:
        layer = rnnkit.GRU(n_x, n_a, reset_after=False, dtype=np.float64)
    gates = LAYER_GATES[kind]
    # the course's W_g (n_a, n_a+n_x) act on [a_prev; x]: hidden columns first
    layer.params.update({
        "l0.W_x": np.concatenate([s * p["W" + g][:, n_a:].T for g, s in gates], axis=1),
        "l0.W_h": np.concatenate([s * p["W" + g][:, :n_a].T for g, s in gates], axis=1),
        "l0.b": np.concatenate([s * p["b" + g][:, 0] for g, s in gates])})
    return layer


def _course_grads(kind, grads, n_a):
    """The layer's parameter gradients in the course's names and shapes."""
    if kind == "rnn":
        return {"dWax": grads["l0.W_x"].T, "dWaa": grads["l0.W_h"].T,
                "dba": grads["l0.b"][:, None]}
    out = {}
    for k, (g, s) in enumerate(LAYER_GATES[kind]):
        cols = slice(k * n_a, (k + 1) * n_a)
        out["dW" + g] = s * np.concatenate([grads["l0.W_h"][:, cols].T,
                                            grads["l0.W_x"][:, cols].T], axis=1)
        out["db" + g] = s * grads["l0.b"][cols][:, None]
    return out


def _assert_equal_12(got, want, name):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_sequence_functions_equal_the_layers(kind):
    rng = np.random.default_rng(8)
    n_x, n_a, m, T = 3, 4, 2, 5
    p = _params_of(kind, rng, n_x, n_a)
    x, a0 = rng.standard_normal((n_x, m, T)), rng.standard_normal((n_a, m))
    layer = _course_layer(kind, p, n_x, n_a)
    # batch-first (B, T, D) = (m, T_x, n_x); the course's LSTM starts from c<0> = 0
    state = (a0.T[None], np.zeros((1, m, n_a))) if kind == "lstm" else a0.T[None]
    out, final, cache = layer.forward(x.transpose(1, 2, 0), state=state)
    fwd = getattr(C, f"{kind}_forward")(x, a0, p)
    _assert_equal_12(fwd[0], out.transpose(2, 0, 1), "a")
    if kind == "lstm":
        _assert_equal_12(fwd[2][:, :, -1], final[1][0].T, "c<T_x>")
    R = rng.standard_normal((n_a, m, T))
    dx, dstate0, grads = layer.backward(R.transpose(1, 2, 0), cache)
    g = getattr(C, f"{kind}_backward")(R, fwd[-1])
    want = {"dx": dx.transpose(2, 0, 1),
            "da0": (dstate0[0] if kind == "lstm" else dstate0)[0].T,
            **_course_grads(kind, grads, n_a)}
    assert set(g) == set(want)
    for k, v in want.items():
        _assert_equal_12(g[k], v, k)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cell_functions_equal_one_step_layers(kind):
    rng = np.random.default_rng(20)
    n_x, n_a, m = 3, 4, 2
    p = _params_of(kind, rng, n_x, n_a)
    xt, a_prev, c_prev = (rng.standard_normal(s) for s in ((n_x, m), (n_a, m), (n_a, m)))
    da_next, dc_next = rng.standard_normal((n_a, m)), rng.standard_normal((n_a, m))
    layer = _course_layer(kind, p, n_x, n_a)
    if kind == "lstm":
        _, (h, c), cache = layer.forward(xt.T[:, None, :], state=(a_prev.T[None],
                                                                   c_prev.T[None]))
        a_next, c_next, _, course_cache = C.lstm_cell_forward(xt, a_prev, c_prev, p)
        _assert_equal_12(c_next, c[0].T, "c_next")
        dx, (dh, dc), grads = layer.backward(None, cache, dstate=(da_next.T[None],
                                                                  dc_next.T[None]))
        g = C.lstm_cell_backward(da_next, dc_next, course_cache)
        _assert_equal_12(g["dc_prev"], dc[0].T, "dc_prev")
    else:
        _, h, cache = layer.forward(xt.T[:, None, :], state=a_prev.T[None])
        a_next, _, course_cache = getattr(C, f"{kind}_cell_forward")(xt, a_prev, p)
        dx, dh, grads = layer.backward(None, cache, dstate=da_next.T[None])
        g = getattr(C, f"{kind}_cell_backward")(da_next, course_cache)
    _assert_equal_12(a_next, h[0].T, "a_next")
    want = {"dxt": dx[:, 0].T, "da_prev": dh[0].T, **_course_grads(kind, grads, n_a)}
    assert set(g) - {"dc_prev"} == set(want)
    for k, v in want.items():
        _assert_equal_12(g[k], v, k)


def test_the_course_is_independent_of_the_engine():
    # the course's modules import numpy, the standard library, each other and the shared
    # argument checks (rnnkit._checks), nothing of the engine or the layers
    allowed = {"__future__", "collections.abc", "importlib", "numpy"}
    for path in sorted(Path(C.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert {a.name for a in node.names} <= allowed, (path.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                ok = (node.level == 1 or (node.level == 2 and node.module == "_checks")
                      or (node.level == 0 and node.module in allowed))
                assert ok, (path.name, node.lineno, node.module)
    assert all(getattr(C, name) is not None for name in C.__all__)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_float32_inputs_stay_float32(kind):
    rng = np.random.default_rng(11)
    p = {k: v.astype(np.float32) for k, v in _params_of(kind, rng).items()}
    x, a0 = rng.standard_normal((3, 2, 5), dtype=np.float32), np.zeros((4, 2), np.float32)
    *outputs, caches = getattr(C, f"{kind}_forward")(x, a0, p)
    g = getattr(C, f"{kind}_backward")(np.ones_like(outputs[0]), caches)
    assert all(v.dtype == np.float32 for v in (*outputs, *g.values()))
    # one float64 input makes the whole computation float64
    assert getattr(C, f"{kind}_forward")(x, a0.astype(np.float64), p)[0].dtype == np.float64


# ============================================================== Dinosaurus Island
@pytest.fixture(scope="module")
def dinos():
    text = C.load_dinos()
    char_to_ix, ix_to_char = C.char_maps(text)
    return text, char_to_ix, ix_to_char


def test_load_dinos_and_char_maps(dinos):
    text, char_to_ix, ix_to_char = dinos
    # the course prints "There are 19909 total characters and 27 unique characters"
    assert len(text) == 19909 and len(set(text)) == 27
    names = text.split("\n")
    assert len(names) == 1536 and names[0] == "aachenosaurus" and names[-1] == "zuul"
    assert char_to_ix["\n"] == 0 and char_to_ix["a"] == 1 and char_to_ix["z"] == 26
    assert all(ix_to_char[i] == ch for ch, i in char_to_ix.items())


def test_clip_published():
    for m_value, expected in ((10, (10.0, -10.0, 0.2971381536101662, 10.0, 8.45833407)),
                              (5, (5.0, -5.0, 0.2971381536101662, 5.0, 5.0))):
        np.random.seed(3)  # noqa: NPY002
        g = {k: np.random.randn(*s) * 10 for k, s in (  # noqa: NPY002
            ("dWax", (5, 3)), ("dWaa", (5, 5)), ("dWya", (2, 5)), ("db", (5, 1)),
            ("dby", (2, 1)))}
        before = copy.deepcopy(g)
        g["da_next"] = np.ones((5, 1)) * 100
        out = C.clip(g, m_value)
        got = (out["dWaa"][1][2], out["dWax"][3][1], out["dWya"][1][2], out["db"][4, 0],
               out["dby"][1, 0])
        np.testing.assert_allclose(got, expected, rtol=1e-8)
        assert set(out) == {"dWaa", "dWax", "dWya", "db", "dby"}
        for k, v in out.items():
            assert v is g[k]  # clipped in place, as the course
            inside = np.abs(before[k]) <= m_value
            np.testing.assert_array_equal(v[inside], before[k][inside])
            np.testing.assert_array_equal(v[~inside], np.sign(before[k][~inside]) * m_value)


def _sample_params(seed, vocab_size=27, n_a=100):
    np.random.seed(seed)  # noqa: NPY002
    Wax, Waa, Wya = (np.random.randn(*s) for s in (  # noqa: NPY002
        (n_a, vocab_size), (n_a, n_a), (vocab_size, n_a)))
    b, by = np.random.randn(n_a, 1), np.random.randn(vocab_size, 1)  # noqa: NPY002
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": b, "by": by}


def test_sample_published(dinos):
    _, char_to_ix, ix_to_char = dinos
    # the 2021 notebook (seed 24)
    indices = C.sample(_sample_params(24), char_to_ix, 0)
    assert indices == [23, 16, 26, 26, 24, 3, 21, 1, 7, 24, 15, 3, 25, 20, 6, 13, 10, 8, 20,
                       12, 2, 0]
    assert "".join(ix_to_char[i] for i in indices) == "wpzzxcuagxocytfmjhtlb\n"
    # the 2018 notebook (seed 2): a 50-character sample. Its hidden state is chaotic (unit
    # weights, 100 units), so the published lists of different numpy builds agree only on
    # their first 44 indices; on this platform the course's own code departs after 43.
    indices = C.sample(_sample_params(2), char_to_ix, 0)
    assert indices[:43] == [12, 17, 24, 14, 13, 9, 10, 22, 24, 6, 13, 11, 12, 6, 21, 15, 21,
                            14, 3, 2, 1, 21, 18, 24, 7, 25, 6, 25, 18, 10, 16, 2, 3, 8, 15,
                            12, 11, 7, 1, 12, 10, 2, 7]
    assert len(indices) == 51 and indices[-1] == 0  # 50 characters, then the newline


def test_optimize_published():
    np.random.seed(1)  # noqa: NPY002
    a_prev = np.random.randn(100, 1)  # noqa: NPY002
    p = _sample_params_no_seed(27, 100)
    old = copy.deepcopy(p)
    loss, g, a_last = C.optimize([12, 3, 5, 11, 22, 3], [4, 14, 11, 22, 25, 26], a_prev, p,
                                 learning_rate=0.01)
    assert loss == pytest.approx(126.50397572165389, rel=1e-12)
    assert g["dWaa"][1][2] == pytest.approx(0.19470931534713587, rel=1e-9)
    assert np.argmax(g["dWax"]) == 93
    assert g["dWya"][1][2] == pytest.approx(-0.007773876032002162, rel=1e-9)
    assert g["db"][4, 0] == pytest.approx(-0.06809825, abs=1e-8)
    assert g["dby"][1, 0] == pytest.approx(0.01538192, abs=1e-8)
    assert a_last.shape == (100, 1) and a_last[4, 0] == pytest.approx(-1.0)
    assert all(np.abs(v).max() <= 5 for v in g.values())
    for k in p:  # SGD step, in place
        np.testing.assert_allclose(p[k], old[k] - 0.01 * g["d" + k], rtol=1e-15)


def _sample_params_no_seed(vocab_size, n_a):
    Wax, Waa, Wya = (np.random.randn(*s) for s in (  # noqa: NPY002
        (n_a, vocab_size), (n_a, n_a), (vocab_size, n_a)))
    b, by = np.random.randn(n_a, 1), np.random.randn(vocab_size, 1)  # noqa: NPY002
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": b, "by": by}


def test_optimize_gradients_finite_differences():
    rng = np.random.default_rng(12)
    V, n_a = 5, 4
    p = {"Wax": rng.standard_normal((n_a, V)) * 0.5, "Waa": rng.standard_normal((n_a, n_a)) * 0.5,
         "Wya": rng.standard_normal((V, n_a)) * 0.5, "b": rng.standard_normal((n_a, 1)) * 0.1,
         "by": rng.standard_normal((V, 1)) * 0.1}
    a_prev = rng.standard_normal((n_a, 1)) * 0.5
    X, Y = [None, 2, 4, 1], [2, 4, 1, 0]

    def loss():  # optimize returns the loss before its update: run it on a copy
        return C.optimize(X, Y, a_prev, copy.deepcopy(p), learning_rate=1e-3)[0]

    _, g, a_last = C.optimize(X, Y, a_prev, copy.deepcopy(p))
    assert max(np.abs(v).max() for v in g.values()) < 5  # nothing clipped here
    _assert_grads(loss, {"d" + k: v for k, v in p.items()}, g)
    # the loss is the course's sum of -log softmax, and a_last the RNN's last state
    a, y, _ = C.rnn_forward(np.eye(V)[:, [0, 2, 4, 1]][:, None, :] * [0, 1, 1, 1], a_prev,
                            {"Wax": p["Wax"], "Waa": p["Waa"], "ba": p["b"], "Wya": p["Wya"],
                             "by": p["by"]})
    assert loss() == pytest.approx(-np.log(y[Y, 0, range(4)]).sum(), rel=1e-13)
    np.testing.assert_allclose(a_last, a[:, :, -1], rtol=1e-13)


# The 2021 notebook's model(data.split("\n"), ix_to_char, char_to_ix, 22001, verbose=True);
# the 2018 notebook prints the same blocks (every 2000 iterations, up to 34000).
PUBLISHED_MODEL_START = """\
j =  0 idx =  0
single_example = turiasaurus
single_example_chars ['t', 'u', 'r', 'i', 'a', 's', 'a', 'u', 'r', 'u', 's']
single_example_ix [20, 21, 18, 9, 1, 19, 1, 21, 18, 21, 19]
 X =  [None, 20, 21, 18, 9, 1, 19, 1, 21, 18, 21, 19] \n Y =        \
[20, 21, 18, 9, 1, 19, 1, 21, 18, 21, 19, 0] \n
Iteration: 0, Loss: 23.087336

Nkzxwtdmfqoeyhsqwasjkjvu
Kneb
Kzxwtdmfqoeyhsqwasjkjvu
Neb
Zxwtdmfqoeyhsqwasjkjvu
Eb
Xwtdmfqoeyhsqwasjkjvu


j =  1535 idx =  1535
j =  1536 idx =  0
Iteration: 2000, Loss: 27.884160

Liusskeomnolxeros
Hmdaairus
Hytroligoraurus
Lecalosapaus
Xusicikoraurus
Abalpsamantisaurus
Tpraneronxeros


Iteration: 4000, Loss: 25.901815

Mivrosaurus
Inee
Ivtroplisaurus
Mbaaisaurus
Wusichisaurus
Cabaselachus
Toraperlethosdarenitochusthiamamumamaon


"""


def test_model_reproduces_the_published_run(dinos):
    text, char_to_ix, ix_to_char = dinos
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        params, last_name = C.model(text.split("\n"), ix_to_char, char_to_ix, 4001,
                                    verbose=True)
    assert out.getvalue() == PUBLISHED_MODEL_START
    assert last_name == "Toraperlethosdarenitochusthiamamumamaon\n"
    assert {k: v.shape for k, v in params.items()} == {
        "Wax": (50, 27), "Waa": (50, 50), "Wya": (27, 50), "b": (50, 1), "by": (27, 1)}


def test_model_initialisation_protocol(dinos):
    text, char_to_ix, ix_to_char = dinos
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        params, last_name = C.model(text.split("\n"), ix_to_char, char_to_ix, 0, n_a=6)
    assert out.getvalue() == "" and last_name == "abc"
    np.random.seed(1)  # noqa: NPY002
    for k, shape in (("Wax", (6, 27)), ("Waa", (6, 6)), ("Wya", (27, 6))):
        np.testing.assert_array_equal(params[k], np.random.randn(*shape) * 0.01)  # noqa: NPY002
    assert not params["b"].any() and not params["by"].any()


# ============================================================== the guide's examples
def test_the_guides_python_examples_print_what_it_shows():
    # docs/course.md: each ```python block, run in order in one namespace, prints the
    # ```text block that follows it
    guide = (Path(__file__).resolve().parent.parent / "docs" / "course.md").read_text("utf-8")
    pairs = re.findall(r"```python\n(.*?)```\s*```(\w*)\n(.*?)```", guide, re.S)
    assert len(pairs) == guide.count("```python") == 4
    namespace = {}
    for code, lang, shown in pairs:
        assert lang == "text"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/course.md", "exec"), namespace)
        assert out.getvalue().rstrip("\n") == shown.rstrip("\n")


# ============================================================== bad input
def _rnn_case():
    rng = np.random.default_rng(13)
    return (_rnn_params(rng, 3, 4, 2), rng.standard_normal((3, 2, 5)),
            rng.standard_normal((4, 2)))


def test_bad_shapes_name_the_argument_and_the_expected_shape():
    p, x, a0 = _rnn_case()
    with pytest.raises(ValueError, match=r"x must have shape \(n_x, m, T_x\) = \(3, 2, 5\), "
                                         r"got \(4, 2, 5\)"):
        C.rnn_forward(np.zeros((4, 2, 5)), a0, p)
    with pytest.raises(ValueError, match=r"a0 must have shape \(n_a, m\) = \(4, 2\)"):
        C.rnn_forward(x, np.zeros((4, 3)), p)
    with pytest.raises(ValueError, match=r"xt must have 2 dimensions \(n_x, m\)"):
        C.rnn_cell_forward(x, a0, p)
    with pytest.raises(ValueError, match=r"parameters\['Waa'\] must have shape \(n_a, n_a\) = "
                                         r"\(4, 4\), got \(4, 3\)"):
        C.rnn_forward(x, a0, {**p, "Waa": np.zeros((4, 3))})
    with pytest.raises(ValueError, match=r"parameters\['by'\] must have 2 dimensions \(n_y, 1\)"):
        C.rnn_forward(x, a0, {**p, "by": np.zeros((2,))})
    rng = np.random.default_rng(14)
    q = _gated_params(rng, "fico", 3, 4, 2)
    with pytest.raises(ValueError, match=r"parameters\['Wo'\] must have shape "
                                         r"\(n_a, n_a\+n_x\) = \(4, 7\)"):
        C.lstm_forward(x, a0, {**q, "Wo": np.zeros((4, 6))})
    with pytest.raises(ValueError, match=r"c_prev must have shape"):
        C.lstm_cell_forward(x[:, :, 0], a0, np.zeros((2, 4)), q)


def test_missing_keys_and_wrong_types():
    p, x, a0 = _rnn_case()
    with pytest.raises(ValueError, match=r"parameters is missing 'Waa'.*Wax, Waa, ba, Wya, by"):
        C.rnn_forward(x, a0, {k: v for k, v in p.items() if k != "Waa"})
    q = _gated_params(np.random.default_rng(15), "urc", 3, 4, 2)
    del q["bu"]
    with pytest.raises(ValueError, match=r"parameters is missing 'bu'"):
        C.gru_forward(x, a0, q)
    with pytest.raises(TypeError, match="parameters must be a dict"):
        C.rnn_forward(x, a0, [p["Wax"]])
    with pytest.raises(TypeError, match=r"x must be a floating-point array.*int64"):
        C.rnn_forward(x.astype(np.int64), a0, p)
    with pytest.raises(TypeError, match=r"parameters\['Wax'\] must be a floating-point"):
        C.rnn_forward(x, a0, {**p, "Wax": p["Wax"].astype(np.int32)})
    with pytest.raises(TypeError, match="caches must be the pair"):
        C.rnn_backward(np.zeros((4, 2, 5)), (x, a0))
    with pytest.raises(TypeError, match="cache must be the tuple"):
        C.lstm_cell_backward(np.zeros((4, 2)), np.zeros((4, 2)), C.rnn_cell_forward(
            x[:, :, 0], a0, p)[2])


def test_nan_inputs_are_rejected():
    p, x, a0 = _rnn_case()
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        C.rnn_forward(bad, a0, p)
    with pytest.raises(ValueError, match=r"parameters\['ba'\] contains NaN"):
        C.rnn_forward(x, a0, {**p, "ba": np.full((4, 1), np.nan)})
    caches = C.rnn_forward(x, a0, p)[2]
    with pytest.raises(ValueError, match="da contains NaN"):
        C.rnn_backward(np.full((4, 2, 5), np.inf), caches)


def test_backward_da_must_match_the_caches():
    p, x, a0 = _rnn_case()
    caches = C.rnn_forward(x, a0, p)[2]
    with pytest.raises(ValueError, match=r"da has 6 time steps but the caches of rnn_forward "
                                         r"hold 5"):
        C.rnn_backward(np.zeros((4, 2, 6)), caches)
    with pytest.raises(ValueError, match=r"da must have shape \(n_a, m, T_x\) = \(4, 2, 5\)"):
        C.rnn_backward(np.zeros((3, 2, 5)), caches)
    with pytest.raises(ValueError, match=r"caches\[1\] \(x\) must have shape "
                                         r"\(n_x, m, T_x\) = \(3, 2, 5\), got \(3, 2, 4\)"):
        C.rnn_backward(np.zeros((4, 2, 5)), (caches[0], x[:, :, :4]))
    with pytest.raises(ValueError, match=r"da_next must have shape \(n_a, m\) = \(4, 2\)"):
        C.rnn_cell_backward(np.zeros((4, 3)), C.rnn_cell_forward(x[:, :, 0], a0, p)[2])


def test_dinosaurus_bad_input(dinos):
    text, char_to_ix, ix_to_char = dinos
    p = _sample_params(0, 27, 5)
    g = {k: np.zeros((2, 2)) for k in ("dWaa", "dWax", "dWya", "db")}
    with pytest.raises(ValueError, match="parameters is missing 'dby'"):
        C.clip(g, 5)
    with pytest.raises(ValueError, match="maxValue must be a positive number"):
        C.clip({**g, "dby": np.zeros(2)}, -1)
    with pytest.raises(ValueError, match=r"char_to_ix must be a dict .* newline"):
        C.sample(p, {"a": 1}, 0)
    with pytest.raises(ValueError, match=r"X\[1\] must be an index in \[0, 27\) or None, "
                                         r"got 30"):
        C.optimize([None, 30], [1, 0], np.zeros((5, 1)), p)
    with pytest.raises(ValueError, match="X and Y must be non-empty and of the same length"):
        C.optimize([None, 3], [3], np.zeros((5, 1)), p)
    with pytest.raises(ValueError, match=r"a_prev must have shape \(n_a, 1\) = \(5, 1\)"):
        C.optimize([None], [0], np.zeros((4, 1)), p)
    with pytest.raises(TypeError, match="data_x must be a list of names"):
        C.model(text, ix_to_char, char_to_ix, 1)
    with pytest.raises(ValueError, match=r"data_x\[1\] = 'Rex' has the character 'R'"):
        C.model(["abc", "Rex"], ix_to_char, char_to_ix, 1)
