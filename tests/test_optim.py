"""Optimizers, clipping and schedules: parity with torch.optim / torch.nn.utils /
torch.optim.lr_scheduler, state round trips, and validated settings."""

import copy
import math

import numpy as np
import pytest

from rnnkit import optim
from rnnkit.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineDecay,
    ExponentialDecay,
    Momentum,
    RMSProp,
    Schedule,
    StepDecay,
    Warmup,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    clip_gradients,
    global_norm,
)

SHAPES = {"W": (3, 4), "b": (5,)}
STEPS = 6

# (id, rnnkit class, rnnkit settings, torch class name, torch settings)
CASES = [
    ("sgd", SGD, {"lr": 0.1}, "SGD", {"lr": 0.1}),
    ("sgd-momentum", SGD, {"lr": 0.1, "momentum": 0.9}, "SGD", {"lr": 0.1, "momentum": 0.9}),
    ("sgd-nesterov", SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True},
     "SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("sgd-wd", SGD, {"lr": 0.1, "weight_decay": 0.05}, "SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("sgd-momentum-wd", SGD, {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.05},
     "SGD", {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.05}),
    ("sgd-nesterov-wd", SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
     "SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("momentum", Momentum, {"lr": 0.02}, "SGD", {"lr": 0.02, "momentum": 0.9}),
    ("adagrad", Adagrad, {"lr": 0.1}, "Adagrad", {"lr": 0.1}),
    ("adagrad-init-wd", Adagrad, {"lr": 0.1, "initial_accumulator_value": 0.3,
                                  "weight_decay": 0.1, "eps": 1e-6},
     "Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.3, "weight_decay": 0.1, "eps": 1e-6}),
    ("rmsprop", RMSProp, {"lr": 0.01}, "RMSprop", {"lr": 0.01}),
    ("rmsprop-momentum", RMSProp, {"lr": 0.01, "momentum": 0.9, "alpha": 0.9},
     "RMSprop", {"lr": 0.01, "momentum": 0.9, "alpha": 0.9}),
    ("rmsprop-wd", RMSProp, {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-4},
     "RMSprop", {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-4}),
    ("adam", Adam, {"lr": 0.01}, "Adam", {"lr": 0.01}),
    ("adam-betas", Adam, {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-6},
     "Adam", {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-6}),
    ("adam-wd", Adam, {"lr": 0.01, "weight_decay": 0.1}, "Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw", AdamW, {"lr": 0.01}, "AdamW", {"lr": 0.01}),
    ("adamw-wd", AdamW, {"lr": 0.05, "weight_decay": 0.3, "betas": (0.8, 0.99)},
     "AdamW", {"lr": 0.05, "weight_decay": 0.3, "betas": (0.8, 0.99)}),
]
CASE_IDS = [c[0] for c in CASES]


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def grad_sequence(dtype=np.float64, seed=1, steps=STEPS):
    """The same random gradients for both libraries (some large, some tiny)."""
    rng = np.random.default_rng(seed)
    seq = []
    for i in range(steps):
        scale = 10.0 ** rng.integers(-2, 2)
        seq.append({k: (scale * rng.standard_normal(s)).astype(dtype) for k, s in SHAPES.items()})
        if i == 2:
            seq[-1]["b"][0] = 0.0  # a zero gradient entry
    return seq


def run_torch(torch_name, settings, params, grads):
    torch = pytest.importorskip("torch")
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = getattr(torch.optim, torch_name)(list(tparams.values()), **settings)
    for g in grads:
        for k, p in tparams.items():
            p.grad = torch.tensor(g[k])
        opt.step()
    return {k: p.detach().numpy() for k, p in tparams.items()}


@pytest.mark.parametrize(("cls", "settings", "torch_name", "torch_settings"),
                         [c[1:] for c in CASES], ids=CASE_IDS)
def test_parity_with_torch_float64(cls, settings, torch_name, torch_settings):
    params = make_params()
    start = copy.deepcopy(params)
    grads = grad_sequence()
    ref = run_torch(torch_name, torch_settings, start, grads)
    opt = cls(params, **settings)
    for g in grads:
        opt.step(g)
    assert opt.t == STEPS
    for k in params:
        assert params[k].dtype == np.float64
        assert np.abs(params[k] - start[k]).max() > 1e-3, "the parameters must move"
        np.testing.assert_allclose(params[k], ref[k], rtol=1e-12, atol=1e-12, err_msg=k)


@pytest.mark.parametrize(("cls", "settings", "torch_name", "torch_settings"),
                         [c[1:] for c in CASES], ids=CASE_IDS)
def test_parity_with_torch_float32(cls, settings, torch_name, torch_settings):
    params = make_params(np.float32)
    grads = grad_sequence(np.float32)
    ref = run_torch(torch_name, torch_settings, params, grads)
    opt = cls(params, **settings)
    for g in grads:
        opt.step(g)
    for k in params:
        assert params[k].dtype == np.float32
        np.testing.assert_allclose(params[k], ref[k], rtol=1e-6, atol=1e-6, err_msg=k)


def test_updates_in_place_and_casts_grads():
    params = make_params(np.float32)
    W = params["W"]
    before = W.copy()
    opt = SGD(params, lr=0.5)
    opt.step({k: np.ones(s) for k, s in SHAPES.items()})  # float64 grads for float32 params
    assert params["W"] is W and W.dtype == np.float32
    np.testing.assert_allclose(W, before - 0.5, rtol=1e-6)


def test_default_settings_match_torch():
    torch = pytest.importorskip("torch")
    t = torch.zeros(1, requires_grad=True)
    pairs = [(Adam, torch.optim.Adam, ("lr", "eps", "weight_decay")),
             (AdamW, torch.optim.AdamW, ("lr", "eps", "weight_decay")),
             (RMSProp, torch.optim.RMSprop, ("lr", "alpha", "eps", "momentum", "weight_decay")),
             (Adagrad, torch.optim.Adagrad, ("lr", "eps", "initial_accumulator_value",
                                             "weight_decay"))]
    for ours, theirs, keys in pairs:
        a = ours(make_params()).settings()
        b = theirs([t]).defaults
        for k in keys:
            assert a[k] == b[k], (ours.__name__, k)
    assert tuple(Adam(make_params()).settings()["betas"]) == torch.optim.Adam([t]).defaults["betas"]


# ---------------------------------------------------------------------- state round trip
@pytest.mark.parametrize(("cls", "settings"), [c[1:3] for c in CASES], ids=CASE_IDS)
def test_state_dict_round_trip_continues_identically(cls, settings):
    grads = grad_sequence(steps=6)
    a_params = make_params()
    a = cls(a_params, **settings)
    for g in grads[:3]:
        a.step(g)
    sd = copy.deepcopy(a.state_dict())
    assert sd["t"] == 3 and sd["lr"] == a.lr
    assert all(isinstance(v, np.ndarray) for v in sd["arrays"].values())

    b_params = copy.deepcopy(a_params)
    b = cls(b_params, **settings)
    b.load_state_dict(sd)
    for g in grads[3:]:
        a.step(g)
        b.step(g)
    for k in a_params:
        np.testing.assert_array_equal(a_params[k], b_params[k])

    # without the state, a fresh optimizer (sgd without momentum aside) diverges
    c_params = copy.deepcopy(b_params)
    if cls is not SGD or settings.get("momentum"):
        fresh = cls(copy.deepcopy(a_params), **settings)
        restored = cls(c_params, **settings)
        restored.load_state_dict(copy.deepcopy(b.state_dict()))
        g = grads[0]
        fresh.step(g)
        restored.step(g)
        assert any(not np.array_equal(fresh.params[k], restored.params[k]) for k in SHAPES)


def test_state_dict_is_plain_arrays_and_numbers():
    opt = Adam(make_params(), lr=0.01)
    opt.step(grad_sequence()[0])
    sd = opt.state_dict()
    assert set(sd) == {"t", "lr", "arrays"}
    assert set(sd["arrays"]) == {"W/m", "W/v", "b/m", "b/v"}
    assert isinstance(sd["t"], int) and isinstance(sd["lr"], float)


def test_load_state_dict_checks_names_and_shapes():
    opt = Adam(make_params(), lr=0.01)
    sd = copy.deepcopy(opt.state_dict())
    del sd["arrays"]["b/v"]
    with pytest.raises(KeyError, match="optimizer state has no array 'b/v'"):
        Adam(make_params(), lr=0.01).load_state_dict(sd)
    sd = copy.deepcopy(opt.state_dict())
    sd["arrays"]["W/m"] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"optimizer state 'W/m' has shape \(4, 3\), expected "
                                         r"\(3, 4\)"):
        Adam(make_params(), lr=0.01).load_state_dict(sd)


# ---------------------------------------------------------------------- settings
@pytest.mark.parametrize(("make", "exc", "message"), [
    (lambda p: SGD(p, lr=-0.1), ValueError, r"Invalid learning rate: -0.1 \(must be > 0.0\)"),
    (lambda p: SGD(p, lr=0), ValueError, r"Invalid learning rate: 0.0 \(must be > 0.0\)"),
    (lambda p: Adam(p, lr=float("nan")), ValueError, "Invalid learning rate: nan"),
    (lambda p: Adam(p, lr=float("inf")), ValueError, "Invalid learning rate: inf"),
    (lambda p: Adam(p, lr="0.1"), TypeError, "learning rate must be a number, got '0.1'"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), ValueError, r"Invalid beta1: 1.0 \(must be >= 0.0 "
                                                       r"and < 1.0\)"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), ValueError, "Invalid beta2: -0.1"),
    (lambda p: AdamW(p, betas=(0.9, 1.5)), ValueError, "Invalid beta2: 1.5"),
    (lambda p: Adam(p, betas=0.9), TypeError, r"betas must be a pair \(beta1, beta2\), got 0.9"),
    (lambda p: Adam(p, eps=-1e-8), ValueError, "Invalid eps: -1e-08"),
    (lambda p: SGD(p, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (lambda p: SGD(p, momentum=-0.5), ValueError, "Invalid momentum: -0.5"),
    (lambda p: SGD(p, weight_decay=-1), ValueError, "Invalid weight_decay: -1.0"),
    (lambda p: RMSProp(p, alpha=1.0), ValueError, "Invalid alpha: 1.0"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1), ValueError,
     "Invalid initial_accumulator_value: -1.0"),
    (lambda p: SGD({}), TypeError, "params must be a non-empty dict of name -> numpy array"),
    (lambda p: SGD([p["W"]]), TypeError, "params must be a non-empty dict"),
    (lambda p: SGD({"W": [1.0, 2.0]}), TypeError,
     r"params\['W'\] must be a float numpy array, got list"),
    (lambda p: SGD({"W": np.arange(3)}), TypeError, r"params\['W'\] must be a float numpy array"),
    (lambda p: optim.make_optimizer("adamax", p), ValueError,
     "optimizer must be one of sgd, momentum, adagrad, rmsprop, adam, adamw; got 'adamax'"),
])
def test_settings_validated_at_construction(make, exc, message):
    with pytest.raises(exc, match=message):
        make(make_params())


