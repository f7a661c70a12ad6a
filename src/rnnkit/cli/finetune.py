"""``rnnkit train NEW.txt --init-from CHECKPOINT``: fine-tuning a trained language model
on a new text. The model's shape comes from the checkpoint; its vocabulary is mapped onto
the new text's by :func:`rnnkit.models.transfer`; the optimizer and the step counter start
afresh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .. import initializers
from ..checkpoint import CheckpointError
from ._common import _fail

# the model's settings a fine-tuning run takes from the checkpoint: TrainCommand field ->
# the model config's key; a flag given with another value is refused
SHAPE = {"cell": "cell", "hidden": "hidden_size", "layers": "num_layers",
         "embedding": "embedding_dim", "init": "init"}
# the config keys `rnnkit train` can express (any other option cannot be carried over)
EXPRESSIBLE = {"vocab_size", "cell", "hidden_size", "num_layers", "embedding_dim", "dropout",
               "cond_size", "dtype", "init"}


def _init_text(scheme) -> str:
    """A scheme dict (as models keep it) as the ``--init`` text, e.g. ``chrono:100``."""
    spec = initializers.as_scheme(scheme if scheme is not None else "default")
    args = [v for k, v in spec.items() if k != "name"]
    return spec["name"] + (f":{args[0]:g}" if args else "")


def _source_meta(path: str) -> dict:
    """The checked metadata of the checkpoint to start from, or a one-line error."""
    from ..checkpoint import read_meta

    where = f"--init-from {path!r}"
    p = Path(path)
    if p.is_dir():
        _fail(f"{where} is a folder; give a checkpoint in it, e.g. {str(p / 'best.npz')!r}")
    try:
        meta, _ = read_meta(p)
    except CheckpointError as e:
        _fail(f"--init-from: {e}")
    if meta.get("model") != "LanguageModel":
        _fail(f"{where} holds a {meta.get('model')!s}; fine-tuning needs a LanguageModel")
    config = meta.get("config")
    if not isinstance(config, dict):
        _fail(f"{where} has no model config")
    extra = sorted(set(config) - EXPRESSIBLE)
    if config.get("cond_size") or config.get("dtype", "float32") != "float32" or extra:
        what = ", ".join([*(f"{k}={config[k]!r}" for k in extra),
                          *(["cond_size"] if config.get("cond_size") else []),
                          *([f"dtype={config.get('dtype')}"]
                            if config.get("dtype", "float32") != "float32" else [])])
        _fail(f"{where}: the model has options `rnnkit train` does not set ({what}); "
              "fine-tune it from the API with rnnkit.models.transfer")
    if not isinstance(meta.get("vocab"), dict):
        _fail(f"{where} holds no vocabulary (it was not written by `rnnkit train`)")
    return meta


def with_init_from(cfg, given: dict):
    """The settings of a fine-tuning run: the model's shape (cell, hidden, layers,
    embedding, init) and, unless given, its dropout and level (--word) from the
    checkpoint ``cfg.init_from``. A flag given with a value the checkpoint's model does
    not have is refused: the weights could not be reused."""
    meta = _source_meta(cfg.init_from)
    config = meta["config"]
    try:
        taken = {"cell": config["cell"], "hidden": int(config["hidden_size"]),
                 "layers": int(config["num_layers"]),
                 "embedding": int(config.get("embedding_dim") or 0),
                 "init": _init_text(config.get("init"))}
    except (KeyError, TypeError, ValueError) as e:
        _fail(f"--init-from {cfg.init_from!r} has an invalid model config ({e})")
    word = meta["vocab"].get("level") == "word"
    taken["word"] = word
    clash = [f"--{k.replace('_', '-')} {given[k]} (the checkpoint's model has {v})"
             for k, v in taken.items() if k in given and given[k] != v]
    if clash:
        _fail(f"--init-from {cfg.init_from!r}: " + ", ".join(clash) + "; leave these flags "
              "out (the model's shape comes from the checkpoint)")
    if "dropout" not in given and isinstance(config.get("dropout"), (int, float)):
        taken["dropout"] = float(config["dropout"])
    return replace(cfg, **taken)


def start_from(cfg, vocab, log):
    """The checkpoint's model moved onto ``vocab`` (the new text's): shared symbols keep
    their input and output rows, new symbols get fresh rows drawn with ``--seed``. Logs the
    mapping; returns (model, {"checkpoint", "kept": count, "new": the first 100 new
    tokens, "dropped": the first 100 unused ones}) for the run's metadata."""
    from ..data import Vocab
    from ..models import load_model, transfer

    try:
        model, meta, _ = load_model(cfg.init_from)
        old = Vocab.from_json(meta["vocab"])
    except (CheckpointError, KeyError, TypeError, ValueError) as e:
        _fail(f"--init-from: {e}")
    if len(old) != model.vocab_size:
        _fail(f"--init-from {cfg.init_from!r}: its vocabulary has {len(old)} tokens, its "
              f"model {model.vocab_size}")
    new, mapping = transfer(model, old.tokens, vocab.tokens, rng=cfg.seed, dropout=cfg.dropout)
    kept, fresh, dropped = mapping["kept"], mapping["new"], mapping["dropped"]
    log(f"fine-tuning from {cfg.init_from}: {len(kept)} of {len(vocab)} symbols kept their "
        f"trained rows, {len(fresh)} new{_listed(fresh)}, {len(dropped)} of the old "
        f"vocabulary unused{_listed(dropped)}")
    record = {"checkpoint": str(Path(cfg.init_from).resolve()), "kept": len(kept)}
    record.update({k: mapping[k][:100] for k in ("new", "dropped")})  # (a word list is long)
    return new, record


def _listed(tokens: list, n: int = 12) -> str:
    """`` (a, b, ...)`` of the first n tokens, or nothing."""
    if not tokens:
        return ""
    shown = " ".join(repr(t)[1:-1] if t.strip() else repr(t) for t in tokens[:n])
    return f" ({shown}{' ...' if len(tokens) > n else ''})"
