"""Vocabularies (UTF-8 characters, words), reading text files, contiguous TBPTT streams,
padding with masks and the train/validation split."""

import json
import string

import numpy as np
import pytest

from rnnkit.data import (
    TextStream,
    Vocab,
    dinos_text,
    minibatches,
    pad_sequences,
    read_text,
    split_train_val,
    tokenize_words,
)

UTF8_TEXT = "Straße café naïve\nÉcole 🦕 dinosaur — 日本語 🦖\n"


# ---------------------------------------------------------------------- Vocab: characters
def test_char_vocab_is_sorted_and_round_trips_non_ascii():
    v = Vocab.from_text(UTF8_TEXT)
    assert v.tokens == sorted(set(UTF8_TEXT))
    assert v.tokens[0] == "\n" and v.tokens[1] == " "  # '\n' < ' ' < letters
    assert {"é", "ß", "🦕", "日"} <= set(v.tokens)
    assert len(v) == len(set(UTF8_TEXT)) and v.level == "char" and v.unk is None
    ids = v.encode(UTF8_TEXT)
    assert ids.dtype == np.int64 and ids.shape == (len(UTF8_TEXT),)
    assert ids.min() >= 0 and ids.max() < len(v)
    assert v.decode(ids) == UTF8_TEXT
    assert v.decode(ids.tolist()) == UTF8_TEXT
    # each emoji is one token (one code point), not four UTF-8 bytes
    assert v.encode("🦕").shape == (1,)


def test_char_vocab_specials_come_first():
    v = Vocab.from_text("banana", specials=["<pad>", "a"])
    assert v.tokens == ["<pad>", "a", "b", "n"]
    assert v.encode(["<pad>", "b"]).tolist() == [0, 2]


def test_char_unknown_tokens_raise_naming_them():
    v = Vocab.from_text("abc")
    with pytest.raises(ValueError, match=r"text has 3 token(s|\(s\)) outside the vocabulary "
                                         r"\('x', 'é'\); the vocabulary has 3 tokens"):
        v.encode("axébx")
    with pytest.raises(ValueError, match=r"prime has 1 token(s|\(s\)) outside the vocabulary "
                                         r"\('z'\)"):
        v.encode("z", name="prime")


def test_dinos_corpus_vocab():
    text = dinos_text()
    lines = text.strip("\n").split("\n")
    assert len(lines) == 1536
    v = Vocab.from_text(text)
    assert v.tokens[0] == "\n" and set(v.tokens[1:]) <= set(string.ascii_letters)
    assert v.decode(v.encode(text)) == text


# ---------------------------------------------------------------------- Vocab: words
WORDS = "the cat sat on the mat . the dog sat too .\nthe end"


def test_word_vocab_by_frequency_with_unk():
    v = Vocab.from_text(WORDS, level="word")
    assert v.level == "word" and v.unk == "<unk>" and v.tokens[0] == "<unk>"
    # "the" x4, then "." and "sat" x2 (ties alphabetical), then the singletons
    assert v.tokens[1:4] == ["the", ".", "sat"]
    assert v.tokens[4:] == sorted(v.tokens[4:])
    ids = v.encode(WORDS)
    assert v.split(v.decode(ids)) == tokenize_words(WORDS)
    assert "\n" in v.decode(ids) and " \n" not in v.decode(ids)
    # unknown words map to <unk>
    assert v.encode("the zebra sat").tolist() == [v.index["the"], 0, v.index["sat"]]


@pytest.mark.parametrize("max_size", [3, 5, 8])
def test_word_vocab_max_size_keeps_the_most_frequent(max_size):
    v = Vocab.from_text(WORDS, level="word", max_size=max_size)
    assert len(v) == max_size
    full = Vocab.from_text(WORDS, level="word")
    assert v.tokens == full.tokens[:max_size]
    ids = v.encode(WORDS)
    kept = set(v.tokens)
    expected = [t if t in kept else "<unk>" for t in tokenize_words(WORDS)]
    assert [v.tokens[i] for i in ids] == expected