def test_make_optimizer_by_name():
    opt = optim.make_optimizer("adamw", make_params(), lr=0.5, weight_decay=0.2)
    assert isinstance(opt, AdamW) and opt.lr == 0.5 and opt.weight_decay == 0.2
    assert opt.settings()["name"] == "AdamW"


def test_step_with_missing_or_wrong_grads():
    params = make_params()
    before = copy.deepcopy(params)
    opt = Adam(params, lr=0.1)
    g = grad_sequence()[0]
    with pytest.raises(KeyError, match="grads has no entry for parameter 'b'"):
        opt.step({"W": g["W"]})
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape \(4, 3\), expected \(3, 4\)"):
        opt.step({"W": g["W"].T, "b": g["b"]})
    # a rejected step changes nothing
    assert opt.t == 0
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


# ---------------------------------------------------------------------- clipping
def test_clip_by_value_is_elementwise_in_place():
    rng = np.random.default_rng(0)
    grads = {"dWax": rng.standard_normal((3, 4)) * 10, "db": rng.standard_normal((3, 1)) * 10}
    orig = copy.deepcopy(grads)
    arrays = {k: v for k, v in grads.items()}
    out = clip_by_value(grads, 5)
    assert out is grads
    for k in grads:
        assert grads[k] is arrays[k]  # in place
        np.testing.assert_array_equal(grads[k], np.clip(orig[k], -5, 5))
        assert np.abs(grads[k]).max() <= 5
        small = np.abs(orig[k]) <= 5
        np.testing.assert_array_equal(grads[k][small], orig[k][small])


