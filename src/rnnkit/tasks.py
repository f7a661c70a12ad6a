"""Synthetic long-range benchmark tasks, generated from a seed.

Each task is a function of a seed (or a ``np.random.Generator``) that returns numpy arrays
or lists ready for :class:`rnnkit.train.ArrayData` / :class:`rnnkit.train.ListData`; the
same seed gives the same data. Letters: N examples, T steps, K symbols to remember.

=========================  =============================  ====================================
task                       architecture                   what it measures
=========================  =============================  ====================================
:func:`adding_problem`     many-to-one regression         memory of two marked values
:func:`copy_memory`        many-to-many, unidirectional   recall of K symbols after a delay
:func:`future_tagging`     many-to-many tagging           a label that only the future decides
:func:`date_pairs`         sequence to sequence           human-written dates -> ISO 8601
:func:`noisy_date_pairs`   sequence to sequence           a date found in noisy text -> ISO
:func:`copy_pairs`         sequence to sequence           copy or reverse 50-100 symbols
:func:`parity`             many-to-one, variable length   a running XOR under padding masks
=========================  =============================  ====================================

Token-id tasks reserve id 0 for padding (``PAD``), which the models' embeddings mask.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np

from ._checks import as_rng, check_positive_int
from .data import Vocab, pad_sequences

PAD = 0  # the padding id of every token-id task

__all__ = [
    "PAD", "adding_problem", "adding_baseline_mse",
    "COPY_BLANK", "COPY_MARKER", "copy_memory", "copy_baseline_loss",
    "future_tagging",
    "DATE_FORMATS", "format_date", "date_range", "split_dates", "date_pairs", "date_vocabs",
    "noisy_date_pairs", "noisy_date_vocabs",
    "PAIR_BOS", "PAIR_EOS", "copy_pairs",
    "parity", "collate_classification",
    "sequence_accuracy",
]


# --------------------------------------------------------------------------- adding problem
def adding_problem(n: int, T: int, rng=None, dtype=np.float32):
    """The adding problem (Hochreiter & Schmidhuber 1997, experiment 4), in the
    formulation of Le, Jaitly & Hinton (2015) and Arjovsky, Shah & Bengio (2016).

    Each example is T steps of two features: a value ``x[:, t, 0] ~ U[0, 1)`` and a marker
    ``x[:, t, 1]`` that is 1 at exactly two steps, one drawn uniformly from the first half
    ``[0, T//2)`` and one from the second half ``[T//2, T)``, and 0 elsewhere. The target
    is the sum of the two marked values, so the first marked value must be kept for at
    least ``T - T//2`` steps. Predicting the constant 1.0 scores MSE ``1/6 ~ 0.167``
    (the variance of a sum of two independent U[0, 1)).

    Args:
        n: N, the number of examples.
        T: steps per example (>= 2).
        rng: a seed or ``np.random.Generator``.
        dtype: of the arrays.

    Returns:
        x (N, T, 2) and y (N, 1).
    """
    n = check_positive_int(n, "n")
    T = check_positive_int(T, "T", 2)
    rng = as_rng(rng)
    x = np.zeros((n, T, 2), dtype=dtype)
    x[:, :, 0] = rng.random((n, T))
    half = T // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, T, size=n)
    rows = np.arange(n)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    y = (x[rows, first, 0] + x[rows, second, 0]).astype(dtype)[:, None]
    return x, y


def adding_baseline_mse() -> float:
    """MSE of always predicting 1.0 on the adding problem: Var(U1 + U2) = 2/12."""
    return 1.0 / 6.0


# --------------------------------------------------------------------------- copy memory
COPY_BLANK = 1  # input id (and tag 0) of the blank symbol
COPY_MARKER = 2  # input id of the "recall now" marker
_COPY_FIRST = 3  # input id of data symbol 0


def copy_memory(n: int, delay: int, num_symbols: int = 10, alphabet: int = 8, rng=None):
    """The copy-memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016).

    The input shows K = ``num_symbols`` random data symbols, then ``delay - 1`` blanks, a
    marker, and K more blanks; the output is blank everywhere except the last K steps,
    which must reproduce the K data symbols in order. Length ``L = delay + 2K``: the first
    symbol must be kept for ``delay + K`` steps. Arjovsky et al. use K = 10, ``alphabet``
    8 and delay T in {100, 200, 300, 500}.

    Input ids: ``PAD`` 0 (never produced), ``COPY_BLANK`` 1, ``COPY_MARKER`` 2, data symbol
    s in [0, alphabet) -> ``3 + s``; the input vocabulary has ``alphabet + 3`` ids. Tags:
    0 blank, data symbol s -> ``s + 1``; ``alphabet + 1`` tags.

    Args:
        n: N, the number of examples.
        delay: T >= 1, steps from the last data symbol to the marker.
        num_symbols: K >= 1.
        alphabet: data symbols to draw from (>= 2).
        rng: a seed or ``np.random.Generator``.

    Returns:
        x (N, L) int64 input ids and y (N, L) int64 tags.
    """
    n = check_positive_int(n, "n")
    delay = check_positive_int(delay, "delay")
    K = check_positive_int(num_symbols, "num_symbols")
    A = check_positive_int(alphabet, "alphabet", 2)
    rng = as_rng(rng)
    L = delay + 2 * K
    data = rng.integers(0, A, size=(n, K))
    x = np.full((n, L), COPY_BLANK, dtype=np.int64)
    x[:, :K] = data + _COPY_FIRST
    x[:, K + delay - 1] = COPY_MARKER
    y = np.zeros((n, L), dtype=np.int64)
    y[:, L - K:] = data + 1
    return x, y


def copy_baseline_loss(delay: int, num_symbols: int = 10, alphabet: int = 8) -> float:
    """Mean cross-entropy per step of the memoryless answer (Arjovsky et al. 2016): blank
    until the marker, then a uniform guess, ``K log(alphabet) / (delay + 2K)`` nats."""
    return num_symbols * float(np.log(alphabet)) / (delay + 2 * num_symbols)


# --------------------------------------------------------------------------- future tagging
def future_tagging(n: int, T: int, ahead: int = 2, num_symbols: int = 8, rng=None):
    """Tag every token with the symbol ``ahead`` steps later: a label that only the future
    determines (the seeds' "He said Teddy Roosevelt ..." vs "He said teddy bears ...").

    Tokens are i.i.d. uniform over ``num_symbols`` symbols, so a model that reads only the
    past can do no better than chance, ``1/num_symbols``, at the tagged positions, while a
    bidirectional model can read the answer off its reverse direction.

    Ids: ``PAD`` 0, symbol s -> ``s + 1``. Tags: ``y[:, t] = x[:, t + ahead]`` (the same
    id) for ``t < T - ahead``; the last ``ahead`` steps, which have no token that far
    ahead, get tag 0 ("none"). Use ``y > 0`` to score only the tagged positions.

    Args:
        n: N, the number of examples.
        T: steps per example (> ahead).
        ahead: how far ahead the label lies (>= 1).
        num_symbols: symbols to draw from (>= 2); ``num_symbols + 1`` ids and tags.
        rng: a seed or ``np.random.Generator``.

    Returns:
        x (N, T) int64 ids and y (N, T) int64 tags.
    """
    n = check_positive_int(n, "n")
    ahead = check_positive_int(ahead, "ahead")
    T = check_positive_int(T, "T", ahead + 1)
    V = check_positive_int(num_symbols, "num_symbols", 2)
    rng = as_rng(rng)
    x = rng.integers(1, V + 1, size=(n, T)).astype(np.int64)
    y = np.zeros_like(x)
    y[:, : T - ahead] = x[:, ahead:]
    return x, y


# --------------------------------------------------------------------------- dates
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(d: int) -> str:
    suffix = "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


# Each format maps a date to text; month and weekday names are English, independent of
# the locale (``datetime.date.weekday()`` gives the weekday, Monday = 0).
_FORMATTERS = {
    "d Month yyyy": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",  # 3 May 1979
    "dth of Month yyyy": lambda d: f"{_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    "Month d, yyyy": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",  # May 3, 1979
    "Weekday, Month d, yyyy": lambda d: (f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} "
                                         f"{d.day}, {d.year}"),  # Thursday, May 3, 1979
    "mm/dd/yy": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",  # 05/03/79
    "yyyy-mm-dd": lambda d: d.isoformat(),  # 1979-05-03
    "dd.mm.yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",  # 03.05.1979
    "Wkd d Mon yyyy": lambda d: (f"{WEEKDAYS[d.weekday()][:3]} {d.day} "
                                 f"{MONTHS[d.month - 1][:3]} {d.year}"),  # Thu 3 May 1979
    "Month dth, yyyy": lambda d: f"{MONTHS[d.month - 1]} {_ordinal(d.day)}, {d.year}",
    "d-Mon-yy": lambda d: f"{d.day}-{MONTHS[d.month - 1][:3]}-{d.year % 100:02d}",  # 3-May-79
    "m/d/yyyy": lambda d: f"{d.month}/{d.day}/{d.year}",  # 5/3/1979
    "DD MONTH YYYY": lambda d: f"{d.day:02d} {MONTHS[d.month - 1].upper()} {d.year}",
    "yyyy/mm/dd": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",  # 1979/05/03
    "Weekday dth Month yyyy": lambda d: (f"{WEEKDAYS[d.weekday()]} {_ordinal(d.day)} "
                                         f"{MONTHS[d.month - 1]} {d.year}"),
}

#: The names of the source formats, e.g. ``"Weekday, Month d, yyyy"`` -> "Thursday, May 3,
#: 1979". Two-digit years (``yy``) are read in the default range 1950-2049 (50 -> 1950,
#: 49 -> 2049); numeric day-month orders are told apart by the separator (``/`` is US
#: month/day, ``.`` is day.month).
DATE_FORMATS: tuple[str, ...] = tuple(_FORMATTERS)

DEFAULT_FIRST_DATE = dt.date(1950, 1, 1)
DEFAULT_LAST_DATE = dt.date(2049, 12, 31)


def format_date(date: dt.date, fmt: str) -> str:
    """Write ``date`` in one of :data:`DATE_FORMATS`."""
    if fmt not in _FORMATTERS:
        raise ValueError(f"fmt must be one of {', '.join(map(repr, DATE_FORMATS))}; got {fmt!r}")
    return _FORMATTERS[fmt](date)


def date_range(first: dt.date = DEFAULT_FIRST_DATE, last: dt.date = DEFAULT_LAST_DATE
               ) -> list[dt.date]:
    """Every date from ``first`` to ``last`` inclusive. With a two-digit-year format the
    range must lie within one century window (the default 1950-2049 does)."""
    if last < first:
        raise ValueError(f"last ({last}) is before first ({first})")
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]


def split_dates(dates: Sequence[dt.date], test_fraction: float = 0.1, rng=None):
    """Split dates at random into disjoint (train, test) lists, each sorted."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    dates = list(dates)
    if len(dates) < 2:
        raise ValueError(f"dates holds {len(dates)} dates; need at least 2 to split")
    perm = as_rng(rng).permutation(len(dates))
    n_test = min(max(1, int(round(len(dates) * test_fraction))), len(dates) - 1)
    test = sorted(dates[i] for i in perm[:n_test])
    train = sorted(dates[i] for i in perm[n_test:])
    return train, test


def date_pairs(dates: Sequence[dt.date], n: int | None = None, formats=None, rng=None
               ) -> list[tuple[str, str]]:
    """Human-written dates and their ISO 8601 form: ``("3rd of May 1979", "1979-05-03")``.

    Args:
        dates: the dates to draw from (e.g. one side of :func:`split_dates`).
        n: examples to draw (dates drawn with replacement); None: every date once.
        formats: names from :data:`DATE_FORMATS` (default all); each example's format is
            drawn uniformly.
        rng: a seed or ``np.random.Generator``.

    Returns:
        a list of N (source text, target text) pairs.
    """
    dates = list(dates)
    if not dates:
        raise ValueError("dates is empty: nothing to write")
    formats = list(DATE_FORMATS if formats is None else formats)
    if not formats:
        raise ValueError("formats is empty: give at least one name from DATE_FORMATS")
    for f in formats:
        if f not in _FORMATTERS:
            raise ValueError(f"unknown date format {f!r}; known: {', '.join(DATE_FORMATS)}")
    rng = as_rng(rng)
    if n is None:
        idx = np.arange(len(dates))
    else:
        idx = rng.integers(0, len(dates), size=check_positive_int(n, "n"))
    which = rng.integers(0, len(formats), size=len(idx))
    return [(format_date(dates[i], formats[f]), dates[i].isoformat())
            for i, f in zip(idx, which, strict=True)]


def date_vocabs() -> tuple[Vocab, Vocab]:
    """Character vocabularies of the date task: (source, target).

    Source: ``<pad>`` (id 0) and every character any format writes. Target: ``<pad>`` 0,
    ``<bos>`` 1, ``<eos>`` 2, the digits and ``-``."""
    # one pass over a leap year and every weekday covers every character of every format
    chars = set()
    for d in date_range(dt.date(2000, 1, 1), dt.date(2000, 12, 31)):
        for f in DATE_FORMATS:
            chars.update(format_date(d, f))
    src = Vocab(["<pad>", *sorted(chars)], level="char")
    tgt = Vocab(["<pad>", "<bos>", "<eos>", *"0123456789", "-"], level="char")
    return src, tgt


# --------------------------------------------------------------------------- noisy dates
# Filler of the noisy-date sentences: plain words, and phrases with numbers that are not
# dates (none uses a month name, a weekday, "/" or a day-month-year pattern).
_NOISE_WORDS = ("please", "see", "the", "report", "was", "sent", "and", "filed", "under",
                "our", "records", "thanks", "from", "office", "team", "update", "with",
                "about", "payment", "copy", "attached", "delivery", "confirmed", "moved",
                "kept", "in", "at", "by", "client", "visit", "note", "as", "agreed", "checked")
_NOISE_NOUNS = ("invoice", "order", "room", "ticket", "flight", "ref", "item", "parcel",
                "booking", "account", "page", "gate", "seat", "table", "unit", "box", "case",
                "line", "batch", "desk")
_DATE_INTROS = ("on", "dated", "for", "due", "from", "until", "since", "by")


def _distractor(rng: np.random.Generator) -> str:
    """One phrase with numbers that are not a date: "room 12", "order #5521", "14:30",
    "$12.50", "37 items", "555-0192", "12%", "since 1987", "version 2.14", ..."""
    noun = _NOISE_NOUNS[rng.integers(len(_NOISE_NOUNS))]
    k = int(rng.integers(9))
    n = int(rng.integers(1, 10 ** int(rng.integers(1, 5))))
    if k == 0:
        return f"{noun} {n}"
    if k == 1:
        return f"{noun} #{n}"
    if k == 2:
        return f"at {rng.integers(24):02d}:{rng.integers(60):02d}"
    if k == 3:
        return f"${n}.{rng.integers(100):02d}"
    if k == 4:
        return f"{n} {noun}s"
    if k == 5:
        return f"call {rng.integers(100, 1000)}-{rng.integers(10000):04d}"
    if k == 6:
        return f"{rng.integers(1, 100)}%"
    if k == 7:  # a year-like number without a day or month
        return f"{noun} {rng.integers(DEFAULT_FIRST_DATE.year, DEFAULT_LAST_DATE.year + 1)}"
    return f"version {rng.integers(1, 10)}.{rng.integers(100)}"


def _noisy_sentence(date_text: str, min_len: int, max_len: int, rng) -> str:
    """date_text inside filler words and distractor numbers, min_len..max_len characters."""
    target = int(rng.integers(min_len, max_len + 1))
    date = f"{_DATE_INTROS[rng.integers(len(_DATE_INTROS))]} {date_text}"
    while True:
        before: list[str] = []
        after: list[str] = []
        text = date + "."
        while len(text) < target:
            phrase = (_distractor(rng) if rng.random() < 0.4
                      else _NOISE_WORDS[rng.integers(len(_NOISE_WORDS))])
            side = before if rng.random() < 0.5 else after
            side.append(phrase)
            longer = " ".join([*before, date + ("," if after else ""), *after]) + "."
            if len(longer) > max_len:  # the phrase does not fit: stop short of the target
                side.pop()
                break
            text = longer
        if min_len <= len(text) <= max_len:
            return text[0].upper() + text[1:]


def noisy_date_pairs(dates: Sequence[dt.date], n: int | None = None, formats=None,
                     min_len: int = 40, max_len: int = 120, rng=None) -> list[tuple[str, str]]:
    """A date inside a longer noisy sentence, and its ISO form: ``("Room 12 please see
    on 3rd of May 1979, order #5521 at 14:30 kept.", "1979-05-03")``.

    The sentence (``min_len``-``max_len`` characters) holds the date, written in one of
    ``formats`` after a word such as "on" or "dated", among filler words and distractor
    numbers that are not dates (room and order numbers, times, amounts, percentages,
    phone numbers, lone year-like numbers such as "case 1987"). The model must find the
    date before it can rewrite it.

    Args:
        dates, n, formats, rng: as in :func:`date_pairs`.
        min_len, max_len: the range of sentence lengths (max_len >= 40, room for the
            longest date and its introducing word).

    Returns:
        a list of N (sentence, "yyyy-mm-dd") pairs; :func:`noisy_date_vocabs` holds their
        characters.
    """
    min_len = check_positive_int(min_len, "min_len")
    max_len = check_positive_int(max_len, "max_len", max(min_len, 40))
    rng = as_rng(rng)
    pairs = date_pairs(dates, n, formats, rng)
    return [(_noisy_sentence(src, min_len, max_len, rng), tgt) for src, tgt in pairs]


def noisy_date_vocabs() -> tuple[Vocab, Vocab]:
    """Character vocabularies of :func:`noisy_date_pairs`: (source, target). Source:
    ``<pad>`` (id 0) and every character a sentence can hold; target as
    :func:`date_vocabs`."""
    src, tgt = date_vocabs()
    chars = set(src.tokens[1:]) | set("0123456789 .,:#$%-")
    for w in (*_NOISE_WORDS, *_NOISE_NOUNS, *_DATE_INTROS, "at", "call", "version"):
        chars.update(w + w.capitalize() + "s")
    return Vocab(["<pad>", *sorted(chars)], level="char"), tgt


# --------------------------------------------------------------------------- long copy
PAIR_BOS = 1  # target start id of copy_pairs
PAIR_EOS = 2  # target end id of copy_pairs
_PAIR_FIRST = 3  # id of symbol 0 in copy_pairs


def copy_pairs(n: int, min_len: int = 50, max_len: int = 100, num_symbols: int = 10,
               reverse: bool = False, rng=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sequence to sequence copy (or reversal) of long random strings (Sutskever et al.
    2014 reversed their source sentences; Graves et al. 2014 copied long strings).

    Each source is ``len ~ U{min_len..max_len}`` symbols drawn uniformly from
    ``num_symbols``; the target is the same string (``reverse``: backwards). A model that
    passes the source only through a fixed-size state must hold ``len log2(num_symbols)``
    bits (332 for 100 symbols of 10); attention can read each symbol where it is.

    Ids (both sides): ``PAD`` 0, ``PAIR_BOS`` 1, ``PAIR_EOS`` 2 (target side), symbol s ->
    ``3 + s``; vocabularies of ``num_symbols + 3`` ids.

    Returns:
        a list of N pairs ``(src (len,) int64, tgt (len,) int64)``, for
        ``Seq2Seq.make_batch``.
    """
    n = check_positive_int(n, "n")
    min_len = check_positive_int(min_len, "min_len")
    max_len = check_positive_int(max_len, "max_len", min_len)
    A = check_positive_int(num_symbols, "num_symbols", 2)
    rng = as_rng(rng)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    out = []
    for length in lengths:
        s = rng.integers(0, A, size=int(length)).astype(np.int64) + _PAIR_FIRST
        out.append((s, s[::-1].copy() if reverse else s.copy()))
    return out


# --------------------------------------------------------------------------- parity
def parity(n: int, min_len: int = 1, max_len: int = 20, rng=None) -> list[tuple[np.ndarray, int]]:
    """Parity of bit strings of random length: many-to-one classification with masks.

    Each example is a string of ``len ~ U{min_len..max_len}`` random bits, written as ids
    (bit 0 -> 1, bit 1 -> 2; ``PAD`` 0 is padding), labelled 1 if it holds an odd number
    of ones, else 0. The label flips with every single bit, so no short summary of the
    string (its length, a prefix) beats chance (50%).

    Returns:
        a list of N pairs ``(ids (len,) int64, label)``; batch them with
        :func:`collate_classification`.
    """
    n = check_positive_int(n, "n")
    min_len = check_positive_int(min_len, "min_len")
    max_len = check_positive_int(max_len, "max_len", min_len)
    rng = as_rng(rng)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    out = []
    for length in lengths:
        bits = rng.integers(0, 2, size=int(length))
        out.append(((bits + 1).astype(np.int64), int(bits.sum() % 2)))
    return out


def collate_classification(items, pad_id: int = PAD) -> dict:
    """A list of ``(ids (len,), label)`` -> ``{"x" (B, T_max), "mask" (B, T_max) bool,
    "y" (B,)}``, right-padded with ``pad_id`` (for :class:`rnnkit.train.ListData`)."""
    x, mask = pad_sequences([ids for ids, _ in items], pad_id)
    return {"x": x, "mask": mask, "y": np.array([label for _, label in items], dtype=np.int64)}


# --------------------------------------------------------------------------- metrics
def sequence_accuracy(pred, target, mask=None) -> float:
    """Fraction of rows whose every (unmasked) position is right.

    pred, target (N, T) ints; mask (N, T) bool or None (all positions count)."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {pred.shape}, target {target.shape}; they must match")
    ok = pred == target
    if mask is not None:
        ok |= ~np.asarray(mask, dtype=bool)
    return float(ok.reshape(len(ok), -1).all(axis=1).mean())
