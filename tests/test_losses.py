"""Losses: finite differences (with and without masks, "sum" and "mean"), parity with
torch.nn.functional, numerical stability, the seeds' L = sum_t L<t>, and bad input."""

import numpy as np
import pytest

from rnnkit.gradcheck import numerical_gradient, rel_error
from rnnkit.losses import binary_cross_entropy, log_softmax, mse, softmax, softmax_cross_entropy

B, T, V = 2, 3, 4
TOL = 1e-8
REDUCTIONS = ["sum", "mean"]


def rng_(seed=0):
    return np.random.default_rng(seed)


def random_mask(shape, seed=1):
    m = rng_(seed).random(shape) < 0.6
    m.reshape(-1)[0] = True
    m.reshape(-1)[-1] = False
    return m


# ---------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
@pytest.mark.parametrize("shape", [(B, T), (B,)], ids=["BT", "B"])
def test_softmax_cross_entropy_gradcheck(shape, masked, reduction):
    logits = rng_(0).standard_normal(shape + (V,)) * 2
    targets = rng_(1).integers(0, V, size=shape)
    mask = random_mask(shape) if masked else None
    loss, d = softmax_cross_entropy(logits, targets, mask, reduction)
    assert d.shape == logits.shape and d.dtype == np.float64
    f = lambda: softmax_cross_entropy(logits, targets, mask, reduction)[0]  # noqa: E731
    assert rel_error(numerical_gradient(f, logits), d) < TOL
    if masked:
        assert not d[~mask].any(), "masked positions must get no gradient"
    # the value itself: -log softmax at the target, summed (or averaged) over valid positions
    nll = -np.take_along_axis(log_softmax(logits), targets[..., None], -1)[..., 0]
    valid = np.ones(shape, bool) if mask is None else mask
    expected = nll[valid].sum() / (valid.sum() if reduction == "mean" else 1)
    assert loss == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_binary_cross_entropy_gradcheck(masked, reduction):
    logits = rng_(0).standard_normal((B, T, 2)) * 3
    targets = rng_(1).random((B, T, 2))  # soft targets in [0, 1]
    targets[0, 0] = [0.0, 1.0]
    mask = random_mask((B, T, 2)) if masked else None
    loss, d = binary_cross_entropy(logits, targets, mask, reduction)
    f = lambda: binary_cross_entropy(logits, targets, mask, reduction)[0]  # noqa: E731
    assert rel_error(numerical_gradient(f, logits), d) < TOL
    s = 1 / (1 + np.exp(-logits))
    per = -(targets * np.log(s) + (1 - targets) * np.log(1 - s))
    valid = np.ones(logits.shape, bool) if mask is None else mask
    expected = per[valid].sum() / (valid.sum() if reduction == "mean" else 1)
    assert loss == pytest.approx(expected, rel=1e-12)
    if masked:
        assert not d[~mask].any()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("mask_kind", [None, "leading", "full"])
def test_mse_gradcheck(mask_kind, reduction):
    pred = rng_(0).standard_normal((B, T, 2))
    targets = rng_(1).standard_normal((B, T, 2))
    mask = {None: None, "leading": random_mask((B, T)), "full": random_mask((B, T, 2))}[mask_kind]
    loss, d = mse(pred, targets, mask, reduction)
    f = lambda: mse(pred, targets, mask, reduction)[0]  # noqa: E731
    assert rel_error(numerical_gradient(f, pred), d) < TOL
    full = np.ones(pred.shape, bool) if mask is None else np.broadcast_to(
        mask if mask.shape == pred.shape else mask[..., None], pred.shape)
    sq = (pred - targets) ** 2
    expected = sq[full].sum() / (full.sum() if reduction == "mean" else 1)
    assert loss == pytest.approx(expected, rel=1e-13)
    assert not d[~full].any()


def test_mean_is_sum_over_valid_count():
    logits = rng_(0).standard_normal((B, T, V))
    targets = rng_(1).integers(0, V, (B, T))
    mask = random_mask((B, T))
    s, ds = softmax_cross_entropy(logits, targets, mask, "sum")
    m, dm = softmax_cross_entropy(logits, targets, mask, "mean")
    n = mask.sum()
    assert m == pytest.approx(s / n, rel=1e-14)
    np.testing.assert_allclose(dm * n, ds, rtol=1e-13, atol=1e-15)


def test_all_masked_gives_zero_not_nan():
    logits = rng_(0).standard_normal((B, T, V))
    mask = np.zeros((B, T), bool)
    for reduction in REDUCTIONS:
        loss, d = softmax_cross_entropy(logits, np.zeros((B, T), int), mask, reduction)
        assert loss == 0.0 and not d.any()


def test_mask_may_be_zero_one_integers_or_floats():
    logits = rng_(0).standard_normal((B, T, V))
    targets = rng_(1).integers(0, V, (B, T))
    mask = random_mask((B, T))
    ref = softmax_cross_entropy(logits, targets, mask)
    for m in (mask.astype(np.int64), mask.astype(np.float32)):
        got = softmax_cross_entropy(logits, targets, m)
        assert got[0] == ref[0]
        np.testing.assert_array_equal(got[1], ref[1])


