"""The graphs of each exportable object: a recurrent layer, the language model's step,
sequence and initial-state graphs, the classifier, the tagger, and the encoder and the
decoder step of the encoder-decoder.

Every function here fills a :class:`~rnnkit.onnx._graph.Graph` and returns a one-line
description of its inputs and outputs. Public tensors are batch-first, as in rnnkit's API:
ids ``(B, T)`` int64, features ``(B, T, D)``, states ``(L*dirs, B, H)``; inside, the
recurrent operators run time-major (see :mod:`rnnkit.onnx._recurrent`).
"""

from __future__ import annotations

import numpy as np

from ._recurrent import recurrent


# --------------------------------------------------------------------------- pieces
def _state_inputs(g, layer):
    """Inputs h0 (and c0 for the LSTM), (L*dirs, B, H); returns (h0, c0 or None)."""
    shape = [layer.num_layers * layer.num_directions, "B", layer.hidden_size]
    h0 = g.input("h0", shape)
    return h0, (g.input("c0", shape) if layer.kind == "lstm" else None)


def _state_outputs(g, layer, h_n: str, c_n: str | None) -> None:
    """Outputs h_n (and c_n), (L*dirs, B, H): the state to feed back as h0 (c0)."""
    shape = [layer.num_layers * layer.num_directions, "B", layer.hidden_size]
    g.output("h_n", h_n, shape)
    if c_n is not None:
        g.output("c_n", c_n, shape)


def _lengths_input(g) -> str:
    """Input lengths (B,) int64, the valid steps of each sequence (a prefix of each);
    returns it as int32, the type of the operators' ``sequence_lens``."""
    return g.op("Cast", [g.input("lengths", ["B"], "int64")], name="lengths_int32",
                to=g.onnx.TensorProto.INT32)


def _lengths_from_pad(g, ids: str, pad_id: int) -> str:
    """The valid steps of ids (B, T): the number of ids that are not pad_id, int32 (B,)
    (the same as rnnkit's mask ``ids != pad_id`` when the padding is at the end)."""
    is_pad = g.op("Equal", [ids, g.const(np.array(pad_id, dtype=np.int64), "pad_id")],
                  name="is_pad")
    valid = g.op("Cast", [g.op("Not", [is_pad], name="is_token")], name="valid",
                 to=g.onnx.TensorProto.INT32)
    return g.reduce("ReduceSum", valid, [1], name="lengths")


def _tokens(g, ids: str, embed, vocab_size: int, name: str) -> str:
    """ids (...) int64 -> vectors (..., E): the embedding's rows, or one-hot (..., V)
    when embed is None (a row look-up in rnnkit; the operator's product here)."""
    if embed is not None:
        return g.op("Gather", [g.const(embed.params["W"], f"{name}_W"), ids], name=name,
                    axis=0)
    return g.op("OneHot", [ids, g.ints([vocab_size], "depth"),
                           g.const(np.array([0.0, 1.0]), "off_on")], name=name, axis=-1)


def _dense(g, dense, x: str, name: str) -> str:
    """x (..., D) -> x @ W + b (..., U)."""
    y = g.op("MatMul", [x, g.const(dense.params["W"], f"{name}_W")], name=f"{name}_matmul")
    if "b" in dense.params:
        y = g.op("Add", [y, g.const(dense.params["b"], f"{name}_b")], name=name)
    return y


def _time_major(g, x: str, rank: int) -> str:
    """Swap the first two axes of a rank-2 or rank-3 tensor: (B, T, ...) <-> (T, B, ...)."""
    return g.op("Transpose", [x], name="swap_batch_time", perm=[1, 0, 2][:rank])


# --------------------------------------------------------------------------- layers
def layer_graph(g, layer, lengths: bool, state: bool) -> str:
    """An RNN/LSTM/GRU layer: x (B, T, D) [, lengths (B,)] [, h0, c0] -> y, h_n [, c_n]."""
    x = _time_major(g, g.input("x", ["B", "T", layer.input_size]), 3)
    lens = _lengths_input(g) if lengths else None
    init = _state_inputs(g, layer) if state else None
    out, h_n, c_n = recurrent(g, layer, x, lens, init)
    if layer.return_sequences:
        g.output("y", _time_major(g, out, 3), ["B", "T", layer.output_size])
    else:
        g.output("y", out, ["B", layer.output_size])
    _state_outputs(g, layer, h_n, c_n)
    return "y: the layer's output; h_n (c_n): its final state"


