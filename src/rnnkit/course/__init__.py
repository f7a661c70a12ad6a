"""The seeds' step-by-step API: the functions of the "Sequence Models" course, week 1.

"Building your Recurrent Neural Network - Step by Step" and "Dinosaurus Island -
Character level language model", with the course's names, argument orders, shapes,
parameter dicts, caches and gradient dicts, each function written as the course's
equations so that it can be read beside the notebook. Guide: ``docs/course.md``.

Letters and layout (the course's **column layout**: one column per example)::

    n_x  input features       n_a  hidden units       n_y  outputs
    m    examples (batch)     T_x  time steps
    x (n_x, m, T_x)   xt (n_x, m)   a (n_a, m, T_x)   a_prev, a_next (n_a, m)

Where the equations are:

==============  ==================================================================
module          functions
==============  ==================================================================
``rnn``         ``rnn_cell_forward``, ``rnn_forward``, ``rnn_cell_backward``,
                ``rnn_backward``
``lstm``        ``lstm_cell_forward``, ``lstm_forward``, ``lstm_cell_backward``,
                ``lstm_backward``
``gru``         ``gru_cell_forward``, ``gru_forward``, ``gru_cell_backward``,
                ``gru_backward`` (the lecture's GRU, reset before the product)
``dinos``       Dinosaurus Island: ``clip``, ``sample``, ``optimize``, ``model``,
                ``load_dinos``, ``char_maps``
``rnn_utils``   ``softmax``, ``sigmoid``
``_validate``   the argument checks (every error names the argument and its shape)
==============  ==================================================================

These functions are independent of rnnkit's engine (:mod:`rnnkit.cells`) and layers;
the tests check each of them against the layers ``rnnkit.RNN``, ``LSTM`` and
``GRU(reset_after=False)`` in float64.

The Dinosaurus functions (:func:`sample`, :func:`model`) reproduce the course's
published outputs, which fix their randomness with ``np.random.seed``. That use of
numpy's **global** random state is a deliberate compatibility exception confined to
:mod:`rnnkit.course.dinos`; the rest of rnnkit takes a ``np.random.Generator`` or a seed.
"""

from .dinos import char_maps, clip, load_dinos, model, optimize, sample
from .gru import gru_backward, gru_cell_backward, gru_cell_forward, gru_forward
from .lstm import lstm_backward, lstm_cell_backward, lstm_cell_forward, lstm_forward
from .rnn import rnn_backward, rnn_cell_backward, rnn_cell_forward, rnn_forward
from .rnn_utils import sigmoid, softmax

__all__ = [
    "softmax",
    "sigmoid",
    "rnn_cell_forward",
    "rnn_forward",
    "rnn_cell_backward",
    "rnn_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "lstm_cell_backward",
    "lstm_backward",
    "gru_cell_forward",
    "gru_forward",
    "gru_cell_backward",
    "gru_backward",
    "clip",
    "sample",
    "optimize",
    "model",
    "load_dinos",
    "char_maps",
]
