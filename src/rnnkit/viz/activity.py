"""What the neurons of a language model do on a text: the numbers of the report.

:func:`report` runs a :class:`~rnnkit.models.LanguageModel` over a text (batch 1, in eval
mode, the state carried from chunk to chunk) and keeps, for every layer and direction,
the hidden state ``h`` (and the LSTM's cell ``c``) after each token, the fraction of steps
at which each gate is saturated, and the model's prediction of the next token (its top
tokens, the probability of the one that follows, the entropy). It then ranks the units by
their correlation with simple features of the text (:func:`text_features`), as Karpathy,
Johnson & Fei-Fei (2015, "Visualizing and Understanding Recurrent Networks") did.

Letters: N tokens of the text, H units per direction, V the vocabulary, K the top tokens
kept per step. A *state* is one ``(layer, direction, kind)``: direction ``"forward"`` or
``"reverse"``, kind ``"h"`` or (LSTM) ``"c"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._checks import check_positive_int
from ..bidirectional import time_gather
from ..data import Vocab
from ..models import LanguageModel

# the gates of each cell in the order of the stacked arrays, and those that are gates in
# the seeds' sense (sigmoids, in [0, 1]); g (LSTM) and n (GRU) are tanh candidates
GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ()}
SIGMOID_GATES = {"lstm": ("i", "f", "o"), "gru": ("r", "z"), "rnn": ()}
LOW, HIGH = 0.1, 0.9  # saturation thresholds of Karpathy et al. (2015)

FEATURES = {
    "line_position": "position in the line",
    "in_quotes": "inside quotes",
    "in_brackets": "inside brackets",
    "entropy": "entropy of the next token",
}
QUOTE_TOGGLE, QUOTE_OPEN, QUOTE_CLOSE = {'"'}, {"\u201c", "\u00ab"}, {"\u201d", "\u00bb"}
BRACKET_OPEN, BRACKET_CLOSE = set("([{"), set(")]}")


@dataclass
class Report:
    """The data of a neuron-activity report (see :func:`report`).

    tokens: the text as tokens (N,); ids (N,); vocab: the :class:`~rnnkit.data.Vocab`;
    model: a description (``cell``, ``layers``, ``hidden``, ``directions``, ``parameters``,
    ``vocab_size``, ``nonlinearity``);
    states: ``{(layer, direction, kind): (N, H) float32}``, the state after each token;
    saturation: ``{(layer, direction): {gate: (below, above)}}``, the fraction of all
    units and steps with the gate below 0.1 and above 0.9; unit_saturation: the same per
    unit, ``(below (H,), above (H,))``; top_ids, top_p (N, K): the K most likely next
    tokens after each token and their probabilities; p_next (N-1,): the probability given
    to the token that follows; entropy (N,): the entropy of each prediction, in bits;
    features: ``{name: (N,)}`` (:data:`FEATURES`; None for a feature constant on this
    text); correlations: ``{name: {state: (H,)}}``, Pearson's r of each unit with the
    feature; ranked: ``{name: [(state, unit, r), ...]}``, the units of largest ``|r|``.
    """

    tokens: list
    ids: np.ndarray
    vocab: Vocab
    model: dict
    states: dict
    saturation: dict
    unit_saturation: dict
    top_ids: np.ndarray
    top_p: np.ndarray
    p_next: np.ndarray
    entropy: np.ndarray
    features: dict = field(default_factory=dict)
    correlations: dict = field(default_factory=dict)
    ranked: dict = field(default_factory=dict)

    @property
    def loss(self) -> float:
        """Mean cross-entropy of the N-1 predictions of a token of the text, in nats
        (NaN for a text of one token)."""
        if self.p_next.size == 0:
            return float("nan")
        return float(-np.mean(np.log(np.maximum(self.p_next, 1e-300))))

    def best_unit(self) -> tuple:
        """(state, unit, r) of the largest ``|r|`` with any feature, or of unit 0 of the
        first state when no feature varies."""
        found = [r[0] for r in self.ranked.values() if r]
        if not found:
            return next(iter(self.states)), 0, 0.0
        return max(found, key=lambda x: abs(x[2]))


def report(model: LanguageModel, vocab: Vocab, text, top: int = 5, ranked: int = 5,
           chunk: int = 2048, cond=None) -> Report:
    """Run ``model`` over ``text`` and gather the report's data.

    model: a :class:`~rnnkit.models.LanguageModel` (run in eval mode, left in its mode);
    vocab: its vocabulary; text: a string (or a list of tokens) of N >= 1 tokens of the
    vocabulary; top: K, next tokens kept per step; ranked: units listed per feature;
    chunk: tokens per forward call of a unidirectional model (the state is carried, so
    the result is that of one pass; a bidirectional model reads the text in one call);
    cond: the conditioning vector (1, cond_size) of a model built with one.
    Returns a :class:`Report`.
    """
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must be a LanguageModel, got {type(model).__name__}")
    if not isinstance(vocab, Vocab):
        raise TypeError(f"vocab must be a rnnkit.data.Vocab, got {type(vocab).__name__}")
    if len(vocab) != model.vocab_size:
        raise ValueError(f"vocab has {len(vocab)} tokens, but the model predicts "
                         f"{model.vocab_size}: give the vocabulary it was trained with")
    tokens = vocab.split(text) if isinstance(text, str) else list(text)
    ids = vocab.encode(tokens, name="text")
    if ids.size == 0:
        raise ValueError("text must hold at least one token, got an empty text")
    top = min(check_positive_int(top, "top"), len(vocab))
    check_positive_int(ranked, "ranked")
    check_positive_int(chunk, "chunk")
    was_training = model.rnn.training
    model.eval()
    try:
        rep = _run(model, vocab, tokens, ids, top, chunk, cond)
    finally:
        if was_training:
            model.train()
    rep.features = text_features(tokens, rep.entropy)
    rep.correlations = _correlate_all(rep.states, rep.features)
    rep.ranked = {name: rank(c, ranked) for name, c in rep.correlations.items()}
    return rep


def _describe(model: LanguageModel) -> dict:
    rnn = model.rnn
    return {"cell": rnn.kind, "layers": rnn.num_layers, "hidden": rnn.hidden_size,
            "directions": rnn.num_directions, "parameters": model.num_parameters(),
            "vocab_size": model.vocab_size,
            "nonlinearity": getattr(rnn, "nonlinearity", "tanh")}


def _run(model, vocab, tokens, ids, top, chunk, cond) -> Report:
    """The forward passes, chunk by chunk: states, gate counts, predictions."""
    rnn = model.rnn
    N, H = ids.size, rnn.hidden_size
    kinds = ("h", "c") if rnn.kind == "lstm" else ("h",)
    dirs = ("forward", "reverse")[: rnn.num_directions]
    states = {(l, d, k): np.empty((N, H), np.float32)
              for l in range(rnn.num_layers) for d in dirs for k in kinds}
    counts = {(l, d): {g: np.zeros((2, H), np.int64) for g in SIGMOID_GATES[rnn.kind]}
              for l in range(rnn.num_layers) for d in dirs}
    top_ids = np.empty((N, top), np.int64)
    top_p = np.empty((N, top), np.float64)
    p_all = np.empty(N, np.float64)  # p of the token after t (the last: unknown, unused)
    entropy = np.empty(N, np.float64)
    step = N if rnn.bidirectional else chunk
    state = None
    for a in range(0, N, step):
        b = min(N, a + step)
        zT, state, cache = model._forward_tm(ids[None, a:b], state, None,
                                             cond if a == 0 else None)
        rc = cache[1]
        for l, traces in enumerate(rc.dirs):
            for d, tr in zip(dirs, traces, strict=True):
                _keep(states, counts, l, d, tr, rc.rev_idx, a, b)
        nxt = np.append(ids[a + 1:b + 1], 0)[: b - a]
        _predictions(zT, nxt, top, top_ids[a:b], top_p[a:b], p_all[a:b], entropy[a:b])
    unit_sat = {k: {g: (c[0] / N, c[1] / N) for g, c in v.items()} for k, v in counts.items()}
    sat = {k: {g: (float(c[0].sum()) / (N * H), float(c[1].sum()) / (N * H))
               for g, c in v.items()} for k, v in counts.items()}
    return Report(tokens, ids, vocab, _describe(model), states, sat, unit_sat, top_ids, top_p,
                  p_all[: N - 1].copy(), entropy)


def _keep(states, counts, l, d, tr, rev_idx, a, b) -> None:
    """Copy one direction's states of steps a..b into ``states`` (in text order) and add
    its gates' saturation counts."""
    hs = tr.hs[1:]  # (T, 1, H)
    cs = None if tr.cs is None else tr.cs[1:]
    if d == "reverse":  # the reverse direction's step s read token T-1-s
        hs = time_gather(hs, rev_idx)
        cs = None if cs is None else time_gather(cs, rev_idx)
    states[(l, d, "h")][a:b] = hs[:, 0]
    if cs is not None:
        states[(l, d, "c")][a:b] = cs[:, 0]
    names = GATES[tr.kind]
    if not names:
        return
    H = tr.hs.shape[2]
    acts = tr.acts.reshape(tr.acts.shape[0], len(names), H)  # (T, G, H), B = 1
    for g, c in counts[(l, d)].items():
        gate = acts[:, names.index(g)]
        c[0] += (gate < LOW).sum(axis=0)
        c[1] += (gate > HIGH).sum(axis=0)


