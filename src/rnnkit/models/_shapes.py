"""The parameter shapes a model's saved config implies, worked out without building the
model, so that a checkpoint's config is checked against the arrays the file really holds
before anything is allocated (a config claiming ``hidden_size=40000`` over the arrays of a
128-unit model is refused, not built).

:func:`param_shapes` gives ``{name: shape}`` for the models of :mod:`rnnkit.models`, the
same names and shapes as the built model's ``params`` (``tests/test_hostile.py`` checks
this for every model and option that changes a shape); a model not known here gives
``None`` and is checked after it is built.
"""

from __future__ import annotations

import inspect

from ..sequence import GATES


class ConfigError(ValueError):
    """A saved config that is not one the models accept."""


def _settings(cls, config: dict) -> dict:
    """The config completed by the constructor's defaults (a config from an older file may
    leave some out)."""
    defaults: dict = {}
    for c in reversed(cls.__mro__):  # a subclass's defaults override its base's
        if "__init__" in vars(c) and c is not object:
            defaults.update({k: p.default
                             for k, p in inspect.signature(c.__init__).parameters.items()
                             if p.default is not inspect.Parameter.empty})
    return {**defaults, **config}


def _size(cfg: dict, key: str, minimum: int = 1, optional: bool = False) -> int | None:
    v = cfg.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"config {key} must be an integer >= {minimum}, got {v!r}")
    return v


def _recurrent(prefix: str, cfg: dict, D: int, n_arrays: int, bidirectional=None) -> dict:
    """The shapes of a recurrent stack (RNN/LSTM/GRU) reading D features per step, as
    :class:`rnnkit.recurrent.Recurrent` makes them."""
    from ..recurrent import GRU, Recurrent

    cfg = {**_settings(Recurrent, {}), **_settings(GRU, {}), **cfg}
    kind = cfg.get("cell")
    if not isinstance(kind, str) or kind not in GATES:
        raise ConfigError(f"config cell must be one of {', '.join(map(repr, GATES))}, "
                          f"got {kind!r}")
    H, L = _size(cfg, "hidden_size"), _size(cfg, "num_layers")
    if L > n_arrays:
        # every layer holds at least two arrays: checked before a loop over L
        raise ConfigError(f"config num_layers is {L:,}, but the file holds only {n_arrays} "
                          "parameter arrays")
    bidir = bool(cfg["bidirectional"] if bidirectional is None else bidirectional)
    G = GATES[kind]
    dirs = ["", "_reverse"] if bidir else [""]
    out = 2 * H if bidir and cfg["merge"] == "concat" else H
    shapes = {}
    for layer in range(L):
        Dk = D if layer == 0 else out
        for d in dirs:
            p = f"{prefix}l{layer}{d}."
            shapes[p + "W_x"], shapes[p + "W_h"] = (Dk, G * H), (H, G * H)
            if cfg["bias"]:
                shapes[p + "b"] = (G * H,)
                if kind == "gru" and cfg["reset_after"]:
                    shapes[p + "b_hn"] = (H,)
    if cfg["initial_state"] == "learned":
        shapes[prefix + "h0"] = (L * len(dirs), H)
        if kind == "lstm":
            shapes[prefix + "c0"] = (L * len(dirs), H)
    return shapes


def _head(prefix: str, rows: int, cols: int) -> dict:
    return {f"{prefix}.W": (rows, cols), f"{prefix}.b": (cols,)}


def _language_model(cfg: dict, n: int) -> dict:
    V = _size(cfg, "vocab_size", 2)
    E = _size(cfg, "embedding_dim", optional=True)
    C = _size(cfg, "cond_size", optional=True)
    shapes = {"embed.W": (V, E)} if E else {}
    shapes.update(_recurrent("rnn.", cfg, E or V, n))
    H, L = cfg["hidden_size"], cfg["num_layers"]
    shapes.update(_head("head", H, V))
    if C:
        shapes.update(_head("cond", C, L * H))
    return shapes


def _stack(cfg: dict, n: int, outputs: int, bidirectional=None) -> dict:
    """embed (token ids) or features -> rnn -> head, as ``Model._build_stack``."""
    V = _size(cfg, "vocab_size", optional=True)
    shapes = {}
    if V is not None:
        E = _size(cfg, "embedding_dim")
        shapes["embed.W"] = (V, E)
        D = E
    else:
        D = _size(cfg, "input_size")
    shapes.update(_recurrent("rnn.", cfg, D, n, bidirectional))
    H = cfg["hidden_size"]
    bidir = bool(cfg["bidirectional"] if bidirectional is None else bidirectional)
    out = 2 * H if bidir and cfg.get("merge", "concat") == "concat" else H
    shapes.update(_head("head", out, outputs))
    return shapes


def _seq2seq(cfg: dict, n: int) -> dict:
    Vs, Vt = _size(cfg, "src_vocab_size", 2), _size(cfg, "tgt_vocab_size", 2)
    E = _size(cfg, "embedding_dim")
    shapes = {"src_embed.W": (Vs, E), "tgt_embed.W": (Vt, E)}
    shapes.update(_recurrent("encoder.", cfg, E, n, False))
    shapes.update(_recurrent("decoder.", cfg, E, n, False))
    shapes.update(_head("head", cfg["hidden_size"], Vt))
    return shapes


def param_shapes(cls, config: dict, n_arrays: int) -> dict | None:
    """``{name: shape}`` of the parameters that ``cls(**config)`` would have, or None for a
    model class this module does not know. ``n_arrays``: the number of parameter arrays the
    file holds (a bound on the number of layers). Raises ConfigError for sizes that are not
    integers >= 1 or an unknown cell."""
    cfg = _settings(cls, config)
    name = cls.__name__
    if name == "LanguageModel":
        return _language_model(cfg, n_arrays)
    if name == "SequenceClassifier":
        return _stack(cfg, n_arrays, _size(cfg, "num_classes", 2))
    if name == "SequenceRegressor":
        return _stack({**cfg, "vocab_size": None}, n_arrays, _size(cfg, "output_size"))
    if name == "SequenceTagger":
        return _stack(cfg, n_arrays, _size(cfg, "num_tags", 2))
    if name == "Seq2Seq":
        return _seq2seq(cfg, n_arrays)
    return None
