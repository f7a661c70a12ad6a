"""Sampling from next-token distributions: temperature, greedy, top-k, top-p, beam search.

The decoding loops take a *step function* so that any model can use them::

    logits, state = step(ids, state)     # ids (K,) ints -> logits (K, V), new state

A state is an array (L, K, H) or a tuple of them (LSTM), batch on axis 1.

The settings of every entry point (``LanguageModel.generate``, :func:`sample_sequence`,
:func:`beam_search`, :func:`next_token_probs`, ``rnnkit sample``) are checked in one place,
:func:`check_decoding`: ``length`` an integer >= 0; ``temperature`` 0 (greedy) or a finite
number >= :data:`MIN_TEMPERATURE`; ``top_k`` an integer in [1, V]; ``top_p`` in (0, 1];
``beam`` an integer >= 1 (beam search ranks by the model's own probabilities, so it takes
none of the sampling settings; its ``length_penalty`` is a finite number and its
``num_return`` at most the width); ``stop_ids`` integer ids in [0, V). The distributions
drawn from are always finite and sum to 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .losses import log_softmax, softmax

#: the smallest positive temperature (0 means greedy): below it a distribution is one-hot
#: in all but name, and the logits divided by it overflow
MIN_TEMPERATURE = 1e-6
#: beam search's default length normalisation: hypotheses ranked by their mean
#: log-probability per token (0 would rank by the sum, which favours empty outputs)
LENGTH_PENALTY = 1.0


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_))


@dataclass(frozen=True)
class Decoding:
    """Checked generation settings (see :func:`check_decoding`). ``greedy`` is also True
    for temperature 0; ``beam`` is None for sampling; ``stop_ids`` a frozenset;
    ``length_penalty`` and ``num_return`` (None: one sequence) apply to beam search."""

    length: int
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False
    beam: int | None = None
    stop_ids: frozenset = frozenset()
    length_penalty: float = LENGTH_PENALTY
    num_return: int | None = None


def _sampling(V: int, temperature, top_k, top_p, n: Callable) -> tuple:
    """Checked (temperature, top_k, top_p); ``n(arg)`` is the name an error shows."""
    if not _is_real(temperature) or not np.isfinite(temperature) or not (
            temperature == 0 or temperature >= MIN_TEMPERATURE):
        raise ValueError(f"{n('temperature')} must be 0 (greedy) or a finite number >= "
                         f"{MIN_TEMPERATURE:g}, got {temperature!r}")
    if top_k is not None and (not _is_int(top_k) or not 1 <= top_k <= V):
        raise ValueError(f"{n('top_k')} must be an integer in [1, {V}] (the vocabulary "
                         f"size), got {top_k!r}")
    if top_p is not None and (not _is_real(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"{n('top_p')} must be a number in (0, 1], got {top_p!r}")
    return (float(temperature), None if top_k is None else int(top_k),
            None if top_p is None else float(top_p))


def check_decoding(vocab_size: int, length, temperature=1.0, top_k=None, top_p=None,
                   greedy=False, beam=None, stop_ids=(), names: dict | None = None,
                   length_penalty=None, num_return=None) -> Decoding:
    """Check the settings of a generation over V = ``vocab_size`` tokens; return them as
    a :class:`Decoding`. Raises TypeError/ValueError naming the argument (as ``names``
    maps it: the CLI passes its flags), what it got and what is allowed."""
    def n(arg):
        return (names or {}).get(arg, arg)

    if not _is_int(length) or length < 0:
        raise ValueError(f"{n('length')} must be an integer >= 0, got {length!r}")
    temperature, top_k, top_p = _sampling(vocab_size, temperature, top_k, top_p, n)
    if not isinstance(greedy, (bool, np.bool_)):
        raise TypeError(f"{n('greedy')} must be True or False, got {greedy!r}")
    if beam is not None:
        if not _is_int(beam) or beam < 1:
            raise ValueError(f"{n('beam')} must be an integer >= 1, got {beam!r}")
        given = [n(k) for k, v in (("temperature", temperature != 1.0), ("top_k", top_k),
                                   ("top_p", top_p), ("greedy", greedy)) if v]
        if given:
            raise ValueError(f"{n('beam')} (beam search, which ranks by the model's own "
                             f"probabilities) takes no {', '.join(given)}")
        if length_penalty is not None and (not _is_real(length_penalty)
                                           or not np.isfinite(length_penalty)):
            raise ValueError(f"{n('length_penalty')} must be a finite number, got "
                             f"{length_penalty!r}")
        if num_return is not None and (not _is_int(num_return)
                                       or not 1 <= num_return <= beam):
            raise ValueError(f"{n('num_return')} must be an integer in [1, {beam}] (the "
                             f"beam's width: the search keeps {beam} hypotheses), got "
                             f"{num_return!r}")
    else:
        extra = [n(k) for k, v in (("length_penalty", length_penalty),
                                   ("num_return", num_return)) if v is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} applies to beam search only; give "
                             f"{n('beam')} too")
    if isinstance(stop_ids, (str, bytes)) or not hasattr(stop_ids, "__iter__"):
        raise TypeError(f"{n('stop_ids')} must be a collection of token ids, got "
                        f"{stop_ids!r}")
    stops = list(stop_ids)
    bad = [s for s in stops if not _is_int(s) or not 0 <= s < vocab_size]
    if bad:
        raise ValueError(f"{n('stop_ids')} must be token ids in [0, {vocab_size}), got "
                         f"{bad[0]!r}")
    return Decoding(int(length), temperature, top_k, top_p,
                    bool(greedy) or temperature == 0, None if beam is None else int(beam),
                    frozenset(int(s) for s in stops),
                    LENGTH_PENALTY if length_penalty is None else float(length_penalty),
                    None if num_return is None else int(num_return))


def _checked_logits(logits) -> np.ndarray:
    """logits (V,) as float64: NaN is refused, and so is a vector without a possible
    token (all -inf); -inf marks an impossible token, +inf a certain one."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"logits must have shape (V,), got {z.shape}")
    top = z.max()  # NaN propagates
    if np.isnan(top):
        raise ValueError("logits hold NaN: there is no distribution to draw from")
    if top == -np.inf:
        raise ValueError("logits are all -inf: every token is impossible")
    return z


