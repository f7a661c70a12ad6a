"""The base of the ready models: :class:`Model` (named modules, a flat parameter dict,
modes, save/load of the parameters) and :func:`make_recurrent`, the recurrent stack by
its cell's name."""

from __future__ import annotations

import numpy as np

from .. import checkpoint
from .._checks import as_dtype, as_rng, check_choice, check_positive_int, shape_str
from ..layers import Dense, Dropout, Embedding
from ..recurrent import GRU, LSTM, RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def make_recurrent(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, **kw):
    """Build RNN/LSTM/GRU by name ("rnn", "lstm", "gru")."""
    check_choice(cell, "cell", tuple(CELLS))
    return CELLS[cell](input_size, hidden_size, num_layers, **kw)


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

    def check_arrays(self, arrays: dict, source: str = "checkpoint") -> dict:
        """The ``param/<name>`` arrays of a checkpoint checked against the parameters: every
        name present and no other, the same shapes, floats finite in the model's dtype.
        Returns {name: array of the model's dtype}; raises CheckpointError naming
        ``source``. Nothing is copied."""
        out = {}
        for k, p in self.params.items():
            key = f"param/{k}"
            if key not in arrays:
                raise checkpoint.CheckpointError(f"{source} has no parameter {k!r}")
            a = arrays[key]
            if a.shape != p.shape:
                raise checkpoint.CheckpointError(
                    f"{source}: parameter {k!r} has shape {shape_str(a.shape)}, expected "
                    f"{shape_str(p.shape)}")
            if a.dtype.kind != "f":
                raise checkpoint.CheckpointError(
                    f"{source}: parameter {k!r} has dtype {a.dtype}, expected floats "
                    f"({p.dtype})")
            with np.errstate(over="ignore"):  # float64 beyond float32's range: inf, refused
                a = a.astype(p.dtype, copy=False)
            if not np.isfinite(a).all():
                raise checkpoint.CheckpointError(
                    f"{source}: parameter {k!r} holds NaN or inf (in {p.dtype})")
            out[k] = a
        extra = sorted(k[len("param/"):] for k in arrays
                       if k.startswith("param/") and k[len("param/"):] not in self.params)
        if extra:
            raise checkpoint.CheckpointError(
                f"{source} holds parameters this model does not have: "
                f"{', '.join(map(repr, extra[:5]))}")
        return out

    def load_arrays(self, arrays: dict, source: str = "checkpoint") -> None:
        """Copy ``param/<name>`` arrays into the parameters, all of them or (if any fails
        :meth:`check_arrays`) none."""
        for k, a in self.check_arrays(arrays, source).items():
            np.copyto(self.params[k], a)

    def save(self, path, meta: dict | None = None, arrays: dict | None = None):
        """Write the model (and optional extra metadata and arrays) atomically."""
        for k, v in self.params.items():
            if not np.isfinite(v).all():
                raise ValueError(f"parameter {k!r} holds NaN or inf: refusing to save it")
        full = {"model": type(self).__name__, "config": self.config(), **(meta or {})}
        return checkpoint.save(path, {**self.checkpoint_arrays(), **(arrays or {})}, full)
