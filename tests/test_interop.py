"""rnnkit.interop: the weight mapping to and from PyTorch, round trips and refusals.

(The numerical parity of converted layers, gradients included, is in test_torch_parity.py.)
"""

import numpy as np
import pytest
from helpers import make_layer

import rnnkit
from rnnkit.interop import from_torch, to_torch

torch = pytest.importorskip("torch")

D, H = 3, 2
KINDS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]


def torch_module(kind, seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    if kind.startswith("rnn"):
        m = torch.nn.RNN(D, H, nonlinearity=kind[4:], **kw)
    elif kind == "lstm":
        m = torch.nn.LSTM(D, H, **kw)
    else:
        m = torch.nn.GRU(D, H, **kw)
    m = m.to(dtype)
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.7, 0.7)
    return m


def rnnkit_layer(kind, **kw):
    cls, extra = {"rnn-tanh": (rnnkit.RNN, {"nonlinearity": "tanh"}),
                  "rnn-relu": (rnnkit.RNN, {"nonlinearity": "relu"}),
                  "lstm": (rnnkit.LSTM, {}), "gru": (rnnkit.GRU, {})}[kind]
    return make_layer(cls, extra, D, H, **kw)


def directions(bidirectional):
    return ["", "_reverse"] if bidirectional else [""]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_mapping(kind, bidirectional):
    m = torch_module(kind, num_layers=2, bidirectional=bidirectional, dropout=0.25)
    layer = from_torch(m)
    classes = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}
    assert type(layer) is classes[kind.split("-")[0]]
    assert (layer.input_size, layer.hidden_size, layer.num_layers) == (D, H, 2)
    assert layer.bidirectional == bidirectional and layer.bias
    assert layer.dropout == 0.25 and layer.dtype == np.float64
    assert layer.merge == "concat" and layer.initial_state == "zeros"
    if kind.startswith("rnn"):
        assert layer.nonlinearity == kind[4:]
    if kind == "gru":
        assert layer.reset_after
    sd = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    names = set()
    for k in range(2):
        for sfx in directions(bidirectional):
            p = f"l{k}{sfx}."
            np.testing.assert_array_equal(layer.params[p + "W_x"], sd[f"weight_ih_l{k}{sfx}"].T)
            np.testing.assert_array_equal(layer.params[p + "W_h"], sd[f"weight_hh_l{k}{sfx}"].T)
            b_ih, b_hh = sd[f"bias_ih_l{k}{sfx}"], sd[f"bias_hh_l{k}{sfx}"]
            if kind == "gru":
                np.testing.assert_array_equal(layer.params[p + "b"][: 2 * H],
                                              b_ih[: 2 * H] + b_hh[: 2 * H])
                np.testing.assert_array_equal(layer.params[p + "b"][2 * H :], b_ih[2 * H :])
                np.testing.assert_array_equal(layer.params[p + "b_hn"], b_hh[2 * H :])
                names.add(p + "b_hn")
            else:
                np.testing.assert_array_equal(layer.params[p + "b"], b_ih + b_hh)
            names.update({p + "W_x", p + "W_h", p + "b"})
    assert set(layer.params) == names
    # the arrays are copies: changing the layer leaves the module alone
    layer.params["l0.W_x"][...] = 0
    assert m.weight_ih_l0.detach().abs().max() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_batch_first_and_dtype(kind):
    a = from_torch(torch_module(kind, batch_first=True))
    b = from_torch(torch_module(kind, batch_first=False))
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    f32 = from_torch(torch_module(kind, dtype=torch.float32, bias=False))
    assert f32.dtype == np.float32 and not f32.bias
    assert all(v.dtype == np.float32 for v in f32.params.values())
    assert not any(k.endswith(("b", "b_hn")) for k in f32.params)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_to_torch_mapping_and_round_trip(kind, bidirectional, bias):
    layer = rnnkit_layer(kind, num_layers=2, bidirectional=bidirectional, bias=bias,
                         dropout=0.5)
    m = to_torch(layer)
    assert isinstance(m, {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM,
                          "gru": torch.nn.GRU}[layer.kind])
    assert m.batch_first and m.bidirectional == bidirectional and m.bias == bias
    assert (m.input_size, m.hidden_size, m.num_layers, m.dropout) == (D, H, 2, 0.5)
    if layer.kind == "rnn":
        assert m.nonlinearity == layer.nonlinearity
    sd = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    for k in range(2):
        for sfx in directions(bidirectional):
            p = f"l{k}{sfx}."
            np.testing.assert_array_equal(sd[f"weight_ih_l{k}{sfx}"], layer.params[p + "W_x"].T)
            np.testing.assert_array_equal(sd[f"weight_hh_l{k}{sfx}"], layer.params[p + "W_h"].T)
            if bias:  # biases go to the input side, but GRU's b_hn
                np.testing.assert_array_equal(sd[f"bias_ih_l{k}{sfx}"], layer.params[p + "b"])
                b_hh = sd[f"bias_hh_l{k}{sfx}"]
                if kind == "gru":
                    assert not b_hh[: 2 * H].any()
                    np.testing.assert_array_equal(b_hh[2 * H :], layer.params[p + "b_hn"])
                else:
                    assert not b_hh.any()
    # rnnkit -> torch -> rnnkit gives the same parameters, bit for bit
    back = from_torch(m)
    assert set(back.params) == set(layer.params)
    for k, v in layer.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    assert back.config() == layer.config()


