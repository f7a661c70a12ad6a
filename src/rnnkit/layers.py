"""Feed-forward layers that surround the recurrent ones: Embedding, Dense, Dropout, RepeatVector.

Every layer has ``params`` (a dict of arrays, possibly empty), ``training`` with
``train()``/``eval()``, and the pair::

    y, cache = layer.forward(x)
    dx, grads = layer.backward(dy, cache)       # grads keyed like layer.params

Letters: B batch, T steps, D/E/V feature sizes. Dense and Dropout act on the last axis and
accept any leading shape, so one Dense applies the same weights at every time step.
"""

from __future__ import annotations

import numpy as np

from ._checks import (
    as_dtype,
    as_rng,
    check_array,
    check_ids,
    check_positive_int,
    check_probability,
    shape_str,
)
from ._linalg import product


class Layer:
    """Base class: parameters by name, training mode, a parameter count."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.training = True

    def train(self):
        """Training mode (dropout active). Returns self."""
        self.training = True
        return self

    def eval(self):
        """Inference mode (dropout off). Returns self."""
        self.training = False
        return self

    def num_parameters(self) -> int:
        """Total number of parameter entries."""
        return int(sum(p.size for p in self.params.values()))


class Embedding(Layer):
    """Token ids -> vectors: ``y[b, t] = W[ids[b, t]]``.

    Args:
        num_embeddings: V, the vocabulary size.
        embedding_dim: E.
        padding_idx: an id that marks padding: its row is zero, gets no gradient, and
            ``mask(ids)`` is False there.
    Params: ``W (V, E)`` ~ N(0, 1) (as PyTorch).
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32,
                 rng=None):
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            is_int = isinstance(padding_idx, (int, np.integer)) and not isinstance(padding_idx,
                                                                                  bool)
            if not is_int or not 0 <= padding_idx < num_embeddings:
                raise ValueError(
                    f"padding_idx must be an id in [0, {num_embeddings}) or None, "
                    f"got {padding_idx!r}"
                )
            padding_idx = int(padding_idx)
        self.padding_idx = padding_idx
        self.dtype = as_dtype(dtype)
        W = as_rng(rng).standard_normal((num_embeddings, embedding_dim)).astype(self.dtype)
        if padding_idx is not None:
            W[padding_idx] = 0
        self.params["W"] = W

    def mask(self, ids) -> np.ndarray | None:
        """(B, T) bool, False where ``ids == padding_idx``; None without a padding id."""
        if self.padding_idx is None:
            return None
        return np.asarray(ids) != self.padding_idx

    def forward(self, ids):
        """ids (...) ints in [0, V) -> y (..., E), cache."""
        ids = check_ids(ids, "ids", self.num_embeddings)
        W = self.params["W"]
        y = np.empty(ids.shape + (self.embedding_dim,), dtype=W.dtype)
        # mode="clip" skips the bounds check already done above, and is much faster
        np.take(W, ids, axis=0, out=y, mode="clip")
        return y, ids

    def backward(self, dy, cache):
        """dy (..., E) -> (None, {"W": dW (V, E)}); token ids have no gradient."""
        ids = cache
        dy = check_array(dy, "dy", ids.shape + (self.embedding_dim,), self.dtype)
        dW = np.zeros_like(self.params["W"])
        np.add.at(dW, ids.reshape(-1), dy.reshape(-1, self.embedding_dim))
        if self.padding_idx is not None:
            dW[self.padding_idx] = 0
        return None, {"W": dW}

    __call__ = forward


class Dense(Layer):
    """Affine map on the last axis, applied at every time step: ``y = x @ W + b``.

    x (..., D) -> y (..., U). Params ``W (D, U)`` ~ U(-1/sqrt(D), 1/sqrt(D)) (as PyTorch's
    Linear), ``b (U,)`` zero.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.dtype = as_dtype(dtype)
        k = 1.0 / np.sqrt(in_features)
        W = as_rng(rng).uniform(-k, k, (in_features, out_features))
        self.params["W"] = W.astype(self.dtype)
        if bias:
            self.params["b"] = np.zeros(out_features, dtype=self.dtype)

    def forward(self, x):
        """x (..., D) -> y (..., U), cache."""
        x = check_array(x, "x", _last_axis(x, self.in_features, "x"), self.dtype)
        x2 = x.reshape(-1, self.in_features)
        y = product(x2, self.params["W"])
        if "b" in self.params:
            y += self.params["b"]
        # the cache keeps x as rows (N, D): a copy if x was not contiguous, made once
        return y.reshape(x.shape[:-1] + (self.out_features,)), (x.shape, x2)

    def backward(self, dy, cache):
        """dy (..., U) -> dx (..., D), {"W": (D, U), "b": (U,)}."""
        shape, x2 = cache
        dy = check_array(dy, "dy", shape[:-1] + (self.out_features,), self.dtype)
        dy2 = dy.reshape(-1, self.out_features)
        grads = {"W": x2.T @ dy2}
        if "b" in self.params:
            grads["b"] = dy2.sum(axis=0)
        dx = product(dy2, self.params["W"].T).reshape(shape)
        return dx, grads

    __call__ = forward


def _last_axis(x, size: int, name: str) -> tuple:
    """The shape pattern (..., size) for check_array, from x's own rank."""
    ndim = np.ndim(x)
    if ndim < 1:
        raise ValueError(f"{name} must have at least one dimension (..., {size}), got a scalar")
    return tuple(f"d{i}" for i in range(ndim - 1)) + (size,)


class Dropout(Layer):
    """Inverted dropout: in training, zero each entry with probability p and scale the rest
    by 1/(1-p); in eval mode, the identity. x (...) -> y (...)."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = check_probability(p, "p")
        self.rng = as_rng(rng)

    def forward(self, x):
        """x (...) float -> y (...), cache (the scaled keep-mask, or None)."""
        x = np.asarray(x)
        if x.dtype.kind != "f":
            # an integer array cannot hold the 1/(1-p) scaling
            raise TypeError(
                f"x must be a floating-point array (float32 or float64), got dtype {x.dtype}"
            )
        if not self.training or self.p == 0.0:
            return x, None
        keep = 1.0 - self.p
        m = (self.rng.random(x.shape) < keep).astype(x.dtype)
        m *= x.dtype.type(1.0 / keep)
        return x * m, m

    def backward(self, dy, cache):
        """dy (...) -> dx (...), {} (no parameters)."""
        return (dy if cache is None else dy * cache), {}

    __call__ = forward


class RepeatVector(Layer):
    """One-to-many input: repeat a vector at every step. x (B, D) -> y (B, n, D)."""

    def __init__(self, n):
        super().__init__()
        self.n = check_positive_int(n, "n")

    def forward(self, x):
        """x (B, D) -> y (B, n, D), cache."""
        x = check_array(x, "x", ("B", "D"))
        return np.repeat(x[:, None, :], self.n, axis=1), None

    def backward(self, dy, cache):
        """dy (B, n, D) -> dx (B, D) (the sum over the n steps), {}."""
        dy = np.asarray(dy)
        if dy.ndim != 3 or dy.shape[1] != self.n:
            raise ValueError(f"dy must have shape (B, {self.n}, D), got {shape_str(dy.shape)}")
        return dy.sum(axis=1), {}

    __call__ = forward