def test_clip_by_value_matches_the_course_clip():
    from rnnkit.course import clip

    rng = np.random.default_rng(3)
    names = ["dWaa", "dWax", "dWya", "db", "dby"]
    grads = {k: rng.standard_normal((2, 3)) * 20 for k in names}
    ours = clip_by_value(copy.deepcopy(grads), 10)
    theirs = clip(copy.deepcopy(grads), 10)
    for k in names:
        np.testing.assert_array_equal(ours[k], theirs[k])


def test_clip_by_norm_per_gradient():
    rng = np.random.default_rng(0)
    grads = {"big": rng.standard_normal((4, 4)) * 10, "small": rng.standard_normal(3) * 0.01}
    orig = copy.deepcopy(grads)
    norms = clip_by_norm(grads, 1.0)
    assert norms["big"] == pytest.approx(np.linalg.norm(orig["big"]), rel=1e-14)
    assert norms["small"] == pytest.approx(np.linalg.norm(orig["small"]), rel=1e-14)
    assert np.linalg.norm(grads["big"]) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(grads["big"] / orig["big"], 1.0 / (norms["big"] + 1e-6))
    np.testing.assert_array_equal(grads["small"], orig["small"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("max_norm", [0.5, 1e6], ids=["clipped", "unclipped"])
def test_clip_by_global_norm_matches_torch(max_norm, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    grads = {"a": (rng.standard_normal((3, 4)) * 3).astype(dtype),
             "b": rng.standard_normal(5).astype(dtype)}
    tparams = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
               for g in grads.values()]
    for p, g in zip(tparams, grads.values(), strict=True):
        p.grad = torch.tensor(g.copy())
    ref_norm = torch.nn.utils.clip_grad_norm_(tparams, max_norm).item()
    norm = clip_by_global_norm(grads, max_norm)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert norm == pytest.approx(ref_norm, rel=rtol)
    for p, g in zip(tparams, grads.values(), strict=True):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=rtol, atol=1e-7)
    after = global_norm(grads)
    assert after == pytest.approx(min(norm, max_norm), rel=1e-5)


def test_global_norm_accumulates_in_float64():
    # float32 squares of 1e20 overflow; the norm itself (~3.2e20) is representable
    grads = {"a": np.full(10, 1e20, np.float32), "b": np.full((2, 2), -1e20, np.float32)}
    expected = math.sqrt(14) * float(np.float32(1e20))
    assert global_norm(grads) == pytest.approx(expected, rel=1e-12)
    clip_by_global_norm(grads, 1.0)
    assert np.isfinite(grads["a"]).all() and grads["a"][0] > 0
    assert global_norm(grads) == pytest.approx(1.0, rel=1e-5)


def test_clip_gradients_modes():
    rng = np.random.default_rng(5)
    base = {"a": rng.standard_normal((3, 3)) * 5, "b": rng.standard_normal(2) * 5}
    pre = global_norm(base)
    for mode, expect in [("value", lambda g: clip_by_value(g, 1.0)),
                         ("norm", lambda g: clip_by_norm(g, 1.0)),
                         ("global_norm", lambda g: clip_by_global_norm(g, 1.0)),
                         ("none", lambda g: g)]:
        g1, g2 = copy.deepcopy(base), copy.deepcopy(base)
        assert clip_gradients(g1, mode, 1.0) == pytest.approx(pre)
        expect(g2)
        for k in base:
            np.testing.assert_array_equal(g1[k], g2[k])
    with pytest.raises(ValueError, match="clip mode must be one of value, norm, global_norm, "
                                         "none; got 'max'"):
        clip_gradients(copy.deepcopy(base), "max", 1.0)


@pytest.mark.parametrize("fn", [clip_by_value, clip_by_norm, clip_by_global_norm])
@pytest.mark.parametrize("bad", [0, -1.0])
def test_clip_thresholds_must_be_positive(fn, bad):
    with pytest.raises(ValueError, match=r"Invalid max_(value|norm): .* \(must be > 0.0\)"):
        fn({"a": np.ones(2)}, bad)


# ---------------------------------------------------------------------- schedules
def torch_lrs(make_scheduler, base_lr, steps):
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_step_decay_matches_torch_step_lr():
    torch = pytest.importorskip("torch")
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 0.1, 20)
    ours = StepDecay(0.1, every=3, gamma=0.5)
    np.testing.assert_allclose([ours(s) for s in range(20)], ref, rtol=1e-13)
    assert ours(0) == ours(2) == 0.1 and ours(3) == 0.05


