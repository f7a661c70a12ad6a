"""rnnkit's models as ``torch.nn.Module``\\ s, and back (used by :mod:`rnnkit.interop`).

Each module is built from an rnnkit model and computes its function in PyTorch (in eval
mode the same outputs; in training mode the same dropout, drawn by PyTorch): an embedding
(``nn.Embedding``, or one-hot inputs), the recurrent stack (``nn.LSTM/GRU/RNN``,
``batch_first=True``), dropout, a linear head. The module keeps the rnnkit model's name and
configuration (``rnnkit_model``, ``rnnkit_config``), so that :func:`from_module` builds the
rnnkit model again with the module's current weights: train in PyTorch (on a GPU, or
several with DDP), come back to rnnkit to sample, export or serve.

Letters: B batch, T steps, V vocabulary, C classes or outputs, H hidden units.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def classes(torch):
    """The module classes (defined on first use: importing rnnkit never imports torch)."""
    nn, F = torch.nn, torch.nn.functional

    class _Base(nn.Module):
        def _inputs(self, ids):
            if self.embed is not None:
                return self.embed(ids)
            return F.one_hot(ids, self.num_inputs).to(self.head.weight.dtype)

        def _run(self, x, lengths, state=None):
            """The recurrent stack over x (B, T, D), packed when lengths (B,) are given:
            returns out (B, T, F) (zeros past each length) and the final state."""
            if lengths is None:
                return self.rnn(x, state)
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            out, state = self.rnn(packed, state)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                      total_length=x.shape[1])
            return out, state

        def _lengths(self, x, lengths):
            if lengths is None and self.pad_id is not None and x.dtype == torch.long:
                lengths = (x != self.pad_id).sum(dim=1)
            return lengths

    class LanguageModel(_Base):
        """ids (B, T) -> logits (B, T, V), state: predicts token t+1 from tokens <= t."""

        def forward(self, ids, state=None):
            out, state = self.rnn(self._inputs(ids), state)
            return self.head(self.drop(out)), state

    class SequenceClassifier(_Base):
        """x: ids (B, T) or features (B, T, D); lengths (B,) or None (from the padding id)
        -> logits (B, C) (a regressor: outputs (B, C)) from the pooled recurrent output."""

        def forward(self, x, lengths=None):
            lengths = self._lengths(x, lengths)
            out, state = self._run(self._inputs(x) if x.dtype == torch.long else x, lengths)
            h = state[0] if isinstance(state, tuple) else state
            if self.pooling == "last":
                d = 2 if self.rnn.bidirectional else 1
                pooled = torch.cat([h[-d + k] for k in range(d)], dim=-1)
            else:
                T = out.shape[1]
                n = (torch.full((out.shape[0],), T, device=out.device) if lengths is None
                     else lengths.to(out.device))
                valid = (torch.arange(T, device=out.device)[None, :] < n[:, None])[..., None]
                if self.pooling == "mean":
                    pooled = (out * valid).sum(dim=1) / n[:, None].to(out.dtype)
                else:
                    pooled = out.masked_fill(~valid, float("-inf")).amax(dim=1)
            return self.head(self.drop(pooled))

    class SequenceTagger(_Base):
        """x: ids (B, T) or features (B, T, D); lengths (B,) or None -> logits (B, T, C)."""

        def forward(self, x, lengths=None):
            lengths = self._lengths(x, lengths)
            out, _ = self._run(self._inputs(x) if x.dtype == torch.long else x, lengths)
            return self.head(self.drop(out))

    return {"LanguageModel": LanguageModel, "SequenceClassifier": SequenceClassifier,
            "SequenceRegressor": SequenceClassifier, "SequenceTagger": SequenceTagger,
            "Seq2Seq": _seq2seq_class(torch)}


def _seq2seq_class(torch):
    """The module class of a Seq2Seq."""
    nn = torch.nn

    class Seq2Seq(nn.Module):
        """src (B, S) ids, tgt_in (B, T) ids ([bos] + target) -> logits (B, T, V_tgt): the
        encoder's final state (at each source's own length) starts the decoder."""

        def encode(self, src, lengths=None):
            if lengths is None:
                lengths = (src != self.pad_id).sum(dim=1)
            packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), lengths.cpu(),
                                                       batch_first=True,
                                                       enforce_sorted=False)
            return self.encoder(packed)[1]

        def forward(self, src, tgt_in, lengths=None):
            out, _ = self.decoder(self.tgt_embed(tgt_in), self.encode(src, lengths))
            return self.head(out)

    return Seq2Seq


def to_module(model, torch, layer_to_torch):
    """The ``torch.nn.Module`` of an rnnkit model (see the module text)."""
    name = type(model).__name__
    cls = classes(torch).get(name)
    if cls is None:
        raise TypeError(f"to_torch: no PyTorch form of {name}")
    _refuse(model, name)
    m = cls()
    m.rnnkit_model, m.rnnkit_config = name, dict(model.config())
    nn = torch.nn
    tensor = functools.partial(_tensor, torch)
    if name == "Seq2Seq":
        m.pad_id = model.pad_id
        for key in ("src_embed", "tgt_embed"):
            W = model.modules[key].params["W"]
            setattr(m, key, nn.Embedding(*W.shape, padding_idx=model.pad_id).to(tensor(W).dtype))
            getattr(m, key).weight.data.copy_(tensor(W))
        m.encoder = layer_to_torch(model.modules["encoder"])
        m.decoder = layer_to_torch(model.modules["decoder"])
    else:
        embed = model.modules.get("embed")
        m.embed = None
        if embed is not None:
            W = embed.params["W"]
            m.embed = nn.Embedding(*W.shape, padding_idx=embed.padding_idx).to(tensor(W).dtype)
            m.embed.weight.data.copy_(tensor(W))
        m.num_inputs = model.rnn.input_size
        m.pad_id = None if embed is None else embed.padding_idx  # as the model's mask
        m.pooling = getattr(model, "pooling", None)
        m.rnn = layer_to_torch(model.rnn)
        m.drop = nn.Dropout(model.drop.p)
    head = model.modules["head"]
    W = head.params["W"]
    m.head = nn.Linear(*W.shape, bias="b" in head.params).to(tensor(W).dtype)
    m.head.weight.data.copy_(tensor(W).T)
    if "b" in head.params:
        m.head.bias.data.copy_(tensor(head.params["b"]))
    return m


def from_module(module, layer_from_torch):
    """The rnnkit model of a module made by :func:`to_module`, with the module's weights."""
    from .models import build_model

    model = build_model(module.rnnkit_model, dict(module.rnnkit_config))
    arrays = {}
    if module.rnnkit_model == "Seq2Seq":
        layers = {"encoder": module.encoder, "decoder": module.decoder}
        embeds = {"src_embed": module.src_embed, "tgt_embed": module.tgt_embed}
    else:
        layers = {"rnn": module.rnn}
        embeds = {} if module.embed is None else {"embed": module.embed}
    for key, mod in layers.items():
        layer = layer_from_torch(mod)
        arrays.update({f"{key}.{k}": v for k, v in layer.params.items()})
    for key, mod in embeds.items():
        arrays[f"{key}.W"] = _array(mod.weight)
    arrays["head.W"] = _array(module.head.weight).T
    if module.head.bias is not None:
        arrays["head.b"] = _array(module.head.bias)
    model.load_arrays({f"param/{k}": np.ascontiguousarray(v, dtype=model.dtype)
                       for k, v in arrays.items()}, "the PyTorch module")
    return model


def _refuse(model, name: str) -> None:
    """What PyTorch's modules cannot express is refused, never dropped."""
    if getattr(model, "cond_size", None):
        raise ValueError(f"to_torch: this {name} is conditioned (cond_size="
                         f"{model.cond_size}): its initial state comes from a vector, which "
                         "the PyTorch form does not have")
    if getattr(model, "attention", None):
        raise ValueError(f"to_torch: this {name} has attention, which the PyTorch form does "
                         "not have")


def _tensor(torch, a: np.ndarray):
    return torch.tensor(np.ascontiguousarray(a))


def _array(t) -> np.ndarray:
    return t.detach().cpu().numpy()
