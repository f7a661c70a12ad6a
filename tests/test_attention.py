"""Attention and the encoder-decoder with attention: gradients, PyTorch, scheduled sampling,
decoding, the attention map, save/load, bad input, and small tasks that learn.

Finite differences run in float64 with every parameter drawn from U(-0.5, 0.5) (biases
included). The PyTorch references are written independently of rnnkit's code: the encoder
is ``torch.nn.LSTM/GRU`` over packed padded sequences, the decoder the same module run one
step at a time, the dot and general contexts ``torch.nn.functional.
scaled_dot_product_attention`` with a boolean mask (the additive score has no built-in).
"""

import numpy as np
import pytest
from test_models import gradcheck_model, randomize

from rnnkit import checkpoint
from rnnkit.attention import KINDS, Attention, masked_softmax, plot_attention
from rnnkit.generate import check_decoding
from rnnkit.gradcheck import numerical_gradient, rel_error
from rnnkit.models import Seq2Seq, load_model
from rnnkit.models.teacher_forcing import TeacherForcing
from rnnkit.optim import Adam
from rnnkit.train import ListData, TrainConfig, Trainer

B, TY, TX, HQ, HK, A, HO = 3, 4, 5, 3, 4, 3, 2
SRC_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=bool)


def make_attention(kind, seed=0):
    att = Attention(HQ, HQ if kind == "dot" else HK, kind, attention_size=A if kind ==
                    "additive" else None, output_size=HO, dtype=np.float64, rng=seed)
    rng = np.random.default_rng(seed + 100)
    for p in att.params.values():
        p[...] = rng.uniform(-1, 1, p.shape)
    return att


def attention_inputs(att, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, TY, HQ)), rng.normal(size=(B, TX, att.key_size)), \
        rng.normal(size=(B, TY, HO))


CASES = [(k, m) for k in KINDS for m in (False, True)]
CASE_IDS = [f"{k}-{'masked' if m else 'full'}" for k, m in CASES]


