"""Sampling from next-token distributions: temperature, greedy, top-k, top-p, beam search.

The decoding loops take a *step function* so that any model can use them::

    logits, state = step(ids, state)     # ids (K,) ints -> logits (K, V), new state

A state is an array (L, K, H) or a tuple of them (LSTM), batch on axis 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .losses import log_softmax, softmax


def next_token_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> np.ndarray:
    """The distribution a sampler draws from. logits (V,) -> probs (V,) float64, sum 1.

    temperature scales the logits (must be > 0; use greedy for the limit 0); top_k keeps
    the k most likely tokens; top_p keeps the smallest set whose mass reaches p (nucleus).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use greedy for 0), got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    V = z.shape[-1]
    if top_k is not None:
        if not 1 <= top_k:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if top_k < V:
            kth = np.partition(z, V - top_k)[V - top_k]
            z = np.where(z >= kth, z, -np.inf)
    p = softmax(z)
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        keep = np.searchsorted(cum, top_p) + 1  # smallest prefix with mass >= top_p
        drop = order[keep:]
        p[drop] = 0.0
        p /= p.sum()
    return p


def sample_token(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 greedy: bool = False) -> int:
    """Draw one token id from logits (V,). Greedy takes the argmax."""
    if greedy:
        return int(np.argmax(logits))
    p = next_token_probs(logits, temperature, top_k, top_p)
    # inverse-CDF draw: one uniform number per token, reproducible for a seed
    u = rng.random()
    idx = int(np.searchsorted(np.cumsum(p), u * p.sum(), side="right"))
    return min(idx, len(p) - 1)


def _select(state, idx):
    if isinstance(state, tuple):
        return tuple(s[:, idx] for s in state)
    return state[:, idx]


def sample_sequence(step: Callable, logits: np.ndarray, state, length: int,
                    rng: np.random.Generator, temperature: float = 1.0, top_k=None,
                    top_p=None, greedy: bool = False, stop_ids=(), on_token=None) -> list[int]:
    """Feed each sampled token back in, up to ``length`` tokens or a stop token.

    logits (V,): the distribution of the first token (after the prime). The stop token is
    included in the result. ``on_token(id)`` is called as each token is drawn (streaming).
    """
    out: list[int] = []
    stop = set(int(s) for s in stop_ids)
    for i in range(length):
        tok = sample_token(logits, rng, temperature, top_k, top_p, greedy)
        out.append(tok)
        if on_token is not None:
            on_token(tok)
        if tok in stop or i == length - 1:
            break
        lg, state = step(np.array([tok]), state)
        logits = lg[0]
    return out


def beam_search(step: Callable, logits: np.ndarray, state, width: int, length: int,
                stop_ids=(), length_penalty: float = 0.0) -> list[int]:
    """Beam search over one sequence.

    logits (V,) and state (batch 1) come after the prime; each hypothesis is extended by
    ``step``. Finished hypotheses (ending in a stop id) leave the beam. Scores are summed
    log-probabilities divided by ``len ** length_penalty``. Width 1 equals greedy.
    Returns the best token list (stop token included if reached).
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    stop = set(int(s) for s in stop_ids)
    beams: list[tuple[float, list[int]]] = [(0.0, [])]
    lp = log_softmax(np.asarray(logits, dtype=np.float64))[None]  # (K, V)
    finished: list[tuple[float, list[int]]] = []

    def norm(score, seq):
        return score / (max(len(seq), 1) ** length_penalty) if length_penalty else score

    for t in range(length):
        V = lp.shape[1]
        cand = (np.array([b[0] for b in beams])[:, None] + lp).ravel()
        # stable ordering: best score first, ties broken by lower index (as argmax does)
        order = np.argsort(-cand, kind="stable")[: width]
        new_beams, parents, toks = [], [], []
        for j in order:
            k, tok = divmod(int(j), V)
            seq = beams[k][1] + [tok]
            if tok in stop or t == length - 1:
                finished.append((float(cand[j]), seq))
            else:
                new_beams.append((float(cand[j]), seq))
                parents.append(k)
                toks.append(tok)
        if not new_beams:
            break
        if finished and max(norm(*f) for f in finished) >= max(norm(*b) for b in new_beams) \
                and length_penalty == 0:
            # scores only fall as sequences grow: nothing alive can overtake
            break
        beams = new_beams
        st = _select(state, np.array(parents))
        lg, state = step(np.array(toks), st)
        lp = log_softmax(lg.astype(np.float64), axis=1)
    pool = finished or beams
    return max(pool, key=lambda b: norm(*b))[1]