def test_tokenize_words():
    assert tokenize_words("Hi, you!\nBye.") == ["Hi", ",", "you", "!", "\n", "Bye", "."]
    assert tokenize_words("café naïve") == ["café", "naïve"]


def test_encode_accepts_a_token_list():
    v = Vocab.from_text(WORDS, level="word")
    assert v.encode(["the", "cat"]).tolist() == [v.index["the"], v.index["cat"]]


# ---------------------------------------------------------------------- Vocab: JSON, errors
@pytest.mark.parametrize("vocab", [Vocab.from_text(UTF8_TEXT),
                                   Vocab.from_text(WORDS, level="word", max_size=5)],
                         ids=["char", "word"])
def test_vocab_json_round_trip(vocab):
    blob = json.dumps(vocab.to_json(), ensure_ascii=False)
    back = Vocab.from_json(json.loads(blob))
    assert back == vocab
    assert back.tokens == vocab.tokens and back.level == vocab.level and back.unk == vocab.unk
    assert back != Vocab(vocab.tokens[::-1], vocab.level, vocab.unk)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Vocab([]), "a vocabulary needs at least one token"),
    (lambda: Vocab(["a", "b", "a"]), "vocabulary tokens must be unique"),
    (lambda: Vocab(["a"], level="byte"), "level must be 'char' or 'word', got 'byte'"),
    (lambda: Vocab(["a"], unk="?"), r"unk token '\?' is not in the vocabulary"),
    (lambda: Vocab.from_text(""), "text is empty: cannot build a vocabulary"),
    (lambda: Vocab.from_text("abc", level="chars"), "level must be 'char' or 'word', got 'chars'"),
])
def test_vocab_bad_input(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ---------------------------------------------------------------------- read_text
def test_read_text_utf8_round_trip(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(UTF8_TEXT.encode("utf-8"))
    text = read_text(path)
    assert text == UTF8_TEXT
    v = Vocab.from_text(text)
    assert v.decode(v.encode(read_text(str(path)))) == UTF8_TEXT


def test_read_text_invalid_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café".encode("latin-1"))  # b"caf\xe9"
    with pytest.raises(ValueError, match=r"latin1.txt' is not valid UTF-8 text \(byte 3: "
                                         r"b'\\xe9'\); rnnkit reads UTF-8 text files"):
        read_text(path)


def test_read_text_binary_file(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"model.bin' is not valid UTF-8 text"):
        read_text(path)
    path.write_bytes(b"abc\x00\x01\x02def")  # valid UTF-8, yet binary
    with pytest.raises(ValueError, match=r"model.bin' looks like a binary file \(it contains "
                                         r"NUL bytes\)"):
        read_text(path)


def test_read_text_empty_and_missing(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.txt' is empty"):
        read_text(path)
    with pytest.raises(FileNotFoundError, match=r"text file .*nope.txt' does not exist"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_text(tmp_path)


# ---------------------------------------------------------------------- TextStream
@pytest.mark.parametrize(("N", "B", "T"), [(101, 4, 5), (50, 3, 4), (20, 1, 7), (10, 3, 10)])
def test_text_stream_rows_are_contiguous(N, B, T):
    ids = np.arange(N)
    stream = TextStream(ids, B, T)
    batches = list(stream)
    assert len(batches) == len(stream) >= 1
    per_row = (N - 1) // B
    Tx = min(T, per_row)
    for k, (x, y) in enumerate(batches):
        assert x.shape == y.shape == (B, Tx)
        np.testing.assert_array_equal(y, x + 1)  # y is x shifted by one token
        np.testing.assert_array_equal(x, stream.batch(k)[0])
        if k + 1 < len(batches):
            # row b of batch k+1 continues row b of batch k
            np.testing.assert_array_equal(batches[k + 1][0][:, 0], x[:, -1] + 1)
    rows = np.concatenate([x for x, _ in batches], axis=1)
    for b in range(B):
        np.testing.assert_array_equal(rows[b], np.arange(b * per_row, b * per_row + rows.shape[1]))
    # no token is read twice; every token before the cut is read once
    assert len(np.unique(rows)) == rows.size


def test_text_stream_on_real_text():
    text = dinos_text()[:500]
    v = Vocab.from_text(text)
    ids = v.encode(text)
    stream = TextStream(ids, 3, 8)
    x0, y0 = stream.batch(0)
    x1, _ = stream.batch(1)
    per_row = (len(ids) - 1) // 3
    for b in range(3):
        assert v.decode(x0[b]) + v.decode(x1[b]) == text[b * per_row: b * per_row + 16]
        assert v.decode(y0[b]) == text[b * per_row + 1: b * per_row + 9]


def test_text_stream_bad_input():
    with pytest.raises(ValueError, match=r"the text has 3 tokens: too short for batch_size 4 "
                                         r"\(needs at least 5\)"):
        TextStream(np.arange(3), 4, 2)
    with pytest.raises(ValueError, match=r"ids must be a 1-D token stream, got shape \(2, 5\)"):
        TextStream(np.zeros((2, 5), int), 1, 2)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        TextStream(np.arange(10), 0, 2)
    with pytest.raises(TypeError, match="seq_len must be an integer"):
        TextStream(np.arange(10), 2, 2.5)
    stream = TextStream(np.arange(30), 2, 5)
    with pytest.raises(IndexError, match=r"batch index 2 outside \[0, 2\)"):
        stream.batch(2)


# ---------------------------------------------------------------------- padding
def test_pad_sequences_and_mask():
    seqs = [[5, 6, 7], [1], np.array([2, 3])]
    padded, mask = pad_sequences(seqs, pad_value=0)
    np.testing.assert_array_equal(padded, [[5, 6, 7], [1, 0, 0], [2, 3, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    assert padded.dtype == np.int64 and mask.dtype == bool
    np.testing.assert_array_equal(mask.sum(axis=1), [len(s) for s in seqs])


def test_pad_sequences_pad_value_max_len_dtype():
    padded, mask = pad_sequences([[1, 2, 3, 4], [5]], pad_value=-1, max_len=3)
    np.testing.assert_array_equal(padded, [[1, 2, 3], [5, -1, -1]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0]])
    padded, mask = pad_sequences([[0.5, 1.5], [2.5]], max_len=4, dtype=np.float32)
    assert padded.dtype == np.float32 and padded.shape == (2, 4)
    np.testing.assert_array_equal(padded[0], [0.5, 1.5, 0, 0])


def test_pad_sequences_bad_input():
    with pytest.raises(ValueError, match="seqs is empty: nothing to pad"):
        pad_sequences([])
    with pytest.raises(ValueError, match=r"seqs\[1\] is empty; every sequence needs a step"):
        pad_sequences([[1], []])
    with pytest.raises(ValueError, match="max_len must be an integer >= 1, got 0"):
        pad_sequences([[1]], max_len=0)


# ---------------------------------------------------------------------- split, minibatches
@pytest.mark.parametrize(("frac", "n_val"), [(0.1, 10), (0.25, 25), (0.0, 0), (0.004, 0)])
def test_split_train_val(frac, n_val):
    ids = np.arange(100)
    train, val = split_train_val(ids, frac)
    if n_val == 0:
        assert val is None and train is ids
        return
    assert len(val) == n_val and len(train) == 100 - n_val
    np.testing.assert_array_equal(np.concatenate([train, val]), ids)  # the last part is held out


@pytest.mark.parametrize("frac", [1.0, -0.1, 1.5])
def test_split_train_val_bad_fraction(frac):
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        split_train_val(np.arange(10), frac)


def test_minibatches_cover_everything_once():
    plain = list(minibatches(10, 4))
    assert [b.tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    a = list(minibatches(10, 3, np.random.default_rng(0)))
    b = list(minibatches(10, 3, np.random.default_rng(0)))
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert sorted(np.concatenate(a).tolist()) == list(range(10))
    assert np.concatenate(a).tolist() != list(range(10))
