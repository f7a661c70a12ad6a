"""Bad input raises TypeError/ValueError whose message names the argument and what was
expected, never a numpy traceback or a silently wrong result."""

import re

import numpy as np
import pytest

import rnnkit

D, H = 3, 2


def x_(B=2, T=4, D=D, dtype=np.float32):
    return np.zeros((B, T, D), dtype=dtype)


@pytest.fixture(params=["rnn", "lstm", "gru"])
def layer(request):
    cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[request.param]
    return cls(D, H, rng=0)


# ---------------------------------------------------------------------- x
@pytest.mark.parametrize(("bad", "message"), [
    (np.zeros((4, D), np.float32), r"x must have 3 dimensions \(B, T, 3\), got shape \(4, 3\)"),
    (np.zeros((1, 2, 4, D), np.float32), r"x must have 3 dimensions \(B, T, 3\)"),
    (x_(D=5), r"x must have shape \(B, T, 3\), got \(2, 4, 5\)"),
])
def test_x_shape(layer, bad, message):
    with pytest.raises(ValueError, match=message):
        layer.forward(bad)


@pytest.mark.parametrize("shape", [(0, 4, D), (2, 0, D)], ids=["B=0", "T=0"])
def test_x_empty(layer, shape):
    message = f"x must have at least one sequence and one step, got shape {shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.forward(np.zeros(shape, np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, bool])
def test_x_integer_dtype(layer, dtype):
    with pytest.raises(TypeError, match=r"x must be a floating-point array .*got dtype"):
        layer.forward(np.zeros((2, 4, D), dtype=dtype))


def test_x_not_an_array(layer):
    with pytest.raises(TypeError, match="x must be a numpy array, got NoneType"):
        layer.forward(None)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_x_not_finite(layer, value):
    x = x_()
    x[1, 2, 0] = value
    with pytest.raises(ValueError, match="x contains NaN or infinite values"):
        layer.forward(x)


# ---------------------------------------------------------------------- state
def test_state_wrong_shape():
    gru = rnnkit.GRU(D, H, num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match=r"state must have shape \(4, 2, 2\), got \(2, 2, 2\)"):
        gru.forward(x_(), np.zeros((2, 2, H)))
    with pytest.raises(ValueError, match=r"state must have 3 dimensions \(4, 2, 2\)"):
        gru.forward(x_(), np.zeros((2, H)))
    with pytest.raises(TypeError, match=r"state of a GRU is one array \(4, 2, 2\), got a tuple"):
        gru.forward(x_(), (np.zeros((4, 2, H)), np.zeros((4, 2, H))))
    with pytest.raises(ValueError, match="state contains NaN"):
        gru.forward(x_(), np.full((4, 2, H), np.nan))


@pytest.mark.parametrize("bad", [np.zeros((1, 2, H)), (np.zeros((1, 2, H)),),
                                 [np.zeros((1, 2, H))] * 3], ids=["array", "1-tuple", "3-list"])
def test_lstm_state_not_a_pair(bad):
    lstm = rnnkit.LSTM(D, H)
    with pytest.raises(TypeError, match=r"state of an LSTM must be a pair \(h, c\) of arrays "
                                        r"\(1, 2, 2\)"):
        lstm.forward(x_(), bad)


def test_lstm_state_part_wrong_shape():
    lstm = rnnkit.LSTM(D, H)
    with pytest.raises(ValueError, match=r"state\[1\] \(c\) must have shape \(1, 2, 2\), "
                                         r"got \(1, 2, 3\)"):
        lstm.forward(x_(), (np.zeros((1, 2, H)), np.zeros((1, 2, 3))))
    with pytest.raises(TypeError, match=r"state\[0\] \(h\) must be a floating-point array"):
        lstm.forward(x_(), (np.zeros((1, 2, H), int), np.zeros((1, 2, H))))


# ---------------------------------------------------------------------- mask and lengths
def test_mask_wrong_shape(layer):
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 4\), "
                                         r"got \(2, 3\)"):
        layer.forward(x_(), mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 4\), "
                                         r"got \(2, 4, 1\)"):
        layer.forward(x_(), mask=np.ones((2, 4, 1), bool))


@pytest.mark.parametrize("bad", [np.full((2, 4), 0.5), np.full((2, 4), 2), np.full((2, 4), "a")],
                         ids=["half", "two", "str"])
