"""Ready architectures built from the layers, with save/load.

========================  =====================  ==========================================
model                     architecture           input -> output
========================  =====================  ==========================================
``LanguageModel``         many-to-many, shifted  ids (B, T) -> logits (B, T, V)
``SequenceClassifier``    many-to-one            ids (B, T) or x (B, T, D) -> logits (B, C)
``SequenceRegressor``     many-to-one            x (B, T, D) -> y (B, K)
``SequenceTagger``        many-to-many, T_x=T_y  ids/x (B, T) -> logits (B, T, C)
``Seq2Seq``               encoder-decoder        src (B, S) -> tgt (B, T), T != S
========================  =====================  ==========================================

Every model has ``params`` (a flat dict ``"<module>.<param>"`` whose arrays are the
layers' own, updated in place by the optimizers), ``train()``/``eval()``,
``train_batch(batch, state) -> (stats, grads, state)`` used by :class:`rnnkit.train.Trainer`,
and ``save(path)`` / ``load_model(path)``. ``stats`` holds ``loss`` (summed over the
``count`` valid targets) and, for classifiers, ``correct``.
"""

from __future__ import annotations

import numpy as np

from . import checkpoint
from ._checks import as_dtype, as_rng, check_array, check_choice, check_positive_int, shape_str
from .generate import beam_search, sample_sequence
from .layers import Dense, Dropout, Embedding, check_ids
from .losses import mse, softmax_cross_entropy
from .recurrent import GRU, LSTM, RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def make_recurrent(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, **kw):
    """Build RNN/LSTM/GRU by name ("rnn", "lstm", "gru")."""
    check_choice(cell, "cell", tuple(CELLS))
    return CELLS[cell](input_size, hidden_size, num_layers, **kw)


def _one_hot(ids: np.ndarray, V: int, dtype) -> np.ndarray:
    out = np.zeros(ids.shape + (V,), dtype=dtype)
    np.put_along_axis(out, ids[..., None], 1, axis=-1)
    return out