def test_masked_positions_may_hold_any_target():
    """Padding labels (e.g. -100, or ids >= V) are ignored where the mask is False."""
    logits = rng_(0).standard_normal((B, T, V))
    targets = rng_(1).integers(0, V, (B, T))
    mask = random_mask((B, T))
    ref = softmax_cross_entropy(logits, targets, mask)
    bad = targets.copy()
    bad[~mask] = -100
    got = softmax_cross_entropy(logits, bad, mask)
    assert got[0] == ref[0]
    np.testing.assert_array_equal(got[1], ref[1])


# ---------------------------------------------------------------------- the seeds' L = sum_t L<t>
def test_sum_reduction_is_sum_of_per_step_losses():
    logits = rng_(0).standard_normal((B, T, V))
    targets = rng_(1).integers(0, V, (B, T))
    total, d = softmax_cross_entropy(logits, targets, reduction="sum")
    per_step = [softmax_cross_entropy(logits[:, t], targets[:, t], reduction="sum")
                for t in range(T)]
    assert total == pytest.approx(sum(L for L, _ in per_step), rel=1e-14)
    np.testing.assert_allclose(d, np.stack([g for _, g in per_step], axis=1), rtol=1e-14)
    # each L<t> is the cross-entropy -sum_i y_i log yhat_i of logistic regression
    yhat = softmax(logits)
    onehot = np.eye(V)[targets]
    L_t = -(onehot * np.log(yhat)).sum(axis=(0, 2))
    np.testing.assert_allclose([L for L, _ in per_step], L_t, rtol=1e-13)


# ---------------------------------------------------------------------- parity with torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_cross_entropy_matches_torch(masked, reduction, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits = (rng_(0).standard_normal((B, T, V)) * 3).astype(dtype)
    targets = rng_(1).integers(0, V, (B, T))
    mask = random_mask((B, T)) if masked else None
    loss, d = softmax_cross_entropy(logits, targets, mask, reduction)
    tt = np.where(mask, targets, -100) if masked else targets
    lt = torch.tensor(logits, requires_grad=True)
    ref = F.cross_entropy(lt.reshape(-1, V), torch.tensor(tt.reshape(-1)), ignore_index=-100,
                          reduction=reduction)
    ref.backward()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert loss == pytest.approx(ref.item(), rel=tol)
    assert d.dtype == dtype
    assert rel_error(d, lt.grad.numpy()) < tol


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_binary_cross_entropy_matches_torch(masked, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits = rng_(0).standard_normal((B, T, 3)) * 4
    targets = rng_(1).random((B, T, 3))
    mask = random_mask((B, T, 3)) if masked else None
    loss, d = binary_cross_entropy(logits, targets, mask, reduction)
    lt = torch.tensor(logits, requires_grad=True)
    weight = torch.tensor(mask.astype(np.float64)) if masked else None
    ref = F.binary_cross_entropy_with_logits(lt, torch.tensor(targets), weight=weight,
                                             reduction="sum")
    if reduction == "mean":  # torch's mean counts masked entries; ours averages valid ones
        ref = ref / (mask.sum() if masked else logits.size)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    assert rel_error(d, lt.grad.numpy()) < 1e-12


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_mse_matches_torch(masked, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pred = rng_(0).standard_normal((B, T, 2))
    targets = rng_(1).standard_normal((B, T, 2))
    mask = random_mask((B, T)) if masked else None
    loss, d = mse(pred, targets, mask, reduction)
    pt = torch.tensor(pred, requires_grad=True)
    if masked:
        m = torch.tensor(np.broadcast_to(mask[..., None], pred.shape).astype(np.float64))
        ref = (((pt - torch.tensor(targets)) ** 2) * m).sum()
        if reduction == "mean":
            ref = ref / m.sum()
    else:
        ref = F.mse_loss(pt, torch.tensor(targets), reduction=reduction)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-13)
    assert rel_error(d, pt.grad.numpy()) < 1e-13


# ---------------------------------------------------------------------- stability
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_huge_logits_stay_finite(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=dtype)
    targets = np.array([1, 2])
    loss, d = softmax_cross_entropy(logits, targets, reduction="sum")
    assert np.isfinite(loss) and np.isfinite(d).all()
    assert loss == pytest.approx(2e4, rel=1e-6)  # row 0 pays 2e4; row 1 pays ~0
    np.testing.assert_allclose(d, [[1, -1, 0], [0, 0, 0]], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_cross_entropy_huge_logits_stay_finite(dtype):
    logits = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    targets = np.array([1.0, 0.0, 0.0, 1.0])
    loss, d = binary_cross_entropy(logits, targets, reduction="sum")
    assert np.isfinite(loss) and np.isfinite(d).all()
    assert loss == pytest.approx(2e4, rel=1e-6)
    np.testing.assert_allclose(d, [0, 0, 1, -1], atol=1e-6)


@pytest.mark.parametrize("scale", [1e4, 1e30, 1e300])
def test_softmax_and_log_softmax_of_huge_values(scale):
    z = np.array([[scale, 0.0, -scale], [scale, scale, 1.0]])
    p = softmax(z)
    lp = log_softmax(z)
    assert np.isfinite(p).all() and np.all(~np.isnan(lp))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(p, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-300)
    assert lp[0, 0] == 0.0 and lp[1, 0] == pytest.approx(np.log(0.5))
    assert lp[0, 2] == pytest.approx(-2 * scale)


def test_softmax_is_shift_invariant_and_log_softmax_consistent():
    z = rng_(0).standard_normal((3, 5))
    np.testing.assert_allclose(softmax(z + 1000.0), softmax(z), rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_softmax(z)), softmax(z), rtol=1e-13)
    np.testing.assert_allclose(softmax(z, axis=0).sum(axis=0), 1.0, rtol=1e-15)


# ---------------------------------------------------------------------- bad input
def ce_args():
    return rng_(0).standard_normal((B, T, V)), rng_(1).integers(0, V, (B, T))


@pytest.mark.parametrize("bad", [V, -1, 10**6])
def test_cross_entropy_labels_out_of_range(bad):
    logits, targets = ce_args()
    targets[1, 2] = bad
    with pytest.raises(ValueError, match=rf"targets holds class {bad}, outside \[0, {V}\)"):
        softmax_cross_entropy(logits, targets)


def test_cross_entropy_wrong_target_shape():
    logits, targets = ce_args()
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 3\) to match logits "
                                         r"\(2, 3, 4\), got \(3, 2\)"):
        softmax_cross_entropy(logits, targets.T)


