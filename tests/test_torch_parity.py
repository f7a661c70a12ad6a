"""Parity with PyTorch: outputs, final states and every gradient.

Torch parameters (biases included) are drawn from U(-0.7, 0.7) and the initial states are
non-zero, so that a bias or state bug cannot hide behind zeros. The loss on both sides is
L = sum(out*R1) + sum(h_n*R2) (+ sum(c_n*R3)). float64 must agree within 1e-10 absolute;
float32 within 1e-5 relative error.

Gradient mapping: ``W_x = weight_ih.T``, ``W_h = weight_hh.T``; rnnkit's ``b`` stands for
both ``bias_ih`` and ``bias_hh`` (whose gradients are equal for RNN and LSTM). For GRU,
``b`` takes ``bias_ih``'s gradient and ``b_hn`` the n block of ``bias_hh``'s gradient;
the r, z blocks of ``bias_hh``'s gradient equal those of ``bias_ih``.
"""

import numpy as np
import pytest
from helpers import linear_loss, make_layer, random_state

from rnnkit import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from rnnkit.gradcheck import rel_error
from rnnkit.interop import from_torch, to_torch

torch = pytest.importorskip("torch")

D, H = 4, 3
TORCH_KINDS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]
ABS_TOL_64 = 1e-10
REL_TOL_32 = 1e-5


def torch_module(kind, dtype=torch.float64, seed=0, **kw):
    """A torch.nn.RNN/LSTM/GRU with every parameter drawn from U(-0.7, 0.7)."""
    torch.manual_seed(seed)
    if kind.startswith("rnn"):
        module = torch.nn.RNN(D, H, nonlinearity=kind[4:], **kw)
    elif kind == "lstm":
        module = torch.nn.LSTM(D, H, **kw)
    else:
        module = torch.nn.GRU(D, H, **kw)
    module = module.to(dtype)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=dtype) * 1.4 - 0.7)
    return module


def rnnkit_kind(kind):
    return {"rnn-tanh": (RNN, {"nonlinearity": "tanh"}),
            "rnn-relu": (RNN, {"nonlinearity": "relu"}),
            "lstm": (LSTM, {}), "gru": (GRU, {"reset_after": True})}[kind]


def run_torch(module, x, state, R1, Rs, lengths=None):
    """Forward and backward of the torch module on batch-first numpy data.

    Returns out (B, T, F) (zeros at padded steps when ``lengths``), the final state, dx,
    the initial state's gradient and the parameter gradients by torch name.
    """
    lstm = isinstance(module, torch.nn.LSTM)
    bf = module.batch_first
    xt = torch.tensor(x if bf else x.transpose(1, 0, 2), requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in (state if lstm else (state,))]
    module.zero_grad()
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=bf, enforce_sorted=False)
    out, hn = module(inp, tuple(st) if lstm else st[0])
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=bf,
                                                        total_length=x.shape[1])
    if not bf:
        out = out.transpose(0, 1)
    finals = list(hn) if lstm else [hn]
    loss = (out * torch.tensor(R1)).sum()
    for s, r in zip(finals, Rs if lstm else (Rs,), strict=True):
        loss = loss + (s * torch.tensor(r)).sum()
    loss.backward()
    dx = xt.grad.numpy()
    res = {
        "out": out.detach().numpy(),
        "state": [s.detach().numpy() for s in finals],
        "dx": dx if bf else dx.transpose(1, 0, 2),
        "dstate0": [s.grad.numpy() for s in st],
        "grads": {n: p.grad.numpy() for n, p in module.named_parameters()},
        "loss": float(loss.detach()),
    }
    return res


def run_rnnkit(layer, x, state, R1, Rs, lengths=None):
    out, st, cache = layer.forward(x, state, lengths=lengths)
    dx, ds, grads = layer.backward(R1, cache, Rs)
    lstm = layer.kind == "lstm"
    return {"out": out, "state": list(st) if lstm else [st], "dx": dx,
            "dstate0": list(ds) if lstm else [ds], "grads": grads,
            "loss": linear_loss(out, st, R1, Rs)}


def torch_grads_as_rnnkit(module, layer, tgrads, close):
    """Map torch parameter gradients to rnnkit names (checking the bias identities)."""
    out = {}
    for k in range(module.num_layers):
        for suffix in ("", "_reverse")[: 2 if module.bidirectional else 1]:
            prefix = f"l{k}{suffix}."
            out[prefix + "W_x"] = tgrads[f"weight_ih_l{k}{suffix}"].T
            out[prefix + "W_h"] = tgrads[f"weight_hh_l{k}{suffix}"].T
            if module.bias:
                g_ih, g_hh = tgrads[f"bias_ih_l{k}{suffix}"], tgrads[f"bias_hh_l{k}{suffix}"]
                out[prefix + "b"] = g_ih
                if layer.kind == "gru":
                    out[prefix + "b_hn"] = g_hh[2 * H:]
                    close(g_hh[: 2 * H], g_ih[: 2 * H], "bias_hh r,z vs bias_ih r,z")
                else:
                    close(g_hh, g_ih, "bias_hh vs bias_ih")
    assert set(out) == set(layer.params)
    return out