class Model:
    """Base class: named modules, a flat parameter dict, modes, save/load."""

    def __init__(self, rng=None, dtype=np.float32):
        self.rng = as_rng(rng)
        self.dtype = as_dtype(dtype)
        self.modules: dict = {}  # layers with parameters, by name
        self.aux: list = []  # layers without parameters (dropout), for train()/eval()
        self._config: dict = {}

    def _finish(self) -> None:
        self.params = {f"{m}.{k}": v for m, mod in self.modules.items()
                       for k, v in mod.params.items()}

    def _grads(self, loss: float, backward, *args) -> dict:
        """``backward(*args)``, or NaN gradients when the loss is not finite (a diverged
        step: the trainer skips it; nothing non-finite is backpropagated)."""
        if not np.isfinite(loss):
            return {k: np.full_like(v, np.nan) for k, v in self.params.items()}
        return backward(*args)

    def _build_stack(self, vocab_size, input_size, embedding_dim, pad_id, cell, hidden_size,
                     num_layers, bidirectional, dropout, num_outputs, **rnn_kwargs) -> None:
        """embed (for token ids) -> rnn -> dropout -> head (Dense to num_outputs): the
        modules of the classifier and the tagger."""
        if vocab_size is not None:
            self.modules["embed"] = Embedding(vocab_size, embedding_dim, padding_idx=pad_id,
                                              dtype=self.dtype, rng=self.rng)
            D = embedding_dim
        else:
            D = check_positive_int(input_size, "input_size")
        self.rnn = make_recurrent(cell, D, hidden_size, num_layers, bidirectional=bidirectional,
                                  dropout=dropout, dtype=self.dtype, rng=self.rng, **rnn_kwargs)
        self.modules["rnn"] = self.rnn
        self.drop = Dropout(dropout, rng=self.rng)
        self.aux.append(self.drop)
        self.head = Dense(self.rnn.output_size, num_outputs, dtype=self.dtype, rng=self.rng)
        self.modules["head"] = self.head
        self._finish()

    def _backward_stack(self, dh, rcache, ecache, grads: dict) -> dict:
        """Backward through the rnn and (for token ids) the embedding of a stack built by
        :meth:`_build_stack`; dh is the gradient of the rnn's output. Returns grads."""
        dx, _, g = self.rnn.backward(dh, rcache, need_dx=ecache is not None)
        self._module_grads("rnn", g, grads)
        if ecache is not None:
            _, g = self.modules["embed"].backward(dx, ecache)
            self._module_grads("embed", g, grads)
        return grads

    def _module_grads(self, name: str, grads: dict, out: dict) -> None:
        for k, v in grads.items():
            out[f"{name}.{k}"] = v

    def train(self):
        """Training mode (dropout on). Returns self."""
        for m in [*self.modules.values(), *self.aux]:
            m.train()
        return self

    def eval(self):
        """Inference mode (dropout off). Returns self."""
        for m in [*self.modules.values(), *self.aux]:
            m.eval()
        return self

    def num_parameters(self) -> int:
        """Total number of parameter entries."""
        return int(sum(p.size for p in self.params.values()))

    def config(self) -> dict:
        """Constructor arguments (JSON), enough to rebuild the model."""
        # sizes often arrive as numpy integers (``ids.max() + 1``), which JSON cannot hold
        return {k: v.item() if isinstance(v, np.generic) else v for k, v in self._config.items()}

    # ------------------------------------------------------------------ persistence
    def checkpoint_arrays(self) -> dict:
        """The parameters as checkpoint arrays named ``param/<name>``."""
        return {f"param/{k}": v for k, v in self.params.items()}

    def load_arrays(self, arrays: dict, source: str = "checkpoint") -> None:
        """Copy ``param/<name>`` arrays into the parameters, checking names and shapes."""
        for k, p in self.params.items():
            key = f"param/{k}"
            if key not in arrays:
                raise checkpoint.CheckpointError(f"{source} has no parameter {k!r}")
            a = arrays[key]
            if a.shape != p.shape:
                raise checkpoint.CheckpointError(
                    f"{source}: parameter {k!r} has shape {shape_str(a.shape)}, expected "
                    f"{shape_str(p.shape)}")
            if not np.isfinite(a).all():
                raise checkpoint.CheckpointError(f"{source}: parameter {k!r} holds NaN or inf")
            np.copyto(p, a)

    def save(self, path, meta: dict | None = None, arrays: dict | None = None):
        """Write the model (and optional extra metadata and arrays) atomically."""
        for k, v in self.params.items():
            if not np.isfinite(v).all():
                raise ValueError(f"parameter {k!r} holds NaN or inf: refusing to save it")
        full = {"model": type(self).__name__, "config": self.config(), **(meta or {})}
        return checkpoint.save(path, {**self.checkpoint_arrays(), **(arrays or {})}, full)


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
        """One generation step: ids (K,) -> logits (K, V), new state (no cache)."""
        ids = check_ids(ids, "ids", self.vocab_size, ndim=1)
        if self.embedding_dim:
            x = self.modules["embed"].params["W"][ids]
        else:
            x = _one_hot(ids, self.vocab_size, self.dtype)
        h, state = self.rnn.step(x, state)
        logits, _ = self.head.forward(h)
        return logits, state

    def stepper(self):
        """The fast generation step, with a snapshot of the current weights.

        Returns ``step(ids (K,), state) -> (logits (K, V), state)``, what :meth:`step`
        computes (no dropout), with the weights prepared once (one-hot inputs become a row
        look-up). Make a new one after the weights change; :meth:`generate` does."""
        rnn = self.rnn.stepper()
        W = self.head.params["W"].copy()
        b = self.head.params["b"].copy() if "b" in self.head.params else None
        E = self.modules["embed"].params["W"].copy() if self.embedding_dim else None
        V = self.vocab_size

        def step(ids, state):
            if E is not None:
                h, state = rnn.step(E[check_ids(ids, "ids", V, ndim=1)], state)
            else:
                h, state = rnn.step_ids(ids, state)
            logits = h @ W
            if b is not None:
                logits += b
            return logits, state

        return step

    def prime(self, ids, state=None, cond=None, step=None):
        """Run a prime sequence ids (T,) (T >= 1) through the model, batch 1.

        ``step``: a :meth:`stepper` to use (else one is made). Returns the logits (V,) of
        the next token and the state."""
        if np.size(ids) == 0:  # before check_ids: an empty list has a float dtype
            raise ValueError("prime must hold at least one token")
        ids = check_ids(ids, "prime", self.vocab_size, ndim=1)
        if state is None:
            state, _ = self.initial_state(1, cond)
        step = self.stepper() if step is None else step
        logits = None
        for t in ids:
            logits, state = step(np.array([t]), state)
        return logits[0], state

    def generate(self, prime, length: int, rng=None, temperature=1.0, top_k=None, top_p=None,
                 greedy=False, beam: int | None = None, stop_ids=(), cond=None,
                 on_token=None) -> list[int]:
        """Generate up to ``length`` ids after the prime ids (T,) (one-to-many).

        Sampling with temperature/top-k/top-p, greedy, or beam search of width ``beam``.
        Stops after a token in ``stop_ids`` (included). ``on_token`` streams the ids."""
        was_training = self.rnn.training
        self.eval()
        try:
            step = self.stepper()
            logits, state = self.prime(prime, cond=cond, step=step)
            if beam:
                out = beam_search(step, logits, state, beam, length, stop_ids)
                if on_token is not None:
                    for t in out:
                        on_token(t)
                return out
            return sample_sequence(step, logits, state, length, as_rng(rng), temperature,
                                   top_k, top_p, greedy, stop_ids, on_token)
        finally:
            if was_training:
                self.train()


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
        from .data import pad_sequences

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

    def decode(self, src, max_len: int = 50, beam: int = 1) -> list[list[int]]:
        """Translate each source sequence (B, S) (or a list of id lists): greedy (beam 1)
        or beam search. Returns one id list per sequence, without bos/eos."""
        if not isinstance(src, np.ndarray):
            from .data import pad_sequences

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
                seq = beam_search(self._step, logits[0], st, beam, max_len, [self.eos_id])
                if seq and seq[-1] == self.eos_id:
                    seq = seq[:-1]
                outs.append(seq)
            return outs
        finally:
            if was:
                self.train()


MODELS = {cls.__name__: cls for cls in (LanguageModel, SequenceClassifier, SequenceRegressor,
                                         SequenceTagger, Seq2Seq)}


def build_model(name: str, config: dict) -> Model:
    """Rebuild a model from its class name and ``config()``."""
    if name not in MODELS:
        raise checkpoint.CheckpointError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](**config)


def load_model(path) -> tuple[Model, dict, dict]:
    """Load a model saved with ``Model.save`` (or a training checkpoint).

    Returns (model, meta, arrays): the extra metadata and arrays stay available."""
    arrays, meta = checkpoint.load(path)
    if "model" not in meta or "config" not in meta:
        raise checkpoint.CheckpointError(f"{str(path)!r} holds no model")
    try:
        model = build_model(meta["model"], meta["config"])
    except (TypeError, ValueError) as e:
        if isinstance(e, checkpoint.CheckpointError):
            raise
        raise checkpoint.CheckpointError(
            f"{str(path)!r} has an invalid model config: {e}") from None
    model.load_arrays(arrays, repr(str(path)))
    return model, meta, arrays
