"""The metadata that ``rnnkit train`` writes beside the model (vocabulary, sampling
defaults, settings, source, history), checked when a command reads it back: a file whose
metadata is malformed or disagrees with its model raises CheckpointError naming the file
and the entry, before any of it is used."""

from __future__ import annotations

import math
from dataclasses import fields

from ..checkpoint import CheckpointError

MAX_DEFAULT_LENGTH = 1_000_000  # a saved default sample length beyond this is not a default


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_vocab(meta: dict, vocab_size: int, where: str):
    """The run's :class:`~rnnkit.data.Vocab`, checked: a list of distinct non-empty token
    strings, as many as the model's vocabulary size."""
    from ..data import Vocab

    v = meta.get("vocab")
    if not isinstance(v, dict):
        raise CheckpointError(f"{where} has no vocabulary (vocab is "
                              f"{type(v).__name__ if v is not None else 'missing'})")
    tokens, level, unk = v.get("tokens"), v.get("level", "char"), v.get("unk")
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise CheckpointError(f"{where}: vocab.tokens must be a list of non-empty strings")
    if len(set(tokens)) != len(tokens):
        dup = next(t for i, t in enumerate(tokens) if t in tokens[:i])
        raise CheckpointError(f"{where}: the vocabulary holds the token {dup!r} twice")
    if level not in ("char", "word"):
        raise CheckpointError(f"{where}: vocab.level must be 'char' or 'word', got {level!r}")
    if unk is not None and unk not in tokens:
        raise CheckpointError(f"{where}: vocab.unk {unk!r} is not one of its tokens")
    if len(tokens) != vocab_size:
        raise CheckpointError(f"{where}: the vocabulary has {len(tokens)} tokens but the "
                              f"model predicts {vocab_size}")
    return Vocab(tokens, level, unk)


def check_sample_defaults(meta: dict, vocab, where: str) -> dict:
    """The run's sampling defaults (prime, stop, length, capitalize), checked against its
    vocabulary."""
    d = meta.get("sample_defaults", {})
    if not isinstance(d, dict):
        raise CheckpointError(f"{where}: sample_defaults must be a dict, got "
                              f"{type(d).__name__}")
    prime, stop = d.get("prime"), d.get("stop")
    length, cap = d.get("length", 300), d.get("capitalize", False)
    for name, value in (("prime", prime), ("stop", stop)):
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise CheckpointError(f"{where}: sample_defaults.{name} must be a non-empty "
                                  f"string, got {value!r}")
        try:
            ids = vocab.encode(value, name=f"sample_defaults.{name}")
        except ValueError as e:
            raise CheckpointError(f"{where}: {e}") from None
        if name == "stop" and len(ids) != 1:
            raise CheckpointError(f"{where}: sample_defaults.stop must be one token, got "
                                  f"{value!r}")
    if not _is_int(length) or not 1 <= length <= MAX_DEFAULT_LENGTH:
        raise CheckpointError(f"{where}: sample_defaults.length must be an integer in [1, "
                              f"{MAX_DEFAULT_LENGTH:,}], got {length!r}")
    if not isinstance(cap, bool):
        raise CheckpointError(f"{where}: sample_defaults.capitalize must be true or false, "
                              f"got {cap!r}")
    return {"prime": prime, "stop": stop, "length": length, "capitalize": cap}


def check_summary(meta: dict, where: str) -> None:
    """What ``rnnkit info`` prints: the settings (a dict), the source (a string), and the
    train_state's counters and history (integers, records with numbers)."""
    if not isinstance(meta.get("cli", {}), dict):
        raise CheckpointError(f"{where}: cli (the run's settings) must be a dict")
    if not isinstance(meta.get("source", ""), str):
        raise CheckpointError(f"{where}: source must be a string")
    ts = meta.get("train_state")
    if ts is None:
        return
    if not isinstance(ts, dict):
        raise CheckpointError(f"{where}: train_state must be a dict")
    for k in ("step", "epoch"):
        if not _is_int(ts.get(k)) or ts[k] < 0:
            raise CheckpointError(f"{where}: train_state.{k} must be an integer >= 0, got "
                                  f"{ts.get(k)!r}")
    hist = ts.get("history", [])
    if not isinstance(hist, list) or not all(isinstance(h, dict) for h in hist):
        raise CheckpointError(f"{where}: train_state.history must be a list of records")
    for h in hist:
        for k in ("loss", "val_loss"):
            if h.get(k) is not None and not _is_number(h[k]):
                raise CheckpointError(f"{where}: a history record holds {k} {h[k]!r}, not "
                                      "a number")


_KINDS = {"int": int, "float": (int, float), "str": str, "bool": bool}


def check_settings(saved, command_cls, where: str) -> dict:
    """The settings a ``--resume`` takes over (``meta["cli"]``), checked against the types
    of ``command_cls``'s fields (the ranges are the flags' own checks, done after)."""
    if not isinstance(saved, dict):
        raise CheckpointError(f"{where} was not written by `rnnkit train` (no settings)")
    for f in fields(command_cls):
        if f.name not in saved:
            continue
        value, kind = saved[f.name], f.type.split(" ")[0]
        optional = "None" in f.type
        ok = (value is None and optional) or (
            isinstance(value, _KINDS[kind]) and (kind == "bool" or not isinstance(value, bool))
            and (kind != "float" or math.isfinite(value)))
        if ok and "choices" in f.metadata and value not in f.metadata["choices"]:
            ok = False
        if not ok:
            raise CheckpointError(f"{where} holds the setting {f.name}={value!r}, which "
                                  f"--{f.name.replace('_', '-')} cannot take")
    return saved
