"""The language model: many-to-many shifted by one, ids (B, T) -> logits (B, T, V), with
generation by sampling or beam search."""

from __future__ import annotations

import numpy as np

from .._checks import as_rng, check_array, check_positive_int, shape_str
from ..generate import beam_hypotheses, check_decoding, sample_sequence
from ..layers import Dense, Dropout, Embedding, check_ids
from ..losses import softmax_cross_entropy
from .base import Model, make_recurrent


class LanguageModel(Model):
    """Many-to-many shifted by one: predict token t+1 from tokens <= t.

    Args:
        vocab_size: V.
        cell: "rnn", "lstm" or "gru".
        hidden_size, num_layers: of the recurrent stack.
        embedding_dim: E, or None for one-hot inputs (as the seeds and char-rnn).
        dropout: between recurrent layers and before the output layer.
        cond_size: size of a conditioning vector c (B, cond_size) that sets the initial
            hidden state of every layer, h0 = tanh(c @ W + b) (one-to-many generation from
            a vector); None for none.
    Modules: ``embed`` (if E), ``rnn``, ``head`` (Dense H -> V), ``cond`` (if cond_size).
    """

    def __init__(self, vocab_size, cell="lstm", hidden_size=128, num_layers=1,
                 embedding_dim=None, dropout=0.0, cond_size=None, dtype=np.float32, rng=None,
                 **cell_kwargs):
        super().__init__(rng, dtype)
        if cell_kwargs.get("bidirectional"):
            raise ValueError("bidirectional=True: a language model predicts each token from "
                             "the ones before it, so its recurrent layers cannot read ahead; "
                             "use SequenceTagger for a bidirectional many-to-many model")
        self.vocab_size = check_positive_int(vocab_size, "vocab_size", 2)
        self.embedding_dim = (None if embedding_dim is None
                              else check_positive_int(embedding_dim, "embedding_dim"))
        self.cond_size = None if cond_size is None else check_positive_int(cond_size, "cond_size")
        self._config = dict(vocab_size=vocab_size, cell=cell, hidden_size=hidden_size,
                            num_layers=num_layers, embedding_dim=embedding_dim, dropout=dropout,
                            cond_size=cond_size, dtype=self.dtype.name, **cell_kwargs)
        D = self.embedding_dim or self.vocab_size
        if self.embedding_dim:
            self.modules["embed"] = Embedding(vocab_size, self.embedding_dim, dtype=self.dtype,
                                              rng=self.rng)
        self.rnn = make_recurrent(cell, D, hidden_size, num_layers, dropout=dropout,
                                  dtype=self.dtype, rng=self.rng, **cell_kwargs)
        self.modules["rnn"] = self.rnn
        self.drop = Dropout(dropout, rng=self.rng)
        self.aux.append(self.drop)
        self.head = Dense(hidden_size, vocab_size, dtype=self.dtype, rng=self.rng)
        self.modules["head"] = self.head
        if self.cond_size:
            self.modules["cond"] = Dense(self.cond_size, num_layers * hidden_size,
                                         dtype=self.dtype, rng=self.rng)
        self._finish()

    # ------------------------------------------------------------------ pieces
    def _inputs(self, ids):
        """ids (T, B) -> the rnn's input (embeddings (T, B, E), or the ids themselves for
        one-hot inputs) and the embedding's cache."""
        if self.embedding_dim:
            return self.modules["embed"].forward(ids)
        return ids, None

    def initial_state(self, batch_size: int, cond=None):
        """The state before the first token: zeros, or from the conditioning vector.

        cond (B, cond_size) or None. Returns state (L, B, H) (LSTM (h, c)) and a cache."""
        if cond is None:
            if self.cond_size:
                raise ValueError(f"this model needs cond (B, {self.cond_size}): it was built "
                                 "with cond_size")
            return self.rnn.zero_state(batch_size), None
        if not self.cond_size:
            raise ValueError("cond was given, but this model was built without cond_size")
        cond = check_array(cond, "cond", (batch_size, self.cond_size), self.dtype)
        pre, dcache = self.modules["cond"].forward(cond)
        h = np.tanh(pre)
        L, H = self.rnn.num_layers, self.rnn.hidden_size
        h0 = np.ascontiguousarray(h.reshape(batch_size, L, H).transpose(1, 0, 2))
        state = (h0, np.zeros_like(h0)) if self.rnn.kind == "lstm" else h0
        return state, (dcache, h)

    def _forward_tm(self, ids, state, mask, cond):
        """The forward pass, time-major inside (no transposes of the states): ids (B, T)
        -> logits (T, B, V), final state, cache."""
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (B, T), got {shape_str(ids.shape)}")
        ids = check_ids(ids, "ids", self.vocab_size)
        cond_cache = None
        if state is None:
            state, cond_cache = self.initial_state(ids.shape[0], cond)
        x, in_cache = self._inputs(np.ascontiguousarray(ids.T))
        h, new_state, rcache = self.rnn.forward(x, state, mask=mask, time_major=True)
        h, dcache = self.drop.forward(h)
        rows = h.reshape(-1, h.shape[-1])  # (T*B, H), time-major rows
        W, b = self.head.params["W"], self.head.params.get("b")
        # logits with the classes first, (V, T*B): the reductions of the loss over V then
        # run along contiguous rows of positions
        zT = np.matmul(W.T, rows.T)
        if b is not None:
            zT += b[:, None]
        return zT, new_state, (in_cache, rcache, dcache, rows, cond_cache)

    def _backward_tm(self, dzT, cache, dstate=None):
        """dzT (V, T*B), the gradient of the logits as :meth:`_forward_tm` lays them out
        -> grads, dstate0."""
        in_cache, rcache, dcache, rows, cond_cache = cache
        grads: dict = {}
        W = self.head.params["W"]
        grads["head.W"] = np.matmul(rows.T, dzT.T)
        if "b" in self.head.params:
            grads["head.b"] = dzT.sum(axis=1)
        T, B = rcache.steps, rcache.batch
        dh = np.matmul(dzT.T, W.T).reshape(T, B, W.shape[0])
        dh, _ = self.drop.backward(dh, dcache)
        # one-hot inputs are data: no gradient to form for them
        dx, dstate0, g = self.rnn.backward(dh, rcache, dstate,
                                           need_dx=bool(self.embedding_dim))
        self._module_grads("rnn", g, grads)
        if self.embedding_dim:
            _, g = self.modules["embed"].backward(dx, in_cache)
            self._module_grads("embed", g, grads)
        if self.cond_size:
            if cond_cache is None:
                g = {k: np.zeros_like(v) for k, v in self.modules["cond"].params.items()}
            else:
                ccache, h = cond_cache
                dh0 = dstate0[0] if isinstance(dstate0, tuple) else dstate0  # (L, B, H)
                dpre = dh0.transpose(1, 0, 2).reshape(h.shape) * (1 - h * h)
                _, g = self.modules["cond"].backward(dpre, ccache)
            self._module_grads("cond", g, grads)
        return grads, dstate0

    def forward(self, ids, state=None, mask=None, cond=None):
        """ids (B, T) -> logits (B, T, V), final state, cache.

        state: carried state (truncated BPTT) or None for ``initial_state(B, cond)``."""
        zT, new_state, cache = self._forward_tm(ids, state, mask, cond)
        T, B = cache[1].steps, cache[1].batch
        return zT.reshape(-1, T, B).transpose(2, 1, 0), new_state, cache

    def backward(self, dlogits, cache, dstate=None):
        """dlogits (B, T, V) -> grads (keyed like params), dstate0."""
        T, B, V = cache[1].steps, cache[1].batch, self.vocab_size
        dlogits = check_array(dlogits, "dlogits", (B, T, V), self.dtype)
        return self._backward_tm(dlogits.transpose(2, 1, 0).reshape(V, T * B), cache, dstate)

    def _targets(self, batch: dict):
        """The batch's targets and mask as (T*B,), in the order of the positions of
        :meth:`_forward_tm`'s logits (time-major)."""
        y, shape = np.asarray(batch["y"]), np.shape(batch["x"])
        if y.shape != shape:
            raise ValueError(f"targets must have shape {shape_str(shape)} (B, T), as x, got "
                             f"{shape_str(y.shape)}")
        mask = batch.get("mask")  # its shape was checked by the forward pass
        return y.T.reshape(-1), (None if mask is None else np.asarray(mask).T.reshape(-1))

    def train_batch(self, batch: dict, state=None):
        """batch: ``x (B, T)`` ids, ``y (B, T)`` next ids, optional ``mask``, ``cond``.

        Returns stats {loss (summed nats), count}, grads of the mean loss, final state."""
        logits, new_state, cache = self._forward_tm(batch["x"], state, batch.get("mask"),
                                                    batch.get("cond"))
        y, mask = self._targets(batch)
        loss, dzT = softmax_cross_entropy(logits, y, mask, "mean", check_finite=False, axis=0)
        count = int(np.size(y) if mask is None else np.sum(mask))
        grads = self._grads(loss, lambda: self._backward_tm(dzT, cache)[0])
        return {"loss": loss * count, "count": count}, grads, new_state

    def evaluate(self, batch: dict, state=None):
        """Loss without gradients: returns stats {loss (sum), count}, final state."""
        logits, new_state, _ = self._forward_tm(batch["x"], state, batch.get("mask"),
                                                batch.get("cond"))
        y, mask = self._targets(batch)
        loss, _ = softmax_cross_entropy(logits, y, mask, "sum", check_finite=False, axis=0)
        count = int(np.size(y) if mask is None else np.sum(mask))
        return {"loss": loss, "count": count}, new_state

    # ------------------------------------------------------------------ generation
    def step(self, ids, state):
        """One generation step: ids (K,) -> logits (K, V), new state (no cache, no dropout).

        state: as :meth:`initial_state` gives it, or as a previous step returned it."""
        ids = check_ids(ids, "ids", self.vocab_size, ndim=1)
        x = self.modules["embed"].params["W"][ids] if self.embedding_dim else ids
        h, state = self.rnn.step(x, state)
        logits = h @ self.head.params["W"]
        if "b" in self.head.params:
            logits += self.head.params["b"]
        return logits, state

    def prime(self, ids, state=None, cond=None):
        """Run a prime sequence ids (T,) (T >= 1) through the model, batch 1, one
        :meth:`step` at a time. Returns the logits (V,) of the next token and the state."""
        if np.size(ids) == 0:  # before check_ids: an empty list has a float dtype
            raise ValueError("prime must hold at least one token")
        ids = check_ids(ids, "prime", self.vocab_size, ndim=1)
        if state is None:
            state, _ = self.initial_state(1, cond)
        logits = None
        for t in ids:
            logits, state = self.step(np.array([t]), state)
        return logits[0], state

    def generate(self, prime, length: int, rng=None, temperature=1.0, top_k=None, top_p=None,
                 greedy=False, beam: int | None = None, stop_ids=(), cond=None,
                 on_token=None, length_penalty=None, num_return=None):
        """Generate up to ``length`` ids after the prime ids (T,) (one-to-many).

        Sampling with temperature/top-k/top-p, greedy (or temperature 0), or beam search of
        width ``beam`` ranked by the mean log-probability per token (``length_penalty``
        alpha: the sum divided by ``len ** alpha``; default 1, see
        :func:`rnnkit.generate.beam_hypotheses`). The settings are checked by
        :func:`rnnkit.generate.check_decoding` before anything runs. Stops after a token in
        ``stop_ids`` (included). ``on_token`` streams the ids. Returns the generated ids
        (without the prime); with ``num_return`` N (beam search only, N <= beam), the N
        best distinct beams, best first, as a list of id lists."""
        d = check_decoding(self.vocab_size, length, temperature, top_k, top_p, greedy, beam,
                           stop_ids, length_penalty=length_penalty, num_return=num_return)
        if on_token is not None and not callable(on_token):
            raise TypeError(f"on_token must be callable or None, got {on_token!r}")
        if on_token is not None and d.num_return is not None:
            raise ValueError("on_token streams one sequence; with num_return, read the "
                             "returned lists instead")
        rng = as_rng(rng)
        was_training = self.rnn.training
        self.eval()
        try:
            logits, state = self.prime(prime, cond=cond)
            if d.beam is None:
                return sample_sequence(self.step, logits, state, d.length, rng, d.temperature,
                                       d.top_k, d.top_p, d.greedy, d.stop_ids, on_token)
            hyps = beam_hypotheses(self.step, logits, state, d.beam, d.length, d.stop_ids,
                                   d.length_penalty, d.num_return or 1)
            if d.num_return is not None:
                return [seq for seq, _ in hyps]
            if on_token is not None:
                for t in hyps[0][0]:
                    on_token(t)
            return hyps[0][0]
        finally:
            if was_training:
                self.train()
