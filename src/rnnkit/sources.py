"""The data sources of :class:`rnnkit.train.Trainer`, addressed by position so that a run
can stop anywhere and resume exactly: ``num_batches()`` batches per epoch and
``batch(epoch, k)``, a dict such as ``{"x": ..., "y": ..., "mask": ...}``. Shuffled sources
derive their order from ``(seed, epoch)``; nothing about the data lives in hidden iterator
state. ``carries_state = True`` (text streams, truncated BPTT): the model's final state is
carried into the next batch and reset at each epoch.
"""

from __future__ import annotations

import numpy as np


class StreamData:
    """A token stream in contiguous rows for truncated BPTT (char-rnn layout).

    ids (N,) ints; batches ``x, y`` (B, T) with ``y`` shifted by one; carries state.
    """

    carries_state = True

    def __init__(self, ids, batch_size: int, seq_len: int):
        from .data import TextStream

        self.stream = TextStream(ids, batch_size, seq_len)

    def num_batches(self) -> int:
        """Batches per epoch."""
        return len(self.stream)

    def batch(self, epoch: int, k: int) -> dict:
        """Batch ``k`` of ``epoch``: a dict of arrays such as x, y (B, ...) and mask."""
        x, y = self.stream.batch(k)
        return {"x": x, "y": y}


class ArrayData:
    """Fixed-size examples in arrays of equal first dimension N, shuffled per epoch.

    arrays: e.g. ``{"x": (N, T, D), "y": (N,), "mask": (N, T)}``. The order of epoch e is
    ``default_rng([seed, e]).permutation(N)``. The last partial batch is kept.
    """

    carries_state = False

    def __init__(self, arrays: dict, batch_size: int, shuffle: bool = True, seed: int = 0):
        if not arrays:
            raise ValueError("arrays is empty: give at least x and y")
        sizes = {k: len(v) for k, v in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"arrays must share their first dimension, got {sizes}")
        self.n = next(iter(sizes.values()))
        if self.n == 0:
            raise ValueError("arrays hold no examples")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.arrays = arrays
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self._order = (None, None)

    def num_batches(self) -> int:
        """Batches per epoch."""
        return -(-self.n // self.batch_size)

    def _perm(self, epoch: int):
        if self._order[0] != epoch:
            perm = (np.random.default_rng([self.seed, epoch]).permutation(self.n)
                    if self.shuffle else np.arange(self.n))
            self._order = (epoch, perm)
        return self._order[1]

    def batch(self, epoch: int, k: int) -> dict:
        """Batch ``k`` of ``epoch``: a dict of arrays such as x, y (B, ...) and mask."""
        idx = self._perm(epoch)[k * self.batch_size : (k + 1) * self.batch_size]
        return {name: a[idx] for name, a in self.arrays.items()}


class ListData(ArrayData):
    """Variable-length examples: a list of items and a ``collate(list) -> batch dict``
    function (e.g. padding with masks); shuffled per epoch like :class:`ArrayData`."""

    def __init__(self, items: list, collate, batch_size: int, shuffle: bool = True,
                 seed: int = 0):
        if len(items) == 0:
            raise ValueError("items is empty: no examples to train on")
        self.items = items
        self.collate = collate
        super().__init__({"i": np.arange(len(items))}, batch_size, shuffle, seed)

    def batch(self, epoch: int, k: int) -> dict:
        """Batch ``k`` of ``epoch``: a dict of arrays such as x, y (B, ...) and mask."""
        idx = super().batch(epoch, k)["i"]
        return self.collate([self.items[i] for i in idx])