# --------------------------------------------------------------------------- the layer
@pytest.mark.parametrize("kind,masked", CASES, ids=CASE_IDS)
def test_attention_layer_gradients(kind, masked):
    """Every parameter, the queries and the keys, for L = sum(out * R)."""
    att = make_attention(kind)
    q, k, R = attention_inputs(att)
    mask = SRC_MASK if masked else None
    out, a, cache = att.forward(q, k, mask)
    assert out.shape == (B, TY, HO) and a.shape == (B, TY, TX)
    dq, dk, grads = att.backward(R, cache)
    assert set(grads) == set(att.params)

    def f():
        return float(np.sum(att.forward(q, k, mask)[0] * R))

    checks = {"query": (q, dq), "keys": (k, dk), **{n: (p, grads[n]) for n, p in
                                                    att.params.items()}}
    errors = {n: rel_error(numerical_gradient(f, x), g) for n, (x, g) in checks.items()}
    assert max(errors.values()) < 1e-8, errors
    for n, (_, g) in checks.items():
        assert np.abs(g).max() > 1e-6, f"{n}: gradient is all zero"
    if masked:  # padded keys get no weight and no gradient
        assert not a[~np.broadcast_to(SRC_MASK[:, None], a.shape)].any()
        assert not dk[~SRC_MASK].any()
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("kind,masked", CASES, ids=CASE_IDS)
def test_attention_layer_matches_pytorch(kind, masked):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    att = make_attention(kind, seed=3)
    q, k, R = attention_inputs(att, seed=4)
    mask = SRC_MASK if masked else None
    out, a, cache = att.forward(q, k, mask)
    dq, dk, grads = att.backward(R, cache)

    P = {n: torch.tensor(p, requires_grad=True) for n, p in att.params.items()}
    tq, tk = torch.tensor(q, requires_grad=True), torch.tensor(k, requires_grad=True)
    tmask = None if mask is None else torch.tensor(mask)[:, None, :].expand(B, TY, TX)
    if kind == "additive":
        proj = F.linear(tk, P["W_k"].T, P["b"])
        e = torch.tanh((tq @ P["W_q"])[:, :, None, :] + proj[:, None]) @ P["v"]
        if tmask is not None:
            e = e.masked_fill(~tmask, float("-inf"))
        ta = torch.softmax(e, dim=-1)
        c = ta @ tk
    else:
        keys = tk @ P["W_a"] if kind == "general" else tk
        c = F.scaled_dot_product_attention(tq, keys, tk, attn_mask=tmask, scale=1.0)
        e = tq @ keys.transpose(1, 2)
        ta = torch.softmax(e if tmask is None else e.masked_fill(~tmask, float("-inf")), -1)
    o = torch.tanh(F.linear(torch.cat([c, tq], dim=-1), P["W_c"].T, P["b_c"]))
    (o * torch.tensor(R)).sum().backward()

    np.testing.assert_allclose(out, o.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(a, ta.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dq, tq.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(dk, tk.grad.numpy(), atol=1e-12)
    for n in att.params:
        np.testing.assert_allclose(grads[n], P[n].grad.numpy(), atol=1e-12, err_msg=n)


@pytest.mark.parametrize("kind", KINDS)
def test_attend_one_step_at_a_time_equals_all_queries_at_once(kind):
    """The decoder's path: attend per query, sum the MemoryGrads, one memory_backward."""
    att = make_attention(kind)
    q, k, R = attention_inputs(att)
    out, a, cache = att.forward(q, k, SRC_MASK)
    dq, dk, grads = att.backward(R, cache)
    mem = att.memory(k, SRC_MASK)
    total, step_grads = None, {}
    for t in range(TY):
        o_t, a_t, c_t = att.attend(q[:, t : t + 1], mem)
        np.testing.assert_allclose(o_t[:, 0], out[:, t], atol=1e-14)
        np.testing.assert_allclose(a_t[:, 0], a[:, t], atol=1e-14)
        dq_t, dmem, g = att.attend_backward(R[:, t : t + 1], c_t)
        np.testing.assert_allclose(dq_t[:, 0], dq[:, t], atol=1e-13)
        total = dmem if total is None else total.add(dmem)
        for n, v in g.items():
            step_grads[n] = step_grads.get(n, 0) + v
    dk2, g = att.memory_backward(total, mem)
    step_grads.update(g)
    np.testing.assert_allclose(dk2, dk, atol=1e-13)
    for n in att.params:
        np.testing.assert_allclose(step_grads[n], grads[n], atol=1e-13, err_msg=n)


def test_padded_keys_do_not_matter():
    att = make_attention("additive")
    q, k, _ = attention_inputs(att)
    garbage = k.copy()
    garbage[~SRC_MASK] = 1e3
    out, a, _ = att.forward(q, k, SRC_MASK)
    out2, a2, _ = att.forward(q, garbage, SRC_MASK)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_allclose(out, out2, atol=1e-14)
    # a source alone, unpadded, gives the same result
    alone, _, _ = att.forward(q[1:2], k[1:2, :3])
    np.testing.assert_allclose(alone[0], out[1], atol=1e-14)
    np.testing.assert_allclose(masked_softmax(np.zeros((1, 1, 3)), None), np.full((1, 1, 3),
                                                                                  1 / 3))


def test_attention_bad_input():
    with pytest.raises(ValueError, match="kind must be one of 'additive', 'general', 'dot'"):
        Attention(3, 3, "concat")
    with pytest.raises(ValueError, match="a dot score needs query_size == key_size, got "
                                         "query_size 3 and key_size 4"):
        Attention(3, 4, "dot")
    att = make_attention("general")
    q, k, _ = attention_inputs(att)
    with pytest.raises(ValueError, match=r"keys must have shape \(B, T_x, 4\), got \(3, 5, 2\)"):
        att.forward(q, k[..., :2])
    with pytest.raises(ValueError, match=r"mask must be a bool array of shape \(B, T_x\) = "
                                         r"\(3, 5\), got bool \(3, 4\)"):
        att.forward(q, k, SRC_MASK[:, :4])
    empty = SRC_MASK.copy()
    empty[2] = False
    with pytest.raises(ValueError, match="mask row 2 has no valid step"):
        att.forward(q, k, empty)
    with pytest.raises(ValueError, match=r"query must have shape \(B, T_y, 3\)"):
        att.forward(q[..., :2], k)
    with pytest.raises(ValueError, match="query has 2 sequences, the memory 3"):
        att.attend(q[:2], att.memory(k))
    with pytest.raises(TypeError, match="cache must be the AttendCache"):
        att.backward(np.zeros((B, TY, HO)), None)


# --------------------------------------------------------------------------- the model
MODEL_CASES = [(k, m, bi, feed) for k in KINDS for m in (False, True) for bi in (False, True)
               for feed in (False, True)]
MODEL_IDS = [f"{k}-{'masked' if m else 'full'}-{'bi' if bi else 'uni'}-"
             f"{'feed' if f else 'nofeed'}" for k, m, bi, f in MODEL_CASES]
SRC_PADDED = [[3, 4, 5], [5, 3], [4]]
SRC_FULL = [[3, 4, 5], [5, 3, 3], [4, 4, 5]]
TGT = [[3, 4], [6, 5, 4, 3], [5]]


def tiny_model(kind, bidirectional, feeding, cell, seed=0, **kw):
    model = randomize(Seq2Seq(6, 7, bos_id=1, eos_id=2, embedding_dim=2, cell=cell,
                              hidden_size=2, bidirectional=bidirectional, attention=kind,
                              attention_size=3 if kind == "additive" else None,
                              input_feeding=feeding, dtype=np.float64, rng=seed, **kw),
                      seed=seed + 1)
    for name in ("src_embed.W", "tgt_embed.W"):
        model.params[name][0] = 0  # the padding rows, as the embeddings make them
    return model


def directional_gradcheck(model, batch, directions=2, seed=0, tol=1e-8):
    """Central differences of the mean loss along random directions d of each parameter
    array, against ``<grad, d>``: two evaluations per direction instead of two per entry."""
    _, grads, _ = model.train_batch(batch)
    rng = np.random.default_rng(seed)

    def mean_loss():
        s, _, _ = model.train_batch(batch)
        return s["loss"] / s["count"]

    eps, errors = 1e-6, {}
    for name, p in model.params.items():
        for _ in range(directions):
            d = rng.standard_normal(p.shape)
            p += eps * d
            up = mean_loss()
            p -= 2 * eps * d
            down = mean_loss()
            p += eps * d
            num, exact = (up - down) / (2 * eps), float(np.sum(grads[name] * d))
            errors[name] = max(errors.get(name, 0.0), abs(num - exact) / max(1.0, abs(exact)))
    assert max(errors.values()) < tol, errors
    return grads


@pytest.mark.parametrize("kind,masked,bi,feed", MODEL_CASES, ids=MODEL_IDS)
def test_seq2seq_attention_gradients(kind, masked, bi, feed):
    """The whole model end to end, every parameter array along random directions."""
    cell = "lstm" if MODEL_CASES.index((kind, masked, bi, feed)) % 2 == 0 else "gru"
    model = tiny_model(kind, bi, feed, cell)
    batch = model.make_batch(SRC_PADDED if masked else SRC_FULL, TGT)
    assert batch["src_mask"].all() != masked
    grads = directional_gradcheck(model, batch)
    assert set(grads) == set(model.params)
    for name in ("attention.W_c", "encoder.l0.W_x", "decoder.l0.W_h", "src_embed.W"):
        assert np.abs(grads[name]).max() > 1e-6, name


@pytest.mark.parametrize("kind,masked,bi,feed,cell", [
    ("additive", True, False, True, "lstm"), ("general", True, True, False, "gru"),
    ("dot", False, True, True, "gru"), ("dot", True, False, False, "lstm")],
    ids=["additive-masked-uni-feed-lstm", "general-masked-bi-nofeed-gru",
         "dot-full-bi-feed-gru", "dot-masked-uni-nofeed-lstm"])
def test_seq2seq_attention_gradients_every_entry(kind, masked, bi, feed, cell):
    """The whole model end to end: every entry of every parameter against central
    differences (each kind, masks, both encoders and input feeding at least once)."""
    model = tiny_model(kind, bi, feed, cell, seed=2)
    batch = model.make_batch(SRC_PADDED if masked else SRC_FULL, TGT)
    errors = gradcheck_model(model, batch)
    assert set(errors) == set(model.params)


def torch_seq2seq_loss(model, batch):
    """The mean cross-entropy of ``batch`` under the same model written in PyTorch, and
    the torch tensors holding the gradients, keyed like ``model.params``."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from rnnkit.interop import to_torch

    F = torch.nn.functional
    m = model.modules
    P = {n: torch.tensor(p, requires_grad=True) for n, p in model.params.items()
         if not n.startswith(("encoder.", "decoder."))}
    enc, dec = to_torch(m["encoder"]), to_torch(m["decoder"])
    src, src_mask = torch.tensor(batch["src"]), torch.tensor(batch["src_mask"])
    packed = pack_padded_sequence(F.embedding(src, P["src_embed.W"]), src_mask.sum(1),
                                  batch_first=True, enforce_sorted=False)
    out, state = enc(packed)
    keys, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
    if model.bidirectional:  # each layer's two directions side by side
        L, Bn = model.modules["decoder"].num_layers, src.shape[0]
        def cat(s):
            return s.view(L, 2, Bn, -1).transpose(1, 2).reshape(L, Bn, -1)
        state = tuple(map(cat, state)) if isinstance(state, tuple) else cat(state)
    feed = torch.zeros(src.shape[0], model.hidden_size, dtype=torch.float64)
    logits = []
    for t in range(batch["x"].shape[1]):
        x = F.embedding(torch.tensor(batch["x"][:, t]), P["tgt_embed.W"])
        if model.input_feeding:
            x = torch.cat([x, feed], dim=1)
        h, state = dec(x[:, None], state)  # (B, 1, H); padded target steps come last
        q = h
        if model.attention == "additive":
            e = torch.tanh((q @ P["attention.W_q"])[:, :, None]
                           + (keys @ P["attention.W_k"] + P["attention.b"])[:, None]
                           ) @ P["attention.v"]
            a = torch.softmax(e.masked_fill(~src_mask[:, None], float("-inf")), -1)
            c = a @ keys
        else:
            k2 = keys @ P["attention.W_a"] if model.attention == "general" else keys
            c = F.scaled_dot_product_attention(q, k2, keys, attn_mask=src_mask[:, None],
                                               scale=1.0)
        o = torch.tanh(torch.cat([c, q], -1) @ P["attention.W_c"] + P["attention.b_c"])
        feed = o[:, 0]
        logits.append(o[:, 0] @ P["head.W"] + P["head.b"])
    mask = torch.tensor(batch["mask"])
    z = torch.stack(logits, dim=1)[mask]
    loss = F.cross_entropy(z, torch.tensor(batch["y"])[mask])
    loss.backward()
    grads = {n: p.grad for n, p in P.items()}
    for prefix, layer, module in (("encoder.", m["encoder"], enc), ("decoder.", m["decoder"], dec)):
        for name in layer.params:
            lk, _, what = name.partition(".")
            suffix = "_reverse" if lk.endswith("_reverse") else ""
            k = lk[1:].removesuffix("_reverse")
            tp = {"W_x": "weight_ih", "W_h": "weight_hh", "b": "bias_ih", "b_hn": "bias_hh"}[what]
            g = getattr(module, f"{tp}_l{k}{suffix}").grad
            g = g.T if what.startswith("W") else (g[2 * layer.hidden_size:] if what == "b_hn"
                                                  else g)
            grads[prefix + name] = g
    return loss.item(), grads


@pytest.mark.parametrize("kind,masked,bi,feed", MODEL_CASES, ids=MODEL_IDS)
def test_seq2seq_attention_matches_pytorch(kind, masked, bi, feed):
    pytest.importorskip("torch")
    cell = "gru" if MODEL_CASES.index((kind, masked, bi, feed)) % 2 == 0 else "lstm"
    model = tiny_model(kind, bi, feed, cell, seed=5)
    batch = model.make_batch(SRC_PADDED if masked else SRC_FULL, TGT)
    stats, grads, _ = model.train_batch(batch)
    loss, expected = torch_seq2seq_loss(model, batch)
    assert stats["loss"] / stats["count"] == pytest.approx(loss, abs=1e-12)
    assert set(expected) == set(grads)
    for name, g in expected.items():
        np.testing.assert_allclose(grads[name], g.numpy(), atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------- scheduled sampling
def test_teacher_forcing_schedules():
    assert TeacherForcing()(10**6) == 1.0 and TeacherForcing().always
    assert TeacherForcing(ratio=0.25)(7) == 0.25 and not TeacherForcing(ratio=0.25).always
    lin = TeacherForcing("linear", k=1.0, c=0.001, minimum=0.2)
    assert [lin(i) for i in (0, 500, 800, 5000)] == pytest.approx([1.0, 0.5, 0.2, 0.2])
    assert TeacherForcing("exponential", k=0.99)(100) == pytest.approx(0.99 ** 100)
    inv = TeacherForcing("inverse_sigmoid", k=10)
    assert inv(0) == pytest.approx(10 / 11) and inv(50) == pytest.approx(10 / (10 + np.exp(5)))
    assert inv(10**9) < 1e-300  # no overflow far out
    assert TeacherForcing.parse("0.75") == TeacherForcing(ratio=0.75)
    assert TeacherForcing.parse("inverse_sigmoid:k=500,token=argmax") == TeacherForcing(
        "inverse_sigmoid", k=500.0, token="argmax")
    assert TeacherForcing(**lin.config()) == lin
    with pytest.raises(ValueError, match="ratio must be a finite number >= 0 and <= 1, got 1.5"):
        TeacherForcing(ratio=1.5)
    with pytest.raises(ValueError, match="the linear schedule needs c"):
        TeacherForcing("linear", k=1.0)
    with pytest.raises(ValueError, match="k must be a finite number > 0 and <= 1, got 2"):
        TeacherForcing("exponential", k=2)
    with pytest.raises(ValueError, match="schedule must be one of 'constant', 'linear'"):
        TeacherForcing("cosine")
    with pytest.raises(ValueError, match="token must be one of 'sample', 'argmax'; got 'top'"):
        TeacherForcing(token="top")
    with pytest.raises(ValueError, match="teacher forcing 'linear:k' is not a ratio"):
        TeacherForcing.parse("linear:k")


def _rare_target_batch(model, B=200, T=5, seed=0):
    """Targets all of id 6, which the model (head bias -30) never guesses."""
    rng = np.random.default_rng(seed)
    model.params["head.b"][6] = -30.0
    src = [list(rng.integers(3, 6, rng.integers(1, 4))) for _ in range(B)]
    return model.make_batch(src, [[6] * int(rng.integers(1, T)) for _ in range(B)])


@pytest.mark.parametrize("token", ["argmax", "sample"])
def test_scheduled_sampling_feeds_the_truth_with_probability_eps(token):
    model = tiny_model("dot", False, True, "gru", teacher_forcing=TeacherForcing(
        ratio=0.5, token=token))
    batch = _rare_target_batch(model)
    logits, cache = model._forward(batch["src"], batch["x"], batch["src_mask"], batch["mask"],
                                   0.5)
    fed, mask = cache.fed, batch["mask"]
    np.testing.assert_array_equal(fed[:, 0], model.bos_id)
    np.testing.assert_array_equal(fed[~mask], 0)  # padded steps keep their padding
    later = mask.copy()
    later[:, 0] = False
    truth = fed[later] == 6
    assert 0.43 < truth.mean() < 0.57, truth.mean()  # 614 positions, eps 0.5
    guessed = np.zeros_like(mask)
    guessed[later] = ~truth
    prev = np.roll(logits, 1, axis=1).argmax(-1)  # the guess at t comes from step t-1
    if token == "argmax":
        np.testing.assert_array_equal(fed[guessed], prev[guessed])
    else:
        assert (fed[guessed] != prev[guessed]).any() and (fed[guessed] == prev[guessed]).any()


def test_sampled_guesses_follow_the_model_distribution():
    model = tiny_model("general", False, False, "lstm",
                       teacher_forcing=TeacherForcing(ratio=0.0))
    p = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.5, 0.0])
    model.params["head.W"][...] = 0
    model.params["head.b"][...] = np.log(np.maximum(p, 1e-300))
    batch = model.make_batch([[3, 4]] * 400, [[3] * 6] * 400)
    _, cache = model._forward(batch["src"], batch["x"], None, batch["mask"], 0.0)
    freq = np.bincount(cache.fed[:, 1:].ravel(), minlength=7) / cache.fed[:, 1:].size
    np.testing.assert_allclose(freq, p, atol=0.025)


def test_guesses_equal_to_the_truth_give_teacher_forcing():
    """eps = 0 with argmax guesses, on targets that are the model's own greedy outputs: the
    one-step-at-a-time path feeds exactly the teacher's tokens, and gives the parallel
    path's loss and gradients."""
    model = tiny_model("additive", True, False, "lstm", seed=4,
                       teacher_forcing=TeacherForcing(ratio=0.0, token="argmax"))
    randomize(model, seed=9, scale=1.5)
    out = model.decode(SRC_PADDED, max_len=6)
    batch = model.make_batch(SRC_PADDED, [o or [3] for o in out])
    sampled, g_sampled, _ = model.train_batch(batch)
    model.teacher_forcing = TeacherForcing()
    forced, g_forced, _ = model.train_batch(batch)
    assert sampled["loss"] == pytest.approx(forced["loss"], rel=1e-12)
    for k in model.params:
        np.testing.assert_allclose(g_sampled[k], g_forced[k], atol=1e-12, err_msg=k)
    assert model.train_steps == 2


def test_scheduled_sampling_gradients():
    """With the coin flips and draws fixed (the model's rng rewound), the loss is a smooth
    function of the weights and train_batch gives its gradient."""
    model = tiny_model("additive", True, True, "gru", seed=6,
                       teacher_forcing=TeacherForcing(ratio=0.5))
    # a guessed padding id would read the padding row, which is fixed at zero (no gradient,
    # as in PyTorch): keep guesses off it, as training does (padding is never a target)
    model.params["head.b"][0] = -30.0
    batch = model.make_batch(SRC_PADDED, TGT)
    gradcheck_model(model, batch)
    saved = model.rng.bit_generator.state
    _, cache = model._forward(batch["src"], batch["x"], batch["src_mask"], batch["mask"], 0.5)
    model.rng.bit_generator.state = saved
    assert (cache.fed[batch["mask"]] != batch["x"][batch["mask"]]).any()  # guesses were fed


def test_schedule_follows_train_steps_and_resumes_exactly(tmp_path):
    src_v, tgt_v = 8, 8
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(3, 8, 4), rng.integers(3, 8, 3)) for _ in range(64)]

    def run(steps, resume=False):
        model = Seq2Seq(src_v, tgt_v, 1, 2, embedding_dim=4, hidden_size=6, attention="dot",
                        input_feeding=True, teacher_forcing=TeacherForcing(
                            "linear", k=1.0, c=0.1, minimum=0.3), rng=1)
        data = ListData(pairs, lambda b: model.make_batch([s for s, _ in b],
                                                          [t for _, t in b]), 16, seed=0)
        trainer = Trainer(model, Adam(model.params, lr=0.01), data, None, TrainConfig(
            steps=steps, progress=False, log_every=0, checkpoint_dir=str(tmp_path)),
            log=lambda m: None)
        if resume:
            trainer.resume(tmp_path / "last.npz")
        trainer.fit()
        return model

    straight = run(6)
    assert straight.train_steps == 6 and straight.teacher_forcing_ratio() == pytest.approx(0.4)
    run(3)
    resumed = run(6, resume=True)
    assert resumed.train_steps == 6
    for k, p in straight.params.items():
        np.testing.assert_array_equal(resumed.params[k], p, err_msg=k)


