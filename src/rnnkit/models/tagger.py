"""Many-to-many with T_x = T_y: one label per step, x (B, T) -> logits (B, T, C)."""

from __future__ import annotations

import numpy as np

from .._checks import check_positive_int
from ..losses import softmax_cross_entropy
from .base import Model
from .classifier import SequenceClassifier


class SequenceTagger(Model):
    """Many-to-many with T_x = T_y: one label per step (e.g. named-entity tags).

    Bidirectional by default (a tag may depend on what comes after it). Arguments as
    :class:`SequenceClassifier`; ``num_tags`` C.
    """

    def __init__(self, num_tags, vocab_size=None, input_size=None, embedding_dim=32,
                 cell="lstm", hidden_size=64, num_layers=1, bidirectional=True, dropout=0.0,
                 pad_id=0, dtype=np.float32, rng=None, **cell_kwargs):
        super().__init__(rng, dtype)
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size (token ids) or input_size "
                             "(feature vectors)")
        self.num_tags = check_positive_int(num_tags, "num_tags", 2)
        self.vocab_size = vocab_size
        self._config = dict(num_tags=num_tags, vocab_size=vocab_size, input_size=input_size,
                            embedding_dim=embedding_dim, cell=cell, hidden_size=hidden_size,
                            num_layers=num_layers, bidirectional=bidirectional,
                            dropout=dropout, pad_id=pad_id, dtype=self.dtype.name,
                            **cell_kwargs)
        self._build_stack(vocab_size, input_size, embedding_dim, pad_id, cell, hidden_size,
                          num_layers, bidirectional, dropout, num_tags, **cell_kwargs)

    _encode = SequenceClassifier._encode

    def forward(self, x, mask=None):
        """x: ids (B, T) or (B, T, D); mask (B, T) -> logits (B, T, C), mask, cache."""
        inp, ecache, mask = self._encode(x, mask)
        h, _, rcache = self.rnn.forward(inp, mask=mask)
        h, dcache = self.drop.forward(h)
        logits, hcache = self.head.forward(h)
        return logits, mask, (ecache, rcache, dcache, hcache)

    def backward(self, dlogits, cache):
        """dlogits (as returned by forward) -> grads keyed like params."""
        ecache, rcache, dcache, hcache = cache
        grads: dict = {}
        dh, g = self.head.backward(dlogits, hcache)
        self._module_grads("head", g, grads)
        dh, _ = self.drop.backward(dh, dcache)
        return self._backward_stack(dh, rcache, ecache, grads)

    def _stats(self, logits, y, mask, reduction):
        loss, dl = softmax_cross_entropy(logits, y, mask, reduction, check_finite=False)
        count = int(np.size(y) if mask is None else np.sum(mask))
        hit = logits.argmax(axis=-1) == np.asarray(y)
        if mask is not None:
            hit &= np.asarray(mask, dtype=bool)
        return loss, dl, count, int(hit.sum())

    @staticmethod
    def _loss_mask(batch: dict, mask):
        """Steps that count in the loss: ``loss_mask`` (B, T) if the batch has one (steps the
        network reads but that carry no label), within the padding mask."""
        lm = batch.get("loss_mask")
        if lm is None:
            return mask
        lm = np.asarray(lm, dtype=bool)
        return lm if mask is None else lm & np.asarray(mask, dtype=bool)

    def train_batch(self, batch: dict, state=None):
        """batch: x, y (B, T) tags, optional mask (padding) and loss_mask (unlabelled
        steps). Returns stats, grads, None."""
        logits, mask, cache = self.forward(batch["x"], batch.get("mask"))
        mask = self._loss_mask(batch, mask)
        loss, dl, count, correct = self._stats(logits, batch["y"], mask, "mean")
        return ({"loss": loss * count, "count": count, "correct": correct},
                self._grads(loss, self.backward, dl, cache), None)

    def evaluate(self, batch: dict, state=None):
        """Loss and counts of one batch without gradients: returns stats, None."""
        logits, mask, _ = self.forward(batch["x"], batch.get("mask"))
        mask = self._loss_mask(batch, mask)
        loss, _, count, correct = self._stats(logits, batch["y"], mask, "sum")
        return {"loss": loss, "count": count, "correct": correct}, None

    def predict(self, x, mask=None) -> np.ndarray:
        """Tag ids (B, T) in eval mode."""
        was = self.rnn.training
        self.eval()
        try:
            return self.forward(x, mask)[0].argmax(axis=-1)
        finally:
            if was:
                self.train()
