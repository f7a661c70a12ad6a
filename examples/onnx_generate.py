"""Generate text from an exported language model with ONNX Runtime alone (no rnnkit).

Export a checkpoint of ``rnnkit train`` first, then generate (this script needs only numpy
and onnxruntime)::

    rnnkit export runs/dinos/best.npz -o dinos.onnx
    python examples/onnx_generate.py dinos.onnx --num 10

The step graph (``dinos.onnx``) takes ``ids (B,)`` and the state ``h0`` (and ``c0`` for an
LSTM) and gives ``log_probs (B, V)`` and the next state ``h_n`` (``c_n``). The vocabulary and
the run's sampling defaults (prime, stop token, length) are in the file's metadata
(``rnnkit.vocab``, ``rnnkit.sample_defaults``). Sampling is rnnkit's: softmax of
``log_probs / temperature`` (top-k: only the k most likely), one uniform draw per token from
``numpy.random.default_rng(seed)``, so that a seed gives the names ``rnnkit sample --seed``
gives (but where float32 rounding tips a draw); ``--greedy`` takes the most likely token.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


class Generator:
    """The step graph of an exported language model, in an ONNX Runtime session."""

    def __init__(self, path: str, threads: int = 1):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # batch 1: more threads only add overhead
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("rnnkit.graph") != "step":
            sys.exit(f"error: {path} is not the step graph of an exported language model "
                     f"(its rnnkit.graph is {meta.get('rnnkit.graph')!r})")
        if "rnnkit.vocab" not in meta:
            sys.exit(f"error: {path} holds no vocabulary: export a checkpoint of rnnkit train "
                     "with `rnnkit export`")
        vocab = json.loads(meta["rnnkit.vocab"])
        self.tokens, self.level = vocab["tokens"], vocab.get("level", "char")
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.defaults = json.loads(meta.get("rnnkit.sample_defaults", "{}"))
        # the state inputs: h0 (and c0), (layers, B, H) with B symbolic
        self.states = {i.name: (i.shape[0], i.shape[2]) for i in self.session.get_inputs()
                       if i.name != "ids"}

    def step(self, token: int, state: dict):
        """Feed one token: log-probabilities (V,) of the next one and the new state."""
        logp, *new = self.session.run(None, {"ids": np.array([token], dtype=np.int64),
                                             **state})
        return logp[0], {"h0": new[0], **({"c0": new[1]} if len(new) > 1 else {})}

    def encode(self, text: str) -> list[int]:
        toks = list(text) if self.level == "char" else text.split()
        missing = [t for t in toks if t not in self.index]
        if missing:
            sys.exit(f"error: --prime holds tokens the model does not know: {missing[:5]}")
        return [self.index[t] for t in toks]

    def generate(self, prime: list[int], length: int, rng, temperature=1.0, top_k=None,
                 greedy=False, stop=None) -> list[int]:
        """Up to ``length`` tokens after the prime, stopping after ``stop`` (included)."""
        state = {k: np.zeros((n, 1, h), dtype=np.float32) for k, (n, h) in self.states.items()}
        for t in prime:
            logp, state = self.step(t, state)
        out = []
        for i in range(length):
            t = pick(logp, rng, temperature, top_k, greedy)
            out.append(t)
            if t == stop or i == length - 1:
                break
            logp, state = self.step(t, state)
        return out


def pick(logp: np.ndarray, rng, temperature: float, top_k, greedy: bool) -> int:
    """The next token from log-probabilities (V,), drawn as rnnkit draws it: the most likely
    (greedy), or an inverse-CDF draw from softmax(logp / temperature) over the top k."""
    if greedy:
        return int(np.argmax(logp))
    z = logp.astype(np.float64) / temperature
    V = z.size
    if top_k is not None and top_k < V:
        z = np.where(z >= np.partition(z, V - top_k)[V - top_k], z, -np.inf)
    p = np.exp(z - z.max())
    p /= p.sum()
    u = rng.random()
    return min(int(np.searchsorted(np.cumsum(p), u * p.sum(), side="right")), V - 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Generate text from the step graph that "
                                 "`rnnkit export` wrote, with ONNX Runtime alone.")
    ap.add_argument("model", help="the step graph (.onnx) of an exported language model")
    ap.add_argument("--num", type=int, default=1, help="number of samples (default: 1)")
    ap.add_argument("--length", type=int, help="tokens per sample (default: the run's)")
    ap.add_argument("--prime", help="text to start from (default: the run's, e.g. a newline)")
    ap.add_argument("--temperature", type=float, default=1.0, help="softmax temperature")
    ap.add_argument("--top-k", type=int, help="sample only among the k most likely tokens")
    ap.add_argument("--greedy", action="store_true", help="always take the most likely token")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default: 1)")
    args = ap.parse_args(argv)
    gen = Generator(args.model, args.threads)
    d = gen.defaults
    prime = gen.encode(args.prime if args.prime is not None else d.get("prime", "\n"))
    stop = gen.index.get(d["stop"]) if d.get("stop") else None
    length = args.length or d.get("length", 300)
    rng = np.random.default_rng(args.seed)
    sep = "" if gen.level == "char" else " "
    for _ in range(args.num):
        toks = gen.generate(prime, length, rng, args.temperature, args.top_k, args.greedy,
                            stop)
        text = sep.join(gen.tokens[t] for t in toks)
        if d.get("capitalize"):
            text = text[:1].upper() + text[1:]
        print(text.rstrip("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
