"""Attention between an encoder and a decoder: additive (Bahdanau et al. 2015), general and
dot (Luong et al. 2015), with source padding masks, and a plot of the weights.

Letters: B batch, T_x source steps, T_y queries (target steps), H_k key size (features per
step of the encoder's output: 2H' for a bidirectional encoder of H' units per direction
that concatenates), H_q query size (the decoder's hidden size), A the additive score's
size, H_o the output size.

For the decoder's state ``q_t`` at target step t and the encoder's outputs ``h_s`` (the
keys, which are also the values), s = 1..T_x, with ``m_s`` False at padded source steps::

    e_ts = score(q_t, h_s)
        additive:  v . tanh(q_t W_q + h_s W_k + b)    W_q (H_q, A), W_k (H_k, A), b, v (A,)
        general:   q_t . (h_s W_a)                    W_a (H_k, H_q)
        dot:       q_t . h_s                          (H_q = H_k)
    a_ts = m_s exp(e_ts) / sum_s' m_s' exp(e_ts')     the weights: 0 on padded steps
    c_t  = sum_s a_ts h_s                             the context (B, T_y, H_k)
    o_t  = tanh([c_t; q_t] W_c + b_c)                 the attentional state (Luong et al.
                                                      2015, eq. 5), W_c (H_k + H_q, H_o)

The keys' part of the score, ``P = h W_k + b`` (additive), ``h W_a`` (general) or ``h``
(dot), is the same for every query: :meth:`Attention.memory` forms it once per source, and
a decoder that runs one step at a time calls :meth:`Attention.attend` at each step,
:meth:`Attention.attend_backward` in reverse, and :meth:`Attention.memory_backward` once
on the summed :class:`MemoryGrad`. :meth:`Attention.forward` and :meth:`Attention.backward`
do both parts, with the contract of the other layers::

    out, weights, cache = attention.forward(query, keys, mask)
    dquery, dkeys, grads = attention.backward(dout, cache)     # grads keyed like params
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import as_dtype, as_rng, check_array, check_choice, check_positive_int, shape_str
from .layers import Layer

KINDS = ("additive", "general", "dot")


@dataclass
class Memory:
    """The encoder's side of attention, formed once per batch of sources.

    keys (B, T_x, H_k) the encoder's outputs (keys and values); proj (B, T_x, A) for
    additive (``h W_k + b``), (B, T_x, H_q) for general (``h W_a``), the keys themselves for
    dot; mask (B, T_x) bool (True at valid steps) or None (every step valid).
    """

    keys: np.ndarray
    proj: np.ndarray
    mask: np.ndarray | None

    @property
    def batch(self) -> int:
        """B, the number of sources."""
        return self.keys.shape[0]

    def rows(self, idx, repeat: int | None = None) -> Memory:
        """The memory of sources ``idx`` (an index array or slice); with ``repeat``, the
        single source ``idx`` (an int) as a read-only view repeated ``repeat`` times (the
        hypotheses of a beam)."""
        if repeat is None:
            mask = None if self.mask is None else self.mask[idx]
            return Memory(self.keys[idx], self.proj[idx], mask)

        def spread(a):
            return np.broadcast_to(a[idx], (repeat, *a.shape[1:]))

        return Memory(spread(self.keys), spread(self.proj),
                      None if self.mask is None else spread(self.mask))


@dataclass
class MemoryGrad:
    """Gradients with respect to a :class:`Memory`: dkeys (B, T_x, H_k) through the values,
    dproj (B, T_x, .) through the scores. Sums over the steps of a decoder with ``add``."""

    dkeys: np.ndarray
    dproj: np.ndarray

    def add(self, other: MemoryGrad) -> MemoryGrad:
        """Accumulate ``other`` into this one in place; returns self."""
        self.dkeys += other.dkeys
        self.dproj += other.dproj
        return self


@dataclass
class AttendCache:
    """What :meth:`Attention.attend_backward` needs: the query q (B, T_y, H_q), the additive
    score's tanh u (B, T_y, T_x, A) (None otherwise), the weights a (B, T_y, T_x), the
    concatenation [c; q] (B, T_y, H_k + H_q), the output o (B, T_y, H_o), the memory."""

    q: np.ndarray
    u: np.ndarray | None
    a: np.ndarray
    cq: np.ndarray
    o: np.ndarray
    memory: Memory


def masked_softmax(e: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Softmax over the last axis (the source steps) with padded steps removed.

    e (B, T_y, T_x) scores; mask (B, T_x) bool or None. Returns a (B, T_y, T_x):
    ``a_ts = m_s exp(e_ts) / sum_s' m_s' exp(e_ts')``, exactly 0 where ``m_s`` is False.
    Every row of the mask needs a valid step (:meth:`Attention.memory` checks it)."""
    if mask is not None:
        e = np.where(mask[:, None, :], e, -np.inf)  # exp(-inf) = 0: no weight on padding
    z = e - e.max(axis=-1, keepdims=True)
    a = np.exp(z)
    a /= a.sum(axis=-1, keepdims=True)
    return a