def test_step_decay_start():
    s = StepDecay(1.0, every=2, gamma=0.1, start=5)
    assert [s(i) for i in (0, 5, 6)] == [1.0, 1.0, 1.0]
    assert s(7) == pytest.approx(0.1) and s(9) == pytest.approx(0.01)


def test_exponential_decay_matches_torch():
    torch = pytest.importorskip("torch")
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9), 0.3, 25)
    ours = ExponentialDecay(0.3, gamma=0.9)
    np.testing.assert_allclose([ours(s) for s in range(25)], ref, rtol=1e-13)


@pytest.mark.parametrize("min_lr", [0.0, 0.01])
def test_cosine_decay_matches_torch(min_lr):
    torch = pytest.importorskip("torch")
    total = 12
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(
        o, T_max=total, eta_min=min_lr), 0.2, total + 1)
    ours = CosineDecay(0.2, total_steps=total, min_lr=min_lr)
    np.testing.assert_allclose([ours(s) for s in range(total + 1)], ref, rtol=1e-10, atol=1e-15)
    assert ours(0) == 0.2 and ours(total) == pytest.approx(min_lr, abs=1e-15)
    assert ours(total + 5) == ours(total)  # stays at the floor after the end


def test_warmup_then_schedule():
    after = CosineDecay(0.1, total_steps=10, min_lr=0.001)
    w = Warmup(after, warmup_steps=4)
    assert w.base_lr == 0.1
    np.testing.assert_allclose([w(s) for s in range(4)], [0.025, 0.05, 0.075, 0.1])
    for s in range(4, 20):
        assert w(s) == after(s - 4)
    lrs = [w(s) for s in range(20)]
    assert max(lrs) == 0.1 and all(a <= b for a, b in zip(lrs[:4], lrs[1:5], strict=True))
    assert w.settings() == {"name": "warmup", "warmup_steps": 4, "after": after.settings()}


