"""rnnkit's recurrent layers as ONNX ``RNN``/``LSTM``/``GRU`` operators, one per stacked layer.

Gate orders differ: rnnkit stacks LSTM gates ``i, f, g, o`` and GRU gates ``r, z, n`` (as
PyTorch); ONNX stacks LSTM gates ``i, o, f, c`` and GRU gates ``z, r, h``. The GRU's ``z``
is the same gate in both (the share of the old state that is kept). Per direction::

    W = W_x[:, gates in ONNX order].T         (G*H, D)
    R = W_h[:, gates in ONNX order].T         (G*H, H)
    B = [b in ONNX order, Rb]                 (2*G*H,)   Rb = 0, but for the GRU in the
                                                          reset-after form Rb_h = b_hn

The GRU's reset-after form (PyTorch, cuDNN) is ``linear_before_reset=1``: ``n = tanh(x @
W_n + b_n + r * (h @ R_n + b_hn))``; reset before (Cho et al., the seeds) is
``linear_before_reset=0``: ``n = tanh(x @ W_n + b_n + (r * h) @ R_n)``. A relu RNN is
``activations=["Relu"]``. Between layers, the ONNX output ``Y (T, dirs, B, H)`` is merged to
``(T, B, F)`` as rnnkit merges the directions: concat by a Transpose and a Reshape, sum /
mul / ave by ReduceSum / ReduceProd / ReduceMean over the direction axis.

ONNX Runtime runs these operators time-major only (``layout=0``): the tensors here are
``(T, B, ...)``; the graphs transpose at their edges.
"""

from __future__ import annotations

import numpy as np

OPS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
# the blocks of rnnkit's stacked weights in ONNX's gate order
ONNX_GATES = {"rnn": [0], "lstm": [0, 3, 1, 2], "gru": [1, 0, 2]}


def _reorder(a: np.ndarray, kind: str, H: int) -> np.ndarray:
    """a (..., G*H) with rnnkit's gate blocks -> the same blocks in ONNX's order."""
    return np.concatenate([a[..., k * H : (k + 1) * H] for k in ONNX_GATES[kind]], axis=-1)


def direction_weights(layer, prefix: str):
    """ONNX W (G*H, D), R (G*H, H) and B (2*G*H,) (None without biases) of one direction
    of an rnnkit layer (prefix ``l{k}.`` or ``l{k}_reverse.``)."""
    p, kind, H = layer.params, layer.kind, layer.hidden_size
    W = _reorder(p[prefix + "W_x"], kind, H).T
    R = _reorder(p[prefix + "W_h"], kind, H).T
    if not layer.bias:
        return W, R, None
    Rb = np.zeros_like(p[prefix + "b"])
    if kind == "gru" and layer.reset_after:
        Rb[2 * H :] = p[prefix + "b_hn"]  # h is the last block in both orders
    return W, R, np.concatenate([_reorder(p[prefix + "b"], kind, H), Rb])


def _attributes(layer) -> dict:
    attrs = {"hidden_size": layer.hidden_size,
             "direction": "bidirectional" if layer.bidirectional else "forward"}
    if layer.kind == "gru":
        attrs["linear_before_reset"] = int(layer.reset_after)
    if layer.kind == "rnn" and layer.nonlinearity == "relu":
        attrs["activations"] = ["Relu"] * layer.num_directions
    return attrs


def merge(g, t: str, axis: int, how: str, dirs: int, name: str) -> str:
    """Merge the direction axis ``axis`` of t (size dirs) as rnnkit merges directions:
    Y (T, dirs, B, H) with axis 1 -> (T, B, F); h (dirs, B, H) with axis 0 -> (B, F)."""
    if dirs == 1:
        return g.op("Squeeze", [t, g.ints([axis], "axes")], name=name)
    rank = 4 if axis == 1 else 3
    if how == "concat":  # [forward, reverse] side by side: dirs next to H, then fused
        perm = list(range(rank))
        perm.insert(rank - 2, perm.pop(axis))
        moved = g.op("Transpose", [t], name=f"{name}_dirs_last", perm=perm)
        return g.op("Reshape", [moved, g.ints([0] * (rank - 2) + [-1], "shape")], name=name)
    op = {"sum": "ReduceSum", "mul": "ReduceProd", "ave": "ReduceMean"}[how]
    return g.reduce(op, t, [axis], name=name)