def closeness(dtype):
    if dtype == np.float64:
        def close(a, b, what):
            assert a.shape == b.shape, what
            err = float(np.abs(np.asarray(a) - np.asarray(b)).max(initial=0))
            assert err <= ABS_TOL_64, f"{what}: max abs difference {err:.3g}"
    else:
        def close(a, b, what):
            err = rel_error(a, b)
            assert err <= REL_TOL_32, f"{what}: relative error {err:.3g}"
    return close


def assert_parity(layer, module, x, state, seed=0, lengths=None):
    """Run both on the same data and compare outputs, states and all gradients."""
    dtype = layer.dtype
    close = closeness(dtype)
    out, st, _ = layer.forward(x, state, lengths=lengths)
    rng = np.random.default_rng(seed)
    R1 = rng.standard_normal(out.shape).astype(dtype)
    Rs = tuple(rng.standard_normal(s.shape).astype(dtype) for s in
               (st if isinstance(st, tuple) else (st,)))
    Rs = Rs if layer.kind == "lstm" else Rs[0]
    k = run_rnnkit(layer, x, state, R1, Rs, lengths)
    t = run_torch(module, x, state, R1, Rs, lengths)
    close(k["out"], t["out"], "out")
    for i, (a, b) in enumerate(zip(k["state"], t["state"], strict=True)):
        close(a, b, f"final state [{i}]")
    close(k["dx"], t["dx"], "dx")
    for i, (a, b) in enumerate(zip(k["dstate0"], t["dstate0"], strict=True)):
        close(a, b, f"initial state gradient [{i}]")
    expected = torch_grads_as_rnnkit(module, layer, t["grads"], close)
    for name, g in expected.items():
        close(k["grads"][name], g, f"grad {name}")
        assert k["grads"][name].dtype == dtype
    assert abs(k["loss"] - t["loss"]) <= 1e-6 * max(1.0, abs(t["loss"]))
    return k


