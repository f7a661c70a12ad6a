"""Sampling: the next-token distribution (temperature, top-k, top-p), seeded sampling and
its empirical frequencies, greedy and beam search on small deterministic step functions."""

import itertools

import numpy as np
import pytest

from rnnkit.generate import (
    beam_hypotheses,
    beam_search,
    next_token_probs,
    sample_sequence,
    sample_token,
)
from rnnkit.losses import log_softmax, softmax

V = 6
TEMPERATURES = [0.1, 0.3, 1.0, 2.0, 10.0]


def logits_(seed=0, n=V, scale=2.0):
    return np.random.default_rng(seed).standard_normal(n) * scale


# ---------------------------------------------------------------------- next_token_probs
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("top_k", [None, 1, 3, V])
@pytest.mark.parametrize("top_p", [None, 0.3, 0.9, 1.0])
def test_probs_sum_to_one(temperature, top_k, top_p):
    for seed in range(3):
        p = next_token_probs(logits_(seed), temperature, top_k, top_p)
        assert p.dtype == np.float64 and p.shape == (V,)
        assert (p >= 0).all()
        assert abs(p.sum() - 1.0) < 1e-12


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_temperature_scales_the_logits(temperature):
    z = logits_(1)
    p = next_token_probs(z, temperature)
    np.testing.assert_allclose(p, softmax(z / temperature), rtol=1e-13, atol=1e-300)
    # lower temperature sharpens: the most likely token gains mass
    assert next_token_probs(z, temperature / 2).max() >= p.max()


def test_float32_logits_give_float64_probs():
    p = next_token_probs(logits_(0).astype(np.float32), 0.5)
    assert p.dtype == np.float64 and abs(p.sum() - 1) < 1e-12


@pytest.mark.parametrize("k", [1, 2, 4])
def test_top_k_keeps_the_k_most_likely(k):
    z = logits_(2)
    p = next_token_probs(z, top_k=k)
    top = np.argsort(-z)[:k]
    assert set(np.flatnonzero(p)) == set(top.tolist())
    full = softmax(z)
    np.testing.assert_allclose(p[top], full[top] / full[top].sum(), rtol=1e-13)


@pytest.mark.parametrize("p_target", [0.05, 0.3, 0.5, 0.8, 0.95, 0.999])
def test_top_p_keeps_the_smallest_set_reaching_p(p_target):
    z = logits_(3)
    full = softmax(z)
    p = next_token_probs(z, top_p=p_target)
    kept = np.flatnonzero(p)
    order = np.argsort(-full)
    # the kept tokens are the most likely ones, in a prefix of the sorted order
    assert set(kept.tolist()) == set(order[:len(kept)].tolist())
    mass = full[kept].sum()
    assert mass >= p_target
    # one token fewer would not reach p
    assert mass - full[kept].min() < p_target
    np.testing.assert_allclose(p[kept], full[kept] / mass, rtol=1e-13)


def test_top_p_one_keeps_everything_and_combines_with_top_k():
    z = logits_(4)
    np.testing.assert_allclose(next_token_probs(z, top_p=1.0), softmax(z), rtol=1e-14)
    both = next_token_probs(z, top_k=3, top_p=0.6)
    only_k = next_token_probs(z, top_k=3)
    assert set(np.flatnonzero(both)) <= set(np.flatnonzero(only_k))
    assert 1 <= np.count_nonzero(both) <= 3


@pytest.mark.parametrize("settings", [{"top_k": 1}, {"temperature": 1e-3},
                                      {"temperature": 1e-3, "top_p": 0.99}])
def test_top_k_1_and_tiny_temperature_equal_greedy(settings):
    for seed in range(5):
        z = logits_(seed)
        p = next_token_probs(z, **settings)
        onehot = np.eye(V)[np.argmax(z)]
        np.testing.assert_allclose(p, onehot, atol=1e-12)
        rng = np.random.default_rng(seed)
        for _ in range(20):
            assert sample_token(z, rng, **settings) == int(np.argmax(z))
        assert sample_token(z, rng, greedy=True) == int(np.argmax(z))