# --------------------------------------------------------------------------- decoding
@pytest.fixture(scope="module", params=[("additive", False, True, "lstm"),
                                        ("dot", True, False, "gru")],
                ids=["additive-feed", "dot-bi"])
def att_model(request):
    kind, bi, feed, cell = request.param
    model = Seq2Seq(6, 7, bos_id=1, eos_id=2, embedding_dim=3, cell=cell, hidden_size=4,
                    num_layers=2, bidirectional=bi, attention=kind, input_feeding=feed,
                    dtype=np.float64, rng=0)
    randomize(model, seed=4, scale=2.0)  # large weights: outputs that vary with the source
    model.params["head.b"][2] = -1.0  # eos rarer, so that outputs have some length
    return model


def _logprob(model, src, out, max_len):
    tgt = out + ([model.eos_id] if len(out) < max_len else [])
    logits, _ = model.forward(np.array([src]), np.array([[model.bos_id, *tgt[:-1]]]))
    z = logits[0] - logits[0].max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(lp[np.arange(len(tgt)), tgt].sum())


SRCS = [[3, 4, 5, 3], [5, 3], [4]]


def _encoded(model, src):
    """The decoder's initial state and the attention memory of one source."""
    state, enc = model.encode(np.array([src]))
    return state, enc.memory