def test_cross_entropy_float_targets():
    logits, targets = ce_args()
    with pytest.raises(TypeError, match="targets must be integer class ids, got dtype float64"):
        softmax_cross_entropy(logits, targets.astype(np.float64))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_cross_entropy_non_finite_logits(value):
    logits, targets = ce_args()
    logits[0, 1, 2] = value
    with pytest.raises(ValueError, match="logits contain NaN or infinite values"):
        softmax_cross_entropy(logits, targets)


def test_cross_entropy_integer_logits():
    _, targets = ce_args()
    with pytest.raises(TypeError, match="logits must be a float array"):
        softmax_cross_entropy(np.zeros((B, T, V), np.int64), targets)


@pytest.mark.parametrize("mask", [np.full((B, T), 2), np.full((B, T), 0.5),
                                  np.full((B, T), "yes")], ids=["2", "0.5", "str"])
def test_non_boolean_mask_values(mask):
    logits, targets = ce_args()
    with pytest.raises(ValueError, match=r"mask must be boolean \(or 0/1\)"):
        softmax_cross_entropy(logits, targets, mask)
    with pytest.raises(ValueError, match=r"mask must be boolean \(or 0/1\)"):
        mse(logits, logits, mask)
    with pytest.raises(ValueError, match=r"mask must be boolean \(or 0/1\)"):
        binary_cross_entropy(logits[..., 0], np.zeros((B, T)), mask)


def test_mask_wrong_shape():
    logits, targets = ce_args()
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 3\), got \(3, 2\)"):
        softmax_cross_entropy(logits, targets, np.ones((T, B), bool))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 3, 4\), got \(2, 4\)"):
        mse(logits, logits, np.ones((B, V), bool))


def test_bad_reduction():
    logits, targets = ce_args()
    for call in (lambda r: softmax_cross_entropy(logits, targets, reduction=r),
                 lambda r: binary_cross_entropy(logits, np.zeros_like(logits), reduction=r),
                 lambda r: mse(logits, logits, reduction=r)):
        with pytest.raises(ValueError, match="reduction must be one of 'sum', 'mean'; got 'avg'"):
            call("avg")


def test_binary_cross_entropy_bad_targets():
    logits = rng_(0).standard_normal((B, T))
    with pytest.raises(ValueError, match=r"targets must have the shape of logits \(2, 3\), got"):
        binary_cross_entropy(logits, np.zeros((B, T, 1)))
    for bad in (1.5, -0.1, np.nan):
        targets = np.zeros((B, T))
        targets[1, 1] = bad
        with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
            binary_cross_entropy(logits, targets)
    logits[0, 0] = np.nan
    with pytest.raises(ValueError, match="logits contains NaN or infinite values"):
        binary_cross_entropy(logits, np.zeros((B, T)))


def test_mse_bad_input():
    pred = rng_(0).standard_normal((B, T, 2))
    with pytest.raises(ValueError, match=r"targets must have the shape of pred \(2, 3, 2\)"):
        mse(pred, np.zeros((B, T)))
    with pytest.raises(TypeError, match="pred must be a floating-point array"):
        mse(pred.astype(np.int64), pred)
    bad = pred.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="pred contains NaN or infinite values"):
        mse(bad, pred)
    with pytest.raises(ValueError, match="targets contains NaN or infinite values"):
        mse(pred, bad)
