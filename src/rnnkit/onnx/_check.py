"""Run exported graphs in ONNX Runtime against rnnkit's own outputs on random inputs: the
check ``rnnkit export`` prints, and what a user can call after :func:`rnnkit.onnx.export`.
"""

from __future__ import annotations

import numpy as np

from ..losses import log_softmax

B, T, STEPS = 3, 9, 20  # batch, steps of the sequence graphs, carried steps of step graphs


class _Session:
    """An ONNX Runtime session whose run takes and gives dicts by name."""

    def __init__(self, ort, path):
        self.s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.s.get_inputs()]
        self.outputs = [o.name for o in self.s.get_outputs()]

    def __call__(self, **feeds) -> dict:
        feeds = {k: v for k, v in feeds.items() if k in self.inputs}
        return dict(zip(self.outputs, self.s.run(None, feeds), strict=True))


def _diff(got: dict, want: dict) -> float:
    """Largest absolute difference over the outputs both hold."""
    return max(float(np.abs(got[k] - np.asarray(w, dtype=np.float64)).max())
               for k, w in want.items() if w is not None)


def _state(state) -> dict:
    return {"h0": state[0], "c0": state[1]} if isinstance(state, tuple) else {"h0": state}


def _final(state) -> dict:
    return {"h_n": state[0], "c_n": state[1]} if isinstance(state, tuple) else {"h_n": state}


def _fed_back(res: dict) -> dict:
    return {k.replace("_n", "0"): v for k, v in res.items() if k in ("h_n", "c_n")}


def _lengths(rng, n: int = T) -> np.ndarray:
    return np.concatenate([[n], rng.integers(1, n + 1, size=B - 1)])


def _ids(rng, vocab: int, lengths, pad_id=None) -> np.ndarray:
    """(B, T) ids; with a padding id, padding after each sequence's length."""
    if pad_id is None:
        return rng.integers(0, vocab, size=(B, T))
    ids = rng.choice([i for i in range(vocab) if i != pad_id], size=(B, T))
    ids[np.arange(T)[None, :] >= lengths[:, None]] = pad_id
    return ids


def _mask(s: _Session, lengths):
    return (np.arange(T)[None, :] < lengths[:, None]) if "lengths" in s.inputs else None


# --------------------------------------------------------------------------- per graph
def _layer(s, layer, rng):
    x = rng.normal(size=(B, T, layer.input_size)).astype(np.float32)
    lengths = _lengths(rng)
    state = None
    if "h0" in s.inputs:
        shape = (layer.num_layers * layer.num_directions, B, layer.hidden_size)
        h = rng.normal(scale=0.5, size=shape).astype(np.float32)
        state = (h, h[::-1].copy()) if layer.kind == "lstm" else h
    out, final, _ = layer.forward(x, state, mask=_mask(s, lengths))
    res = s(x=x, lengths=lengths, **({} if state is None else _state(state)))
    return "random x", _diff(res, {"y": out, **_final(final)})


def _steps(s, step, vocab_size, rng, state) -> float:
    """The largest difference over STEPS random ids between a step graph ``s``, fed back
    its own state, and rnnkit's ``step(ids, state) -> (logits, state)``."""
    worst, feeds = 0.0, _state(state)
    for ids in rng.integers(0, vocab_size, size=(STEPS, B)):
        logits, state = step(ids, state)
        res = s(ids=ids, **feeds)
        worst = max(worst, _diff(res, {"log_probs": log_softmax(logits), **_final(state)}))
        feeds = _fed_back(res)
    return worst


def _lm_step(s, model, rng, start):
    return f"{STEPS} steps with carried state", _steps(s, model.step, model.vocab_size, rng,
                                                       start)


def _lm_sequence(s, model, rng, start):
    lengths = _lengths(rng)
    ids = _ids(rng, model.vocab_size, lengths)
    logits, final, _ = model.forward(ids, start, mask=_mask(s, lengths))
    res = s(ids=ids, lengths=lengths, **_state(start))
    return f"{B} sequences of {T} steps", _diff(res, {"log_probs": log_softmax(logits),
                                                      **_final(final)})


def _many(s, model, rng):
    embed = model.modules.get("embed")
    lengths = _lengths(rng)
    mask = _mask(s, lengths)
    if embed is None:
        x = rng.normal(size=(B, T, model.rnn.input_size)).astype(np.float32)
        feeds = {"x": x}
    else:
        pad = None if mask is not None else embed.padding_idx
        x = _ids(rng, embed.num_embeddings, lengths, pad)
        feeds = {"ids": x}
    out = model.forward(x, mask)[0]
    res = s(lengths=lengths, **feeds)
    return "random sequences", _diff(res, {s.outputs[0]: out})


def _seq2seq(s, model, rng, name, cache):
    if name == "encoder":
        lengths = _lengths(rng)
        src = _ids(rng, model.src_vocab_size, lengths,
                   None if "lengths" in s.inputs else model.pad_id)
        state, _ = model.encode(src, _mask(s, lengths))
        cache["state"] = state
        return f"{B} source sequences", _diff(s(src=src, lengths=lengths), _final(state))
    return f"{STEPS} steps from the encoder's state", _steps(
        s, model._step, model.tgt_vocab_size, rng, cache["state"])


def _run(name, s, obj, rng, cache):
    if name == "layer":
        return _layer(s, obj, rng)
    if name in ("step", "sequence", "initial_state"):
        cond = None
        if obj.cond_size:
            cond = rng.normal(size=(B, obj.cond_size)).astype(np.float32)
        start, _ = obj.initial_state(B, cond)
        if name == "initial_state":
            return "random cond", _diff(s(cond=cond), _state(start))
        return (_lm_step if name == "step" else _lm_sequence)(s, obj, rng, start)
    if name in ("classifier", "regressor", "tagger"):
        return _many(s, obj, rng)
    return _seq2seq(s, obj, rng, name, cache)


def check(obj, paths: dict, seed: int = 0) -> list[tuple[str, str, float]]:
    """Run the graphs :func:`export` wrote for obj in ONNX Runtime on random inputs (float32
    graphs) and compare them with rnnkit's own outputs (eval mode).

    paths: {graph name: path} as export returns it. Returns, per graph, (name, what was
    run, the largest absolute difference over its outputs: log-probabilities, logits,
    outputs, states)."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("rnnkit.onnx.check needs onnxruntime: pip install "
                          "'rnnkit[onnx]'") from e
    rng = np.random.default_rng(seed)
    modules = getattr(obj, "modules", {"": obj}).values()  # a model's, or the layer itself
    was_training = any(m.training for m in modules)
    obj.eval()
    cache: dict = {}  # the encoder's state, where the decoder's check starts
    try:
        return [(name, *_run(name, _Session(ort, path), obj, rng, cache))
                for name, path in paths.items()]
    finally:
        if was_training:
            obj.train()