def _predictions(zT, nxt, top, top_ids, top_p, p_next, entropy) -> None:
    """From logits zT (V, T): the top tokens and their probabilities (T, K), the
    probability of the next tokens nxt (T,) and the entropy in bits (T,), written into
    the given arrays."""
    z = zT.astype(np.float64).T  # (T, V)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    idx = np.argsort(-p, axis=1, kind="stable")[:, :top]
    top_ids[...] = idx
    top_p[...] = np.take_along_axis(p, idx, axis=1)
    p_next[...] = p[np.arange(p.shape[0]), nxt]
    plogp = p * np.log2(np.where(p > 0, p, 1.0))  # 0 log 0 = 0
    entropy[...] = -plogp.sum(axis=1)


def text_features(tokens, entropy=None) -> dict:
    """Simple features of a text, one value per token, as seen after reading that token.

    tokens (N,) strings; entropy (N,) the model's predictive entropy (or None). Returns
    ``{name: (N,) float64 or None}`` with the names of :data:`FEATURES`:
    ``line_position`` (tokens since the last newline: 0 for the first of a line, the
    line's length at its newline), ``in_quotes`` (1 from an opening quote to before its
    closing one: ``"`` toggles, typographic quotes open and close), ``in_brackets`` (1
    while a ``(``, ``[`` or ``{`` is open), ``entropy``. A feature that does not vary on
    this text is None (nothing to correlate with).
    """
    N = len(tokens)
    line = np.empty(N)
    quotes = np.zeros(N)
    brackets = np.zeros(N)
    pos, inside, depth = 0, False, 0
    for t, tok in enumerate(tokens):
        line[t] = pos
        pos = 0 if tok == "\n" else pos + 1
        if tok in QUOTE_TOGGLE:
            inside = not inside
        elif tok in QUOTE_OPEN:
            inside = True
        elif tok in QUOTE_CLOSE:
            inside = False
        quotes[t] = inside
        depth = depth + 1 if tok in BRACKET_OPEN else max(0, depth - (tok in BRACKET_CLOSE))
        brackets[t] = depth > 0
    out = {"line_position": line, "in_quotes": quotes, "in_brackets": brackets,
           "entropy": None if entropy is None else np.asarray(entropy, np.float64)}
    return {k: (None if v is None or N < 2 or np.ptp(v) == 0 else v) for k, v in out.items()}


