"""Decoding of :class:`rnnkit.models.Seq2Seq`, with or without attention: greedy over the
whole batch at once, beam search one source at a time (:func:`rnnkit.generate.
beam_hypotheses`), the attention weights of what was decoded, and their map.

Letters as in :mod:`rnnkit.models.seq2seq`: B sources, T_x source steps, T_y output
tokens, K hypotheses of a beam, H the decoder's hidden size, V the target vocabulary, L
layers. A decoding step reads the previous token y_{t-1} (and, with input feeding, the
previous attentional state o_{t-1}) and gives the logits of y_t::

    h_t = decoder([E y_{t-1}; o_{t-1}], h_{t-1});  o_t = attend(h_t, memory)   (or h_t)
    logits_t = o_t W_y + b_y
"""

from __future__ import annotations

import numpy as np

from .._checks import check_ids
from ..generate import beam_hypotheses, check_decoding


class Seq2SeqDecoding:
    """The decoding methods of a Seq2Seq (its ``modules``, ``attention``, ``input_feeding``,
    ``bos_id``, ``eos_id``, ``pad_id``, ``encode`` and ``_forward``)."""

    def _step_fn(self, memory):
        """The one-step function of decoding: ``step(ids (K,), state) -> logits (K, V),
        state, weights (K, 1, T_x) or None``. The state is the decoder's (L, K, H) (LSTM
        (h, c)), with input feeding o_{t-1} appended as (1, K, H), so that beam search can
        pick hypotheses on axis 1. The memory has K sources, or 1 shared by all."""
        W = self.modules["tgt_embed"].params["W"]

        def step(ids, state):
            dec, feed = self._split_state(state)
            x = W[check_ids(ids, "ids", self.tgt_vocab_size, 1)]
            if feed is not None:
                x = np.concatenate([x, feed], axis=1)
            h, dec = self.modules["decoder"].step(x, dec)
            a = None
            if memory is not None:
                o, a, _ = self.modules["attention"].attend(h[:, None], memory)
                h = o[:, 0]
            return self.modules["head"].forward(h)[0], self._join_state(dec, h), a

        return step

    def _step(self, ids, state):
        """One decoder step of a model without attention (what the ONNX decoder step graph
        computes): ids (K,), state (L, K, H) (LSTM (h, c)) -> logits (K, V), state."""
        if self.attention is not None:
            raise ValueError(f"a decoder step with attention={self.attention!r} reads the "
                             "encoder's outputs: use decode")
        logits, state, _ = self._step_fn(None)(ids, state)
        return logits, state

    def _join_state(self, dec, o):
        if not self.input_feeding:
            return dec
        parts = dec if isinstance(dec, tuple) else (dec,)
        return (*parts, o[None])

    def _split_state(self, state):
        """-> the decoder's state and o_{t-1} (K, H) (None without input feeding)."""
        if not self.input_feeding:
            return state, None
        *dec, feed = state
        return (tuple(dec) if len(dec) == 2 else dec[0]), feed[0]

    def decode(self, src, max_len: int = 50, beam: int = 1, length_penalty=None,
               num_return=None, return_attention: bool = False) -> list:
        """Translate each source sequence (B, T_x) (or a list of id lists): greedy (beam 1,
        all sequences at once) or beam search (one sequence at a time), ranked by the mean
        log-probability per token (``length_penalty`` alpha divides the sum by
        ``len ** alpha``; default 1, see :func:`rnnkit.generate.beam_hypotheses`).

        Returns one id list per sequence (at most ``max_len`` ids), without bos/eos; with
        ``num_return`` N (<= beam), N lists per sequence, best first. With
        ``return_attention``, also the weights: per sequence (per hypothesis with
        ``num_return``) an array (T_y, T_x), a row per output token, a column per source
        token (padding left out), each row summing to 1.
        """
        d = check_decoding(self.tgt_vocab_size, max_len, beam=beam,
                           length_penalty=length_penalty, num_return=num_return,
                           names={"length": "max_len"})
        if return_attention and self.attention is None:
            raise ValueError("return_attention needs a model with attention (attention="
                             "'additive', 'general' or 'dot'); this one has none")
        if not isinstance(src, np.ndarray):
            from ..data import pad_sequences

            src, _ = pad_sequences(list(src), self.pad_id)
        was = self.modules["decoder"].training
        self.eval()
        try:
            state, enc = self.encode(src)
            if d.beam == 1:
                outs, weights = self._greedy(state, enc.memory, src.shape[0], d.length)
                hyps = [[o] for o in outs]
            else:
                hyps = [self._beam(state, enc.memory, b, d, d.num_return or 1)
                        for b in range(len(src))]
                weights = None
                if return_attention:
                    flat = [q for h in hyps for q in h]
                    weights = self._forced_weights(np.repeat(src, [len(h) for h in hyps], 0),
                                                   flat)
        finally:
            if was:
                self.train()
        outs = hyps if d.num_return is not None else [h[0] for h in hyps]
        if not return_attention:
            return outs
        valid = check_ids(src, "src", self.src_vocab_size) != self.pad_id
        rows = iter(range(len(weights)))  # one row of weights per hypothesis, in order
        maps = [[weights[next(rows), : len(q)][:, valid[b]] for q in h]
                for b, h in enumerate(hyps)]
        return outs, (maps if d.num_return is not None else [m[0] for m in maps])

    def _greedy(self, state, memory, B: int, max_len: int):
        """Greedy decoding of the whole batch: id lists (eos removed) and the weights
        (B, steps, T_x) (None without attention)."""
        step = self._step_fn(memory)
        state = self._join_state(state, np.zeros((B, self.hidden_size), self.dtype))
        ids = np.full(B, self.bos_id)
        toks = np.empty((B, max_len), dtype=np.intp)
        rows, done, t = [], np.zeros(B, dtype=bool), -1
        for t in range(max_len):
            logits, state, a = step(ids, state)
            ids = toks[:, t] = logits.argmax(axis=1)
            if a is not None:
                rows.append(a[:, 0])
            done |= ids == self.eos_id
            if done.all():
                break
        outs = []
        for seq in toks[:, : t + 1].tolist():
            outs.append(seq[: seq.index(self.eos_id)] if self.eos_id in seq else seq)
        if memory is None:
            return outs, None
        T_x = memory.keys.shape[1]
        return outs, (np.stack(rows, axis=1) if rows else np.zeros((B, 0, T_x), self.dtype))

    def _beam(self, state, memory, b: int, d, num: int) -> list[list[int]]:
        """Beam search for source b with the checked settings d (a
        :class:`~rnnkit.generate.Decoding`): its ``num`` best id lists, eos removed."""
        st = tuple(s[:, b : b + 1] for s in state) if isinstance(state, tuple) \
            else state[:, b : b + 1]
        st = self._join_state(st, np.zeros((1, self.hidden_size), self.dtype))
        step = self._step_fn(None if memory is None else memory.rows(slice(b, b + 1)))

        def step2(ids, s):
            logits, s, _ = step(ids, s)
            return logits, s

        logits, st = step2(np.array([self.bos_id]), st)
        hyps = beam_hypotheses(step2, logits[0], st, d.beam, d.length, [self.eos_id],
                               d.length_penalty, num)
        return [q[:-1] if q and q[-1] == self.eos_id else q for q, _ in hyps]

    def _forced_weights(self, src, outs):
        """The attention weights (B, T_y, T_x) along given outputs: the decoder fed
        ``[bos] + out`` (eval mode, teacher forcing)."""
        from ..data import pad_sequences

        tin, tmask = pad_sequences([[self.bos_id, *o] for o in outs], self.pad_id)
        _, cache = self._forward(src, tin, None, tmask, 1.0)
        return cache.weights

    def plot_attention(self, src, src_tokens=None, tgt_tokens=None, path=None,
                       max_len: int = 50, beam: int = 1, ax=None, title=None):
        """Decode one source and draw its attention map (:func:`rnnkit.attention.
        plot_attention`): source tokens along x, output tokens along y.

        src: one source (T_x,) ids; src_tokens, tgt_tokens: the label of each id (a
        :class:`~rnnkit.data.Vocab` or a list indexed by id; default the ids themselves).
        Writes a PNG to ``path`` when given. Returns (output ids, weights (T_y, T_x),
        the matplotlib Figure). Needs matplotlib."""
        from ..attention import plot_attention

        ids = check_ids(src, "src", self.src_vocab_size, ndim=1)
        outs, weights = self.decode(ids[None], max_len, beam, return_attention=True)

        def labels(seq, tokens):
            tokens = getattr(tokens, "tokens", tokens)
            return [str(i) if tokens is None else tokens[i] for i in seq]

        source = labels([i for i in ids.tolist() if i != self.pad_id], src_tokens)
        fig = plot_attention(weights[0], source, labels(outs[0], tgt_tokens), path, ax, title)
        return outs[0], weights[0], fig

