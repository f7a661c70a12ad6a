"""The recurrent layer alone against PyTorch: the "layer" and "step" tables of ``bench.py``.

* **layer** (``layer/<kind>/<B>x<T>x<H>``): one forward and one backward pass of a single
  LSTM or GRU layer over dense float32 inputs (D = H), input gradient included: the layer
  of a tagger or a classifier over embeddings. rnnkit: ``out, _, cache = layer.forward(x)``
  and ``dx, _, grads = layer.backward(dout, cache)``; PyTorch: ``nn.LSTM``/``nn.GRU``
  (``batch_first=True``) with the same weights, ``out, _ = m(x)`` on an ``x`` that
  requires its gradient, and ``out.backward(dout)`` (the gradients set to None before each
  pass).
* **step** (``step/lstm/h<H>-l<layers>``): consecutive calls of an LSTM on one time step,
  batch 1, each call given the state the previous one returned, the way a PyTorch user
  steps an ``nn.LSTM``: rnnkit ``out, state, _ = lstm.forward(x, state)`` in eval mode
  against ``out, state = m(x, state)`` under ``torch.inference_mode()``; x (1, 1, H).

The builders check, before anything is timed, that rnnkit and PyTorch compute the same
thing from the same weights (and rnnkit's accelerated backend the same as its numpy
engine), and raise :class:`MismatchError` otherwise. ``bench.py`` times the functions they
return and prints the tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TORCH_RTOL = 1e-4  # rnnkit against PyTorch, float32 (relative norm of the difference)
ENGINE_RTOL = 1e-5  # rnnkit's accelerated backend against its numpy engine, float32


class MismatchError(RuntimeError):
    """rnnkit and PyTorch disagree: the timings would not compare equal work."""


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||), in float64 (0 for identical arrays)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-30))


def torch_param_pairs(layer, module, prefix: str = "") -> dict:
    """For every parameter of an rnnkit layer (unidirectional), the tensor of the PyTorch
    module (``rnnkit.interop.to_torch(layer)``) that holds it, and a function mapping that
    tensor, or its gradient, to rnnkit's layout: {prefix + name: (tensor, layout)}.

    ``W_x``/``W_h`` are ``weight_ih``/``weight_hh`` transposed; rnnkit's ``b`` is
    ``bias_ih`` (``to_torch`` puts the biases on the input side; ``bias_hh`` starts at zero
    and gets the same gradient, but for GRU's n block, which is rnnkit's ``b_hn``)."""
    H = layer.hidden_size

    def same(t):
        return t

    def transpose(t):
        return t.T

    def n_part(t):  # GRU: rnnkit's b_hn is the n block of bias_hh
        return t[2 * H :]

    pairs = {}
    for k in range(layer.num_layers):
        pairs[f"{prefix}l{k}.W_x"] = (getattr(module, f"weight_ih_l{k}"), transpose)
        pairs[f"{prefix}l{k}.W_h"] = (getattr(module, f"weight_hh_l{k}"), transpose)
        pairs[f"{prefix}l{k}.b"] = (getattr(module, f"bias_ih_l{k}"), same)
        if f"l{k}.b_hn" in layer.params:
            pairs[f"{prefix}l{k}.b_hn"] = (getattr(module, f"bias_hh_l{k}"), n_part)
    return pairs


def _random_biases(layer, rng: np.random.Generator) -> None:
    """Non-zero biases everywhere, so that the checks cover their handling too."""
    for name, p in layer.params.items():
        if name.endswith(".b") or name.endswith(".b_hn"):
            p[...] = rng.uniform(-0.1, 0.1, p.shape).astype(p.dtype)


def _engine_difference(name: str, run: Callable, what: str) -> float:
    """Run ``run()`` (it returns a list of arrays) on rnnkit's numpy engine and on its
    accelerated backend; the largest relative difference of the arrays. MismatchError
    above ENGINE_RTOL."""
    import rnnkit.accelerated

    with rnnkit.accelerated.disabled():
        reference = [np.array(a, copy=True) for a in run()]
    fast = [np.array(a, copy=True) for a in run()]
    diff = max(rel_err(a, b) for a, b in zip(fast, reference, strict=True))
    if diff > ENGINE_RTOL:
        raise MismatchError(f"{name}: rnnkit's accelerated backend and its numpy engine "
                            f"differ by {diff:.1e} in {what} (relative; expected <= "
                            f"{ENGINE_RTOL:g})")
    return diff


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class LayerConfig:
    """One measurement of a layer's forward + backward with dense inputs (D = H)."""

    kind: str  # "lstm" or "gru"
    batch: int  # B
    steps: int  # T
    hidden: int  # H (and the input size D)

    @property
    def name(self) -> str:
        return f"layer/{self.kind}/{self.batch}x{self.steps}x{self.hidden}"