# --------------------------------------------------------------------------- language model
def lm_step_graph(g, model) -> str:
    """One generation step: ids (B,), h0 [, c0] -> log_probs (B, V), h_n [, c_n]."""
    return _step(g, model.modules.get("embed"), model.vocab_size, model.rnn, model.head)


def _step(g, embed, vocab_size: int, rnn, head) -> str:
    ids = g.input("ids", ["B"], "int64")
    x = _tokens(g, ids, embed, vocab_size, "embed")
    x = g.op("Unsqueeze", [x, g.ints([0], "axes")], name="one_step")  # (1, B, E)
    out, h_n, c_n = recurrent(g, rnn, x, None, _state_inputs(g, rnn))
    h = g.op("Squeeze", [out, g.ints([0], "axes")], name="top_h")  # (B, H)
    logp = g.op("LogSoftmax", [_dense(g, head, h, "head")], name="log_softmax", axis=-1)
    g.output("log_probs", logp, ["B", head.out_features])
    _state_outputs(g, rnn, h_n, c_n)
    return ("log_probs: log-probabilities of the next token; feed h_n (c_n) back as h0 (c0) "
            "with the chosen token as ids")


def lm_sequence_graph(g, model, lengths: bool) -> str:
    """The whole sequence: ids (B, T), h0 [, c0] [, lengths] -> log_probs (B, T, V),
    h_n [, c_n]."""
    ids = _time_major(g, g.input("ids", ["B", "T"], "int64"), 2)
    x = _tokens(g, ids, model.modules.get("embed"), model.vocab_size, "embed")
    init = _state_inputs(g, model.rnn)
    lens = _lengths_input(g) if lengths else None
    out, h_n, c_n = recurrent(g, model.rnn, x, lens, init)
    logits = _dense(g, model.head, _time_major(g, out, 3), "head")
    logp = g.op("LogSoftmax", [logits], name="log_softmax", axis=-1)
    g.output("log_probs", logp, ["B", "T", model.vocab_size])
    _state_outputs(g, model.rnn, h_n, c_n)
    return ("log_probs[:, t]: log-probabilities of the token after ids[:, t]; h_n (c_n): "
            "the state after the last (valid) step")


def lm_initial_state_graph(g, model) -> str:
    """The state before the first token of a conditioned model: cond (B, C) -> h0 [, c0],
    h0 = tanh(cond @ W + b) per layer, c0 zeros."""
    rnn = model.rnn
    L, H = rnn.num_layers, rnn.hidden_size
    cond = g.input("cond", ["B", model.cond_size])
    h = g.op("Tanh", [_dense(g, model.modules["cond"], cond, "cond")], name="cond_tanh")
    h = g.op("Reshape", [h, g.ints([0, L, H], "shape")], name="per_layer")  # (B, L, H)
    h0 = g.op("Transpose", [h], name="h0_state", perm=[1, 0, 2])
    g.output("h0", h0, [L, "B", H])
    if rnn.kind == "lstm":
        zeros = g.op("ConstantOfShape", [g.op("Shape", [h0], name="state_shape")],
                     name="c0_zeros",
                     value=g.onnx.numpy_helper.from_array(np.zeros(1, dtype=g.dtype)))
        g.output("c0", zeros, [L, "B", H])
    return "h0 (c0): the initial state of the step and sequence graphs"


# --------------------------------------------------------------------------- classifier, tagger
def _stack_input(g, model, lengths: bool):
    """The input of a classifier or tagger: ids (B, T) int64 through the embedding, or
    features x (B, T, D). Returns the time-major input of the rnn and the lengths (int32
    (B,) or None): an input if asked for, else from the padding id of token inputs."""
    embed = model.modules.get("embed")
    if embed is None:
        x = _time_major(g, g.input("x", ["B", "T", model.rnn.input_size]), 3)
        return x, (_lengths_input(g) if lengths else None)
    ids = g.input("ids", ["B", "T"], "int64")
    lens = None
    if lengths:
        lens = _lengths_input(g)
    elif embed.padding_idx is not None:
        lens = _lengths_from_pad(g, ids, embed.padding_idx)
    return _tokens(g, _time_major(g, ids, 2), embed, embed.num_embeddings, "embed"), lens