def test_mask_not_boolean(layer, bad):
    with pytest.raises(ValueError, match=r"mask must be boolean \(or 0/1\).*got dtype"):
        layer.forward(x_(), mask=bad)


def test_mask_of_zeros_and_ones_is_accepted(layer):
    m = np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    a = layer.forward(x_() + 0.5, mask=m)[0]
    b = layer.forward(x_() + 0.5, lengths=[2, 4])[0]
    np.testing.assert_array_equal(a, b)


def test_mask_and_lengths_both_given(layer):
    with pytest.raises(ValueError, match="give either mask or lengths, not both"):
        layer.forward(x_(), mask=np.ones((2, 4), bool), lengths=[4, 4])


@pytest.mark.parametrize("lengths", [[1, 5], [-1, 2]])
def test_lengths_out_of_range(layer, lengths):
    with pytest.raises(ValueError, match=re.escape(f"lengths must be in [0, 4], got {lengths}")):
        layer.forward(x_(), lengths=lengths)


@pytest.mark.parametrize("lengths", [[1, 2, 3], [1.0, 2.0], 3], ids=["size", "float", "scalar"])
def test_lengths_wrong_shape_or_type(layer, lengths):
    with pytest.raises(ValueError, match=r"lengths must be an integer array of shape \(2,\)"):
        layer.forward(x_(), lengths=lengths)


# ---------------------------------------------------------------------- backward
def test_dout_wrong_shape(layer):
    out, _, cache = layer.forward(x_())
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 2\), got \(2, 4, 3\)"):
        layer.backward(np.zeros((2, 4, 3)), cache)
    with pytest.raises(ValueError, match=r"dout must have 3 dimensions \(2, 4, 2\)"):
        layer.backward(np.zeros((2, 4)), cache)
    with pytest.raises(ValueError, match="dout contains NaN"):
        layer.backward(np.full(out.shape, np.nan), cache)


def test_dout_wrong_shape_return_sequences_false():
    gru = rnnkit.GRU(D, H, bidirectional=True, return_sequences=False)
    out, _, cache = gru.forward(x_())
    assert out.shape == (2, 4)
    with pytest.raises(ValueError, match=r"dout must have 2 dimensions \(2, 4\)"):
        gru.backward(np.zeros((2, 4, 4)), cache)


def test_dstate_wrong_shape():
    lstm = rnnkit.LSTM(D, H)
    out, _, cache = lstm.forward(x_())
    with pytest.raises(TypeError, match=r"dstate of an LSTM must be a pair \(h, c\)"):
        lstm.backward(out, cache, np.zeros((1, 2, H)))
    with pytest.raises(ValueError, match=r"dstate\[0\] \(h\) must have shape \(1, 2, 2\)"):
        lstm.backward(out, cache, (np.zeros((1, 3, H)), np.zeros((1, 2, H))))


@pytest.mark.parametrize("bad", [None, (1, 2), {"hs": 0}], ids=["None", "tuple", "dict"])
def test_cache_that_is_not_a_cache(layer, bad):
    out, _, _ = layer.forward(x_())
    with pytest.raises(TypeError, match="cache must be the RecurrentCache returned by forward"):
        layer.backward(out, bad)


# ---------------------------------------------------------------------- constructor
@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"hidden_size": 0}, ValueError, "hidden_size must be an integer >= 1, got 0"),
    ({"input_size": 0}, ValueError, "input_size must be an integer >= 1, got 0"),
    ({"hidden_size": 2.0}, TypeError, "hidden_size must be an integer >= 1, got 2.0"),
    ({"num_layers": 0}, ValueError, "num_layers must be an integer >= 1, got 0"),
    ({"num_layers": 1.5}, TypeError, "num_layers must be an integer >= 1, got 1.5"),
    ({"num_layers": True}, TypeError, "num_layers must be an integer >= 1, got True"),
    ({"merge": "max"}, ValueError, "merge must be one of 'concat', 'sum', 'mul', 'ave'; "
                                   "got 'max'"),
    ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1.0"),
    ({"dropout": -0.1}, ValueError, r"dropout must be in \[0, 1\), got -0.1"),
    ({"dropout": "0.1"}, TypeError, r"dropout must be a number in \[0, 1\), got '0.1'"),
    ({"initial_state": "random"}, ValueError, "initial_state must be one of 'zeros', "
                                              "'learned'; got 'random'"),
    ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64, got int32"),
    ({"dtype": np.float16}, TypeError, "dtype must be float32 or float64, got float16"),
    ({"dtype": "banana"}, TypeError, "dtype must be float32 or float64, got 'banana'"),
    ({"rng": "seed"}, TypeError, "rng must be None, an int seed or a numpy.random.Generator"),
], ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={v[k]}" for k in v))
@pytest.mark.parametrize("cls", [rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU])
def test_constructor_arguments(cls, kwargs, error, message):
    args = {"input_size": D, "hidden_size": H, **kwargs}
    with pytest.raises(error, match=message):
        cls(**args)


