"""The two functions the course provides in ``rnn_utils``: ``softmax`` and ``sigmoid``."""

from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the rows of each column: z (n_y, m) -> probabilities (n_y, m).

    ``softmax(z)[:, j] = exp(z[:, j]) / sum(exp(z[:, j]))``: each column sums to 1. The
    maximum of each column is subtracted first (the same result), so that large logits do
    not overflow; the course's ``rnn_utils`` subtracts the maximum of the whole array.
    """
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-z))``, element-wise; z of any shape.

    Written in a stable form: for ``z < 0`` it computes the same number as
    ``exp(z) / (1 + exp(z))``, so ``exp`` never overflows. (The course's
    ``1 / (1 + np.exp(-z))`` is right too, but ``np.exp(-z)`` overflows, with a warning,
    for z below -88 in float32 and -709 in float64.) float32 in, float32 out.
    """
    e = np.exp(-np.abs(z))  # in (0, 1]
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
