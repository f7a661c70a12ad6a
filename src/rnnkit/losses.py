"""Losses with masks. Each returns ``(loss, dpred)``: the scalar and its gradient.

``reduction`` is ``"sum"`` (the seeds' L = sum_t L<t>, summed over the batch too) or
``"mean"`` (divided by the number of valid positions). A mask (same leading shape as the
targets, True where valid) removes padded positions from both the loss and the gradient.
All are numerically stable (log-sum-exp; softplus for the logistic loss).

Predictions holding NaN or inf raise ValueError, unless ``check_finite=False``: then the
loss and the gradient come back as NaN (what a training loop needs in order to skip a
diverged step and recover, instead of crashing).
"""

from __future__ import annotations

import numpy as np

from ._checks import check_array, check_choice, shape_str

REDUCTIONS = ("sum", "mean")


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` (stable: the max is subtracted). z (...) -> p (...)."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(z)) along ``axis``, computed as z - logsumexp(z). z (...) -> (...)."""
    s = z - z.max(axis=axis, keepdims=True)
    s -= np.log(np.exp(s).sum(axis=axis, keepdims=True))
    return s


def _check_mask(mask, shape, name="mask"):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {shape_str(shape)}, got {shape_str(mask.shape)}")
    if mask.dtype != bool:
        if mask.dtype.kind not in "iuf" or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1), True at valid positions")
        mask = mask.astype(bool)
    return mask


def _count(mask, shape) -> int:
    return int(mask.sum()) if mask is not None else int(np.prod(shape))


def _nan_result(pred):
    return float("nan"), np.full(np.shape(pred), np.nan, dtype=np.asarray(pred).dtype)


def softmax_cross_entropy(logits, targets, mask=None, reduction: str = "mean",
                          check_finite: bool = True, axis: int = -1):
    """Cross-entropy of integer targets under softmax(logits).

    Args:
        logits: (..., V) float, e.g. (B, T, V) or (B, V); with ``axis=0``, (V, ...) (the
            class axis first, as the language model keeps them: (V, N) with its N
            positions contiguous, which makes the reductions over V fast).
        targets: (...) ints in [0, V): logits' shape without the class axis.
        mask: (...) bool or None.
        reduction: "mean" over valid positions, or "sum".
        axis: -1 or 0, the class axis of logits.
    Returns:
        loss (float, in nats), dlogits (logits' shape) = (softmax - onehot) / count or * 1.
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    check_choice(axis, "axis", (-1, 0))
    logits = np.asarray(logits)
    if logits.ndim < 1 or logits.dtype.kind != "f":
        raise TypeError(f"logits must be a float array (..., V), got {logits.dtype} "
                        f"{shape_str(logits.shape)}")
    V = logits.shape[axis]
    lead = logits.shape[1:] if axis == 0 else logits.shape[:-1]
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class ids, got dtype {targets.dtype}")
    if targets.shape != lead:
        raise ValueError(f"targets must have shape {shape_str(lead)} to match logits "
                         f"{shape_str(logits.shape)}, got {shape_str(targets.shape)}")
    mask = _check_mask(mask, lead)
    valid = targets if mask is None else targets[mask]
    if valid.size and (valid.min() < 0 or valid.max() >= V):
        bad = valid[(valid < 0) | (valid >= V)][0]
        raise ValueError(f"targets holds class {bad}, outside [0, {V})")
    if logits.size and not (np.isfinite(logits.max()) and np.isfinite(logits.min())):
        if not check_finite:
            return _nan_result(logits)
        raise ValueError("logits contain NaN or infinite values")
    t = np.where(mask, targets, 0) if mask is not None else targets
    tf = t.reshape(-1)
    m = None if mask is None else mask.reshape(-1)
    loss, p = _ce(logits.reshape(V, -1) if axis == 0 else logits.reshape(-1, V), tf, m,
                  0 if axis == 0 else 1)
    if reduction == "mean":
        n = max(_count(mask, lead), 1)
        loss /= n
        p *= p.dtype.type(1.0 / n)
    return loss, p.reshape(logits.shape)


def _ce(z, t, m, ax):
    """z (N, V) with the classes on axis ax = 1, or (V, N) with ax = 0; t (N,) targets, m
    (N,) bool or None -> summed loss, softmax - onehot (z's shape)."""
    shifted = z - z.max(axis=ax, keepdims=True)
    p = np.exp(shifted)
    sums = p.sum(axis=ax, keepdims=True)  # (N, 1) or (1, N)
    p /= sums
    pos = np.arange(t.shape[0])
    at = (pos, t) if ax == 1 else (t, pos)  # the target entry of each position
    nll = np.log(sums.reshape(-1)) - shifted[at]
    p[at] -= 1
    if m is not None:
        nll = nll * m
        p *= m.reshape(sums.shape)
    return float(nll.sum(dtype=np.float64)), p


def binary_cross_entropy(logits, targets, mask=None, reduction: str = "mean",
                         check_finite: bool = True):
    """Logistic loss of targets in [0, 1] given logits (sigmoid applied inside, stably).

    logits (...) float; targets (...) float in [0, 1]; mask (...) bool or None.
    Returns loss (float), dlogits (...) = (sigmoid(logits) - targets) / count.
    """
    check_choice(reduction, "reduction", REDUCTIONS)
    logits = check_array(logits, "logits", tuple(f"d{i}" for i in range(np.ndim(logits))),
                         finite=check_finite)
    targets = np.asarray(targets, dtype=logits.dtype)
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have the shape of logits {shape_str(logits.shape)}, got "
                         f"{shape_str(targets.shape)}")
    if not ((targets >= 0) & (targets <= 1)).all():  # False for NaN too
        raise ValueError("targets must lie in [0, 1] (got values outside, or NaN)")
    mask = _check_mask(mask, logits.shape)
    if not check_finite and not np.isfinite(logits).all():
        return _nan_result(logits)
    # loss = softplus(z) - y*z, with softplus(z) = max(z, 0) + log1p(exp(-|z|))
    per = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    grad = 0.5 * np.tanh(0.5 * logits) + 0.5 - targets
    if mask is not None:
        per = per * mask
        grad = grad * mask
    loss = float(per.sum(dtype=np.float64))
    if reduction == "mean":
        n = max(_count(mask, logits.shape), 1)
        loss /= n
        grad = grad / n
    return loss, grad.astype(logits.dtype, copy=False)


def mse(pred, targets, mask=None, reduction: str = "mean", check_finite: bool = True):
    """Mean squared error. pred (..., D) float; targets same shape; mask: pred's leading
    shape (...) or pred's full shape, bool. "mean" divides by the number of valid
    entries. Returns loss (float), dpred (...)."""
    check_choice(reduction, "reduction", REDUCTIONS)
    pred = check_array(pred, "pred", tuple(f"d{i}" for i in range(np.ndim(pred))),
                       finite=check_finite)
    targets = np.asarray(targets, dtype=pred.dtype)
    if targets.shape != pred.shape:
        raise ValueError(f"targets must have the shape of pred {shape_str(pred.shape)}, got "
                         f"{shape_str(targets.shape)}")
    if not np.isfinite(targets).all():
        raise ValueError("targets contains NaN or infinite values")
    if not check_finite and not np.isfinite(pred).all():
        return _nan_result(pred)
    diff = pred - targets
    if mask is not None:
        m = np.asarray(mask)
        if m.shape == pred.shape[:-1]:
            m = np.broadcast_to(m[..., None], pred.shape)
        m = _check_mask(m, pred.shape)
        diff = diff * m
        n = int(m.sum())
    else:
        n = diff.size
    loss = float((diff.astype(np.float64) ** 2).sum())
    grad = 2 * diff
    if reduction == "mean":
        n = max(n, 1)
        loss /= n
        grad = grad / n
    return loss, grad.astype(pred.dtype, copy=False)
