"""Layers and whole models to and from PyTorch (an optional extra: ``pip install
torch==2.13.0``).

``to_torch(layer)`` builds the ``torch.nn.RNN/LSTM/GRU`` of an rnnkit layer and
``from_torch(module)`` turns such a module into the rnnkit layer. ``to_torch(model)`` does
the same for a whole model (``LanguageModel``, ``SequenceClassifier``,
``SequenceRegressor``, ``SequenceTagger``, ``Seq2Seq``: see :mod:`rnnkit._torch_models`),
and ``from_torch`` of that module gives the rnnkit model back with the module's weights.
What PyTorch cannot express is refused with a message, never dropped. rnnkit's layers are
always batch-first; a module with ``batch_first=False`` gives the same layer (transpose your
data).

Mapping, per layer ``k`` and direction (``_reverse``)::

    W_x = weight_ih_lk.T        W_h = weight_hh_lk.T          (gate orders are the same)
    RNN, LSTM: b = bias_ih_lk + bias_hh_lk
    GRU:       b = bias_ih_lk + [bias_hh_r, bias_hh_z, 0],  b_hn = bias_hh_n

Going back, the biases are put on the input side (``bias_hh`` zero, but for GRU's
``bias_hh_n = b_hn``): the function computed is identical.
"""

from __future__ import annotations

import numpy as np

from . import _torch_models
from .models import Model
from .recurrent import GRU, LSTM, RNN, Recurrent

__all__ = ["from_torch", "to_torch"]


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "rnnkit.interop needs PyTorch; install the CPU build with "
            "`pip install torch==2.13.0`"
        ) from e
    return torch


def from_torch(module):
    """Convert a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` (any num_layers, bidirectional,
    batch_first, bias) into the rnnkit layer with the same weights and dtype; or a module
    made by ``to_torch(model)`` into the rnnkit model, with the module's current weights."""
    torch = _torch()
    if hasattr(module, "rnnkit_model"):
        return _torch_models.from_module(module, from_torch)
    if isinstance(module, torch.nn.LSTM):
        if getattr(module, "proj_size", 0):
            raise ValueError("from_torch: LSTM with proj_size > 0 has no rnnkit equivalent")
        cls, kw = LSTM, {}
    elif isinstance(module, torch.nn.GRU):
        cls, kw = GRU, {"reset_after": True}
    elif isinstance(module, torch.nn.RNN):
        cls, kw = RNN, {"nonlinearity": module.nonlinearity}
    else:
        raise TypeError(
            f"module must be a torch.nn.RNN, LSTM or GRU, got {type(module).__name__}"
        )
    dtype = next(module.parameters()).dtype
    np_dtype = {torch.float32: np.float32, torch.float64: np.float64}.get(dtype)
    if np_dtype is None:
        raise TypeError(f"module parameters must be float32 or float64, got {dtype}")
    layer = cls(module.input_size, module.hidden_size, module.num_layers,
                bidirectional=module.bidirectional, dropout=float(module.dropout),
                bias=module.bias, dtype=np_dtype, **kw)
    H = module.hidden_size
    sd = {k: v.detach().cpu().numpy().astype(np_dtype) for k, v in module.state_dict().items()}
    for k in range(module.num_layers):
        for suffix, prefix in _directions(layer, k):
            layer.params[prefix + "W_x"] = np.ascontiguousarray(sd[f"weight_ih_l{k}{suffix}"].T)
            layer.params[prefix + "W_h"] = np.ascontiguousarray(sd[f"weight_hh_l{k}{suffix}"].T)
            if module.bias:
                b_ih, b_hh = sd[f"bias_ih_l{k}{suffix}"], sd[f"bias_hh_l{k}{suffix}"]
                if cls is GRU:
                    b = b_ih.copy()
                    b[: 2 * H] += b_hh[: 2 * H]
                    layer.params[prefix + "b"] = b
                    layer.params[prefix + "b_hn"] = b_hh[2 * H :].copy()
                else:
                    layer.params[prefix + "b"] = b_ih + b_hh
    return layer


def to_torch(layer):
    """Build the ``torch.nn.RNN/LSTM/GRU`` (batch_first=True) computing the same function as
    an rnnkit layer, or the module of a whole rnnkit model (see the module text).

    Raises ValueError for what PyTorch cannot express: a GRU with ``reset_after=False``,
    a merge other than ``concat``, a learned initial state, recurrent dropout and
    variational dropout (PyTorch has neither), a conditioned language model, attention."""
    torch = _torch()
    if isinstance(layer, Model):
        return _torch_models.to_module(layer, torch, to_torch)
    if not isinstance(layer, Recurrent):
        raise TypeError(f"layer must be an rnnkit RNN, LSTM or GRU (or an rnnkit model), got "
                        f"{type(layer).__module__}.{type(layer).__qualname__}")
    for option, value in (("recurrent_dropout", layer.recurrent_dropout),
                          ("variational", layer.variational)):
        if value:
            raise ValueError(f"to_torch: PyTorch's recurrent modules have no {option}; this "
                             f"layer has {option}={value!r} (it acts in training only: set it "
                             f"to {0.0 if option == 'recurrent_dropout' else False} to "
                             "convert the layer)")
    if layer.kind == "gru" and not layer.reset_after:
        raise ValueError("to_torch: PyTorch's GRU is the reset-after form; this GRU has "
                         "reset_after=False")
    if layer.bidirectional and layer.merge != "concat":
        raise ValueError(f"to_torch: PyTorch concatenates directions; this layer has "
                         f"merge={layer.merge!r}")
    if layer.initial_state == "learned":
        raise ValueError("to_torch: PyTorch modules have no learned initial state; this layer "
                         "has initial_state='learned' (convert a layer with initial_state="
                         "'zeros' and pass the learned h0 to the module as its initial state)")
    kw = dict(num_layers=layer.num_layers, bias=layer.bias, batch_first=True,
              # PyTorch applies dropout only between layers (and warns on one layer)
              dropout=layer.dropout if layer.num_layers > 1 else 0.0,
              bidirectional=layer.bidirectional)
    if layer.kind == "lstm":
        module = torch.nn.LSTM(layer.input_size, layer.hidden_size, **kw)
    elif layer.kind == "gru":
        module = torch.nn.GRU(layer.input_size, layer.hidden_size, **kw)
    else:
        module = torch.nn.RNN(layer.input_size, layer.hidden_size,
                              nonlinearity=layer.nonlinearity, **kw)
    tdtype = torch.float64 if layer.dtype == np.float64 else torch.float32
    module = module.to(tdtype)
    H = layer.hidden_size
    sd = {}
    for k in range(layer.num_layers):
        for suffix, prefix in _directions(layer, k):
            p = layer.params
            sd[f"weight_ih_l{k}{suffix}"] = p[prefix + "W_x"].T
            sd[f"weight_hh_l{k}{suffix}"] = p[prefix + "W_h"].T
            if layer.bias:
                sd[f"bias_ih_l{k}{suffix}"] = p[prefix + "b"]
                b_hh = np.zeros_like(p[prefix + "b"])
                if layer.kind == "gru":
                    b_hh[2 * H :] = p[prefix + "b_hn"]
                sd[f"bias_hh_l{k}{suffix}"] = b_hh
    module.load_state_dict({k: torch.tensor(np.ascontiguousarray(v)) for k, v in sd.items()})
    return module


def _directions(layer: Recurrent, k: int):
    out = [("", f"l{k}.")]
    if layer.bidirectional:
        out.append(("_reverse", f"l{k}_reverse."))
    return out
