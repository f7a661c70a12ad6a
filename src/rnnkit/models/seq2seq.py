"""The encoder-decoder (T_x != T_y): src (B, S) -> tgt (B, T), trained with teacher
forcing, decoded greedily or by beam search."""

from __future__ import annotations

import numpy as np

from .._checks import check_positive_int
from ..generate import beam_hypotheses, check_decoding
from ..layers import Dense, Embedding, check_ids
from ..losses import softmax_cross_entropy
from .base import Model, make_recurrent


class Seq2Seq(Model):
    """Encoder-decoder (T_x != T_y): the encoder's final state starts the decoder.

    Training uses teacher forcing: the decoder reads ``[bos] + target`` and predicts
    ``target + [eos]``. Decoding is greedy or beam search.

    Args:
        src_vocab_size, tgt_vocab_size: vocabularies (id ``pad_id`` is padding in both).
        bos_id, eos_id: target-side start and end ids.
        embedding_dim, cell, hidden_size, num_layers, dropout: shared by both sides.
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, bos_id, eos_id, pad_id=0,
                 embedding_dim=32, cell="lstm", hidden_size=128, num_layers=1, dropout=0.0,
                 dtype=np.float32, rng=None, **cell_kwargs):
        super().__init__(rng, dtype)
        self.src_vocab_size = check_positive_int(src_vocab_size, "src_vocab_size", 2)
        self.tgt_vocab_size = check_positive_int(tgt_vocab_size, "tgt_vocab_size", 2)
        for name, v in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
            if not isinstance(v, (int, np.integer)) or not 0 <= v < tgt_vocab_size:
                raise ValueError(f"{name} must be an id in [0, {tgt_vocab_size}), got {v!r}")
        self.bos_id, self.eos_id, self.pad_id = int(bos_id), int(eos_id), int(pad_id)
        self._config = dict(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
                            bos_id=bos_id, eos_id=eos_id, pad_id=pad_id,
                            embedding_dim=embedding_dim, cell=cell, hidden_size=hidden_size,
                            num_layers=num_layers, dropout=dropout, dtype=self.dtype.name,
                            **cell_kwargs)
        kw = dict(dtype=self.dtype, rng=self.rng)
        self.modules["src_embed"] = Embedding(src_vocab_size, embedding_dim, padding_idx=pad_id,
                                              **kw)
        self.modules["encoder"] = make_recurrent(cell, embedding_dim, hidden_size, num_layers,
                                                 dropout=dropout, **kw, **cell_kwargs)
        self.modules["tgt_embed"] = Embedding(tgt_vocab_size, embedding_dim, padding_idx=pad_id,
                                              **kw)
        self.modules["decoder"] = make_recurrent(cell, embedding_dim, hidden_size, num_layers,
                                                 dropout=dropout, **kw, **cell_kwargs)
        self.modules["head"] = Dense(hidden_size, tgt_vocab_size, **kw)
        self._finish()

    def encode(self, src, src_mask=None):
        """src (B, S) ids -> decoder initial state, cache."""
        src = check_ids(src, "src", self.src_vocab_size, ndim=2)
        if src_mask is None:
            src_mask = src != self.pad_id
        emb, ecache = self.modules["src_embed"].forward(src)
        _, state, rcache = self.modules["encoder"].forward(emb, mask=src_mask)
        return state, (ecache, rcache)

    def forward(self, src, tgt_in, src_mask=None, tgt_mask=None):
        """src (B, S), tgt_in (B, T) -> logits (B, T, V_tgt), cache."""
        tgt_in = check_ids(tgt_in, "tgt_in", self.tgt_vocab_size, ndim=2)
        state, enc_cache = self.encode(src, src_mask)
        if tgt_in.shape[0] != np.shape(src)[0]:
            raise ValueError(f"tgt_in has {tgt_in.shape[0]} sequences, src has {np.shape(src)[0]}")
        emb, ecache = self.modules["tgt_embed"].forward(tgt_in)
        h, _, rcache = self.modules["decoder"].forward(emb, state, mask=tgt_mask)
        logits, hcache = self.modules["head"].forward(h)
        return logits, (enc_cache, ecache, rcache, hcache)

    def backward(self, dlogits, cache):
        """dlogits (as returned by forward) -> grads keyed like params."""
        (src_ecache, src_rcache), ecache, rcache, hcache = cache
        grads: dict = {}
        dh, g = self.modules["head"].backward(dlogits, hcache)
        self._module_grads("head", g, grads)
        demb, dstate, g = self.modules["decoder"].backward(dh, rcache)
        self._module_grads("decoder", g, grads)
        _, g = self.modules["tgt_embed"].backward(demb, ecache)
        self._module_grads("tgt_embed", g, grads)
        dsrc, _, g = self.modules["encoder"].backward(None, src_rcache, dstate)
        self._module_grads("encoder", g, grads)
        _, g = self.modules["src_embed"].backward(dsrc, src_ecache)
        self._module_grads("src_embed", g, grads)
        return grads

    def make_batch(self, src_seqs, tgt_seqs) -> dict:
        """Lists of id sequences -> a padded teacher-forcing batch dict."""
        from ..data import pad_sequences

        if len(src_seqs) != len(tgt_seqs):
            raise ValueError(f"src_seqs has {len(src_seqs)} sequences, tgt_seqs {len(tgt_seqs)}")
        src, src_mask = pad_sequences(src_seqs, self.pad_id)
        tin, tmask = pad_sequences([[self.bos_id, *t] for t in tgt_seqs], self.pad_id)
        tout, _ = pad_sequences([[*t, self.eos_id] for t in tgt_seqs], self.pad_id)
        return {"src": src, "src_mask": src_mask, "x": tin, "y": tout, "mask": tmask}

    def _run(self, batch, reduction):
        logits, cache = self.forward(batch["src"], batch["x"], batch.get("src_mask"),
                                     batch.get("mask"))
        mask = batch.get("mask")
        loss, dl = softmax_cross_entropy(logits, batch["y"], mask, reduction,
                                         check_finite=False)
        count = int(np.size(batch["y"]) if mask is None else np.sum(mask))
        hit = logits.argmax(-1) == batch["y"]
        if mask is not None:
            hit &= mask
        return loss, dl, count, int(hit.sum()), cache

    def train_batch(self, batch: dict, state=None):
        """batch from :meth:`make_batch`. Returns stats, grads, None."""
        loss, dl, count, correct, cache = self._run(batch, "mean")
        return ({"loss": loss * count, "count": count, "correct": correct},
                self._grads(loss, self.backward, dl, cache), None)

    def evaluate(self, batch: dict, state=None):
        """Loss and counts of one batch without gradients: returns stats, None."""
        loss, _, count, correct, _ = self._run(batch, "sum")
        return {"loss": loss, "count": count, "correct": correct}, None

    def _step(self, ids, state):
        x = self.modules["tgt_embed"].params["W"][check_ids(ids, "ids", self.tgt_vocab_size, 1)]
        h, state = self.modules["decoder"].step(x, state)
        return self.modules["head"].forward(h)[0], state

    def decode(self, src, max_len: int = 50, beam: int = 1, length_penalty=None,
               num_return=None) -> list:
        """Translate each source sequence (B, S) (or a list of id lists): greedy (beam 1)
        or beam search, ranked by the mean log-probability per token (``length_penalty``
        alpha divides the sum by ``len ** alpha``; default 1, see
        :func:`rnnkit.generate.beam_hypotheses`). Returns one id list per sequence,
        without bos/eos; with ``num_return`` N (<= beam), N lists per sequence, best
        first."""
        d = check_decoding(self.tgt_vocab_size, max_len, beam=beam,
                           length_penalty=length_penalty, num_return=num_return,
                           names={"length": "max_len"})
        if not isinstance(src, np.ndarray):
            from ..data import pad_sequences

            src, _ = pad_sequences(list(src), self.pad_id)
        was = self.modules["decoder"].training
        self.eval()
        try:
            state, _ = self.encode(src)
            outs = []
            for b in range(src.shape[0]):
                st = tuple(s[:, b : b + 1] for s in state) if isinstance(state, tuple) \
                    else state[:, b : b + 1]
                logits, st = self._step(np.array([self.bos_id]), st)
                hyps = beam_hypotheses(self._step, logits[0], st, d.beam, d.length,
                                       [self.eos_id], d.length_penalty, d.num_return or 1)
                seqs = [q[:-1] if q and q[-1] == self.eos_id else q for q, _ in hyps]
                outs.append(seqs if d.num_return is not None else seqs[0])
            return outs
        finally:
            if was:
                self.train()