def test_greedy_decoding_with_attention(att_model):
    model, max_len = att_model, 7
    greedy = model.decode(SRCS, max_len=max_len)
    assert model.decode(SRCS, max_len=max_len, beam=1) == greedy
    assert any(len(o) > 1 for o in greedy) and len({tuple(o) for o in greedy}) > 1
    for src, out in zip(SRCS, greedy, strict=True):
        assert model.decode([src], max_len=max_len) == [out]  # alone = in the batch
        seq = []  # the argmax of a full teacher-forced pass, token by token
        for _ in range(max_len):
            logits, _ = model.forward(np.array([src]), np.array([[model.bos_id, *seq]]))
            tok = int(np.argmax(logits[0, -1]))
            if tok == model.eos_id:
                break
            seq.append(tok)
        assert seq == out
    beam3 = model.decode(SRCS, max_len=max_len, beam=3, length_penalty=0)  # ranked by the sum
    width1 = check_decoding(model.tgt_vocab_size, max_len, beam=1)
    beam1 = [model._beam(*_encoded(model, s), 0, width1, 1)[0] for s in SRCS]
    assert beam1 == greedy  # generate.beam_search of width 1 is greedy too
    for src, g, b in zip(SRCS, greedy, beam3, strict=True):
        assert _logprob(model, src, b, max_len) >= _logprob(model, src, g, max_len) - 1e-12
    assert model.modules["decoder"].training