def _own_initial_state(g, layer, x: str):
    """The layer's initial state when none is fed: None (zeros, the operators' default) or
    the learned h0 (and c0) broadcast over the batch of x (T, B, D)."""
    if layer.initial_state != "learned":
        return None, None
    batch = g.op("Shape", [x], name="batch_size", start=1, end=2)
    shape = g.op("Concat", [g.ints([1]), batch, g.ints([1])], name="state_shape", axis=0)
    h0 = g.op("Expand", [g.const(layer.params["h0"][:, None, :], "learned_h0"), shape],
              name="h0_learned")
    if layer.kind != "lstm":
        return h0, None
    c0 = g.op("Expand", [g.const(layer.params["c0"][:, None, :], "learned_c0"), shape],
              name="c0_learned")
    return h0, c0


def _rows(g, t: str | None, k: int, dirs: int, layers: int, name: str) -> str:
    """Rows k*dirs .. (k+1)*dirs of a state (L*dirs, B, H): layer k's part ("" for none)."""
    if t is None:
        return ""
    if layers == 1:
        return t
    return g.op("Slice", [t, g.ints([k * dirs]), g.ints([(k + 1) * dirs]), g.ints([0])],
                name=name)


def recurrent(g, layer, x: str, lengths: str | None = None, state=None, name: str = "rnn"):
    """Emit an rnnkit RNN/LSTM/GRU layer (eval mode) into graph g.

    x: (T, B, D) time-major; lengths: int32 (B,) valid steps of each sequence, or None;
    state: names (h0, c0) of (L*dirs, B, H) tensors (c0 None but for the LSTM), or None for
    the layer's own initial state (zeros or learned). Returns (out, h_n, c_n): out (T, B,
    F) merged like the layer's output (or (B, F), the merged final states of the top layer,
    if it does not return sequences), h_n and c_n (L*dirs, B, H) (c_n None but for LSTM).
    """
    L, dirs, lstm = layer.num_layers, layer.num_directions, layer.kind == "lstm"
    h0, c0 = state if state is not None else _own_initial_state(g, layer, x)
    inp, hs, cs = x, [], []
    for k in range(L):
        prefixes = [f"l{k}.", f"l{k}_reverse."][:dirs]
        ws = [direction_weights(layer, p) for p in prefixes]
        ins = [inp, g.const(np.stack([w[0] for w in ws]), f"{name}_l{k}_W"),
               g.const(np.stack([w[1] for w in ws]), f"{name}_l{k}_R"),
               "" if ws[0][2] is None else g.const(np.stack([w[2] for w in ws]),
                                                   f"{name}_l{k}_B"),
               lengths or "", _rows(g, h0, k, dirs, L, f"{name}_l{k}_h0")]
        if lstm:
            ins.append(_rows(g, c0, k, dirs, L, f"{name}_l{k}_c0"))
        while ins[-1] == "":
            ins.pop()
        outs = g.op(OPS[layer.kind], ins, 3 if lstm else 2, name=f"{name}_l{k}",
                    **_attributes(layer))
        inp = merge(g, outs[0], 1, layer.merge, dirs, f"{name}_l{k}_out")
        hs.append(outs[1])
        if lstm:
            cs.append(outs[2])
    h_n = g.op("Concat", hs, name=f"{name}_h_n", axis=0) if L > 1 else hs[0]
    c_n = None
    if lstm:
        c_n = g.op("Concat", cs, name=f"{name}_c_n", axis=0) if L > 1 else cs[0]
    top = hs[-1]
    if lengths and h0 is not None:
        h_n, c_n = _keep_state_of_empty(g, lengths, (h0, c0), (h_n, c_n), name)
        n = L * dirs
        top = g.op("Slice", [h_n, g.ints([n - dirs]), g.ints([n]), g.ints([0])],
                   name=f"{name}_top_h")
    out = inp if layer.return_sequences else merge(g, top, 0, layer.merge, dirs,
                                                   f"{name}_last")
    return out, h_n, c_n


def _keep_state_of_empty(g, lengths: str, initial, final, name: str):
    """The final state of a sequence of length 0 is its initial state (rnnkit carries the
    state over padded steps; ONNX Runtime returns zeros there): h_n = where(lengths == 0,
    h0, h_n), and the same for c_n. initial, final: pairs of (L*dirs, B, H) (c None but
    for the LSTM)."""
    zero = g.const(np.array(0, dtype=np.int32), "zero_steps")
    empty = g.op("Equal", [lengths, zero], name=f"{name}_empty")  # (B,)
    empty = g.op("Unsqueeze", [empty, g.ints([0, 2], "axes")], name=f"{name}_empty_3d")
    return tuple(None if f is None else g.op("Where", [empty, i, f], name=f"{name}_{k}_n")
                 for k, i, f in zip("hc", initial, final, strict=True))