@pytest.mark.parametrize("kind", KINDS)
def test_torch_round_trip_computes_the_same_function(kind):
    """torch -> rnnkit -> torch moves biases around but computes the same thing."""
    m = torch_module(kind, num_layers=2, bidirectional=True, batch_first=True)
    m2 = to_torch(from_torch(m))
    x = torch.tensor(np.random.default_rng(0).standard_normal((2, 4, D)))
    with torch.no_grad():
        out, st = m(x)
        out2, st2 = m2(x)
    assert (out - out2).abs().max() < 1e-12
    for a, b in zip(st if kind == "lstm" else (st,), st2 if kind == "lstm" else (st2,),
                    strict=True):
        assert (a - b).abs().max() < 1e-12


# ---------------------------------------------------------------------- refusals
def test_from_torch_refuses_other_modules():
    with pytest.raises(TypeError, match="module must be a torch.nn.RNN, LSTM or GRU, got Linear"):
        from_torch(torch.nn.Linear(3, 2))
    with pytest.raises(TypeError, match="module must be a torch.nn.RNN, LSTM or GRU, got "
                                        "GRUCell"):
        from_torch(torch.nn.GRUCell(3, 2))
    with pytest.raises(ValueError, match="LSTM with proj_size > 0 has no rnnkit equivalent"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="module parameters must be float32 or float64, got "
                                        "torch.float16"):
        from_torch(torch.nn.GRU(3, 2).half())


def test_to_torch_refuses_what_torch_cannot_express():
    with pytest.raises(ValueError, match="this GRU has reset_after=False"):
        to_torch(rnnkit.GRU(D, H, reset_after=False))
    for merge in ("sum", "mul", "ave"):
        with pytest.raises(ValueError, match=f"this layer has merge='{merge}'"):
            to_torch(rnnkit.LSTM(D, H, bidirectional=True, merge=merge))
    for cls in (rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU):
        with pytest.raises(ValueError, match="no learned initial state; this layer has "
                                             "initial_state='learned'"):
            to_torch(cls(D, H, initial_state="learned"))
    with pytest.raises(TypeError, match=r"layer must be an rnnkit RNN, LSTM or GRU \(or an rnnkit "
                                        r"model\), got torch\.nn\.modules\.rnn\.GRU"):
        to_torch(torch.nn.GRU(D, H))
    with pytest.raises(TypeError, match=r"layer must be an rnnkit RNN, LSTM or GRU \(or an rnnkit "
                                        r"model\), got rnnkit\.cell_layers\.GRUCell"):
        to_torch(rnnkit.GRUCell(D, H))
    # a unidirectional layer's merge is irrelevant: it converts
    assert isinstance(to_torch(rnnkit.GRU(D, H, merge="sum")), torch.nn.GRU)