@pytest.mark.parametrize("beam", [1, 3])
def test_decode_returns_the_attention_weights(att_model, beam):
    model = att_model
    outs, weights = model.decode(SRCS, max_len=7, beam=beam, return_attention=True)
    assert outs == model.decode(SRCS, max_len=7, beam=beam)
    for src, out, w in zip(SRCS, outs, weights, strict=True):
        assert w.shape == (len(out), len(src))  # (T_y, T_x), padding left out
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
        _, cache = model.forward(np.array([src]), np.array([[model.bos_id, *out]]))
        np.testing.assert_allclose(w, cache.weights[0, : len(out)], atol=1e-12)
    plain = Seq2Seq(6, 7, 1, 2, hidden_size=3, rng=0)
    with pytest.raises(ValueError, match="return_attention needs a model with attention"):
        plain.decode(SRCS, return_attention=True)


def test_decode_returns_the_weights_of_each_of_the_best_beams(att_model):
    model = att_model
    outs, weights = model.decode(SRCS, max_len=7, beam=3, num_return=2, return_attention=True)
    assert outs == model.decode(SRCS, max_len=7, beam=3, num_return=2)
    for src, hyps, maps in zip(SRCS, outs, weights, strict=True):
        assert len(hyps) == len(maps) == 2 and hyps[0] != hyps[1]
        for out, w in zip(hyps, maps, strict=True):
            _, cache = model.forward(np.array([src]), np.array([[model.bos_id, *out]]))
            np.testing.assert_allclose(w, cache.weights[0, : len(out)], atol=1e-12)
    assert [h[0] for h in outs] == model.decode(SRCS, max_len=7, beam=3)
    greedy = model.decode(SRCS, max_len=7, num_return=1)
    assert greedy == [[o] for o in model.decode(SRCS, max_len=7)]