def correlations(x, f) -> np.ndarray:
    """Pearson's r of every column of x (N, H) with f (N,): (H,); with several features f
    (N, F): (F, H). 0 for a constant column or feature."""
    x = np.asarray(x, np.float64)
    xc = x - x.mean(axis=0)
    f = np.asarray(f, np.float64)
    fc = f - f.mean(axis=0)
    sx = np.sqrt(np.einsum("nh,nh->h", xc, xc))  # (H,)
    sf = np.sqrt(np.einsum("n...,n...->...", fc, fc))  # () or (F,)
    num = fc.T @ xc  # (H,) or (F, H)
    den = np.multiply.outer(sf, sx)
    out = np.zeros(num.shape)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return np.clip(out, -1.0, 1.0)


def _correlate_all(states: dict, features: dict) -> dict:
    """``{name: {state: r (H,)}}`` (None for an absent feature), as :func:`correlations`
    of every state with every feature, each state centred once."""
    present = [name for name, f in features.items() if f is not None]
    out = {name: (None if features[name] is None else {}) for name in features}
    if not present:
        return out
    F = np.stack([np.asarray(features[n], np.float64) for n in present], axis=1)  # (N, F)
    for k, x in states.items():
        r = correlations(x, F)  # (F, H)
        for i, name in enumerate(present):
            out[name][k] = r[i]
    return out


def rank(corr: dict | None, n: int) -> list:
    """The n (state, unit, r) of largest ``|r|`` from ``{state: r (H,)}`` (None: [])."""
    if corr is None:
        return []
    rows = [(k, u, float(r)) for k, rs in corr.items() for u, r in enumerate(rs)]
    rows.sort(key=lambda x: -abs(x[2]))  # stable: ties keep layer, direction, unit order
    return rows[:n]
