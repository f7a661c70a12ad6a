"""Many-to-one models: a sequence (B, T) or (B, T, D) -> one label (B, C) or one vector
of values (B, K)."""

from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_positive_int, shape_str
from ..losses import mse, softmax_cross_entropy
from .base import Model


class SequenceClassifier(Model):
    """Many-to-one: a sequence -> one label (e.g. sentiment, parity).

    Args:
        num_classes: C.
        vocab_size: V for token-id inputs (with an Embedding of ``embedding_dim``; id
            ``pad_id`` is padding and masked), or None for feature inputs of ``input_size``.
        cell, hidden_size, num_layers, bidirectional, dropout: the recurrent stack.
        pooling: "last" (final state of each direction at each sequence's own end), "mean"
            or "max" over the valid steps.
    """

    loss_name = "ce"

    def __init__(self, num_classes, vocab_size=None, input_size=None, embedding_dim=32,
                 cell="lstm", hidden_size=64, num_layers=1, bidirectional=False,
                 pooling="last", dropout=0.0, pad_id=0, dtype=np.float32, rng=None,
                 **cell_kwargs):
        super().__init__(rng, dtype)
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size (token ids) or input_size "
                             "(feature vectors)")
        self.num_classes = check_positive_int(num_classes, "num_classes",
                                              2 if self.loss_name == "ce" else 1)
        self.pooling = check_choice(pooling, "pooling", ("last", "mean", "max"))
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        self._config = dict(num_classes=num_classes, vocab_size=vocab_size,
                            input_size=input_size, embedding_dim=embedding_dim, cell=cell,
                            hidden_size=hidden_size, num_layers=num_layers,
                            bidirectional=bidirectional, pooling=pooling, dropout=dropout,
                            pad_id=pad_id, dtype=self.dtype.name, **cell_kwargs)
        self._build_stack(vocab_size, input_size, embedding_dim, pad_id, cell, hidden_size,
                          num_layers, bidirectional, dropout, num_classes,
                          return_sequences=pooling != "last", **cell_kwargs)

    def _encode(self, x, mask):
        if self.vocab_size is not None:
            ids = np.asarray(x)
            if ids.ndim != 2:
                raise ValueError(f"x must be token ids (B, T), got shape {shape_str(ids.shape)}")
            emb, ecache = self.modules["embed"].forward(ids)
            if mask is None:
                mask = self.modules["embed"].mask(ids)
            return emb, ecache, mask
        return x, None, mask

    def forward(self, x, mask=None):
        """x: ids (B, T) or features (B, T, D); mask (B, T) -> logits (B, C), cache."""
        inp, ecache, mask = self._encode(x, mask)
        if mask is not None and not np.asarray(mask).any(axis=1).all():
            raise ValueError("mask: every sequence needs at least one valid step")
        h, _, rcache = self.rnn.forward(inp, mask=mask)
        pcache = None
        if self.pooling != "last":
            m = (np.ones(h.shape[:2], dtype=bool) if mask is None
                 else np.asarray(mask, dtype=bool))
            if self.pooling == "mean":
                n = m.sum(axis=1, keepdims=True).astype(h.dtype)
                pooled = (h * m[:, :, None]).sum(axis=1) / n
                pcache = (m, n)
            else:
                hm = np.where(m[:, :, None], h, -np.inf)
                arg = hm.argmax(axis=1)  # (B, F)
                pooled = np.take_along_axis(h, arg[:, None, :], axis=1)[:, 0]
                pcache = (arg, h.shape)
            h = pooled
        h, dcache = self.drop.forward(h)
        logits, hcache = self.head.forward(h)
        return logits, (ecache, rcache, pcache, dcache, hcache)

    def backward(self, dlogits, cache):
        """dlogits (B, C) -> grads keyed like params."""
        ecache, rcache, pcache, dcache, hcache = cache
        grads: dict = {}
        dh, g = self.head.backward(dlogits, hcache)
        self._module_grads("head", g, grads)
        dh, _ = self.drop.backward(dh, dcache)
        if self.pooling == "mean":
            m, n = pcache
            dh = (dh / n)[:, None, :] * m[:, :, None]
        elif self.pooling == "max":
            arg, shape = pcache
            full = np.zeros(shape, dtype=dh.dtype)
            np.put_along_axis(full, arg[:, None, :], dh[:, None, :], axis=1)
            dh = full
        return self._backward_stack(dh, rcache, ecache, grads)

    def _loss(self, out, y, reduction):
        y = np.asarray(y)
        if y.shape != (out.shape[0],):
            raise ValueError(f"y must have shape ({out.shape[0]},), got {shape_str(y.shape)}")
        return softmax_cross_entropy(out, y, None, reduction, check_finite=False)

    def train_batch(self, batch: dict, state=None):
        """batch: x, y (B,) labels, optional mask. Returns stats, grads, None."""
        out, cache = self.forward(batch["x"], batch.get("mask"))
        loss, dout = self._loss(out, batch["y"], "mean")
        n = out.shape[0]
        stats = {"loss": loss * n, "count": n, **self._correct(out, batch["y"])}
        return stats, self._grads(loss, self.backward, dout, cache), None

    def evaluate(self, batch: dict, state=None):
        """Loss and counts of one batch without gradients: returns stats, None."""
        out, _ = self.forward(batch["x"], batch.get("mask"))
        loss, _ = self._loss(out, batch["y"], "sum")
        return {"loss": loss, "count": out.shape[0], **self._correct(out, batch["y"])}, None

    def _correct(self, out, y):
        return {"correct": int((out.argmax(axis=1) == np.asarray(y)).sum())}

    def predict(self, x, mask=None) -> np.ndarray:
        """Class ids (B,) in eval mode."""
        was = self.rnn.training
        self.eval()
        try:
            return self.forward(x, mask)[0].argmax(axis=1)
        finally:
            if was:
                self.train()


class SequenceRegressor(SequenceClassifier):
    """Many-to-one regression (e.g. the adding problem): x (B, T, D) -> y (B, K), MSE loss.

    Same arguments as :class:`SequenceClassifier`, with ``output_size`` K for num_classes.
    """

    loss_name = "mse"

    def __init__(self, output_size, input_size=None, **kw):
        super().__init__(output_size, input_size=input_size, **kw)

    def config(self):
        """Constructor arguments (JSON), enough to rebuild the model."""
        c = super().config()
        c["output_size"] = c.pop("num_classes")
        c.pop("vocab_size", None)
        return c

    def _loss(self, out, y, reduction):
        y = np.asarray(y, dtype=out.dtype)
        if y.ndim == 1 and out.shape[1] == 1 and y.shape[0] == out.shape[0]:
            y = y[:, None]  # (B,) targets of a single output
        if y.shape != out.shape:
            raise ValueError(f"y must have shape {shape_str(out.shape)}, got "
                             f"{shape_str(np.shape(y))}")
        return mse(out, y, None, reduction, check_finite=False)

    def _correct(self, out, y):
        return {}

    def predict(self, x, mask=None) -> np.ndarray:
        """Predictions (B, K) in eval mode."""
        was = self.rnn.training
        self.eval()
        try:
            return self.forward(x, mask)[0]
        finally:
            if was:
                self.train()