def test_huge_logits_and_tiny_temperature_stay_finite():
    z = np.array([1e4, -1e4, 0.0, 1e4 - 1])
    p = next_token_probs(z, temperature=0.01)
    assert np.isfinite(p).all() and p[0] == 1.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"temperature": -1.0}, r"temperature must be 0 \(greedy\) or a finite number >= 1e-06, "
                            r"got -1.0"),
    ({"temperature": float("nan")}, "temperature must be 0 .*got nan"),
    ({"temperature": float("inf")}, "temperature must be 0 .*got inf"),
    ({"temperature": 1e-310}, "temperature must be 0 .*got 1e-310"),
    ({"temperature": True}, "temperature must be 0 .*got True"),
    ({"temperature": "1"}, "temperature must be 0 .*got '1'"),
    ({"top_k": 0}, r"top_k must be an integer in \[1, 6\] \(the vocabulary size\), got 0"),
    ({"top_k": 7}, r"top_k must be an integer in \[1, 6\].*got 7"),
    ({"top_k": 2.5}, r"top_k must be an integer in \[1, 6\].*got 2.5"),
    ({"top_p": 0.0}, r"top_p must be a number in \(0, 1\], got 0.0"),
    ({"top_p": 1.5}, r"top_p must be a number in \(0, 1\], got 1.5"),
    ({"top_p": float("nan")}, r"top_p must be a number in \(0, 1\], got nan"),
])
def test_bad_sampling_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        next_token_probs(logits_(0), **kwargs)
    with pytest.raises(ValueError, match=message):
        sample_token(logits_(0), np.random.default_rng(0), **kwargs)
    logits, state = RNNStep(0, V=V).start()
    for length in (5, 0):  # checked even when nothing is drawn
        with pytest.raises(ValueError, match=message):
            sample_sequence(RNNStep(0, V=V), logits, state, length, np.random.default_rng(0),
                            **kwargs)


def test_temperature_zero_is_greedy():
    for seed in range(5):
        z = logits_(seed)
        np.testing.assert_array_equal(next_token_probs(z, 0), np.eye(V)[np.argmax(z)])
        assert sample_token(z, np.random.default_rng(0), temperature=0) == int(np.argmax(z))
    step = RNNStep(4)
    logits, state = step.start()
    assert sample_sequence(step, logits, state, 9, np.random.default_rng(0), temperature=0) \
        == greedy(step, 9)


@pytest.mark.parametrize("logits", [
    np.array([1.0, np.inf, 0.0, np.inf]), np.array([-np.inf, 2.0, -np.inf, 1.0]),
    np.array([1e308, -1e308, 1e308, 0.0]), np.array([3.0, 3.0, 3.0, 3.0]),
], ids=["+inf", "-inf", "huge", "ties"])
@pytest.mark.parametrize("settings", [{}, {"temperature": 1e-6}, {"temperature": 0},
                                      {"top_k": 2}, {"top_p": 0.5}, {"temperature": 50.0}])
def test_probabilities_are_finite_and_sum_to_one_for_any_logits(logits, settings):
    p = next_token_probs(logits, **settings)
    assert np.isfinite(p).all() and (p >= 0).all() and abs(p.sum() - 1) < 1e-12
    assert not p[logits == -np.inf].any(), "an impossible token got probability"
    if np.isinf(logits).any() and logits.max() == np.inf:
        assert p[logits == np.inf].sum() == pytest.approx(1.0)
    draws = {sample_token(logits, np.random.default_rng(s), **settings) for s in range(30)}
    assert all(p[d] > 0 for d in draws)