def _probs(z: np.ndarray, temperature: float, top_k, top_p) -> np.ndarray:
    """The distribution (V,) of checked logits z (V,) float64 under checked settings."""
    V = z.shape[0]
    top = z.max()
    if top == np.inf:  # the certain tokens share the mass
        z = np.where(z == np.inf, 0.0, -np.inf)
    elif temperature == 0:
        z = np.where(np.arange(V) == np.argmax(z), 0.0, -np.inf)
    else:
        with np.errstate(over="ignore"):
            zt = z / temperature
            # huge logits at a small temperature: shift first (the largest becomes 0)
            z = zt if np.isfinite(zt.max()) else (z - top) / temperature
    if top_k is not None and top_k < V:
        kth = np.partition(z, V - top_k)[V - top_k]
        z = np.where(z >= kth, z, -np.inf)
    with np.errstate(over="ignore"):  # -1e308 - 1e308: -inf, an impossible token
        p = softmax(z)
    if top_p is not None:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        keep = np.searchsorted(cum, top_p) + 1  # smallest prefix with mass >= top_p
        p[order[keep:]] = 0.0
        p /= p.sum()
    return p


def next_token_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> np.ndarray:
    """The distribution a sampler draws from. logits (V,) -> probs (V,) float64: finite,
    sum 1.

    temperature scales the logits (0: greedy, all the mass on the most likely token; else
    >= MIN_TEMPERATURE); top_k keeps the k most likely tokens; top_p keeps the smallest set
    whose mass reaches p (nucleus). Logits of -inf are impossible tokens, +inf certain ones;
    NaN is refused.
    """
    z = _checked_logits(logits)
    temperature, top_k, top_p = _sampling(z.shape[0], temperature, top_k, top_p, str)
    return _probs(z, temperature, top_k, top_p)


def _draw(p: np.ndarray, rng: np.random.Generator) -> int:
    # inverse-CDF draw: one uniform number per token, reproducible for a seed
    u = rng.random()
    idx = int(np.searchsorted(np.cumsum(p), u * p.sum(), side="right"))
    if idx >= len(p) or p[idx] == 0:  # rounding past the last possible token
        idx = int(np.flatnonzero(p)[-1])
    return idx


def sample_token(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 greedy: bool = False) -> int:
    """Draw one token id from logits (V,). Greedy (or temperature 0) takes the argmax."""
    z = _checked_logits(logits)
    temperature, top_k, top_p = _sampling(z.shape[0], temperature, top_k, top_p, str)
    if greedy or temperature == 0:
        return int(np.argmax(z))
    return _draw(_probs(z, temperature, top_k, top_p), rng)


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
    z = _checked_logits(logits)
    d = check_decoding(z.shape[0], length, temperature, top_k, top_p, greedy,
                       stop_ids=stop_ids)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    out: list[int] = []
    for i in range(d.length):
        tok = int(np.argmax(z)) if d.greedy else _draw(
            _probs(z, d.temperature, d.top_k, d.top_p), rng)
        out.append(tok)
        if on_token is not None:
            on_token(tok)
        if tok in d.stop_ids or i == d.length - 1:
            break
        lg, state = step(np.array([tok]), state)
        z = _checked_logits(lg[0])
    return out


