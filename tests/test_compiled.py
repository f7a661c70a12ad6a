"""The compiled kernels (rnnkit.compiled, numba) against the numpy engine: bit for bit.

Every configuration runs twice, once with the kernels and once with
``rnnkit.compiled.disabled()``, and every output, state, cache array and gradient must have
the same bytes (with ``set_threads(1)``; the LSTM recurrence split across threads, tested
at the end with rnnkit's own product kernel, agrees with the numpy engine to rounding and
gives the same bits whatever the number of threads). Skipped
where numba is not installed (the numpy engine is then the only one, and the rest of the
suite tests it).
"""

import numpy as np
import pytest

import rnnkit
from rnnkit import cells, compiled
from rnnkit.models import LanguageModel, SequenceClassifier

pytest.importorskip("numba")

from helpers import make_layer, random_state  # noqa: E402


@pytest.fixture(autouse=True)
def unsplit():
    """The bit-for-bit comparisons run with ``set_threads(1)``: a split LSTM recurrence
    (the tests at the end) agrees with the numpy engine to rounding, not to the bit."""
    previous = compiled.set_threads(1)
    yield
    compiled.set_threads(previous)


def both(fn):
    """fn() with the kernels, then with the numpy engine: (compiled, numpy) results."""
    assert compiled.enabled()
    a = fn()
    with compiled.disabled():
        assert not compiled.enabled()
        b = fn()
    return a, b


def flat(obj) -> list:
    """The arrays of nested tuples/lists/dicts (dicts in key order), None skipped."""
    if obj is None:
        return []
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        return [a for k in sorted(obj) for a in flat(obj[k])]
    if isinstance(obj, (tuple, list)):
        return [a for o in obj for a in flat(o)]
    return [np.asarray(obj)]


def assert_same_bits(a, b):
    fa, fb = flat(a), flat(b)
    assert len(fa) == len(fb)
    for i, (x, y) in enumerate(zip(fa, fb, strict=True)):
        assert x.dtype == y.dtype and x.shape == y.shape, i
        assert x.tobytes() == y.tobytes(), f"array {i} of shape {x.shape} differs"