@pytest.mark.parametrize(("logits", "message"), [
    (np.array([0.0, np.nan, 1.0]), "logits hold NaN"),
    (np.full(3, -np.inf), "logits are all -inf"),
    (np.zeros((2, 3)), r"logits must have shape \(V,\), got \(2, 3\)"),
    (np.zeros(0), r"logits must have shape \(V,\), got \(0,\)"),
])
def test_logits_without_a_distribution_are_refused(logits, message):
    with pytest.raises(ValueError, match=message):
        next_token_probs(logits)
    with pytest.raises(ValueError, match=message):
        sample_token(logits, np.random.default_rng(0), greedy=True)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"length": -1}, "length must be an integer >= 0, got -1"),
    ({"length": 2.0}, "length must be an integer >= 0, got 2.0"),
    ({"beam": 0}, "beam must be an integer >= 1, got 0"),
    ({"beam": -1}, "beam must be an integer >= 1, got -1"),
    ({"beam": 2.5}, "beam must be an integer >= 1, got 2.5"),
    ({"beam": 2, "top_k": 3}, "beam .*takes no top_k"),
    ({"beam": 2, "temperature": 0.5, "greedy": True}, "beam .*takes no temperature, greedy"),
    ({"stop_ids": [V]}, r"stop_ids must be token ids in \[0, 6\), got 6"),
    ({"stop_ids": [-1]}, r"stop_ids must be token ids in \[0, 6\), got -1"),
    ({"stop_ids": [1.0]}, r"stop_ids must be token ids in \[0, 6\), got 1.0"),
    ({"stop_ids": "\n"}, "stop_ids must be a collection of token ids, got '"),
    ({"greedy": "yes"}, "greedy must be True or False, got 'yes'"),
    ({"greedy": True, "top_k": 0}, r"top_k must be an integer in \[1, 6\]"),
    ({"greedy": True, "temperature": -1}, "temperature must be 0"),
    ({"length_penalty": 1.0}, "length_penalty applies to beam search only; give beam"),
    ({"num_return": 2}, "num_return applies to beam search only"),
    ({"beam": 2, "length_penalty": float("nan")}, "length_penalty must be a finite number"),
    ({"beam": 2, "length_penalty": "1"}, "length_penalty must be a finite number"),
    ({"beam": 2, "num_return": 3}, r"num_return must be an integer in \[1, 2\] \(the beam"),
    ({"beam": 2, "num_return": 0}, r"num_return must be an integer in \[1, 2\]"),
])
@pytest.mark.parametrize("length", [5, 0])
def test_check_decoding_is_the_one_check_of_every_entry_point(kwargs, message, length):
    from rnnkit.generate import check_decoding
    from rnnkit.models import LanguageModel

    kwargs = {"length": length, **kwargs}
    error = TypeError if "greedy must" in message or "collection" in message else ValueError
    with pytest.raises(error, match=message):
        check_decoding(V, **kwargs)
    lm = LanguageModel(V, "gru", 4, rng=0)
    with pytest.raises(error, match=message):
        lm.generate([1], **kwargs)
    if not {"beam", "greedy", "length_penalty", "num_return"} & set(kwargs):
        logits, state = RNNStep(0, V=V).start()
        rest = {k: v for k, v in kwargs.items() if k != "length"}
        with pytest.raises(error, match=message):
            sample_sequence(RNNStep(0, V=V), logits, state, kwargs["length"],
                            np.random.default_rng(0), **rest)
        if set(rest) <= {"stop_ids"}:
            with pytest.raises(error, match=message.replace("beam", "width")):
                beam_search(RNNStep(0, V=V), logits, state, 2, kwargs["length"], **rest)


def test_beam_search_names_its_width():
    logits, state = RNNStep(0).start()
    for bad in (0, -1, 2.5, None):
        with pytest.raises(ValueError, match=f"width must be an integer >= 1, got {bad}"):
            beam_search(RNNStep(0), logits, state, bad, 3)
    with pytest.raises(ValueError, match="length_penalty must be a finite number, got nan"):
        beam_search(RNNStep(0), logits, state, 2, 3, length_penalty=float("nan"))


# ---------------------------------------------------------------------- sample_token
def test_sampling_is_reproducible_for_a_seed():
    z = logits_(5, scale=0.5)
    draw = lambda seed: [sample_token(z, rng, temperature=1.5)  # noqa: E731
                         for rng in [np.random.default_rng(seed)] for _ in range(50)]
    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


@pytest.mark.parametrize("settings", [{}, {"temperature": 0.7, "top_k": 4},
                                      {"temperature": 2.0, "top_p": 0.8}])
def test_empirical_frequencies_match_the_probabilities(settings):
    n = 12000
    z = logits_(6, n=8, scale=1.0)
    p = next_token_probs(z, **settings)
    rng = np.random.default_rng(2024)
    counts = np.bincount([sample_token(z, rng, **settings) for _ in range(n)], minlength=8)
    assert counts.sum() == n
    assert not counts[p == 0].any(), "a token outside top-k/top-p was drawn"
    support = p > 0
    expected = n * p[support]
    chi2 = float(((counts[support] - expected) ** 2 / expected).sum())
    df = int(support.sum()) - 1
    # the 99.99th percentile of chi-square is below df + 6*sqrt(2 df) + 10 for these df
    assert chi2 < df + 6 * np.sqrt(2 * df) + 10, (chi2, df, counts, expected)


