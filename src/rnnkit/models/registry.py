"""The models by class name, and loading a saved model back from its checkpoint (the
class name and ``config()`` in its metadata, the parameters as ``param/<name>`` arrays)."""

from __future__ import annotations

from .. import checkpoint
from .base import Model
from .classifier import SequenceClassifier, SequenceRegressor
from .language import LanguageModel
from .seq2seq import Seq2Seq
from .tagger import SequenceTagger

MODELS = {cls.__name__: cls for cls in (LanguageModel, SequenceClassifier, SequenceRegressor,
                                         SequenceTagger, Seq2Seq)}


def build_model(name: str, config: dict) -> Model:
    """Rebuild a model from its class name and ``config()``."""
    if name not in MODELS:
        raise checkpoint.CheckpointError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](**config)


def load_model(path) -> tuple[Model, dict, dict]:
    """Load a model saved with ``Model.save`` (or a training checkpoint).

    Returns (model, meta, arrays): the extra metadata and arrays stay available."""
    arrays, meta = checkpoint.load(path)
    if "model" not in meta or "config" not in meta:
        raise checkpoint.CheckpointError(f"{str(path)!r} holds no model")
    try:
        model = build_model(meta["model"], meta["config"])
    except (TypeError, ValueError) as e:
        if isinstance(e, checkpoint.CheckpointError):
            raise
        raise checkpoint.CheckpointError(
            f"{str(path)!r} has an invalid model config: {e}") from None
    model.load_arrays(arrays, repr(str(path)))
    return model, meta, arrays