def test_plot_attention(att_model, tmp_path):
    pytest.importorskip("matplotlib")
    outs, weights = att_model.decode(SRCS[:1], max_len=7, return_attention=True)
    path = tmp_path / "map.png"
    fig = plot_attention(weights[0], "abcd", [str(t) for t in outs[0]], path=path,
                         title="a map")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2  # the map and its colour bar
    import matplotlib.pyplot as plt

    plt.close(fig)
    with pytest.raises(ValueError, match=r"weights must have shape \(T_y, T_x\) = \(2, 3\)"):
        plot_attention(np.ones((2, 4)), "abc", "xy")
    # from the model: one decoded source, its labels from the vocabularies
    src_tokens = ["<pad>", *"abcde"]
    tgt_tokens = ["<pad>", "<bos>", "<eos>", *"vwxz"]
    out, w, fig = att_model.plot_attention(np.array([3, 4, 5, 0]), src_tokens, tgt_tokens,
                                           path=tmp_path / "model.png", max_len=7)
    assert out == att_model.decode([[3, 4, 5]], 7)[0] and w.shape == (len(out), 3)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["c", "d", "e"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [tgt_tokens[i] for i in out]
    plt.close(fig)


# --------------------------------------------------------------------------- save / load
def test_save_load_keeps_attention_schedule_and_steps(att_model, tmp_path):
    model = att_model
    model.teacher_forcing = TeacherForcing("inverse_sigmoid", k=50.0)
    model._config["teacher_forcing"] = model.teacher_forcing.config()
    model.train_steps = 123
    loaded, meta, arrays = load_model(model.save(tmp_path / "m.npz"))
    assert loaded.config() == model.config()
    assert (loaded.attention, loaded.bidirectional, loaded.input_feeding) == (
        model.attention, model.bidirectional, model.input_feeding)
    assert loaded.teacher_forcing == model.teacher_forcing and loaded.train_steps == 123
    assert loaded.teacher_forcing_ratio() == model.teacher_forcing_ratio()
    for k, p in model.params.items():
        np.testing.assert_array_equal(loaded.params[k], p)
    a = model.decode(SRCS, 7, beam=2, return_attention=True)
    b = loaded.decode(SRCS, 7, beam=2, return_attention=True)
    assert a[0] == b[0]
    for x, y in zip(a[1], b[1], strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(("change", "message"), [
    ({"attention_size": 40000}, r"'attention.W_q' has shape \(6, 3\), but the model config "
                                r"implies \(6, 40000\)"),
    ({"attention": "general"}, "has no parameter 'attention.W_a', which its model config"),
    ({"attention": "luong"}, "config attention must be None or one of 'additive'"),
    ({"input_feeding": False}, r"'decoder.l0.W_x' has shape \(10, 24\), but the model "
                               r"config implies \(4, 24\)"),
    ({"bidirectional": False}, r"'encoder.l0.W_x' has shape \(4, 12\), but the model "
                               r"config implies \(4, 24\)"),
])
def test_a_config_that_does_not_match_the_attention_arrays_is_refused(tmp_path, change,
                                                                      message):
    """load_model checks the attention, encoder and decoder shapes the saved config implies
    against the file's arrays before building anything (models/_shapes.py)."""
    model = Seq2Seq(6, 7, 1, 2, embedding_dim=4, hidden_size=6, bidirectional=True,
                    attention="additive", attention_size=3, input_feeding=True, rng=0)
    arrays, meta = checkpoint.load(model.save(tmp_path / "m.npz"))
    meta = {**meta, "config": {**meta["config"], **change}}
    with pytest.raises(checkpoint.CheckpointError, match=message):
        load_model(checkpoint.save(tmp_path / "bad.npz", arrays, meta))


def test_models_saved_before_attention_still_load(tmp_path):
    """Files without the new config keys or the step counter load as before; a default
    model's config has no new keys, so that resuming such a file still matches."""
    model = Seq2Seq(6, 7, 1, 2, embedding_dim=2, hidden_size=3, rng=0)
    assert "attention" not in model.config() and "teacher_forcing" not in model.config()
    arrays, meta = checkpoint.load(model.save(tmp_path / "new.npz"))
    del arrays["state/seq2seq.train_steps"]
    loaded, _, _ = load_model(checkpoint.save(tmp_path / "old.npz", arrays, meta))
    assert loaded.train_steps == 0 and loaded.attention is None
    assert loaded.decode([[3, 4]], 5) == model.decode([[3, 4]], 5)
    arrays["state/seq2seq.train_steps"] = np.array([1.5])
    with pytest.raises(checkpoint.CheckpointError, match="must be a non-negative integer"):
        load_model(checkpoint.save(tmp_path / "bad.npz", arrays, meta))


def test_seq2seq_attention_bad_input():
    with pytest.raises(ValueError, match="attention must be one of None, 'additive'"):
        Seq2Seq(6, 7, 1, 2, attention="luong")
    with pytest.raises(ValueError, match="a bidirectional encoder needs an even hidden_size"):
        Seq2Seq(6, 7, 1, 2, hidden_size=5, bidirectional=True)
    with pytest.raises(ValueError, match="attention_size is the additive score's size"):
        Seq2Seq(6, 7, 1, 2, attention="dot", attention_size=4)
    with pytest.raises(ValueError, match="input_feeding .* needs attention="):
        Seq2Seq(6, 7, 1, 2, input_feeding=True)
    with pytest.raises(ValueError, match="ratio must be a finite number >= 0 and <= 1"):
        Seq2Seq(6, 7, 1, 2, teacher_forcing=1.5)
    with pytest.raises(TypeError, match="teacher_forcing must be a ratio in"):
        Seq2Seq(6, 7, 1, 2, teacher_forcing="half")
    model = Seq2Seq(6, 7, 1, 2, embedding_dim=2, hidden_size=4, attention="general", rng=0)
    with pytest.raises(ValueError, match="src row 1 is all padding"):
        model.decode(np.array([[3, 4], [0, 0]]))
    with pytest.raises(ValueError, match="max_len must be an integer >= 0, got -1"):
        model.decode([[3]], max_len=-1)
    with pytest.raises(ValueError, match="max_len must be an integer >= 0, got 2.5"):
        model.decode([[3]], max_len=2.5)
    outs, weights = model.decode([[3, 4]], max_len=0, return_attention=True)
    assert outs == [[]] and weights[0].shape == (0, 2)
    assert model.decode([[3, 4]], max_len=0, beam=2) == [[]]
    with pytest.raises(ValueError, match=r"num_return must be an integer in \[1, 2\]"):
        model.decode([[3]], beam=2, num_return=3, return_attention=True)
    with pytest.raises(ValueError, match="length_penalty must be a finite number"):
        model.decode([[3]], beam=2, length_penalty=float("nan"))
    with pytest.raises(ValueError, match="beam must be an integer >= 1, got 0"):
        model.decode([[3]], beam=0)
    with pytest.raises(TypeError, match="cache must be the Seq2SeqCache"):
        model.backward(np.zeros((1, 1, 7)), None)


# --------------------------------------------------------------------------- learning
def _reversal_exact_match(attention, steps=150):
    """Exact match on 200 held-out reversals of 8-10 symbols (of 6) after ``steps`` Adam
    steps of batch 32: a small version of docs/tasks.md's long reversal."""
    from rnnkit import tasks

    train = tasks.copy_pairs(4000, 8, 10, 6, reverse=True, rng=0)
    test = tasks.copy_pairs(200, 8, 10, 6, reverse=True, rng=1)
    model = Seq2Seq(9, 9, tasks.PAIR_BOS, tasks.PAIR_EOS, embedding_dim=8, hidden_size=32,
                    bidirectional=True, attention=attention, rng=0)
    data = ListData(train, lambda b: model.make_batch([s for s, _ in b], [t for _, t in b]),
                    32, seed=0)
    Trainer(model, Adam(model.params, lr=0.01), data, None, TrainConfig(
        steps=steps, progress=False, log_every=0, clip_value=1.0), log=lambda m: None).fit()
    out = model.decode([s for s, _ in test], 12)
    return np.mean([o == t.tolist() for o, (_, t) in zip(out, test, strict=True)])


def test_attention_learns_a_reversal_that_the_final_state_alone_does_not():
    assert _reversal_exact_match("additive") >= 0.85
    assert _reversal_exact_match(None) <= 0.1  # the same budget without attention


def test_the_compare_example_runs_and_draws_its_maps(tmp_path, monkeypatch, capsys):
    """examples/attention_compare.py, in a few steps: the table of docs/tasks.md section 6
    and one attention map per model with attention."""
    pytest.importorskip("matplotlib")
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "examples"
    monkeypatch.syspath_prepend(str(folder))  # the example imports its _common
    spec = importlib.util.spec_from_file_location("attention_compare",
                                                  folder / "attention_compare.py")
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "attention_compare", example)
    spec.loader.exec_module(example)
    common = ["--steps", "2", "--hidden", "8", "--embedding-dim", "4", "--train-size", "40",
              "--test-size", "4", "--eval-every", "0"]
    example.main(["--task", "reverse", "--min-len", "4", "--max-len", "6", *common])
    assert "| none      |" in capsys.readouterr().out
    example.main(["--task", "noisy-dates", "--attention", "none", "additive", "dot",
                  "--max-len", "40", "--plot", str(tmp_path / "map.png"), *common])
    out = capsys.readouterr().out
    assert "| attention | parameters | steps |" in out and "| dot " in out
    for kind in ("additive", "dot"):
        assert (tmp_path / f"map_{kind}.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "map_none.png").exists()