# ---------------------------------------------------------------------- step functions
class MarkovStep:
    """A random first-order Markov chain: logits = log P[ids]. The state (1, K, 1) is
    carried through untouched (decoders slice it on axis 1)."""

    def __init__(self, seed, V=4, concentration=0.7):
        rng = np.random.default_rng(seed)
        self.P = rng.dirichlet(np.full(V, concentration), size=V)
        self.V = V

    def start(self):
        return np.log(self.P[0]), np.zeros((1, 1, 1))

    def __call__(self, ids, state):
        assert state.shape == (1, len(ids), 1)
        return np.log(self.P[ids]), state


class RNNStep:
    """A tiny deterministic recurrent step: h' = tanh(E[ids] + h @ A), logits = h' @ Wo.
    With ``tuple_state`` the state is an LSTM-like pair (h, c) with c = 2h."""

    def __init__(self, seed, V=4, H=3, tuple_state=False):
        rng = np.random.default_rng(seed)
        self.E = rng.standard_normal((V, H))
        self.A = rng.standard_normal((H, H))
        self.Wo = rng.standard_normal((H, V)) * 2
        self.V, self.H, self.tuple_state = V, H, tuple_state

    def start(self):
        h0 = np.random.default_rng(99).standard_normal((1, 1, self.H)) * 0.5
        logits = (h0[0, 0] @ self.Wo)
        return logits, ((h0, 2 * h0) if self.tuple_state else h0)

    def __call__(self, ids, state):
        h_prev = state[0] if self.tuple_state else state
        if self.tuple_state:
            np.testing.assert_allclose(state[1], 2 * h_prev)  # the pair stays aligned
        h = np.tanh(self.E[ids] + h_prev[0] @ self.A)[None]
        logits = h[0] @ self.Wo
        return logits, ((h, 2 * h) if self.tuple_state else h)


STEPS = {"markov": lambda s: MarkovStep(s), "rnn": lambda s: RNNStep(s),
         "rnn-tuple": lambda s: RNNStep(s, tuple_state=True)}


def log_prob(step, seq):
    """Sum of log p(token) along seq, fed back through step from step.start()."""
    logits, state = step.start()
    total = 0.0
    for i, tok in enumerate(seq):
        total += float(log_softmax(np.asarray(logits, np.float64))[tok])
        if i + 1 < len(seq):
            lg, state = step(np.array([tok]), state)
            logits = lg[0]
    return total


def greedy(step, length, stop_ids=()):
    logits, state = step.start()
    return sample_sequence(step, logits, state, length, np.random.default_rng(0), greedy=True,
                           stop_ids=stop_ids)


def all_by_brute_force(step, length, stop_ids=(), length_penalty=0.0):
    """Every sequence of at most ``length`` tokens ending at the first stop id (or at
    ``length``), found by enumeration, as (score / len ** length_penalty, seq), best
    first (ties in enumeration order)."""
    seen, ranked = set(), []
    for seq in itertools.product(range(step.V), repeat=length):
        seq = list(seq)
        for i, tok in enumerate(seq):
            if tok in stop_ids:
                seq = seq[: i + 1]
                break
        if tuple(seq) in seen:
            continue
        seen.add(tuple(seq))
        ranked.append((log_prob(step, seq) / len(seq) ** length_penalty, seq))
    ranked.sort(key=lambda r: -r[0])
    return ranked


# ---------------------------------------------------------------------- greedy and beams
@pytest.mark.parametrize("kind", list(STEPS))
@pytest.mark.parametrize("stop_ids", [(), (2,)], ids=["no-stop", "stop"])
def test_beam_width_1_equals_greedy(kind, stop_ids):
    for seed in range(8):
        step = STEPS[kind](seed)
        logits, state = step.start()
        beam = beam_search(step, logits, state, width=1, length=7, stop_ids=stop_ids)
        assert beam == greedy(step, 7, stop_ids)
        assert all(0 <= t < step.V for t in beam)


@pytest.mark.parametrize("kind", list(STEPS))
def test_wider_beam_is_at_least_as_likely_as_greedy(kind):
    # Beam search is not guaranteed to beat greedy in general (the greedy prefix can be
    # pruned); on these seeded step functions it does, and the exhaustive width below is
    # exact.
    L = 5
    for seed in range(6):
        step = STEPS[kind](seed)
        logits, state = step.start()
        g = log_prob(step, greedy(step, L))
        for width in (2, 3, 5):
            seq = beam_search(step, logits, state, width=width, length=L)
            assert len(seq) == L
            assert log_prob(step, seq) >= g - 1e-12, (seed, width)


