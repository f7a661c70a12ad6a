"""The benchmark tasks: their generators, and small runs that show the models learn them.

The learning tests use the smallest settings that still pass honestly, with fixed seeds
and step budgets (so that the result does not depend on the machine's speed); the full
runs are in ``examples/`` and their results in ``docs/tasks.md``. Where the claim is that
a model fails (a tanh RNN on the copy task, a unidirectional tagger on future tags), the
failure is asserted too.
"""

import datetime as dt

import numpy as np
import pytest

from rnnkit import tasks
from rnnkit.models import Seq2Seq, SequenceClassifier, SequenceRegressor, SequenceTagger
from rnnkit.optim import Adam
from rnnkit.train import ArrayData, ListData, TrainConfig, Trainer


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    # the matrices are small: a multi-threaded BLAS only adds contention (several times
    # slower on a busy 2-core machine), so the learning runs use one thread
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _fit(model, data, steps, lr, clip=1.0):
    trainer = Trainer(model, Adam(model.params, lr=lr), data, None,
                      TrainConfig(steps=steps, clip_value=clip, progress=False, log_every=0),
                      log=lambda msg: None)
    return trainer.fit()


# --------------------------------------------------------------------------- generators
def test_adding_problem_layout():
    x, y = tasks.adding_problem(500, 12, rng=3)
    assert x.shape == (500, 12, 2) and y.shape == (500, 1) and x.dtype == np.float32
    marks = x[:, :, 1]
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert (marks.sum(axis=1) == 2).all()
    assert (marks[:, :6].sum(axis=1) == 1).all() and (marks[:, 6:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=1), rtol=1e-6)
    assert ((x[:, :, 0] >= 0) & (x[:, :, 0] < 1)).all()
    x2, y2 = tasks.adding_problem(500, 12, rng=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_adding_problem_trivial_answer_scores_one_sixth():
    _, y = tasks.adding_problem(200_000, 4, rng=0, dtype=np.float64)
    assert abs(np.mean((y - 1.0) ** 2) - tasks.adding_baseline_mse()) < 0.003


def test_copy_memory_layout():
    K, delay, A = 4, 7, 5
    x, y = tasks.copy_memory(50, delay, K, A, rng=1)
    L = delay + 2 * K
    assert x.shape == y.shape == (50, L)
    data = x[:, :K] - 3
    assert ((data >= 0) & (data < A)).all()
    assert (x[:, K + delay - 1] == tasks.COPY_MARKER).all()
    rest = np.delete(x, list(range(K)) + [K + delay - 1], axis=1)
    assert (rest == tasks.COPY_BLANK).all()
    assert (y[:, : L - K] == 0).all()
    np.testing.assert_array_equal(y[:, L - K:], data + 1)
    assert tasks.copy_baseline_loss(100, 10, 8) == pytest.approx(10 * np.log(8) / 120)


def test_future_tagging_labels_come_from_the_future():
    x, y = tasks.future_tagging(30, 9, ahead=3, num_symbols=5, rng=2)
    assert x.shape == y.shape == (30, 9)
    assert x.min() >= 1 and x.max() <= 5
    np.testing.assert_array_equal(y[:, :6], x[:, 3:])
    assert (y[:, 6:] == 0).all()
    with pytest.raises(ValueError, match="T must be"):
        tasks.future_tagging(3, 3, ahead=3)


def test_date_formats_are_right_and_weekdays_computed():
    d = dt.date(1979, 5, 3)
    written = {f: tasks.format_date(d, f) for f in tasks.DATE_FORMATS}
    assert len(tasks.DATE_FORMATS) >= 8
    assert len(set(written.values())) == len(written)  # every format writes differently
    assert written["Weekday, Month d, yyyy"] == "Thursday, May 3, 1979"
    assert written["dth of Month yyyy"] == "3rd of May 1979"
    assert written["mm/dd/yy"] == "05/03/79"
    assert written["yyyy-mm-dd"] == "1979-05-03"
    # read back with the C library's parser: every format determines its date
    patterns = {"d Month yyyy": "%d %B %Y", "Month d, yyyy": "%B %d, %Y",
                "Weekday, Month d, yyyy": "%A, %B %d, %Y", "mm/dd/yy": "%m/%d/%y",
                "yyyy-mm-dd": "%Y-%m-%d", "dd.mm.yyyy": "%d.%m.%Y", "d-Mon-yy": "%d-%b-%y",
                "Wkd d Mon yyyy": "%a %d %b %Y", "m/d/yyyy": "%m/%d/%Y",
                "DD MONTH YYYY": "%d %B %Y", "yyyy/mm/dd": "%Y/%m/%d"}
    rng = np.random.default_rng(0)
    every = tasks.date_range()
    for i in rng.integers(0, len(every), 200):
        day = every[i]
        for f, p in patterns.items():
            text = tasks.format_date(day, f)
            got = dt.datetime.strptime(text, p).date()
            if "%y" in p:  # the C library's pivot is 1969; ours is 1950
                got = got.replace(year=1900 + got.year % 100 if got.year % 100 >= 50
                                  else 2000 + got.year % 100)
            assert got == day, (f, text)
            if "%A" in p or "%a" in p:
                assert text.split()[0].rstrip(",")[:3] == day.strftime("%a")
    assert tasks.format_date(dt.date(2011, 12, 11), "Month dth, yyyy") == "December 11th, 2011"
    assert tasks.format_date(dt.date(2022, 1, 22), "Weekday dth Month yyyy") == \
        "Saturday 22nd January 2022"
    with pytest.raises(ValueError, match="fmt must be one of"):
        tasks.format_date(d, "dd/mm/yyyy")


def test_date_pairs_split_and_vocabularies():
    train, test = tasks.split_dates(tasks.date_range(), 0.1, rng=0)
    assert not set(train) & set(test)
    assert len(train) + len(test) == 36525 and len(test) == 3652
    pairs = tasks.date_pairs(test, n=300, rng=1)
    assert len(pairs) == 300
    src_v, tgt_v = tasks.date_vocabs()
    assert src_v.tokens[0] == tgt_v.tokens[0] == "<pad>"
    assert tgt_v.tokens[1:3] == ["<bos>", "<eos>"]
    for src, tgt in pairs:
        assert dt.date.fromisoformat(tgt) in set(test)
        src_v.encode(src)  # raises if a character is missing
        assert tgt_v.decode(tgt_v.encode(tgt)) == tgt
    assert tasks.date_pairs(test, n=300, rng=1) == pairs
    assert len(tasks.date_pairs(test[:5])) == 5
    with pytest.raises(ValueError, match="unknown date format"):
        tasks.date_pairs(test, 3, formats=["nope"])


def test_noisy_date_pairs_hide_one_date_among_numbers():
    import re

    train, test = tasks.split_dates(tasks.date_range(), 0.1, rng=0)
    pairs = tasks.noisy_date_pairs(test, 2000, rng=3)
    assert pairs == tasks.noisy_date_pairs(test, 2000, rng=3)
    src_v, tgt_v = tasks.noisy_date_vocabs()
    lengths = [len(s) for s, _ in pairs]
    assert min(lengths) >= 40 and max(lengths) <= 120 and max(lengths) - min(lengths) > 60
    names = re.compile("|".join(tasks.MONTHS + tuple(m.upper() for m in tasks.MONTHS)
                                + tuple(w[:3] for w in tasks.WEEKDAYS)))
    numbers = 0
    for sentence, iso in pairs:
        day = dt.date.fromisoformat(iso)
        assert day in set(test)
        src_v.encode(sentence)  # raises if a character is missing
        written = [t for t in (tasks.format_date(day, f) for f in tasks.DATE_FORMATS)
                   if t in sentence]
        assert written, sentence
        rest = sentence.replace(max(written, key=len), " ")
        # what is left is not a date: no month or weekday names, no d/m/y groups
        assert not names.search(rest) and not re.search(r"\d+[/.-]\d+[/.-]\d+", rest), rest
        numbers += len(re.findall(r"\d+", rest))
    assert numbers / len(pairs) > 2  # distractor numbers around the date
    short = tasks.noisy_date_pairs(test, 50, ["mm/dd/yy"], min_len=40, max_len=45, rng=4)
    assert all(40 <= len(s) <= 45 for s, _ in short)
    with pytest.raises(ValueError, match="max_len must be an integer >= 40, got 30"):
        tasks.noisy_date_pairs(test, 3, max_len=30)


@pytest.mark.parametrize("reverse", [False, True])
def test_copy_pairs(reverse):
    pairs = tasks.copy_pairs(300, 50, 100, num_symbols=10, reverse=reverse, rng=5)
    assert pairs[0][0].tolist() == tasks.copy_pairs(300, 50, 100, 10, reverse, 5)[0][0].tolist()
    lengths = [len(s) for s, _ in pairs]
    assert min(lengths) >= 50 and max(lengths) <= 100 and len(set(lengths)) > 30
    for src, tgt in pairs:
        assert src.dtype == tgt.dtype == np.int64
        assert src.min() >= 3 and src.max() < 13  # PAD, PAIR_BOS, PAIR_EOS not used
        np.testing.assert_array_equal(tgt, src[::-1] if reverse else src)
    with pytest.raises(ValueError, match="max_len must be an integer >= 50, got 20"):
        tasks.copy_pairs(3, 50, 20)


def test_parity_and_collate():
    items = tasks.parity(200, 3, 9, rng=4)
    lengths = [len(ids) for ids, _ in items]
    assert min(lengths) == 3 and max(lengths) == 9
    for ids, label in items:
        assert set(ids.tolist()) <= {1, 2}
        assert label == int((ids == 2).sum() % 2)
    batch = tasks.collate_classification(items[:6])
    T = max(lengths[:6])
    assert batch["x"].shape == batch["mask"].shape == (6, T)
    np.testing.assert_array_equal(batch["mask"].sum(axis=1), lengths[:6])
    assert (batch["x"][~batch["mask"]] == tasks.PAD).all()
    np.testing.assert_array_equal(batch["y"], [label for _, label in items[:6]])


def test_sequence_accuracy():
    t = np.array([[1, 2, 3], [1, 2, 3]])
    p = np.array([[1, 2, 3], [1, 0, 3]])
    assert tasks.sequence_accuracy(p, t) == 0.5
    assert tasks.sequence_accuracy(p, t, mask=np.array([[1, 1, 1], [1, 0, 1]], bool)) == 1.0
    with pytest.raises(ValueError, match="must match"):
        tasks.sequence_accuracy(p[:, :2], t)


# --------------------------------------------------------------------------- learning
def test_gru_solves_the_adding_problem_at_T50():
    T = 50
    x, y = tasks.adding_problem(10_000, T, rng=1)
    xt, yt = tasks.adding_problem(1000, T, rng=2)
    model = SequenceRegressor(1, input_size=2, cell="gru", hidden_size=32, rng=0)
    _fit(model, ArrayData({"x": x, "y": y}, 32, seed=0), steps=600, lr=0.01)
    test_mse = float(np.mean((model.predict(xt) - yt) ** 2))
    assert test_mse < 0.01, test_mse  # the trivial answer scores 0.167


def _copy_run(cell, steps):
    K, A, delay = 3, 4, 20
    x, y = tasks.copy_memory(20_000, delay, K, A, rng=1)
    xt, yt = tasks.copy_memory(1000, delay, K, A, rng=2)
    model = SequenceTagger(A + 1, vocab_size=A + 3, embedding_dim=16, cell=cell, hidden_size=32,
                           bidirectional=False, rng=0)
    _fit(model, ArrayData({"x": x, "y": y}, 32, seed=0), steps=steps, lr=0.01)
    pred = model.predict(xt)
    return tasks.sequence_accuracy(pred, yt), float((pred[:, -K:] == yt[:, -K:]).mean())


def test_copy_task_gru_recalls_and_tanh_rnn_does_not():
    # three symbols of four, recalled after a delay of 20 blanks (sequences of 26 steps)
    exact, _ = _copy_run("gru", 1500)
    assert exact >= 0.99, exact
    # the same budget leaves the tanh RNN at chance: 1/4 per symbol, 1/64 per sequence
    exact, per_symbol = _copy_run("rnn", 1500)
    assert exact < 0.05 and per_symbol < 0.3, (exact, per_symbol)


def _future_run(bidirectional):
    x, y = tasks.future_tagging(10_000, 20, ahead=2, num_symbols=8, rng=1)
    xt, yt = tasks.future_tagging(1000, 20, ahead=2, num_symbols=8, rng=2)
    model = SequenceTagger(9, vocab_size=9, embedding_dim=16, cell="gru", hidden_size=32,
                           bidirectional=bidirectional, rng=0)
    _fit(model, ArrayData({"x": x, "y": y}, 32, seed=0), steps=300, lr=0.01)
    tagged = yt > 0
    return float((model.predict(xt)[tagged] == yt[tagged]).mean())


def test_future_tags_need_the_reverse_direction():
    assert _future_run(bidirectional=True) >= 0.99
    # reading only the past, the best is chance: 1/8 at every tagged position
    assert _future_run(bidirectional=False) < 0.16


def test_seq2seq_reads_dates_it_has_never_seen():
    train_dates, test_dates = tasks.split_dates(tasks.date_range(), 0.1, rng=0)
    formats = ["dth of Month yyyy", "Weekday, Month d, yyyy", "mm/dd/yy", "dd.mm.yyyy"]
    src_v, tgt_v = tasks.date_vocabs()
    model = Seq2Seq(len(src_v), len(tgt_v), bos_id=1, eos_id=2, pad_id=0, embedding_dim=16,
                    cell="lstm", hidden_size=64, rng=0)
    items = [(src_v.encode(s), tgt_v.encode(t))
             for s, t in tasks.date_pairs(train_dates, 20_000, formats, rng=1)]

    def collate(batch):
        return model.make_batch([s for s, _ in batch], [t for _, t in batch])

    _fit(model, ListData(items, collate, 32, seed=0), steps=1000, lr=0.01)
    held_out = tasks.date_pairs(test_dates, 300, formats, rng=2)
    out = model.decode([src_v.encode(s) for s, _ in held_out], max_len=12)
    exact = np.mean([tgt_v.decode(o) == t for o, (_, t) in zip(out, held_out, strict=True)])
    assert exact >= 0.95, exact


def test_parity_of_variable_length_strings_with_masks():
    items = tasks.parity(10_000, 1, 20, rng=1)
    model = SequenceClassifier(2, vocab_size=3, embedding_dim=8, cell="gru", hidden_size=32,
                               rng=0)
    data = ListData(items, tasks.collate_classification, 32, seed=0)
    assert len({int(m.sum()) for m in data.batch(0, 0)["mask"]}) > 5  # lengths vary in a batch
    _fit(model, data, steps=400, lr=0.01)
    test = tasks.collate_classification(tasks.parity(1000, 1, 20, rng=2))
    acc = float((model.predict(test["x"], test["mask"]) == test["y"]).mean())
    assert acc >= 0.95, acc