def test_kind_specific_constructor_arguments():
    with pytest.raises(ValueError, match="nonlinearity must be one of 'tanh', 'relu'; "
                                         "got 'sigmoid'"):
        rnnkit.RNN(D, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity must be one of 'tanh', 'relu'"):
        rnnkit.RNNCell(D, H, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="forget_bias must be a number, got 'x'"):
        rnnkit.LSTM(D, H, forget_bias="x")
    with pytest.raises(ValueError, match="forget_bias must be a finite number, got nan"):
        rnnkit.LSTM(D, H, forget_bias=float("nan"))
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1, got 0"):
        rnnkit.GRUCell(D, 0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got float16"):
        rnnkit.LSTMCell(D, H, dtype=np.float16)


# ---------------------------------------------------------------------- step
def test_step_errors():
    with pytest.raises(ValueError, match=r"step\(\) needs a unidirectional layer"):
        rnnkit.LSTM(D, H, bidirectional=True).step(np.zeros((2, D)))
    gru = rnnkit.GRU(D, H, num_layers=2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3\), got \(2, 4\)"):
        gru.step(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"state must have 3 dimensions \(2, 2, 2\)"):
        gru.step(np.zeros((2, D)), np.zeros((2, H)))


# ---------------------------------------------------------------------- cells
def test_cell_errors():
    gru, lstm = rnnkit.GRUCell(D, H), rnnkit.LSTMCell(D, H)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3\), got \(2, 4\)"):
        gru.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"x must have 2 dimensions \(B, 3\)"):
        gru.forward(np.zeros((2, 1, D)))
    with pytest.raises(ValueError, match=r"state must have shape \(2, 2\), got \(2, 3\)"):
        gru.forward(np.zeros((2, D)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"state must have 2 dimensions \(2, 2\), got shape "
                                         r"\(1, 2, 2\)"):
        gru.forward(np.zeros((2, D)), np.zeros((1, 2, H)))
    with pytest.raises(TypeError, match=r"state of a GRUCell is one array \(2, 2\), got a list"):
        gru.forward(np.zeros((2, D)), [np.zeros(H), np.zeros(H)])
    with pytest.raises(TypeError, match=r"state of an LSTMCell must be a pair \(h, c\) of "
                                        r"arrays \(2, 2\), got ndarray"):
        lstm.forward(np.zeros((2, D)), np.zeros((2, H)))
    with pytest.raises(ValueError, match=r"state\[1\] \(c\) must have shape \(2, 2\)"):
        lstm.forward(np.zeros((2, D)), (np.zeros((2, H)), np.zeros((2, 3))))
    _, cache = gru.forward(np.zeros((2, D)))
    with pytest.raises(ValueError, match=r"dstate must have shape \(2, 2\), got \(2, 3\)"):
        gru.backward(np.zeros((2, 3)), cache)
    with pytest.raises(TypeError, match="cache must be the cache returned by forward"):
        gru.backward(np.zeros((2, H)), None)
    _, cache = lstm.forward(np.zeros((2, D)))
    with pytest.raises(TypeError, match=r"dstate of an LSTMCell must be a pair \(h, c\)"):
        lstm.backward(np.zeros((2, H)), cache)


def test_errors_leave_the_layer_usable(layer):
    """A rejected call changes nothing: the next good call gives the usual answer."""
    x = np.random.default_rng(0).standard_normal((2, 4, D)).astype(np.float32)
    before, _, _ = layer.forward(x)
    with pytest.raises(ValueError):
        layer.forward(x, lengths=[9, 9])
    after, _, _ = layer.forward(x)
    np.testing.assert_array_equal(before, after)
