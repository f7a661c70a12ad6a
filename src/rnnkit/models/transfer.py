"""A trained language model moved onto another vocabulary, to fine-tune it on a new text
(char-rnn's ``init_from``; ``rnnkit train NEW.txt --init-from CHECKPOINT``)."""

from __future__ import annotations

import numpy as np

from .language import LanguageModel


def transfer(model: LanguageModel, old_tokens, new_tokens, rng=None, **config):
    """The model with the vocabulary ``new_tokens``: the same recurrent stack and weights;
    the symbols both vocabularies share keep their rows of the input layer (the embedding,
    or the first recurrent layer's ``W_x`` for one-hot inputs) and of the output layer
    (``head.W`` columns and ``head.b``); the new symbols get the rows a fresh model of the
    new size is initialised with (drawn from ``rng``: a seed or Generator). ``config``
    changes settings that keep the parameters' shapes, such as ``dropout``.

    old_tokens: the model's vocabulary, a sequence of V tokens (id order); new_tokens: V'
    tokens. Returns (the new LanguageModel, {"kept": [...], "new": [...], "dropped":
    [...]}), the tokens in each group.
    """
    old_tokens, new_tokens = list(old_tokens), list(new_tokens)
    if len(old_tokens) != model.vocab_size:
        raise ValueError(f"old_tokens has {len(old_tokens)} tokens, the model's vocabulary "
                         f"{model.vocab_size}")
    if len(set(new_tokens)) != len(new_tokens) or len(new_tokens) < 2:
        raise ValueError("new_tokens must be at least 2 distinct tokens")
    if model.cond_size:
        raise ValueError("transfer: a conditioned language model (cond_size) is not supported")
    fixed = {"vocab_size", "cell", "hidden_size", "num_layers", "embedding_dim", "cond_size",
             "dtype"} & set(config)
    if fixed:
        raise ValueError(f"transfer keeps the model's shape; {', '.join(sorted(fixed))} "
                         "cannot be changed")
    settings = {**model.config(), **config, "vocab_size": len(new_tokens), "rng": rng}
    settings.pop("dtype", None)
    new = LanguageModel(**settings, dtype=model.dtype)
    where = {t: i for i, t in enumerate(old_tokens)}
    pairs = [(i, where[t]) for i, t in enumerate(new_tokens) if t in where]
    dst = np.array([i for i, _ in pairs], dtype=np.intp)
    src = np.array([j for _, j in pairs], dtype=np.intp)
    rows = _input_rows(model)
    for name, p in model.params.items():
        q = new.params[name]
        if name in rows:  # (V, ...) the input rows of the symbols
            q[dst] = p[src]
        elif name == "head.W":  # (H, V)
            q[:, dst] = p[:, src]
        elif name == "head.b":
            q[dst] = p[src]
        else:
            q[...] = p
    report = {"kept": [new_tokens[i] for i in dst],
              "new": [t for t in new_tokens if t not in where],
              "dropped": [t for t in old_tokens if t not in set(new_tokens)]}
    return new, report


def _input_rows(model: LanguageModel) -> set:
    """The parameters whose rows are the input symbols."""
    if model.embedding_dim:
        return {"embed.W"}
    return {"rnn.l0.W_x"}