def test_constant_schedule_and_settings():
    assert Schedule(0.3)(0) == Schedule(0.3)(1000) == 0.3
    assert StepDecay(0.1, 5).settings() == {"name": "step", "base_lr": 0.1, "every": 5,
                                            "gamma": 0.97, "start": 0}
    assert ExponentialDecay(0.1, 0.5).settings()["gamma"] == 0.5


@pytest.mark.parametrize(("make", "exc", "message"), [
    (lambda: Schedule(0), ValueError, "Invalid base_lr: 0.0"),
    (lambda: StepDecay(0.1, every=0), ValueError, "Invalid every: 0"),
    (lambda: StepDecay(0.1, every=2, gamma=-0.5), ValueError, "Invalid gamma: -0.5"),
    (lambda: ExponentialDecay(0.1, gamma=0), ValueError, "Invalid gamma: 0.0"),
    (lambda: CosineDecay(0.1, total_steps=0), ValueError, "Invalid total_steps: 0"),
    (lambda: CosineDecay(0.1, total_steps=5, min_lr=-1), ValueError, "Invalid min_lr: -1.0"),
    (lambda: Warmup(0.1, warmup_steps=3), TypeError, "after must be a Schedule, got float"),
    (lambda: Warmup(Schedule(0.1), warmup_steps=0), ValueError, "Invalid warmup_steps: 0"),
])
def test_schedule_settings_validated(make, exc, message):
    with pytest.raises(exc, match=message):
        make()