@pytest.mark.parametrize("kind", list(STEPS))
@pytest.mark.parametrize("stop_ids", [(), (1,)], ids=["no-stop", "stop"])
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_exhaustive_beam_finds_the_best_sequences(kind, stop_ids, alpha):
    # a beam as wide as the whole tree is exact: its num best hypotheses are the num best
    # sequences by the normalised score, however the search stops early
    L = 4
    for seed in range(3):
        step = STEPS[kind](seed)
        logits, state = step.start()
        ranked = all_by_brute_force(step, L, stop_ids, alpha)
        hyps = beam_hypotheses(step, logits, state, step.V ** L, L, stop_ids, alpha, num=4)
        assert [round(sc, 10) for _, sc in hyps] == [round(sc, 10) for sc, _ in ranked[:4]]
        assert len({tuple(q) for q, _ in hyps}) == 4  # distinct
        seq = beam_search(step, logits, state, width=step.V ** L, length=L, stop_ids=stop_ids,
                          length_penalty=alpha)
        assert seq == hyps[0][0]
        if alpha == 0:
            assert log_prob(step, seq) == pytest.approx(ranked[0][0], abs=1e-12)
            assert log_prob(step, seq) >= log_prob(step, greedy(step, L, stop_ids)) - 1e-12


def test_beam_search_stops_at_a_stop_id():
    step = MarkovStep(0)
    step.P[:, 3] = 0.0
    step.P[1] = [0.05, 0.05, 0.0, 0.9]  # after token 1, the stop token 3 is very likely
    step.P[0] = [0.1, 0.8, 0.1, 0.0]
    step.P[2] = [0.5, 0.5, 0.0, 0.0]
    with np.errstate(divide="ignore"):  # log(0) = -inf marks impossible tokens
        logits, state = step.start()
        for width in (1, 2, 4):
            seq = beam_search(step, logits, state, width=width, length=20, stop_ids=(3,))
            assert seq[-1] == 3 and 3 not in seq[:-1]
            assert len(seq) < 20
            assert seq == [1, 3]
        # sample_sequence stops too, and includes the stop token
        out = sample_sequence(step, logits, state, 20, np.random.default_rng(0), greedy=True,
                              stop_ids=[3])
    assert out == [1, 3]


def test_beam_search_length_and_width_checks():
    step = RNNStep(0)
    logits, state = step.start()
    assert beam_search(step, logits, state, width=3, length=0) == []
    assert len(beam_search(step, logits, state, width=3, length=1)) == 1
    assert beam_search(step, logits, state, width=1, length=1) == [int(np.argmax(logits))]
    with pytest.raises(ValueError, match="width must be an integer >= 1, got 0"):
        beam_search(step, logits, state, width=0, length=3)


def test_length_penalty_changes_only_the_ranking_of_finished_hypotheses():
    step = RNNStep(3)
    logits, state = step.start()
    plain = beam_search(step, logits, state, width=4, length=6, stop_ids=(0,))
    penalised = beam_search(step, logits, state, width=4, length=6, stop_ids=(0,),
                            length_penalty=1.0)
    for seq in (plain, penalised):
        assert 1 <= len(seq) <= 6
        assert seq[-1] == 0 or len(seq) == 6
    # a length penalty never prefers a shorter sequence than the plain score does
    assert len(penalised) >= len(plain)


# ---------------------------------------------------------------------- sample_sequence
def test_sample_sequence_is_reproducible_and_streams():
    step = RNNStep(1)
    logits, state = step.start()
    streamed = []
    a = sample_sequence(step, logits, state, 15, np.random.default_rng(5), temperature=1.3,
                        on_token=streamed.append)
    b = sample_sequence(step, logits, state, 15, np.random.default_rng(5), temperature=1.3)
    c = sample_sequence(step, logits, state, 15, np.random.default_rng(6), temperature=1.3)
    assert a == b == streamed and len(a) == 15
    assert a != c
    assert all(isinstance(t, int) and 0 <= t < step.V for t in a)


def test_sample_sequence_feeds_each_token_back():
    step = RNNStep(2)
    logits, state = step.start()
    seen = []

    def recording_step(ids, st):
        seen.append(int(ids[0]))
        return step(ids, st)

    out = sample_sequence(recording_step, logits, state, 6, np.random.default_rng(0))
    assert len(out) == 6
    assert seen[:5] == out[:5]  # each token is fed back before the next is drawn