@dataclass(frozen=True)
class StepConfig:
    """One measurement of single-step LSTM calls with carried state (batch 1, D = H)."""

    layers: int  # stacked LSTM layers
    hidden: int  # H (and the input size D)
    calls: int  # consecutive one-step calls per timed repetition

    @property
    def name(self) -> str:
        return f"step/lstm/h{self.hidden}-l{self.layers}"


def layer_configs(quick: bool) -> list[LayerConfig]:
    if quick:
        return [LayerConfig(k, 8, 20, 64) for k in ("lstm", "gru")]
    shapes = [(32, 100, 128), (32, 100, 256), (64, 100, 512)]
    return [LayerConfig(k, *s) for s in shapes for k in ("lstm", "gru")]


def step_configs(quick: bool, calls: int) -> list[StepConfig]:
    sizes = (64,) if quick else (256, 512)
    return [StepConfig(L, H, calls) for H in sizes for L in (1, 2)]


# --------------------------------------------------------------------------- layer
def build_layer(cfg: LayerConfig, torch, seed: int, numpy_engine: bool = True):
    """Return ([rnnkit_pass, torch_pass], None), or, when rnnkit's accelerated backend is in
    use and numpy_engine is set, ([rnnkit_pass, torch_pass, numpy_pass], difference) with
    rnnkit's pass on its numpy engine and the largest relative difference between its two
    engines. Each pass is one forward and one backward (input gradient included) of the
    same batch; checked first: the same out, dx and parameter gradients."""
    import rnnkit
    import rnnkit.accelerated
    from rnnkit.interop import to_torch

    rng = np.random.default_rng(seed)
    B, T, H = cfg.batch, cfg.steps, cfg.hidden
    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[cfg.kind]
    layer = cls(H, H, dtype=np.float32, rng=rng)
    _random_biases(layer, rng)
    x = rng.standard_normal((B, T, H), dtype=np.float32)
    dout = rng.standard_normal((B, T, H), dtype=np.float32)

    module = to_torch(layer)  # batch_first=True, the same weights
    params_t = list(module.parameters())
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    dout_t = torch.from_numpy(dout.copy())
    pairs = torch_param_pairs(layer, module)

    def rnnkit_pass():
        out, _, cache = layer.forward(x)
        dx, _, grads = layer.backward(dout, cache)
        return out, dx, grads

    def torch_pass():
        for p in params_t:
            p.grad = None
        x_t.grad = None
        out, _ = module(x_t)
        out.backward(dout_t)
        return out

    problems = []
    missing = sorted(set(layer.params) - set(pairs))
    if missing:
        problems.append("no PyTorch counterpart for " + ", ".join(missing))
    out_r, dx_r, grads_r = rnnkit_pass()
    out_t = torch_pass()
    compared = [("out", out_r, out_t.detach().numpy()), ("dx", dx_r, x_t.grad.numpy())]
    compared += [(f"gradient {name}", grads_r[name], layout(t.grad).numpy())
                 for name, (t, layout) in pairs.items()]
    for what, a, b in compared:
        e = rel_err(a, b)
        if not e <= TORCH_RTOL:
            problems.append(f"{what}: relative error {e:.2e} (expected <= {TORCH_RTOL:g})")
    if problems:
        raise MismatchError(f"{cfg.name}: rnnkit and PyTorch differ: " + "; ".join(problems))
    if not numpy_engine or not rnnkit.accelerated.enabled():
        return [rnnkit_pass, torch_pass], None

    def numpy_pass():
        with rnnkit.accelerated.disabled():
            return rnnkit_pass()

    def results():
        out, dx, grads = rnnkit_pass()
        return [out, dx] + [grads[k] for k in sorted(grads)]

    diff = _engine_difference(cfg.name, results, "out, dx or the parameter gradients")
    return [rnnkit_pass, torch_pass, numpy_pass], diff


