"""rnnkit: recurrent neural networks on numpy, with hand-written backpropagation through time.

The layers (batch-first)::

    import rnnkit
    lstm = rnnkit.LSTM(input_size=8, hidden_size=32, num_layers=2, bidirectional=True)
    out, state, cache = lstm.forward(x)            # x (B, T, 8) -> out (B, T, 64)
    dx, dstate, grads = lstm.backward(dout, cache)

The models (``rnnkit.models``), attention (``rnnkit.attention``), training
(``rnnkit.train``), generation (``rnnkit.generate``), PyTorch interop (``rnnkit.interop``),
ONNX export (``rnnkit.onnx``), the gradient flow (``rnnkit.inspect``) and the
neuron-activity report (``rnnkit.viz``) are there after ``import rnnkit``. The seeds'
step-by-step API (column layout ``(n_x, m, T_x)``) is :mod:`rnnkit.course`.
With numba installed, :mod:`rnnkit.accelerated` runs the element-wise work of each step in
compiled kernels (the same results within float rounding).
"""

# The namespaces, available after ``import rnnkit`` alone. All of them need numpy only:
# interop imports torch, and onnx the onnx package, when they are first used.
from . import (
    accelerated,
    attention,
    checkpoint,
    course,
    data,
    generate,
    interop,
    layers,
    losses,
    models,
    optim,
    tasks,
    train,
    viz,
)
from . import inspect as inspect  # not in __all__: it would hide the standard library's inspect
from . import onnx as onnx  # not in __all__: ``from rnnkit import *`` would hide the onnx package
from .cell_layers import GRUCell, LSTMCell, RNNCell
from .recurrent import GRU, LSTM, RNN, Recurrent

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell", "Recurrent", "accelerated",
           "attention", "checkpoint", "course", "data", "generate", "interop", "layers", "losses",
           "models", "optim", "tasks", "train", "viz", "__version__"]
