"""The models by class name, and loading a saved model back from its checkpoint (the
class name and ``config()`` in its metadata, the parameters as ``param/<name>`` arrays).

A load checks before it allocates: the sizes of the saved config are compared with the
shapes of the arrays the file holds (:mod:`._shapes`) before the model is built, so a
config that claims more than the file holds is refused without building anything."""

from __future__ import annotations

from .. import checkpoint
from .._checks import shape_str
from ._shapes import ConfigError, param_shapes
from .base import Model
from .classifier import SequenceClassifier, SequenceRegressor
from .language import LanguageModel
from .seq2seq import Seq2Seq
from .tagger import SequenceTagger

MODELS = {cls.__name__: cls for cls in (LanguageModel, SequenceClassifier, SequenceRegressor,
                                         SequenceTagger, Seq2Seq)}


def build_model(name: str, config: dict) -> Model:
    """Rebuild a model from its class name and ``config()``."""
    if not isinstance(name, str) or name not in MODELS:
        raise checkpoint.CheckpointError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](**config)


def check_config(name: str, config: dict, shapes: dict, where: str) -> None:
    """Refuse (CheckpointError) a saved config whose parameters would not be the
    ``param/<name>`` arrays of the file (``shapes``: name -> declared shape): a size that
    is not an integer >= 1, or a parameter the config implies that the file lacks or holds
    in another shape."""
    held = {k[len("param/"):]: s for k, s in shapes.items() if k.startswith("param/")}
    try:
        implied = param_shapes(MODELS[name], config, len(held))
    except ConfigError as e:
        raise checkpoint.CheckpointError(f"{where} has an invalid model config: {e}") from None
    for k, shape in (implied or {}).items():
        if k not in held:
            raise checkpoint.CheckpointError(
                f"{where} has no parameter {k!r}, which its model config implies")
        if held[k] != shape:
            raise checkpoint.CheckpointError(
                f"{where}: parameter {k!r} has shape {shape_str(held[k])}, but the model "
                f"config implies {shape_str(shape)}")


def check_model_meta(meta: dict, headers: dict, where: str) -> None:
    """The checks of :func:`load_model` that need only the metadata and the arrays'
    declared shapes (``headers``: name -> (shape, dtype)): done before any array is read."""
    name, config = meta.get("model"), meta.get("config")
    if name is None or config is None:
        raise checkpoint.CheckpointError(f"{where} holds no model")
    if not isinstance(name, str) or name not in MODELS:
        raise checkpoint.CheckpointError(
            f"{where} holds an unknown model {name!r}; known: {', '.join(MODELS)}")
    if not isinstance(config, dict):
        raise checkpoint.CheckpointError(
            f"{where} has an invalid model config: a {type(config).__name__}, not a dict")
    check_config(name, config, {k: h[0] for k, h in headers.items()}, where)


def load_model(path) -> tuple[Model, dict, dict]:
    """Load a model saved with ``Model.save`` (or a training checkpoint).

    Returns (model, meta, arrays): the extra metadata and arrays stay available. Raises
    CheckpointError, naming the file, for any file whose model cannot be rebuilt exactly
    from what it holds; the model's config is checked against the arrays' declared shapes
    before any array is read or anything built."""
    where = repr(str(path))
    arrays, meta = checkpoint.load(
        path, check=lambda meta, headers: check_model_meta(meta, headers, where))
    try:
        model = build_model(meta["model"], meta["config"])
    except (TypeError, ValueError) as e:
        if isinstance(e, checkpoint.CheckpointError):
            raise
        raise checkpoint.CheckpointError(f"{where} has an invalid model config: {e}") from None
    model.load_arrays(arrays, where)
    return model, meta, arrays