class Attention(Layer):
    """Global attention over the encoder's outputs, one score of :data:`KINDS`.

    Args:
        query_size: H_q, the decoder's hidden size.
        key_size: H_k, features per step of the encoder's output.
        kind: ``"additive"`` (Bahdanau et al. 2015), ``"general"`` or ``"dot"`` (Luong et
            al. 2015; dot needs query_size == key_size).
        attention_size: A, the additive score's hidden size (default query_size).
        output_size: H_o, the size of ``o_t`` (default query_size).
    Params: additive ``W_q (H_q, A)``, ``W_k (H_k, A)``, ``b (A,)``, ``v (A,)``; general
    ``W_a (H_k, H_q)``; all ``W_c (H_k + H_q, H_o)``, ``b_c (H_o,)``. Weights ~ U(-1/sqrt(n),
    1/sqrt(n)) with n their first dimension (v: A), as PyTorch's Linear; biases zero.
    """

    def __init__(self, query_size, key_size, kind="additive", attention_size=None,
                 output_size=None, dtype=np.float32, rng=None):
        super().__init__()
        self.kind = check_choice(kind, "kind", KINDS)
        self.query_size = check_positive_int(query_size, "query_size")
        self.key_size = check_positive_int(key_size, "key_size")
        if kind == "dot" and self.query_size != self.key_size:
            raise ValueError(f"a dot score needs query_size == key_size, got query_size "
                             f"{query_size} and key_size {key_size} (use 'general' or "
                             "'additive' for different sizes)")
        self.attention_size = check_positive_int(
            query_size if attention_size is None else attention_size, "attention_size")
        self.output_size = check_positive_int(
            query_size if output_size is None else output_size, "output_size")
        self.dtype = as_dtype(dtype)
        rng = as_rng(rng)

        def uniform(shape):
            k = 1.0 / np.sqrt(shape[0])
            return rng.uniform(-k, k, shape).astype(self.dtype)

        Hq, Hk, A = self.query_size, self.key_size, self.attention_size
        if kind == "additive":
            self.params.update(W_q=uniform((Hq, A)), W_k=uniform((Hk, A)),
                               b=np.zeros(A, self.dtype), v=uniform((A,)))
        elif kind == "general":
            self.params["W_a"] = uniform((Hk, Hq))
        self.params["W_c"] = uniform((Hk + Hq, self.output_size))
        self.params["b_c"] = np.zeros(self.output_size, self.dtype)

    def config(self) -> dict:
        """The constructor arguments (JSON), enough to rebuild the layer."""
        return {"query_size": self.query_size, "key_size": self.key_size, "kind": self.kind,
                "attention_size": self.attention_size, "output_size": self.output_size,
                "dtype": self.dtype.name}

    # ------------------------------------------------------------------ the keys' side
    def memory(self, keys, mask=None) -> Memory:
        """keys (B, T_x, H_k) (the encoder's outputs) and mask (B, T_x) bool or None ->
        :class:`Memory` with ``proj``: ``h W_k + b`` (additive), ``h W_a`` (general), h
        (dot). Every source needs at least one valid step."""
        keys = check_array(keys, "keys", ("B", "T_x", self.key_size), self.dtype)
        B, T = keys.shape[:2]
        if B == 0 or T == 0:
            raise ValueError(f"keys must hold at least one source and one step, got shape "
                             f"{shape_str(keys.shape)}")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (B, T) or mask.dtype != bool:
                raise ValueError(f"mask must be a bool array of shape (B, T_x) = ({B}, {T}), "
                                 f"got {mask.dtype} {shape_str(mask.shape)}")
            empty = np.flatnonzero(~mask.any(axis=1))
            if empty.size:
                raise ValueError(f"mask row {empty[0]} has no valid step: every source needs "
                                 "at least one step to attend to")
            if mask.all():
                mask = None
        if self.kind == "additive":
            proj = keys @ self.params["W_k"] + self.params["b"]
        elif self.kind == "general":
            proj = keys @ self.params["W_a"]
        else:
            proj = keys
        return Memory(keys, proj, mask)

    def memory_backward(self, dmem: MemoryGrad, memory: Memory):
        """The gradient of the keys (B, T_x, H_k) and of the keys' side parameters
        (additive ``W_k``, ``b``; general ``W_a``; dot none) from a :class:`MemoryGrad`:
        ``dh = dkeys + dP W_k^T`` (additive), ``dkeys + dP W_a^T`` (general), ``dkeys + dP``
        (dot); ``dW_k = sum_b h^T dP``, ``db = sum dP``, ``dW_a = sum_b h^T dP``."""
        h, dP = memory.keys, dmem.dproj
        if self.kind == "dot":
            return dmem.dkeys + dP, {}
        W = "W_k" if self.kind == "additive" else "W_a"
        dW = h.reshape(-1, self.key_size).T @ dP.reshape(-1, dP.shape[-1])
        dh = dmem.dkeys + dP @ self.params[W].T
        grads = {W: dW}
        if self.kind == "additive":
            grads["b"] = dP.sum(axis=(0, 1))
        return dh, grads

    # ------------------------------------------------------------------ the queries' side
    def attend(self, query, memory: Memory):
        """query (B, T_y, H_q) -> out o (B, T_y, H_o), weights a (B, T_y, T_x), cache.

        The memory has the query's batch B (or batch 1, shared by every query: decoding)."""
        q = check_array(query, "query", ("B", "T_y", self.query_size), self.dtype)
        if memory.batch not in (q.shape[0], 1):
            raise ValueError(f"query has {q.shape[0]} sequences, the memory {memory.batch}")
        h, P = memory.keys, memory.proj
        u = None
        if self.kind == "additive":
            # u_ts = tanh(q_t W_q + P_s) (B, T_y, T_x, A); e_ts = u_ts . v
            u = np.tanh((q @ self.params["W_q"])[:, :, None, :] + P[:, None, :, :])
            e = u @ self.params["v"]
        else:
            e = q @ np.swapaxes(P, 1, 2)  # e_ts = q_t . P_s
        a = masked_softmax(e, memory.mask)
        c = a @ h  # c_t = sum_s a_ts h_s
        cq = np.concatenate([c, q], axis=-1)
        o = np.tanh(cq @ self.params["W_c"] + self.params["b_c"])
        return o, a, AttendCache(q, u, a, cq, o, memory)

    def attend_backward(self, dout, cache: AttendCache):
        """dout (B, T_y, H_o) -> dquery (B, T_y, H_q), :class:`MemoryGrad`, grads of the
        queries' side (additive ``W_q``, ``v``; all ``W_c``, ``b_c``)::

            dz = do (1 - o^2);  d[c; q] = dz W_c^T;  dW_c = [c; q]^T dz
            da_ts = dc_t . h_s;  dh_s = sum_t a_ts dc_t
            de_ts = a_ts (da_ts - sum_s' a_ts' da_ts')   (0 on padded steps)
            additive: dz_ts = de_ts v (1 - u_ts^2);  dq_t = (sum_s dz_ts) W_q^T;
                      dP_s = sum_t dz_ts;  dv = sum_ts de_ts u_ts
            general, dot: dq_t = sum_s de_ts P_s;  dP_s = sum_t de_ts q_t
        """
        q, a, o, mem = cache.q, cache.a, cache.o, cache.memory
        B, Ty = q.shape[:2]
        Hk, Hq = self.key_size, self.query_size
        dout = check_array(dout, "dout", (B, Ty, self.output_size), self.dtype)
        dz = dout * (1 - o * o)
        grads = {"W_c": cache.cq.reshape(-1, Hk + Hq).T @ dz.reshape(-1, self.output_size),
                 "b_c": dz.sum(axis=(0, 1))}
        dcq = dz @ self.params["W_c"].T
        dc, dq = dcq[..., :Hk], np.ascontiguousarray(dcq[..., Hk:])
        h, P = np.broadcast_to(mem.keys, (B, *mem.keys.shape[1:])), mem.proj
        da = dc @ np.swapaxes(h, 1, 2)  # (B, T_y, T_x)
        dkeys = np.swapaxes(a, 1, 2) @ dc  # (B, T_x, H_k)
        de = a * (da - (a * da).sum(axis=-1, keepdims=True))
        if self.kind == "additive":
            u = cache.u
            grads["v"] = np.tensordot(de, u, axes=([0, 1, 2], [0, 1, 2]))
            dzu = 1 - u * u  # (B, T_y, T_x, A), reused in place
            dzu *= de[..., None]
            dzu *= self.params["v"]
            dQ = dzu.sum(axis=2)  # (B, T_y, A)
            dq += dQ @ self.params["W_q"].T
            grads["W_q"] = q.reshape(-1, Hq).T @ dQ.reshape(-1, self.attention_size)
            dproj = dzu.sum(axis=1)  # (B, T_x, A)
        else:
            dq += de @ np.broadcast_to(P, (B, *P.shape[1:]))
            dproj = np.swapaxes(de, 1, 2) @ q  # (B, T_x, H_q)
        return dq, MemoryGrad(dkeys, dproj), grads

    # ------------------------------------------------------------------ both sides
    def forward(self, query, keys, mask=None):
        """query (B, T_y, H_q), keys (B, T_x, H_k), mask (B, T_x) bool or None -> out
        (B, T_y, H_o), weights (B, T_y, T_x), cache (the memory and the attend cache)."""
        memory = self.memory(keys, mask)
        out, weights, cache = self.attend(query, memory)
        return out, weights, cache

    def backward(self, dout, cache: AttendCache):
        """dout (B, T_y, H_o) -> dquery (B, T_y, H_q), dkeys (B, T_x, H_k), grads (keyed
        like ``params``)."""
        if not isinstance(cache, AttendCache):
            raise TypeError(f"cache must be the AttendCache returned by forward, got "
                            f"{type(cache).__name__}")
        dq, dmem, grads = self.attend_backward(dout, cache)
        dkeys, g = self.memory_backward(dmem, cache.memory)
        grads.update(g)
        return dq, dkeys, {k: grads[k] for k in self.params}

    __call__ = forward


