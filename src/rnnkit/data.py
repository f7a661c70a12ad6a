"""Vocabularies, text streams for truncated BPTT, padding with masks, and minibatches.

Letters: N tokens in a corpus, B batch, T steps.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ._checks import check_positive_int, shape_str

WORD_RE = re.compile(r"\w+|[^\w\s]|\n")


def read_text(path) -> str:
    """Read a UTF-8 text file; raise ValueError naming the file if it is not valid text."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {str(path)!r} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{str(path)!r} is not valid UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r});"
            " rnnkit reads UTF-8 text files"
        ) from None
    if "\x00" in text:
        raise ValueError(f"{str(path)!r} looks like a binary file (it contains NUL bytes)")
    if not text:
        raise ValueError(f"{str(path)!r} is empty")
    return text


def dinos_text() -> str:
    """The built-in corpus: the course's 1,536 dinosaur genus names, one per line."""
    return resources.files("rnnkit").joinpath("data/dinos.txt").read_text(encoding="utf-8")


def tokenize_words(text: str) -> list[str]:
    """Split text into words, punctuation marks and newlines."""
    return WORD_RE.findall(text)


class Vocab:
    """A bijection between tokens (characters or words) and ids 0..V-1.

    Args:
        tokens: the tokens in id order.
        level: "char" (decode joins with "") or "word" (joins with spaces).
        unk: a token (in ``tokens``) that unknown tokens map to; None makes unknown tokens
            an error.
    """

    def __init__(self, tokens: Sequence[str], level: str = "char", unk: str | None = None):
        if level not in ("char", "word"):
            raise ValueError(f"level must be 'char' or 'word', got {level!r}")
        tokens = list(tokens)
        if not tokens:
            raise ValueError("a vocabulary needs at least one token")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.tokens = tokens
        self.level = level
        self.index = {t: i for i, t in enumerate(tokens)}
        if unk is not None and unk not in self.index:
            raise ValueError(f"unk token {unk!r} is not in the vocabulary")
        self.unk = unk

    @classmethod
    def from_text(cls, text: str, level: str = "char", max_size: int | None = None,
                  specials: Sequence[str] = ()) -> Vocab:
        """Build from a corpus. Characters: sorted (so '\\n' < ' ' < 'A' ...). Words: by
        frequency (ties alphabetical), at most ``max_size`` with an ``<unk>`` token."""
        if level not in ("char", "word"):
            raise ValueError(f"level must be 'char' or 'word', got {level!r}")
        if not text:
            raise ValueError("text is empty: cannot build a vocabulary")
        if level == "char":
            return cls(list(specials) + sorted(set(text) - set(specials)), "char")
        words = tokenize_words(text)
        counts = Counter(words)
        ordered = sorted(counts, key=lambda w: (-counts[w], w))
        if max_size is not None:
            ordered = ordered[: max(1, max_size - len(specials) - 1)]
        specials = list(specials) + (["<unk>"] if "<unk>" not in specials else [])
        return cls(specials + [w for w in ordered if w not in specials], "word", unk="<unk>")

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and (self.tokens, self.level, self.unk) == (
            other.tokens, other.level, other.unk)

    def split(self, text: str) -> list[str]:
        """Text -> tokens (characters, or words for a word vocabulary)."""
        return list(text) if self.level == "char" else tokenize_words(text)

    def encode(self, text_or_tokens: str | Iterable[str], name: str = "text") -> np.ndarray:
        """Text (or a token list) -> ids (N,) int64. Unknown tokens map to ``unk`` or raise
        ValueError naming them."""
        toks = self.split(text_or_tokens) if isinstance(text_or_tokens, str) else list(
            text_or_tokens)
        idx = self.index
        unk = None if self.unk is None else idx[self.unk]
        out = np.empty(len(toks), dtype=np.int64)
        missing = []
        for i, t in enumerate(toks):
            j = idx.get(t, unk)
            if j is None:
                missing.append(t)
                j = -1
            out[i] = j
        if missing:
            shown = ", ".join(repr(m) for m in sorted(set(missing))[:10])
            raise ValueError(f"{name} has {len(missing)} token(s) outside the vocabulary "
                             f"({shown}); the vocabulary has {len(self)} tokens")
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """ids -> text."""
        toks = [self.tokens[int(i)] for i in ids]
        if self.level == "char":
            return "".join(toks)
        return " ".join(toks).replace(" \n ", "\n").replace(" \n", "\n").replace("\n ", "\n")

    def to_json(self) -> dict:
        """The vocabulary as a JSON-serialisable dict (tokens, level, unk)."""
        return {"tokens": self.tokens, "level": self.level, "unk": self.unk}

    @classmethod
    def from_json(cls, d: dict) -> Vocab:
        """Rebuild a vocabulary from :meth:`to_json`."""
        return cls(d["tokens"], d.get("level", "char"), d.get("unk"))