def data(B, T, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal((B, T, D)).astype(dtype)


# ---------------------------------------------------------------------- from_torch
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("batch_first", [True, False], ids=["bf", "tf"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_from_torch_float64(kind, num_layers, bidirectional, batch_first, bias):
    module = torch_module(kind, num_layers=num_layers, bidirectional=bidirectional,
                          batch_first=batch_first, bias=bias)
    layer = from_torch(module)
    assert (layer.num_layers, layer.bidirectional, layer.bias) == (num_layers, bidirectional,
                                                                   bias)
    assert layer.dtype == np.float64
    x = data(3, 4)
    k = assert_parity(layer, module, x, random_state(layer, 3, np.random.default_rng(1)))
    assert np.abs(k["dx"]).max() > 1e-3


@pytest.mark.parametrize(("B", "T"), [(1, 1), (1, 4), (3, 1)])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_from_torch_small_shapes(kind, bidirectional, B, T):
    module = torch_module(kind, num_layers=2, bidirectional=bidirectional, batch_first=B == 1)
    layer = from_torch(module)
    assert_parity(layer, module, data(B, T, seed=2), random_state(layer, B,
                                                                  np.random.default_rng(3)))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_from_torch_float32(kind, num_layers, bidirectional):
    module = torch_module(kind, dtype=torch.float32, num_layers=num_layers,
                          bidirectional=bidirectional, batch_first=True)
    layer = from_torch(module)
    assert layer.dtype == np.float32
    x = data(3, 4, np.float32, seed=4)
    k = assert_parity(layer, module, x, random_state(layer, 3, np.random.default_rng(5)))
    assert k["out"].dtype == np.float32 and k["dx"].dtype == np.float32


# ---------------------------------------------------------------------- to_torch
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_to_torch(kind, num_layers, bidirectional, bias):
    cls, kw = rnnkit_kind(kind)
    layer = make_layer(cls, kw, D, H, num_layers=num_layers, bidirectional=bidirectional,
                       bias=bias, seed=6)
    if bias:
        assert all(np.abs(v).min() > 0 for k, v in layer.params.items() if "b" in k)
    module = to_torch(layer)
    assert module.batch_first and module.bias == bias
    assert next(module.parameters()).dtype == torch.float64
    B = 1 if num_layers == 3 else 3
    assert_parity(layer, module, data(B, 4, seed=7), random_state(layer, B,
                                                                  np.random.default_rng(8)))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_to_torch_float32(kind, bidirectional):
    cls, kw = rnnkit_kind(kind)
    layer = make_layer(cls, kw, D, H, num_layers=2, bidirectional=bidirectional, seed=9,
                       dtype=np.float32)
    module = to_torch(layer)
    assert next(module.parameters()).dtype == torch.float32
    x = data(3, 4, np.float32, seed=10)
    assert_parity(layer, module, x, random_state(layer, 3, np.random.default_rng(11)))


# ---------------------------------------------------------------------- masked
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_masked_vs_packed_sequence(kind, bidirectional, num_layers):
    """A masked batch equals torch's pack_padded_sequence (enforce_sorted=False)."""
    module = torch_module(kind, num_layers=num_layers, bidirectional=bidirectional,
                          batch_first=True, seed=12)
    layer = from_torch(module)
    lengths = np.array([2, 1, 5, 3])  # unsorted, with a length of 1 and a full length
    x = data(4, 5, seed=13)
    k = assert_parity(layer, module, x, random_state(layer, 4, np.random.default_rng(14)),
                      lengths=lengths)
    valid = np.arange(5)[None, :] < lengths[:, None]
    assert (k["out"][~valid] == 0).all() and (k["dx"][~valid] == 0).all()
    if kind != "rnn-relu":  # relu outputs exact zeros
        assert np.abs(k["out"][valid]).min() > 0


# ---------------------------------------------------------------------- cells
CELL_CASES = [
    ("rnn-tanh", RNNCell, {"nonlinearity": "tanh"}),
    ("rnn-relu", RNNCell, {"nonlinearity": "relu"}),
    ("lstm", LSTMCell, {}),
    ("gru", GRUCell, {"reset_after": True}),
]


def torch_cell(kind, bias, dtype, seed):
    torch.manual_seed(seed)
    if kind.startswith("rnn"):
        cell = torch.nn.RNNCell(D, H, bias=bias, nonlinearity=kind[4:])
    elif kind == "lstm":
        cell = torch.nn.LSTMCell(D, H, bias=bias)
    else:
        cell = torch.nn.GRUCell(D, H, bias=bias)
    cell = cell.to(dtype)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=dtype) * 1.4 - 0.7)
    return cell


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize(("kind", "cls", "kw"), CELL_CASES, ids=[c[0] for c in CELL_CASES])
def test_cell_vs_torch_cell(kind, cls, kw, bias, dtype):
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tcell = torch_cell(kind, bias, tdtype, seed=15)
    cell = cls(D, H, bias=bias, dtype=dtype, **kw)
    # the same mapping as interop.from_torch
    tp = {n: p.detach().numpy() for n, p in tcell.named_parameters()}
    cell.params["W_x"][...] = tp["weight_ih"].T
    cell.params["W_h"][...] = tp["weight_hh"].T
    if bias:
        b = tp["bias_ih"].copy()
        if kind == "gru":
            b[: 2 * H] += tp["bias_hh"][: 2 * H]
            cell.params["b_hn"][...] = tp["bias_hh"][2 * H:]
        else:
            b += tp["bias_hh"]
        cell.params["b"][...] = b
    rng = np.random.default_rng(16)
    B = 3
    x = rng.standard_normal((B, D)).astype(dtype)
    lstm = kind == "lstm"
    state = [rng.uniform(-0.5, 0.5, (B, H)).astype(dtype) for _ in range(2 if lstm else 1)]
    R = [rng.standard_normal((B, H)).astype(dtype) for _ in state]

    new, cache = cell.forward(x, tuple(state) if lstm else state[0])
    dx, dprev, grads = cell.backward(tuple(R) if lstm else R[0], cache)
    new, dprev = (list(new), list(dprev)) if lstm else ([new], [dprev])

    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in state]
    tnew = tcell(xt, tuple(st) if lstm else st[0])
    tnew = list(tnew) if lstm else [tnew]
    sum((a * torch.tensor(r)).sum() for a, r in zip(tnew, R, strict=True)).backward()

    close = closeness(dtype)
    for i in range(len(state)):
        close(new[i], tnew[i].detach().numpy(), f"new state [{i}]")
        close(dprev[i], st[i].grad.numpy(), f"state gradient [{i}]")
        assert new[i].dtype == dtype
    close(dx, xt.grad.numpy(), "dx")
    tg = {n: p.grad.numpy() for n, p in tcell.named_parameters()}
    close(grads["W_x"], tg["weight_ih"].T, "W_x")
    close(grads["W_h"], tg["weight_hh"].T, "W_h")
    assert set(grads) == set(cell.params)
    if bias:
        close(grads["b"], tg["bias_ih"], "b")
        if kind == "gru":
            close(grads["b_hn"], tg["bias_hh"][2 * H:], "b_hn")
            close(tg["bias_hh"][: 2 * H], tg["bias_ih"][: 2 * H], "bias_hh r,z")
        else:
            close(tg["bias_hh"], tg["bias_ih"], "bias_hh")
