"""The encoder-decoder (T_x != T_y): src (B, T_x) -> tgt (B, T_y), with or without
attention, trained with teacher forcing or scheduled sampling, decoded greedily or by beam
search.

Letters: B batch, T_x source steps, T_y target steps, E embedding size, H hidden size (of
the decoder; a bidirectional encoder has H/2 per direction), V the target vocabulary, L
layers.

Without attention (Sutskever et al. 2014; Cho et al. 2014) the decoder sees the source
only through the encoder's final state. With attention (:mod:`rnnkit.attention`) it reads
all of the encoder's outputs at every step, in the arrangement of Luong et al. (2015)::

    h_t = decoder(y_{t-1}, h_{t-1})         (input feeding: decoder([y_{t-1}; o_{t-1}], h_{t-1}))
    a_t = softmax_s score(h_t, k_s)          (B, T_x), zero on padded source steps
    c_t = sum_s a_ts k_s;  o_t = tanh([c_t; h_t] W_c + b_c)
    p(y_t | y_<t, x) = softmax(o_t W_y + b_y)

(without attention, ``p = softmax(h_t W_y + b_y)``), with the score additive (Bahdanau et
al. 2015), general or dot (Luong et al. 2015), and ``o_0 = 0``. Bahdanau et al. query with
the decoder's previous state and feed the context into its recurrence; here every score
queries with the current state h_t, and input feeding is what brings the previous
attentional state into the recurrence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import check_choice, check_ids, check_positive_int
from ..attention import KINDS, Attention, Memory
from ..layers import Dense, Embedding
from ..losses import softmax, softmax_cross_entropy
from .base import Model, make_recurrent
from .seq2seq_decoding import Seq2SeqDecoding
from .teacher_forcing import TeacherForcing, as_teacher_forcing

STEP_KEY = "state/seq2seq.train_steps"  # checkpoint array: train_batch calls so far
# the settings added with attention, left out of config() at their defaults so that the
# configs of models saved before them compare equal
_NEW_DEFAULTS = {"bidirectional": False, "attention": None, "attention_size": None,
                 "input_feeding": False, "teacher_forcing": TeacherForcing().config()}


@dataclass
class EncoderCache:
    """What :meth:`Seq2Seq.encode` hands on: memory, the attention
    :class:`~rnnkit.attention.Memory` of the encoder's outputs (None without attention);
    src_ecache, enc_rcache, the source embedding's and the encoder's caches."""

    memory: Memory | None
    src_ecache: object
    enc_rcache: object


@dataclass
class Seq2SeqCache:
    """What :meth:`Seq2Seq.backward` needs from one forward.

    src_ecache, enc_rcache: the source embedding's and the encoder's caches; memory: the
    attention :class:`~rnnkit.attention.Memory` (None without attention); steps: False for
    the decoder run over all T_y steps at once (``dec`` = its embedding, recurrent,
    attention and head caches), True for one step at a time (``dec`` = per step the
    recurrent, attention and head caches, then the embedding's); fed (B, T_y) the tokens
    the decoder read (the true ones, or guesses under scheduled sampling); weights
    (B, T_y, T_x) the attention weights or None.
    """

    src_ecache: object
    enc_rcache: object
    memory: Memory | None
    steps: bool
    dec: tuple
    fed: np.ndarray
    weights: np.ndarray | None


class Seq2Seq(Seq2SeqDecoding, Model):
    """Encoder-decoder (T_x != T_y), optionally with attention.

    The decoder reads ``[bos] + target`` and predicts ``target + [eos]``. Its initial state
    is the encoder's final state (a bidirectional encoder's two directions concatenated per
    layer, as OpenNMT's ``brnn``).

    Args:
        src_vocab_size, tgt_vocab_size: vocabularies (id ``pad_id`` is padding in both).
        bos_id, eos_id: target-side start and end ids.
        embedding_dim, cell, hidden_size, num_layers, dropout: shared by both sides.
        bidirectional: a bidirectional encoder of hidden_size/2 units per direction
            (hidden_size must be even).
        attention: None, or the score: ``"additive"``, ``"general"``, ``"dot"``.
        attention_size: A, the additive score's size (default hidden_size).
        input_feeding: feed the previous attentional state o_{t-1} into the decoder with
            the previous token (Luong et al. 2015, section 3.3).
        teacher_forcing: the probability of feeding the true previous token in training:
            a ratio in [0, 1] (1: teacher forcing), or a
            :class:`~rnnkit.models.teacher_forcing.TeacherForcing` schedule (scheduled
            sampling) over the count of ``train_batch`` calls, ``train_steps`` (saved in
            checkpoints, so that a resumed run goes on with the schedule).
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, bos_id, eos_id, pad_id=0,
                 embedding_dim=32, cell="lstm", hidden_size=128, num_layers=1, dropout=0.0,
                 bidirectional=False, attention=None, attention_size=None, input_feeding=False,
                 teacher_forcing=1.0, dtype=np.float32, rng=None, **cell_kwargs):
        super().__init__(rng, dtype)
        self.src_vocab_size = check_positive_int(src_vocab_size, "src_vocab_size", 2)
        self.tgt_vocab_size = check_positive_int(tgt_vocab_size, "tgt_vocab_size", 2)
        for name, v in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
            if not isinstance(v, (int, np.integer)) or not 0 <= v < tgt_vocab_size:
                raise ValueError(f"{name} must be an id in [0, {tgt_vocab_size}), got {v!r}")
        self.bos_id, self.eos_id, self.pad_id = int(bos_id), int(eos_id), int(pad_id)
        self._check_attention_args(hidden_size, bidirectional, attention, attention_size,
                                   input_feeding)
        self.bidirectional, self.attention = bool(bidirectional), attention
        self.input_feeding = bool(input_feeding)
        self.teacher_forcing = as_teacher_forcing(teacher_forcing)
        self.train_steps = 0
        new = dict(bidirectional=self.bidirectional, attention=attention,
                   attention_size=attention_size, input_feeding=self.input_feeding,
                   teacher_forcing=self.teacher_forcing.config())
        self._config = dict(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
                            bos_id=bos_id, eos_id=eos_id, pad_id=pad_id,
                            embedding_dim=embedding_dim, cell=cell, hidden_size=hidden_size,
                            num_layers=num_layers, dropout=dropout, dtype=self.dtype.name,
                            **{k: v for k, v in new.items() if v != _NEW_DEFAULTS[k]},
                            **cell_kwargs)
        self._build(embedding_dim, cell, hidden_size, num_layers, dropout, attention_size,
                    cell_kwargs)

    @staticmethod
    def _check_attention_args(hidden_size, bidirectional, attention, attention_size,
                              input_feeding) -> None:
        if attention is not None:
            check_choice(attention, "attention", (None, *KINDS))
        if bidirectional and (not isinstance(hidden_size, (int, np.integer))
                              or hidden_size % 2):
            raise ValueError(f"a bidirectional encoder needs an even hidden_size (hidden_size/2 "
                             f"units per direction), got {hidden_size!r}")
        if attention_size is not None and attention != "additive":
            raise ValueError(f"attention_size is the additive score's size; with attention="
                             f"{attention!r} leave it None, got {attention_size!r}")
        if input_feeding and attention is None:
            raise ValueError("input_feeding feeds the attentional state back in: it needs "
                             "attention='additive', 'general' or 'dot'")

    def _build(self, E, cell, H, L, dropout, A, cell_kwargs) -> None:
        kw = dict(dtype=self.dtype, rng=self.rng)
        m = self.modules
        m["src_embed"] = Embedding(self.src_vocab_size, E, padding_idx=self.pad_id, **kw)
        m["encoder"] = make_recurrent(cell, E, H // 2 if self.bidirectional else H, L,
                                      bidirectional=self.bidirectional, dropout=dropout, **kw,
                                      **cell_kwargs)
        m["tgt_embed"] = Embedding(self.tgt_vocab_size, E, padding_idx=self.pad_id, **kw)
        m["decoder"] = make_recurrent(cell, E + (H if self.input_feeding else 0), H, L,
                                      dropout=dropout, **kw, **cell_kwargs)
        if self.attention is not None:
            m["attention"] = Attention(H, H, self.attention, attention_size=A, **kw)
        m["head"] = Dense(H, self.tgt_vocab_size, **kw)
        self._finish()

    # ------------------------------------------------------------------ the encoder
    def encode(self, src, src_mask=None):
        """src (B, T_x) ids, src_mask (B, T_x) bool (default: src != pad_id) -> the
        decoder's initial state (L, B, H) (LSTM (h, c)) and an :class:`EncoderCache` (its
        ``memory``: the attention memory, None without attention)."""
        src = check_ids(src, "src", self.src_vocab_size, ndim=2)
        if src_mask is None:
            src_mask = src != self.pad_id
        if self.attention is not None and src.size:
            empty = np.flatnonzero(~np.asarray(src_mask, dtype=bool).any(axis=1))
            if empty.size:
                raise ValueError(f"src row {empty[0]} is all padding: attention needs at least "
                                 "one source token in every sequence")
        emb, ecache = self.modules["src_embed"].forward(src)
        out, state, rcache = self.modules["encoder"].forward(emb, mask=src_mask)
        memory = None
        if self.attention is not None:
            memory = self.modules["attention"].memory(out, np.asarray(src_mask, dtype=bool))
        return self._bridge(state), EncoderCache(memory, ecache, rcache)

    def _bridge(self, state):
        """A bidirectional encoder's final state (2L, B, H/2), ordered layer 0 forward,
        layer 0 reverse, ... -> (L, B, H), each layer's two directions concatenated."""
        if not self.bidirectional:
            return state

        def cat(s):
            L2, B, h = s.shape
            return s.reshape(L2 // 2, 2, B, h).transpose(0, 2, 1, 3).reshape(L2 // 2, B, 2 * h)

        return tuple(cat(s) for s in state) if isinstance(state, tuple) else cat(state)

    def _bridge_backward(self, dstate):
        """The gradient of :meth:`_bridge`'s input from that of its output."""
        if not self.bidirectional:
            return dstate

        def split(d):
            L, B, H = d.shape
            return d.reshape(L, B, 2, H // 2).transpose(0, 2, 1, 3).reshape(2 * L, B, H // 2)

        return tuple(split(d) for d in dstate) if isinstance(dstate, tuple) else split(dstate)

    # ------------------------------------------------------------------ forward, backward
    def forward(self, src, tgt_in, src_mask=None, tgt_mask=None):
        """Teacher forcing: src (B, T_x), tgt_in (B, T_y) -> logits (B, T_y, V), cache (a
        :class:`Seq2SeqCache`; ``cache.weights`` (B, T_y, T_x) holds the attention
        weights)."""
        return self._forward(src, tgt_in, src_mask, tgt_mask, 1.0)

    def _forward(self, src, tgt_in, src_mask, tgt_mask, eps: float):
        """forward with the true token fed with probability eps (scheduled sampling)."""
        tgt_in = check_ids(tgt_in, "tgt_in", self.tgt_vocab_size, ndim=2)
        state, enc = self.encode(src, src_mask)
        memory = enc.memory
        if tgt_in.shape[0] != np.shape(src)[0]:
            raise ValueError(f"tgt_in has {tgt_in.shape[0]} sequences, src has {np.shape(src)[0]}")
        if tgt_mask is not None:
            tgt_mask = np.asarray(tgt_mask, dtype=bool)
        steps = self.input_feeding or eps < 1.0
        if steps:
            logits, fed, weights, dec = self._decode_steps(tgt_in, state, memory, tgt_mask, eps)
        else:
            logits, weights, dec = self._decode_parallel(tgt_in, state, memory, tgt_mask)
            fed = tgt_in
        return logits, Seq2SeqCache(enc.src_ecache, enc.enc_rcache, memory, steps, dec, fed,
                                    weights)

    def _decode_parallel(self, tgt_in, state, memory, tgt_mask):
        """The decoder over all T_y steps at once (teacher forcing, no input feeding):
        logits (B, T_y, V), weights (B, T_y, T_x) or None, the caches."""
        emb, ecache = self.modules["tgt_embed"].forward(tgt_in)
        h, _, rcache = self.modules["decoder"].forward(emb, state, mask=tgt_mask)
        acache = weights = None
        if memory is not None:
            h, weights, acache = self.modules["attention"].attend(h, memory)
        logits, hcache = self.modules["head"].forward(h)
        return logits, weights, (ecache, rcache, acache, hcache)

    def _decode_steps(self, tgt_in, state, memory, tgt_mask, eps: float):
        """The decoder one step at a time (input feeding, scheduled sampling): logits
        (B, T_y, V), the tokens fed (B, T_y), weights (B, T_y, T_x) or None, the caches."""
        B, T = tgt_in.shape
        fed = tgt_in.copy()
        logits = np.empty((B, T, self.tgt_vocab_size), dtype=self.dtype)
        feed = np.zeros((B, self.hidden_size), self.dtype) if self.input_feeding else None
        steps, weights = [], []
        for t in range(T):
            if t > 0 and eps < 1.0:
                valid = None if tgt_mask is None else tgt_mask[:, t]
                fed[:, t] = self._feed_choice(tgt_in[:, t], logits[:, t - 1], eps, valid)
            x, _ = self.modules["tgt_embed"].forward(fed[:, t])
            if feed is not None:
                x = np.concatenate([x, feed], axis=1)
            h, state, rcache = self.modules["decoder"].forward(
                x[:, None], state, mask=None if tgt_mask is None else tgt_mask[:, t : t + 1])
            acache = None
            if memory is not None:
                h, a, acache = self.modules["attention"].attend(h, memory)
                weights.append(a[:, 0])
                if feed is not None:
                    feed = h[:, 0]
            lg, hcache = self.modules["head"].forward(h)
            logits[:, t] = lg[:, 0]
            steps.append((rcache, acache, hcache))
        # one cache for the embedding of every token fed, for one backward at the end
        _, ecache = self.modules["tgt_embed"].forward(fed)
        return logits, fed, (np.stack(weights, axis=1) if weights else None), (steps, ecache)

    def _feed_choice(self, true_ids, logits, eps: float, valid):
        """Scheduled sampling at one step: per sequence, the true token (B,) with
        probability eps, else the model's guess from the previous step's logits (B, V):
        a draw from its softmax or its argmax. Padded steps (valid False) keep theirs."""
        B = true_ids.shape[0]
        truth = self.rng.random(B) < eps
        if self.teacher_forcing.token == "argmax":
            guess = logits.argmax(axis=1)
        else:  # inverse-CDF draws, one uniform number per sequence
            cdf = np.cumsum(softmax(logits.astype(np.float64), axis=1), axis=1)
            u = self.rng.random(B)[:, None] * cdf[:, -1:]
            guess = np.minimum((cdf <= u).sum(axis=1), self.tgt_vocab_size - 1)
        keep = truth if valid is None else truth | ~valid
        return np.where(keep, true_ids, guess)

    def backward(self, dlogits, cache: Seq2SeqCache):
        """dlogits (B, T_y, V) (as returned by forward) -> grads keyed like params."""
        if not isinstance(cache, Seq2SeqCache):
            raise TypeError(f"cache must be the Seq2SeqCache returned by forward, got "
                            f"{type(cache).__name__}")
        grads: dict = {}
        run = self._backward_steps if cache.steps else self._backward_parallel
        dstate, dmem = run(dlogits, cache.dec, grads)
        dkeys = None
        if dmem is not None:
            dkeys, g = self.modules["attention"].memory_backward(dmem, cache.memory)
            self._add_grads("attention", g, grads)
        dsrc, _, g = self.modules["encoder"].backward(dkeys, cache.enc_rcache,
                                                      self._bridge_backward(dstate))
        self._add_grads("encoder", g, grads)
        _, g = self.modules["src_embed"].backward(dsrc, cache.src_ecache)
        self._add_grads("src_embed", g, grads)
        return {k: grads[k] for k in self.params}

    def _add_grads(self, name: str, g: dict, out: dict) -> None:
        """Add a module's gradients into out (summed over the steps that used them)."""
        for k, v in g.items():
            key = f"{name}.{k}"
            out[key] = out[key] + v if key in out else v

    def _backward_parallel(self, dlogits, dec, grads):
        """Backward of :meth:`_decode_parallel`: the gradients of the initial state and of
        the memory (or None); fills grads."""
        ecache, rcache, acache, hcache = dec
        dh, g = self.modules["head"].backward(dlogits, hcache)
        self._add_grads("head", g, grads)
        dmem = None
        if acache is not None:
            dh, dmem, g = self.modules["attention"].attend_backward(dh, acache)
            self._add_grads("attention", g, grads)
        demb, dstate, g = self.modules["decoder"].backward(dh, rcache)
        self._add_grads("decoder", g, grads)
        _, g = self.modules["tgt_embed"].backward(demb, ecache)
        self._add_grads("tgt_embed", g, grads)
        return dstate, dmem

    def _backward_steps(self, dlogits, dec, grads):
        """Backward of :meth:`_decode_steps`, step T_y-1 down to 0: the gradient of o_t is
        the head's plus, with input feeding, that of the next step's input; the state's
        gradient runs from step to step. Returns the gradients of the initial state and of
        the memory (or None); fills grads."""
        steps, ecache = dec
        E = self.modules["tgt_embed"].embedding_dim
        B, T = dlogits.shape[:2]
        demb = np.zeros((B, T, E), dtype=self.dtype)
        dfeed = dstate = dmem = None
        for t in range(T - 1, -1, -1):
            rcache, acache, hcache = steps[t]
            dh, g = self.modules["head"].backward(dlogits[:, t : t + 1], hcache)
            self._add_grads("head", g, grads)
            if acache is not None:
                if dfeed is not None:
                    dh = dh + dfeed[:, None]
                dh, dm, g = self.modules["attention"].attend_backward(dh, acache)
                self._add_grads("attention", g, grads)
                dmem = dm if dmem is None else dmem.add(dm)
            dx, dstate, g = self.modules["decoder"].backward(dh, rcache, dstate)
            self._add_grads("decoder", g, grads)
            demb[:, t] = dx[:, 0, :E]
            if self.input_feeding:
                dfeed = dx[:, 0, E:]
        _, g = self.modules["tgt_embed"].backward(demb, ecache)
        self._add_grads("tgt_embed", g, grads)
        return dstate, dmem

    # ------------------------------------------------------------------ training
    def make_batch(self, src_seqs, tgt_seqs) -> dict:
        """Lists of id sequences -> a padded teacher-forcing batch dict: src, src_mask
        (B, T_x); x = [bos] + target, y = target + [eos], mask (B, T_y)."""
        from ..data import pad_sequences

        if len(src_seqs) != len(tgt_seqs):
            raise ValueError(f"src_seqs has {len(src_seqs)} sequences, tgt_seqs {len(tgt_seqs)}")
        src, src_mask = pad_sequences(src_seqs, self.pad_id)
        tin, tmask = pad_sequences([[self.bos_id, *t] for t in tgt_seqs], self.pad_id)
        tout, _ = pad_sequences([[*t, self.eos_id] for t in tgt_seqs], self.pad_id)
        return {"src": src, "src_mask": src_mask, "x": tin, "y": tout, "mask": tmask}

    def _run(self, batch, reduction, eps: float = 1.0):
        logits, cache = self._forward(batch["src"], batch["x"], batch.get("src_mask"),
                                      batch.get("mask"), eps)
        mask = batch.get("mask")
        loss, dl = softmax_cross_entropy(logits, batch["y"], mask, reduction,
                                         check_finite=False)
        count = int(np.size(batch["y"]) if mask is None else np.sum(mask))
        hit = logits.argmax(-1) == batch["y"]
        if mask is not None:
            hit &= mask
        return loss, dl, count, int(hit.sum()), cache

    def teacher_forcing_ratio(self, step: int | None = None) -> float:
        """eps, the probability of feeding the true token, at ``step`` (default: the next
        training step, ``train_steps``)."""
        return self.teacher_forcing(self.train_steps if step is None else step)

    def train_batch(self, batch: dict, state=None):
        """batch from :meth:`make_batch`, the true token fed with probability
        :meth:`teacher_forcing_ratio` (then ``train_steps`` counts one more). Returns stats,
        grads, None."""
        eps = self.teacher_forcing_ratio()
        self.train_steps += 1
        loss, dl, count, correct, cache = self._run(batch, "mean", eps)
        return ({"loss": loss * count, "count": count, "correct": correct},
                self._grads(loss, self.backward, dl, cache), None)

    def evaluate(self, batch: dict, state=None):
        """Loss and counts of one batch without gradients, with teacher forcing: returns
        stats, None."""
        loss, _, count, correct, _ = self._run(batch, "sum")
        return {"loss": loss, "count": count, "correct": correct}, None

    @property
    def hidden_size(self) -> int:
        """H, the decoder's hidden size."""
        return self.modules["decoder"].hidden_size

    # ------------------------------------------------------------------ persistence
    def checkpoint_arrays(self) -> dict:
        """The parameters (``param/<name>``) and the count of training steps, which the
        teacher-forcing schedule reads."""
        return {**super().checkpoint_arrays(),
                STEP_KEY: np.array(self.train_steps, dtype=np.int64)}

    def check_state_arrays(self, arrays: dict, source: str = "checkpoint") -> dict:
        """``train_steps`` when saved (0 for files written before it), checked to be a
        non-negative integer; raises CheckpointError naming ``source``."""
        if STEP_KEY not in arrays:
            return {"train_steps": 0}
        a = arrays[STEP_KEY]
        if a.shape != () or a.dtype.kind not in "iu" or int(a) < 0:
            from .. import checkpoint

            raise checkpoint.CheckpointError(
                f"{source}: {STEP_KEY} must be a non-negative integer, got {a!r}")
        return {"train_steps": int(a)}

    def restore_state(self, state: dict) -> None:
        """Set ``train_steps`` (the teacher-forcing schedule's position)."""
        self.train_steps = state["train_steps"]