def split_train_val(ids: np.ndarray, val_fraction: float):
    """Split a token stream: the last ``val_fraction`` is held out (as char-rnn does).

    ids (N,) -> train (N - n_val,), val (n_val,) (None if val_fraction is 0)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(len(ids) * val_fraction))
    if n_val == 0:
        return ids, None
    if n_val >= len(ids) - 1:
        raise ValueError(f"val_fraction {val_fraction} of {len(ids)} tokens leaves too little "
                         "to train on")
    return ids[:-n_val], ids[-n_val:]


class TextStream:
    """Contiguous batches for truncated BPTT (char-rnn layout).

    The stream of N ids is cut into B equal rows read side by side, so that row b of
    batch k+1 continues row b of batch k, and a model may carry its state across batches.
    Batch k is ``x = rows[:, kT:(k+1)T]``, ``y = rows[:, kT+1:(k+1)T+1]``, both (B, T).
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int):
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.seq_len = check_positive_int(seq_len, "seq_len")
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"ids must be a 1-D token stream, got shape {shape_str(ids.shape)}")
        per_row = (len(ids) - 1) // batch_size
        if per_row < 1:
            raise ValueError(f"the text has {len(ids)} tokens: too short for batch_size "
                             f"{batch_size} (needs at least {batch_size + 1})")
        self.seq_len = min(self.seq_len, per_row)
        self.num_batches = per_row // self.seq_len
        n = per_row * batch_size
        self.x_rows = ids[:n].reshape(batch_size, per_row)
        self.y_rows = ids[1 : n + 1].reshape(batch_size, per_row)

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, k: int):
        """The k-th batch: x (B, T), y (B, T) int arrays."""
        if not 0 <= k < self.num_batches:
            raise IndexError(f"batch index {k} outside [0, {self.num_batches})")
        s = slice(k * self.seq_len, (k + 1) * self.seq_len)
        return self.x_rows[:, s], self.y_rows[:, s]

    def __iter__(self):
        for k in range(self.num_batches):
            yield self.batch(k)


def pad_sequences(seqs: Sequence, pad_value: int = 0, max_len: int | None = None,
                  dtype=np.int64):
    """Right-pad a list of 1-D sequences.

    Returns ``padded (B, T)`` and ``mask (B, T)`` bool (True at real steps), T the longest
    length (or ``max_len``, which truncates)."""
    if len(seqs) == 0:
        raise ValueError("seqs is empty: nothing to pad")
    lens = [len(s) for s in seqs]
    if min(lens) == 0:
        raise ValueError(f"seqs[{lens.index(0)}] is empty; every sequence needs a step")
    T = max(lens) if max_len is None else check_positive_int(max_len, "max_len")
    out = np.full((len(seqs), T), pad_value, dtype=dtype)
    mask = np.zeros((len(seqs), T), dtype=bool)
    for i, s in enumerate(seqs):
        n = min(len(s), T)
        out[i, :n] = np.asarray(s)[:n]
        mask[i, :n] = True
    return out, mask


def minibatches(n: int, batch_size: int, rng: np.random.Generator | None = None):
    """Index arrays covering range(n) in batches (shuffled when rng is given)."""
    check_positive_int(n, "n")
    check_positive_int(batch_size, "batch_size")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for s in range(0, n, batch_size):
        yield order[s : s + batch_size]