def beam_search(step: Callable, logits: np.ndarray, state, width: int, length: int,
                stop_ids=(), length_penalty: float = LENGTH_PENALTY) -> list[int]:
    """Beam search over one sequence: the best hypothesis of :func:`beam_hypotheses`
    (the token list, stop token included if reached). Width 1 equals greedy."""
    return beam_hypotheses(step, logits, state, width, length, stop_ids, length_penalty)[0][0]


def beam_hypotheses(step: Callable, logits: np.ndarray, state, width: int, length: int,
                    stop_ids=(), length_penalty: float = LENGTH_PENALTY,
                    num: int = 1) -> list[tuple[list[int], float]]:
    """The ``num`` best distinct hypotheses of a beam search of ``width``, best first.

    logits (V,) and state (batch 1) come after the prime; each hypothesis is extended by
    ``step`` (its K live hypotheses as a batch of K). A hypothesis ends at a stop id or
    at ``length`` tokens. It is ranked by its sum of log-probabilities S divided by
    ``len ** length_penalty`` (len counts its tokens, the stop token included):
    ``length_penalty`` 0 ranks by S alone, which favours short outputs (down to the stop
    token alone: an empty text); the default 1 ranks by the mean log-probability per
    token (as fairseq's ``lenpen`` and Hugging Face's ``length_penalty`` do by default).
    The search stops once no live hypothesis can still overtake the ``num``-th best
    finished one (S only falls as a hypothesis grows), so the result is the exact best of
    the hypotheses the beam kept. Returns [(tokens, normalised score), ...]: ``num`` of
    them, or fewer where fewer tokens are possible.
    """
    z = _checked_logits(logits)
    if width is None:
        raise ValueError("width must be an integer >= 1, got None")
    d = check_decoding(z.shape[0], length, beam=width, stop_ids=stop_ids,
                       length_penalty=length_penalty, num_return=num,
                       names={"beam": "width", "num_return": "num"})
    width, stop, alpha = d.beam, d.stop_ids, d.length_penalty

    def norm(score: float, n: int) -> float:
        return score / n ** alpha if alpha and n else score

    def best_reachable(score: float, n: int) -> float:
        # S <= score from here on; the normalised value is monotone in the final length
        return max(norm(score, n + 1), norm(score, d.length))

    live: list[tuple[float, list[int]]] = [(0.0, [])]
    finished: list[tuple[float, list[int]]] = []  # (normalised score, tokens)
    with np.errstate(over="ignore"):
        lp = log_softmax(z)[None]  # (K, V)
    for t in range(d.length):
        V = lp.shape[1]
        cand = (np.array([b[0] for b in live])[:, None] + lp).ravel()
        # stable ordering: best score first, ties broken by lower index (as argmax does)
        order = np.argsort(-cand, kind="stable")[: width]
        new_live, parents, toks = [], [], []
        for j in order:
            if cand[j] == -np.inf:
                break  # impossible continuations
            k, tok = divmod(int(j), V)
            seq = live[k][1] + [tok]
            if tok in stop or t == d.length - 1:
                finished.append((norm(float(cand[j]), len(seq)), seq))
            else:
                new_live.append((float(cand[j]), seq))
                parents.append(k)
                toks.append(tok)
        if not new_live:
            break
        finished.sort(key=lambda f: -f[0])
        if len(finished) >= d.num_return and finished[d.num_return - 1][0] >= max(
                best_reachable(s, len(q)) for s, q in new_live):
            break  # nothing alive can overtake the num best finished hypotheses
        live = new_live
        lg, state = step(np.array(toks), _select(state, np.array(parents)))
        lg = np.asarray(lg, dtype=np.float64)
        if np.isnan(lg).any():
            raise ValueError("the step function returned NaN logits")
        with np.errstate(over="ignore"):
            lp = log_softmax(lg, axis=1)
    if not finished:  # length 0
        return [([], 0.0)]
    finished.sort(key=lambda f: -f[0])  # stable: among equals, the one found first
    return [(q, sc) for sc, q in finished[: d.num_return]]
