"""The reverse direction of a bidirectional layer and the merge of the two directions.

The reverse direction reads each sequence from its own last valid step back to its first:
its input is the forward input gathered in reversed time order (:func:`reverse_index`,
:func:`time_gather`), and its outputs are gathered back. The two directions' outputs
(T, B, H) are then merged: ``concat`` (T, B, 2H), ``sum``, ``mul`` or ``ave`` (T, B, H).
"""

from __future__ import annotations

import numpy as np

MERGES = ("concat", "sum", "mul", "ave")


def reverse_index(T: int, B: int, mask: np.ndarray | None) -> np.ndarray:
    """Gather index (T, B) that reverses each sequence's valid steps among themselves.

    mask (T, B) bool or None (every step valid). Padded steps map to themselves, so
    reversing twice is the identity.
    """
    if mask is None:
        return np.broadcast_to(np.arange(T - 1, -1, -1)[:, None], (T, B))
    idx = np.tile(np.arange(T)[:, None], (1, B))
    for b in range(B):
        valid = np.flatnonzero(mask[:, b])
        idx[valid, b] = valid[::-1]
    return idx


def time_gather(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """a (T, B, F) (or ids (T, B)) -> ``a[idx[t, b], b]`` as a new contiguous array."""
    return np.take_along_axis(a, idx if a.ndim == 2 else idx[:, :, None], axis=0)


def merge(parts: list, how: str) -> np.ndarray:
    """The outputs of one or two directions, each (..., H), merged by ``how``."""
    if len(parts) == 1:
        return parts[0]
    a, b = parts
    if how == "concat":
        return np.concatenate([a, b], axis=-1)
    if how == "sum":
        return a + b
    if how == "mul":
        return a * b
    return (a + b) * a.dtype.type(0.5)


def merge_backward(dy: np.ndarray, parts: list, how: str) -> list:
    """The gradients of the parts of :func:`merge` from that of its result dy."""
    if len(parts) == 1:
        return [dy]
    a, b = parts
    if how == "concat":
        H = a.shape[-1]
        return [dy[..., :H], dy[..., H:]]
    if how == "sum":
        return [dy, dy]
    if how == "mul":
        return [dy * b, dy * a]
    half = dy * dy.dtype.type(0.5)
    return [half, half]
