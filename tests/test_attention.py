"""The attention layer: gradients, PyTorch, masks, bad input.

Finite differences run in float64 with every parameter drawn from U(-0.5, 0.5) (biases
included). The PyTorch references are written independently of rnnkit's code: the encoder
is ``torch.nn.LSTM/GRU`` over packed padded sequences, the decoder the same module run one
step at a time, the dot and general contexts ``torch.nn.functional.
scaled_dot_product_attention`` with a boolean mask (the additive score has no built-in).
"""

import numpy as np
import pytest

from rnnkit.attention import KINDS, Attention, masked_softmax
from rnnkit.gradcheck import numerical_gradient, rel_error

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