def plot_attention(weights, source, output, path=None, ax=None, title=None):
    """Draw an attention map: source characters (or tokens) along x, output ones along y.

    weights (T_y, T_x) as returned by ``Seq2Seq.decode(..., return_attention=True)``;
    source: T_x labels (a string gives one per character); output: T_y labels. Writes a PNG
    to ``path`` when given; draws on ``ax`` (a matplotlib Axes) when given. Needs matplotlib
    (``pip install 'rnnkit[plot]'``). Returns the matplotlib Figure.
    """
    try:
        import matplotlib

        if ax is None and path is not None:
            matplotlib.use("Agg")  # no display needed to write a file
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_attention needs matplotlib: pip install 'rnnkit[plot]'"
                          ) from None
    w = np.asarray(weights, dtype=np.float64)
    source, output = list(source), list(output)
    if w.ndim != 2 or w.shape != (len(output), len(source)):
        raise ValueError(f"weights must have shape (T_y, T_x) = ({len(output)}, {len(source)}) "
                         f"to match output and source, got {shape_str(w.shape)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.0, 0.22 * len(source) + 1.5),
                                        max(2.5, 0.3 * len(output) + 1.2)))
    else:
        fig = ax.figure
    im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=max(float(w.max(initial=0)), 1e-12),
                   aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(source)), [repr(s)[1:-1] or " " for s in source], fontsize=8)
    ax.set_yticks(range(len(output)), output, fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.02, label="attention weight")
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