def test_available_and_switch():
    assert compiled.available(), compiled.unavailable_reason()
    assert compiled.unavailable_reason() is None
    with compiled.disabled():
        assert not compiled.enabled() and compiled.kernels() is None
    assert compiled.enabled()
    previous = compiled.set_enabled(False)
    assert previous is True and not compiled.enabled()
    assert compiled.set_enabled(True) is False
    with pytest.raises(TypeError, match="flag must be True or False, got 1"):
        compiled.set_enabled(1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_tanh_loop_reproduces_np_tanh(dtype):
    k = compiled.kernels()
    x = compiled._probe(dtype)
    out = np.empty_like(x)
    k.apply_loop(k.tanh_loop(dtype), x, out)
    assert out.tobytes() == np.tanh(x).tobytes()


DIRECTION_CASES = [
    (kind, relu, dtype, B, mask, rec, one_hot)
    for kind, relu in [("rnn", False), ("rnn", True), ("lstm", False), ("gru", True),
                       ("gru", False)]  # GRU: relu stands for reset_after
    for dtype in (np.float32, np.float64)
    for B in (1, 3, 8, 32)  # below 8 the engine keeps a step's gradients time-major
    for mask in (False, True)
    for rec in (False, True)
    for one_hot in (False, True)
]


@pytest.mark.parametrize("kind,relu,dtype,B,mask,rec,one_hot", DIRECTION_CASES)
def test_direction_forward_backward_identical(kind, relu, dtype, B, mask, rec, one_hot):
    rng = np.random.default_rng(B + 10 * mask + 100 * rec)
    T, D, H = 7, 5, 6 if B < 8 else 16
    G = cells.GATES[kind]
    p = {"W_x": rng.uniform(-0.5, 0.5, (D, G * H)).astype(dtype),
         "W_h": rng.uniform(-0.5, 0.5, (H, G * H)).astype(dtype),
         "b": rng.uniform(-0.5, 0.5, G * H).astype(dtype)}
    gru = kind == "gru"
    if gru and relu:
        p["b_hn"] = rng.uniform(-0.5, 0.5, H).astype(dtype)
    ids = rng.integers(0, D, (T, B))
    x = None if one_hot else rng.standard_normal((T, B, D)).astype(dtype)
    h0, c0 = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    m = (rng.random((T, B, 1)) < 0.7) if mask else None
    rm = ((rng.random((B, H)) < 0.8) / 0.8).astype(dtype) if rec else None
    dhs, dh_last, dc_last = (rng.standard_normal(s).astype(dtype)
                             for s in [(T, B, H), (B, H), (B, H)])
    lstm = kind == "lstm"

    def run():
        c = cells.direction_forward(kind, p, x, h0, c0 if lstm else None, m,
                                    "relu" if relu and not gru else "tanh",
                                    reset_after=relu, rec_mask=rm,
                                    ids=ids if one_hot else None)
        r = cells.direction_backward(c, dhs, dh_last, dc_last if lstm else None)
        return ([c.hs, c.hT, c.gT, c.acts] + ([c.cT, c.cs, c.tanh_c] if lstm else [])
                + ([c.aux["hn"]] if gru else []) + [r])

    assert_same_bits(*both(run))


def test_one_hot_ids_equal_the_one_hot_product():
    """The look-up of one-hot inputs gives the bits of the product with eye(D)[ids]."""
    rng = np.random.default_rng(3)
    T, B, D, H = 9, 12, 7, 10
    p = {"W_x": rng.uniform(-1, 1, (D, 4 * H)).astype(np.float32),
         "W_h": rng.uniform(-1, 1, (H, 4 * H)).astype(np.float32),
         "b": rng.uniform(-1, 1, 4 * H).astype(np.float32)}
    ids = rng.integers(0, D, (T, B))
    x = np.eye(D, dtype=np.float32)[ids]
    h0 = np.zeros((B, H), np.float32)
    dhs = rng.standard_normal((T, B, H)).astype(np.float32)
    for enabled in (True, False):
        compiled.set_enabled(enabled)
        try:
            a = cells.direction_forward("lstm", p, None, h0, h0, ids=ids)
            b = cells.direction_forward("lstm", p, x, h0, h0)
            assert_same_bits([a.hs, a.gT, a.cT], [b.hs, b.gT, b.cT])
            ra = cells.direction_backward(a, dhs)
            rb = cells.direction_backward(b, dhs, need_dx=False)
            assert ra[0] is None
            assert_same_bits(ra, rb)
        finally:
            compiled.set_enabled(True)


LAYER_CASES = [
    (cls, kw, bidi, layers, lengths)
    for cls, kw in [(rnnkit.RNN, {}), (rnnkit.RNN, {"nonlinearity": "relu"}),
                    (rnnkit.LSTM, {}), (rnnkit.GRU, {}), (rnnkit.GRU, {"reset_after": False})]
    for bidi in (False, True)
    for layers in (1, 2)
    for lengths in (False, True)
]


@pytest.mark.parametrize("cls,kw,bidi,layers,lengths", LAYER_CASES)
def test_layers_identical(cls, kw, bidi, layers, lengths):
    """Whole layers (deep, bidirectional with concat, masks, dropout between layers and
    on the recurrent input, a learned initial state) in float32."""
    B, T, D = 9, 6, 4
    layer = make_layer(cls, kw, input_size=D, hidden_size=5, seed=layers, dtype=np.float32,
                       num_layers=layers, bidirectional=bidi, dropout=0.3 if layers > 1 else 0,
                       recurrent_dropout=0.2)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    state = random_state(layer, B, rng)
    lens = np.array([6, 1, 3, 6, 5, 2, 6, 4, 6]) if lengths else None
    dout = rng.standard_normal((B, T, layer.output_size)).astype(np.float32)

    def run():
        layer.rng = np.random.default_rng(11)  # the same dropout masks both times
        out, s, cache = layer.forward(x, state, lengths=lens)
        return out, s, layer.backward(dout, cache, s)

    assert_same_bits(*both(run))


def train_lm(cell, embedding_dim, batch, dropout=0.0):
    """Three Adam steps of a 2-layer language model on fixed batches: (losses, params)."""
    from rnnkit.optim import Adam

    model = LanguageModel(11, cell=cell, hidden_size=12, num_layers=2,
                          embedding_dim=embedding_dim, dropout=dropout, rng=5)
    opt = Adam(model.params, lr=0.01)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(3):
        ids = rng.integers(0, 11, (batch, 9))
        stats, grads, _ = model.train_batch({"x": ids[:, :-1], "y": ids[:, 1:]})
        opt.step(grads)
        losses.append(stats["loss"])
    return np.array(losses), model.params


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("embedding_dim", [None, 6])
def test_language_model_training_identical(cell, embedding_dim):
    """Three Adam steps of a 2-layer language model with dropout: the same weights."""
    assert_same_bits(*both(lambda: train_lm(cell, embedding_dim, batch=4, dropout=0.2)))


def test_classifier_with_lengths_identical():
    def run():
        model = SequenceClassifier(3, vocab_size=8, embedding_dim=4, cell="lstm",
                                   hidden_size=6, bidirectional=True, rng=2)
        ids = np.random.default_rng(1).integers(1, 8, (5, 7))
        mask = np.arange(7)[None, :] < np.array([7, 3, 5, 1, 6])[:, None]
        stats, grads, _ = model.train_batch({"x": ids, "y": np.array([0, 1, 2, 1, 0]),
                                             "mask": mask})
        return np.array(stats["loss"]), grads

    assert_same_bits(*both(run))


@pytest.mark.parametrize("name,wd", [("Adam", 0.0), ("Adam", 0.01), ("AdamW", 0.01)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_identical(name, wd, dtype):
    from rnnkit import optim

    def run():
        rng = np.random.default_rng(0)
        params = {"a": rng.standard_normal((7, 5)).astype(dtype),
                  "b": rng.standard_normal(13).astype(dtype)}
        opt = getattr(optim, name)(params, lr=0.003, weight_decay=wd, betas=(0.8, 0.95),
                                   eps=1e-6)
        for _ in range(5):
            opt.step({k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()})
        return params, opt.state_dict()["arrays"]

    assert_same_bits(*both(run))


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_generation_step_identical(layers, dtype):
    """The batch-1 step of generation (Stepper) with one-hot ids, and with float inputs."""
    def run():
        model = LanguageModel(13, cell="lstm", hidden_size=10, num_layers=layers, dtype=dtype,
                              rng=4)
        for p in model.params.values():
            p[...] = np.random.default_rng(2).uniform(-0.5, 0.5, p.shape)
        step = model.stepper()
        state, out = None, []
        for t in [3, 0, 12, 7, 7, 1]:
            logits, state = step(np.array([t]), state)
            out.append(logits)
        layer = model.rnn.stepper()
        x = np.random.default_rng(3).standard_normal((1, 13)).astype(dtype)
        h, s = layer.step(x)
        return out, state, h, s

    assert_same_bits(*both(run))


@pytest.mark.parametrize("kind,kw", [("rnn", {}), ("lstm", {}), ("gru", {}),
                                     ("gru", {"reset_after": False})])
def test_the_kernels_run(kind, kw, monkeypatch):
    """The comparisons above would pass trivially if the engine never took the compiled
    path: count the kernel calls of one forward and backward."""
    k = compiled.kernels()
    calls = {}
    for name in [n for n in vars(k) if n.startswith(kind)]:
        fn = getattr(k, name)

        def counted(*args, _fn=fn, _name=name):
            calls[_name] = calls.get(_name, 0) + 1
            return _fn(*args)

        monkeypatch.setattr(k, name, counted)
    layer = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[kind](3, 4, rng=0, **kw)
    x = np.ones((2, 5, 3), np.float32)
    out, _, cache = layer.forward(x)
    layer.backward(np.ones_like(out), cache)
    if kind == "lstm":  # without a mask or recurrent dropout: all steps in one call
        assert calls.get("lstm_forward_shard") == 1 and calls.get("lstm_backward_shard") == 1
        assert "lstm_forward_step" not in calls
    else:
        assert calls.get(f"{kind}_forward_step") == 5
        assert calls.get(f"{kind}_backward_step") == 5


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_caches_cross_engines(kind):
    """A cache made by one engine and differentiated by the other gives the same bits (the
    compiled forward keeps fewer arrays; the cache makes the others on demand)."""
    layer = make_layer({"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[kind], {},
                       input_size=4, hidden_size=6, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((3, 7, 4)).astype(np.float32)
    dout = np.random.default_rng(1).standard_normal((3, 7, 6)).astype(np.float32)
    results = []
    for fwd_compiled, bwd_compiled in [(True, False), (False, True), (True, True)]:
        compiled.set_enabled(fwd_compiled)
        try:
            out, _, cache = layer.forward(x)
            compiled.set_enabled(bwd_compiled)
            results.append((out, layer.backward(dout, cache)))
        finally:
            compiled.set_enabled(True)
    for r in results[1:]:
        assert_same_bits(results[0], r)


# --------------------------------------------------------------------------- split batch
def lstm_case(dtype, B, one_hot, T=9, D=5, H=12, seed=0):
    rng = np.random.default_rng(seed)
    p = {"W_x": rng.uniform(-0.5, 0.5, (D, 4 * H)).astype(dtype),
         "W_h": rng.uniform(-0.5, 0.5, (H, 4 * H)).astype(dtype),
         "b": rng.uniform(-0.5, 0.5, 4 * H).astype(dtype)}
    ids = rng.integers(0, D, (T, B))
    x = None if one_hot else rng.standard_normal((T, B, D)).astype(dtype)
    h0, c0 = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    dhs, dh_last, dc_last = (rng.standard_normal(s).astype(dtype)
                             for s in [(T, B, H), (B, H), (B, H)])
    return p, x, ids, h0, c0, dhs, dh_last, dc_last


def run_lstm(case, cols=slice(None)):
    """Forward and backward of an LSTM direction on the batch columns cols."""
    p, x, ids, h0, c0, dhs, dh_last, dc_last = case
    c = cells.direction_forward("lstm", p, None if x is None else x[:, cols], h0[cols],
                                c0[cols], ids=ids[:, cols] if x is None else None)
    r = cells.direction_backward(c, dhs[:, cols], dh_last[cols], dc_last[cols])
    return c, r


def test_threads_setting():
    assert compiled.set_threads(3) == 1  # the fixture set 1
    assert compiled.threads() == 3 and compiled.shards(16) == 2 and compiled.shards(40) == 3
    assert compiled.shards(15) == 1
    compiled.set_threads(None)
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = min(i["num_threads"] for i in threadpoolctl.threadpool_info()
               if i["user_api"] == "blas")
    assert compiled.threads() == min(2, len(__import__("os").sched_getaffinity(0)), blas)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert compiled.threads() == 1  # never more threads than numpy's BLAS may use
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n must be a positive int or None, got"):
            compiled.set_threads(bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", [(8, 3, 16), (13, 5, 21), (1, 1, 1), (512, 128, 16),
                                   (9, 0, 4), (100, 400, 37), (24, 7, 32)])
def test_own_product_kernel(dtype, M, K, N):
    """rnnkit's product kernel (the split recurrence's): within the bound of a float
    product of K terms of the float64 result, close to numpy's, and the bits of each column
    depend on that column of b alone (not on N or on where the column is)."""
    from rnnkit import _kernels

    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = np.full((M, N), np.nan, dtype)
    _kernels.product(a, b, c)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = K * np.finfo(dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b))
    assert np.all(np.abs(c - exact) <= bound)
    np.testing.assert_allclose(c, a @ b, rtol=50 * np.finfo(dtype).eps * max(K, 1),
                               atol=50 * np.finfo(dtype).eps * max(K, 1))
    for j in {0, N // 2, N - 1}:
        cj = np.empty((M, 1), dtype)
        _kernels.product(a, np.ascontiguousarray(b[:, j : j + 1]), cj)
        assert cj[:, 0].tobytes() == c[:, j].tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_hot_weight_gradient_kernel(dtype):
    """The split LSTM's input-weight gradient of one-hot inputs: per row, the sums by id in
    the order of the positions, as ``np.add.at`` adds them (to the bit), in any partition
    of the rows; ids that do not occur give zeros; close to the product with the one-hot
    matrix."""
    from rnnkit import _kernels

    rng = np.random.default_rng(3)
    GH, N, D = 40, 300, 11
    dG = rng.standard_normal((GH, N)).astype(dtype)
    ids = rng.integers(0, D - 1, N)  # id D - 1 never occurs
    ref = np.zeros((D, GH), dtype)
    np.add.at(ref, ids, dG.T)
    whole = np.full((GH, D), np.nan, dtype)
    _kernels.one_hot_grad_rows(dG, ids, whole, 0, GH)
    parts = np.full((GH, D), np.nan, dtype)
    for g0, g1 in [(0, 7), (7, 8), (8, 40)]:
        _kernels.one_hot_grad_rows(dG, ids, parts, g0, g1)
    assert whole.tobytes() == parts.tobytes() == np.ascontiguousarray(ref.T).tobytes()
    assert not whole[:, D - 1].any()
    np.testing.assert_allclose(whole.T, np.eye(D, dtype=dtype)[ids].T @ dG.T,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("one_hot", [False, True])
def test_split_lstm_bits_do_not_depend_on_the_thread_count(dtype, one_hot):
    """A split forward and backward gives the same bits on 2, 3 or 4 threads (shards of
    24, 16 or 12 columns: each column's work is the same whatever shard it is in) and run
    after run."""
    case = lstm_case(dtype, 48, one_hot, H=20)
    results = []
    for n in (2, 3, 4, 2):
        compiled.set_threads(n)
        c, r = run_lstm(case)
        assert c.shards is not None and len(c.shards) == n
        results.append([c.hs, c.gT, c.cT, c.c_last, r])
    for other in results[1:]:
        assert_same_bits(results[0], other)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("one_hot", [False, True])
def test_split_lstm_agrees_with_numpy_engine(dtype, tol, one_hot):
    case = lstm_case(dtype, 32, one_hot, H=40)
    compiled.set_threads(2)
    c, r = run_lstm(case)
    assert c.shards is not None
    with compiled.disabled():
        cn, rn = run_lstm(case)
    for a, b in zip(flat([c.hs, c.gT, c.cT, c.tanh_c, c.acts, c.cs, r]),
                    flat([cn.hs, cn.gT, cn.cT, cn.tanh_c, cn.acts, cn.cs, rn]), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    # the numpy engine can differentiate a split cache (its arrays are joined on demand)
    with compiled.disabled():
        rx = cells.direction_backward(c, case[5], case[6], case[7])
    for a, b in zip(flat(rx), flat(rn), strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    # without the input gradient (dense inputs: the per-step product is then W_h's alone)
    r0 = cells.direction_backward(c, case[5], case[6], case[7], need_dx=False)
    assert r0[0] is None
    for a, b in zip(flat(r0[1:]), flat(rn[1:]), strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_what_is_not_split(monkeypatch):
    """Masks, recurrent dropout, small batches and the other kinds run unsplit."""
    compiled.set_threads(2)
    k = compiled.kernels()
    runs = []
    monkeypatch.setattr(k, "run_shards", lambda jobs: runs.append(len(jobs)) or [j() for j in jobs])
    case = lstm_case(np.float32, 16, True)
    p, x, ids, h0, c0 = case[:5]
    assert cells.direction_forward("lstm", p, None, h0, c0, ids=ids).shards is not None
    assert runs == [2]
    m = np.ones((ids.shape[0], 16, 1), bool)
    assert cells.direction_forward("lstm", p, None, h0, c0, mask=m, ids=ids).shards is None
    rm = np.ones((16, h0.shape[1]), np.float32)
    assert cells.direction_forward("lstm", p, None, h0, c0, rec_mask=rm, ids=ids).shards is None
    assert cells.direction_forward("lstm", p, None, h0[:15], c0[:15],
                                   ids=ids[:, :15]).shards is None
    pr = {"W_x": p["W_x"][:, :12], "W_h": p["W_h"][:, :12], "b": p["b"][:12]}
    assert cells.direction_forward("rnn", pr, None, h0, None, ids=ids).shards is None
    assert runs == [2]


def test_first_call_of_a_kernel_runs_in_one_thread():
    """run_shards runs the jobs of a kernel's first call with some kind of arguments one
    after the other in the calling thread (numba compiles on that call), later calls side
    by side; the BLAS threads are restored either way."""
    import functools
    import threading

    k = compiled.kernels()
    if k.blas(np.float32) is None:
        pytest.skip("numpy's OpenBLAS was not found: nothing splits")
    seen = []

    def job(a, i):
        seen.append((i, threading.current_thread() is threading.main_thread()))

    marker = np.zeros(1, np.dtype([("first_call_test", "u1")]))  # a kind of argument new here
    before = k._blas["get_threads"]()
    k.run_shards([functools.partial(job, marker, i) for i in range(2)])
    assert seen == [(0, True), (1, True)]
    seen.clear()
    k.run_shards([functools.partial(job, marker, i) for i in range(2)])
    assert sorted(seen) == [(0, True), (1, False)]
    assert k._blas["get_threads"]() == before


def test_split_leaves_the_blas_threads_as_they_were():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    before = blas_threads()
    compiled.set_threads(2)
    run_lstm(lstm_case(np.float32, 16, True))
    assert blas_threads() == before


@pytest.mark.parametrize("embedding_dim", [None, 6])
def test_split_language_model_training_agrees(embedding_dim):
    """Three Adam steps of a 2-layer LSTM language model at batch 16, split and unsplit."""
    def run(n):
        compiled.set_threads(n)
        return train_lm("lstm", embedding_dim, batch=16)

    (la, pa), (lb, pb) = run(2), run(1)
    np.testing.assert_allclose(la, lb, rtol=1e-6)
    for k in pa:
        np.testing.assert_allclose(pa[k], pb[k], rtol=1e-5, atol=1e-6)