def _pool(g, model, out: str, lens: str | None) -> str:
    """Mean or max over the valid steps of out (T, B, F) -> (B, F)."""
    if lens is None:
        return g.reduce("ReduceMean" if model.pooling == "mean" else "ReduceMax", out, [0],
                        name="pool")
    if model.pooling == "mean":  # padded steps are zero: sum / number of valid steps
        total = g.reduce("ReduceSum", out, [0], name="pool_sum")
        n = g.op("Cast", [g.op("Unsqueeze", [lens, g.ints([1], "axes")], name="n")],
                 name="n_float", to=g.elem_type("float"))
        return g.op("Div", [total, n], name="pool")
    steps = g.op("Shape", [out], name="steps", start=0, end=1)
    t = g.op("Range", [g.const(np.array(0, dtype=np.int64), "zero"),
                       g.op("Squeeze", [steps, g.ints([0], "axes")], name="T"),
                       g.const(np.array(1, dtype=np.int64), "one")], name="t")
    lens64 = g.op("Cast", [lens], name="lengths_int64", to=g.onnx.TensorProto.INT64)
    valid = g.op("Less", [g.op("Unsqueeze", [t, g.ints([1], "axes")], name="t_col"), lens64],
                 name="valid_steps")  # (T, B)
    valid = g.op("Unsqueeze", [valid, g.ints([2], "axes")], name="valid_3d")
    masked = g.op("Where", [valid, out, g.const(np.array(-np.inf), "minus_inf")],
                  name="masked")
    return g.reduce("ReduceMax", masked, [0], name="pool")


def classifier_graph(g, model, lengths: bool) -> str:
    """Many-to-one: ids (B, T) or x (B, T, D) [, lengths] -> logits (B, C) (a
    SequenceRegressor: y (B, K))."""
    x, lens = _stack_input(g, model, lengths)
    out, _, _ = recurrent(g, model.rnn, x, lens)
    if model.pooling != "last":
        out = _pool(g, model, out, lens)
    name = "y" if model.loss_name == "mse" else "logits"
    g.output(name, _dense(g, model.head, out, "head"), ["B", model.num_classes])
    return f"{name}: one per sequence"


def tagger_graph(g, model, lengths: bool) -> str:
    """One tag per step: ids (B, T) or x (B, T, D) [, lengths] -> logits (B, T, C)."""
    x, lens = _stack_input(g, model, lengths)
    out, _, _ = recurrent(g, model.rnn, x, lens)
    logits = _dense(g, model.head, _time_major(g, out, 3), "head")
    g.output("logits", logits, ["B", "T", model.num_tags])
    return "logits[:, t]: the tag scores of step t (padded steps: the head's bias)"


# --------------------------------------------------------------------------- seq2seq
def encoder_graph(g, model, lengths: bool) -> str:
    """The encoder: src (B, S) [, lengths] -> h_n [, c_n], the decoder's initial state."""
    embed, rnn = model.modules["src_embed"], model.modules["encoder"]
    src = g.input("src", ["B", "S"], "int64")
    lens = _lengths_input(g) if lengths else _lengths_from_pad(g, src, model.pad_id)
    x = _tokens(g, _time_major(g, src, 2), embed, model.src_vocab_size, "src_embed")
    _, h_n, c_n = recurrent(g, rnn, x, lens, name="encoder")
    _state_outputs(g, rnn, h_n, c_n)
    return (f"h_n (c_n): feed them as h0 (c0) to the decoder step graph with ids = bos "
            f"({model.bos_id}); stop at eos ({model.eos_id})")


def decoder_step_graph(g, model) -> str:
    """One decoder step: ids (B,), h0 [, c0] -> log_probs (B, V_tgt), h_n [, c_n]."""
    return _step(g, model.modules["tgt_embed"], model.tgt_vocab_size,
                 model.modules["decoder"], model.modules["head"])