# --------------------------------------------------------------------------- step
def build_step(cfg: StepConfig, torch, seed: int, numpy_engine: bool = True):
    """Return ([rnnkit_steps, torch_steps], None), or with rnnkit's accelerated backend in
    use and numpy_engine set, ([rnnkit_steps, torch_steps, numpy_steps], difference) as
    :func:`build_layer` does. Each function makes cfg.calls consecutive one-step calls
    from a zero state, each given the state the previous call returned; checked first:
    the same output at every step and the same final state."""
    import rnnkit
    import rnnkit.accelerated
    from rnnkit.interop import to_torch

    rng = np.random.default_rng(seed)
    H, L = cfg.hidden, cfg.layers
    lstm = rnnkit.LSTM(H, H, num_layers=L, dtype=np.float32, rng=rng).eval()
    _random_biases(lstm, rng)
    module = to_torch(lstm).eval()
    # one input per call, each its own (1, 1, H) array, so that neither loop slices
    xs = [rng.standard_normal((1, 1, H), dtype=np.float32) for _ in range(cfg.calls)]
    xs_t = [torch.from_numpy(x) for x in xs]
    zero = (np.zeros((L, 1, H), np.float32), np.zeros((L, 1, H), np.float32))
    zero_t = (torch.zeros(L, 1, H), torch.zeros(L, 1, H))

    def rnnkit_steps(record=None):
        state = zero
        for x in xs:
            out, state, _ = lstm.forward(x, state)
            if record is not None:
                record.append(np.array(out, copy=True))
        return out, state

    def torch_steps(record=None):
        with torch.inference_mode():
            state = zero_t
            for x in xs_t:
                out, state = module(x, state)
                if record is not None:
                    record.append(out.numpy().copy())
        return out, state

    outs_r, outs_t = [], []
    _, (h_r, c_r) = rnnkit_steps(outs_r)
    _, (h_t, c_t) = torch_steps(outs_t)
    problems = []
    for what, a, b in (("the outputs", np.stack(outs_r), np.stack(outs_t)),
                       ("the final h", h_r, h_t.numpy()), ("the final c", c_r, c_t.numpy())):
        e = rel_err(a, b)
        if not e <= TORCH_RTOL:
            problems.append(f"{what}: relative error {e:.2e} (expected <= {TORCH_RTOL:g})")
    if problems:
        raise MismatchError(f"{cfg.name}: rnnkit and PyTorch differ over {cfg.calls} steps: "
                            + "; ".join(problems))
    if not numpy_engine or not rnnkit.accelerated.enabled():
        return [rnnkit_steps, torch_steps], None

    def numpy_steps():
        with rnnkit.accelerated.disabled():
            return rnnkit_steps()

    def results():
        outs = []
        _, (h, c) = rnnkit_steps(outs)
        return [np.stack(outs), h, c]

    diff = _engine_difference(cfg.name, results, "the outputs or the final state")
    return [rnnkit_steps, torch_steps, numpy_steps], diff
