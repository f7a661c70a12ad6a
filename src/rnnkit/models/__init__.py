"""Ready architectures built from the layers, with save/load.

========================  =====================  ==========================================
model                     architecture           input -> output
========================  =====================  ==========================================
``LanguageModel``         many-to-many, shifted  ids (B, T) -> logits (B, T, V)
``SequenceClassifier``    many-to-one            ids (B, T) or x (B, T, D) -> logits (B, C)
``SequenceRegressor``     many-to-one            x (B, T, D) -> y (B, K)
``SequenceTagger``        many-to-many, T_x=T_y  ids/x (B, T) -> logits (B, T, C)
``Seq2Seq``               encoder-decoder        src (B, S) -> tgt (B, T), T != S
========================  =====================  ==========================================

Every model has ``params`` (a flat dict ``"<module>.<param>"`` whose arrays are the
layers' own, updated in place by the optimizers), ``train()``/``eval()``,
``train_batch(batch, state) -> (stats, grads, state)`` used by :class:`rnnkit.train.Trainer`,
and ``save(path)`` / ``load_model(path)``. ``stats`` holds ``loss`` (summed over the
``count`` valid targets) and, for classifiers, ``correct``.
"""

from .base import CELLS, Model, make_recurrent
from .classifier import SequenceClassifier, SequenceRegressor
from .language import LanguageModel
from .registry import MODELS, build_model, load_model
from .seq2seq import Seq2Seq
from .tagger import SequenceTagger
from .transfer import transfer

__all__ = [
    "CELLS",
    "MODELS",
    "LanguageModel",
    "Model",
    "Seq2Seq",
    "SequenceClassifier",
    "SequenceRegressor",
    "SequenceTagger",
    "build_model",
    "load_model",
    "make_recurrent",
    "transfer",
]
