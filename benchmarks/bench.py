"""rnnkit against PyTorch (CPU), side by side in one run: training steps, the recurrent
layer alone, single steps and generation.

What is measured (float32, both libraries on the same number of threads):

* **train**: one full training step of a character model, as a user of each library writes
  it: forward, per-step linear output layer, softmax cross-entropy (mean over the B*T
  targets, V = 65 symbols), backward, Adam (lr 2e-3). rnnkit: ``LanguageModel`` (one-hot
  inputs) ``.train_batch`` + ``rnnkit.optim.Adam.step``; PyTorch: ``nn.LSTM/GRU/RNN`` +
  ``nn.Linear`` on a precomputed one-hot tensor, ``F.cross_entropy``, ``backward``,
  ``torch.optim.Adam`` in its fastest CPU variant (default, foreach or fused: timed at
  startup). Each row also gives the FLOPs of the step's matrix products, the time this
  machine's numpy takes for those products alone (the "GEMM floor") and the fraction of the
  step that floor represents for each library.
* **layer**: one LSTM or GRU layer alone over dense float32 inputs (D = H), forward and
  backward with the input gradient, as in a tagger or classifier over embeddings: rnnkit's
  ``layer.forward`` + ``layer.backward(dout, cache)`` against ``nn.LSTM/GRU``
  (``batch_first=True``), ``out, _ = m(x)`` with ``x.requires_grad_(True)`` and
  ``out.backward(dout)`` (``_layer_bench.py``).
* **memory**: the peak resident memory of a few training steps, each library in a fresh
  subprocess (``--memory``; the default run does LSTM (64, 100, 512)).
* **step**: consecutive one-step calls of an LSTM with carried state, batch 1, the way a
  PyTorch user steps an ``nn.LSTM``: rnnkit ``out, state, _ = lstm.forward(x, state)``
  (eval mode) against ``out, state = m(x, state)`` under ``torch.inference_mode()``, x
  (1, 1, H), per call (``_layer_bench.py``).
* **gen**: generating characters one at a time with batch 1: feed the previous character
  (one-hot), one recurrent step, output layer, softmax, sample. rnnkit uses
  ``LanguageModel.step``; PyTorch is timed two ways, (a) ``nn.LSTM`` on a (1, 1, 65) input with
  carried state and (b) a loop of ``nn.LSTMCell`` (stacked for 2 layers), both under
  ``torch.inference_mode()``. (c) ONNX Runtime (where onnxruntime and onnx are installed):
  the step graph of ``rnnkit.onnx.export``, one ``session.run`` per character with the state
  fed back, the same sampling on ``exp(log_probs)``; timed in a block of its own after the
  interleaved others (its idle workers spin long after a run and would slow them).

Before timing, each configuration checks that rnnkit and PyTorch compute the same loss,
gradients and updated parameters (train), the same output, input gradient and parameter
gradients (layer), the same outputs and final state (step) or the same next-character
probabilities (gen, ONNX Runtime included) from the same weights, so that the timings
compare equal work, and that rnnkit's accelerated backend agrees with its numpy engine
(timed beside it where numba is installed); it aborts otherwise. Every table names the
machine it ran on (CPU model, vector extensions, numpy's BLAS kernel, threads).

Run it with OpenBLAS' tuning variables unset (for this command only)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py

Ratios are rnnkit time / PyTorch time: below 1 means rnnkit is faster.
"""

from __future__ import annotations

import os

# Idle threads of a BLAS/OpenMP pool spin on a core for a while after each call before they
# sleep: OpenBLAS about 0.1 s (2**28 cycles), PyTorch's libgomp about 10 ms. When the two
# libraries take turns on a 2-core machine, the spinning threads of one steal a core from
# the other and distort both timings (PyTorch's LSTM step at (32, 100, 256) measured twice
# as slow). Limit the spinning to about 1 ms, which covers the pauses between the products
# of one training step, in this process only and before numpy and torch load their pools.
# Values already in the environment are respected.
SPIN_LIMITS = {"OPENBLAS_THREAD_TIMEOUT": "21", "GOMP_SPINCOUNT": "30000"}
for _name, _value in SPIN_LIMITS.items():
    os.environ.setdefault(_name, _value)

import argparse  # noqa: E402
import fnmatch  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

# Without an installed rnnkit (or with a stale editable install), use this checkout's.
_SRC = Path(__file__).resolve().parent.parent / "src"
if importlib.util.find_spec("rnnkit") is None and (_SRC / "rnnkit").is_dir():
    sys.path.insert(0, str(_SRC))
# the layer and step measurements live beside this file
if importlib.util.find_spec("_layer_bench") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _layer_bench import (  # noqa: E402
    ENGINE_RTOL,
    LayerConfig,
    MismatchError,
    StepConfig,
    build_layer,
    build_step,
    layer_configs,
    rel_err,
    step_configs,
    torch_param_pairs,
)

V = 65  # vocabulary size (tiny Shakespeare has 65 symbols)
LR = 2e-3  # Adam's learning rate in both libraries (other settings: the shared defaults)
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}  # G: gate blocks of the recurrent weights (G*H columns)
# torch.optim.Adam's CPU implementations; "default" (foreach=None, fused=None) is the
# per-parameter loop on CPU
TORCH_ADAM = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}
MEMORY_STEPS = 3  # training steps measured by --memory (after one warm-up step)
GEMM_REPS = 5  # timed repetitions of each product shape for the GEMM floor (median)


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class TrainConfig:
    """One training-step measurement."""

    kind: str  # "lstm", "gru" or "rnn" (tanh)
    layers: int  # stacked recurrent layers
    batch: int  # B
    steps: int  # T
    hidden: int  # H

    @property
    def name(self) -> str:
        k = self.kind + (str(self.layers) if self.layers > 1 else "")
        return f"train/{k}/{self.batch}x{self.steps}x{self.hidden}"


def parse_train_name(name: str) -> TrainConfig:
    """``train/<kind>[<layers>]/<B>x<T>x<H>`` -> TrainConfig (ValueError otherwise)."""
    m = re.fullmatch(r"train/(lstm|gru|rnn)(\d*)/(\d+)x(\d+)x(\d+)", name)
    cfg = None
    if m is not None:
        cfg = TrainConfig(m[1], int(m[2] or 1), int(m[3]), int(m[4]), int(m[5]))
    if cfg is None or cfg.name != name or min(cfg.layers, cfg.batch, cfg.steps, cfg.hidden) < 1:
        raise ValueError(f"not a training configuration name: {name!r} (expected "
                         "train/<lstm|gru|rnn>[<layers> >= 2]/<B>x<T>x<H> with sizes >= 1, "
                         "e.g. train/lstm2/32x100x256)")
    return cfg


@dataclass(frozen=True)
class GenConfig:
    """One generation measurement (LSTM, batch 1)."""

    layers: int  # stacked LSTM layers
    hidden: int  # H
    chars: int  # characters generated per timed repetition

    @property
    def name(self) -> str:
        return f"gen/lstm/h{self.hidden}-l{self.layers}"


def full_configs(gen_chars: int, step_calls: int = 200) -> list:
    shapes = [(32, 100, 128), (32, 100, 256), (64, 100, 512)]
    cfgs: list = [TrainConfig(k, 1, *s) for s in shapes for k in ("lstm", "gru", "rnn")]
    cfgs.append(TrainConfig("lstm", 2, 32, 100, 256))
    # the setting of Karpathy's min-char-rnn: batch 1, 25 steps, 100 hidden units
    cfgs += [TrainConfig(k, 1, 1, 25, 100) for k in ("lstm", "gru", "rnn")]
    cfgs += layer_configs(quick=False)
    cfgs += step_configs(quick=False, calls=step_calls)
    cfgs += [GenConfig(L, H, gen_chars) for H in (256, 512) for L in (1, 2)]
    return cfgs


def quick_configs(gen_chars: int, step_calls: int = 30) -> list:
    cfgs: list = [TrainConfig(k, 1, 8, 20, 64) for k in ("lstm", "gru", "rnn")]
    cfgs.append(TrainConfig("lstm", 2, 8, 20, 64))
    cfgs.append(TrainConfig("rnn", 1, 1, 25, 100))
    cfgs += layer_configs(quick=True)
    cfgs += step_configs(quick=True, calls=step_calls)
    cfgs += [GenConfig(L, 64, gen_chars) for L in (1, 2)]
    return cfgs


# the peak-memory measurement of the default run (and of --quick)
MEMORY_DEFAULT = TrainConfig("lstm", 1, 64, 100, 512)
MEMORY_QUICK = TrainConfig("lstm", 1, 8, 20, 64)
# the parameter set on which the torch.optim.Adam variants are timed
ADAM_CHOICE_CONFIG = TrainConfig("lstm", 1, 32, 100, 256)


def select(cfgs: list, patterns: list[str] | None) -> list:
    """Keep the configs whose name matches a glob pattern or contains a plain pattern."""
    if not patterns:
        return cfgs

    def hit(name: str, pat: str) -> bool:
        if any(ch in pat for ch in "*?["):
            return fnmatch.fnmatchcase(name, pat)
        return pat in name

    return [c for c in cfgs if any(hit(c.name, p) for p in patterns)]


# --------------------------------------------------------------------------- machine
# the vector extensions the machine line reports, from the flags of /proc/cpuinfo (x86) or
# its Features line (aarch64)
X86_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                  "avx512_vnni", "avx512_bf16", "amx_tile")
ARM_EXTENSIONS = ("asimd", "asimdhp", "asimddp", "asimdfhm", "i8mm", "bf16", "sve", "sve2",
                  "sme")


def cpuinfo_fields() -> dict[str, str]:
    """The first value of each field of /proc/cpuinfo (the first CPU's), or {} where there
    is no such file (other systems than Linux)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    info = cpuinfo_fields()
    if info.get("model name"):
        return info["model name"]
    if "CPU implementer" in info:  # aarch64 Linux names no model, only these codes
        return (f"{platform.machine()} CPU (implementer {info['CPU implementer']}, "
                f"part {info.get('CPU part', '?')})")
    return platform.processor() or platform.machine() or "unknown CPU"


def vector_extensions() -> tuple[list[str] | None, list[str]]:
    """(present, absent) among X86_EXTENSIONS or ARM_EXTENSIONS; present is None where
    /proc/cpuinfo lists no flags."""
    info = cpuinfo_fields()
    if "flags" in info:
        have, wanted = set(info["flags"].split()), X86_EXTENSIONS
    elif "Features" in info:
        have, wanted = set(info["Features"].split()), ARM_EXTENSIONS
    else:
        return None, []
    return [e for e in wanted if e in have], [e for e in wanted if e not in have]


def describe_extensions(long: bool = False) -> str:
    present, absent = vector_extensions()
    if present is None:
        return f"unknown ({platform.machine() or '?'}, no /proc/cpuinfo flags)"
    text = " ".join(present) if present else "none of " + " ".join(absent)
    if long and present and absent:
        text += " (absent: " + " ".join(absent) + ")"
    return text


def blas_kernel(info: list[dict]) -> str:
    """The kernel numpy's BLAS uses (threadpoolctl's ``architecture``), e.g. openblas
    SkylakeX."""
    if not info:
        return "unknown (threadpoolctl missing)"
    return ", ".join(f"{d.get('internal_api')} {d.get('architecture') or '(kernel not reported)'}"
                     for d in info)


def machine_summary(blas: list[dict], threads: int) -> str:
    """One line naming where a table was measured: CPU, cores, vector extensions, the BLAS
    kernel of numpy and the threads of the run."""
    ext = describe_extensions()
    if vector_extensions()[0] is None:
        ext = "vector extensions " + ext
    forced = ", ".join(f"{v}={os.environ[v]}" for v in OPENBLAS_VARS if v in os.environ)
    kernel = blas_kernel(blas) + (f" (with {forced} set)" if forced else "")
    return (f"{cpu_model()}, {os.cpu_count()} logical cores, {ext}; numpy BLAS kernel "
            f"{kernel}; {threads} thread(s) per library")


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unavailable"


class OtherLoad:
    """How much CPU other processes used while a block ran: a direct noise indicator.

    ``/proc/stat`` gives the machine's busy time and ``os.times`` this process's own (and
    that of its finished subprocesses); the difference over the block, divided by its wall
    time and the number of CPUs, is the share of the machine that other processes took (0 on
    an idle machine). None where ``/proc/stat`` is unavailable.
    """

    def __init__(self):
        self._start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
        own = os.times()  # with the subprocesses this process waited for (--memory)
        own_s = own.user + own.system + own.children_user + own.children_system
        return busy / os.sysconf("SC_CLK_TCK"), own_s, time.perf_counter()

    def share(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None:
            return None
        busy, own, wall = (e - s for e, s in zip(end, self._start, strict=True))
        return max(busy - own, 0.0) / (wall * (os.cpu_count() or 1))


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def numpy_blas_info() -> list[dict]:
    """threadpoolctl's view of the BLAS libraries loaded so far (call before importing torch)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [d for d in threadpool_info() if d.get("user_api") == "blas"]


def describe_blas(info: list[dict]) -> str:
    if not info:
        return "unknown (install threadpoolctl: pip install threadpoolctl)"
    parts = []
    for d in info:
        parts.append(
            f"internal_api={d.get('internal_api')} version={d.get('version')} "
            f"architecture={d.get('architecture')} num_threads={d.get('num_threads')} "
            f"({os.path.basename(d.get('filepath', '?'))})"
        )
    return "; ".join(parts)


def engine_line() -> str:
    """Which engine rnnkit runs: its accelerated backend (numba) or the numpy code."""
    import rnnkit.accelerated

    if rnnkit.accelerated.enabled():
        import numba

        return (f"accelerated (rnnkit.accelerated, numba {numba.__version__}); the numpy "
                "engine timed alongside")
    reason = rnnkit.accelerated.unavailable_reason() or "accelerated backend disabled"
    return f"numpy ({reason})"


def set_numpy_threads(n: int) -> None:
    """Limit numpy's BLAS (only the libraries loaded so far: call before importing torch)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print(f"warning: threadpoolctl missing, numpy's BLAS threads not set to {n}",
              file=sys.stderr)
        return
    threadpool_limits(limits=n, user_api="blas")  # stays in force for the whole run


def ort_version() -> str | None:
    """The version of onnxruntime where it and onnx (for the export) are installed."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return None
    import onnxruntime

    return onnxruntime.__version__


def torch_threads_line(torch) -> str:
    keep = ("at::get_num_threads", "at::get_num_interop_threads", "omp_get_max_threads",
            "mkl_get_max_threads", "Math Kernel Library", "MKL-DNN", "parallel backend")
    lines = [ln.strip() for ln in torch.__config__.parallel_info().splitlines()]
    return "; ".join(ln for ln in lines if any(k in ln for k in keep))


# --------------------------------------------------------------------------- sampling
def softmax_numpy(logits: np.ndarray) -> np.ndarray:
    """logits (V,) -> probabilities (V,)."""
    e = np.exp(logits - logits.max())
    e /= e.sum()
    return e


def sample_numpy(p: np.ndarray, rng: np.random.Generator) -> int:
    """Draw an index from the probabilities p (V,) by inverting the cumulative sum."""
    c = np.cumsum(p)
    return min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), p.shape[0] - 1)


# --------------------------------------------------------------------------- models
def torch_linear(torch, W_y: np.ndarray, b_y: np.ndarray):
    lin = torch.nn.Linear(W_y.shape[0], V)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W_y.T)))
        lin.bias.copy_(torch.from_numpy(b_y))
    return lin


def make_model(cfg: TrainConfig, seed: int):
    """The rnnkit character model of a configuration and one batch of ids.

    Returns ``LanguageModel`` (one-hot inputs, non-zero biases everywhere, so that bias
    handling is checked too) and ``{"x": ids (B, T), "y": next ids (B, T)}``.
    """
    from rnnkit.models import LanguageModel

    rng = np.random.default_rng(seed)
    model = LanguageModel(V, cell=cfg.kind, hidden_size=cfg.hidden, num_layers=cfg.layers,
                          dtype=np.float32, rng=rng)
    for name, p in model.params.items():
        if name.endswith(".b") or name.endswith(".b_hn"):
            p[...] = rng.uniform(-0.1, 0.1, p.shape).astype(np.float32)
    chars = rng.integers(0, V, size=(cfg.batch, cfg.steps + 1))
    batch = {"x": np.ascontiguousarray(chars[:, :-1]), "y": np.ascontiguousarray(chars[:, 1:])}
    return model, batch


def rnnkit_train_step(model, batch: dict) -> Callable:
    """The rnnkit training step: ``model.train_batch`` (forward, mean cross-entropy,
    backward) and ``Adam.step``. The step returns (stats, grads)."""
    from rnnkit.optim import Adam

    opt = Adam(model.params, lr=LR)

    def step():
        stats, grads, _ = model.train_batch(batch)
        opt.step(grads)
        return stats, grads

    step.opt = opt
    return step


def torch_train_step(model, batch: dict, torch, adam: str):
    """The same model in PyTorch, with a copy of the rnnkit model's current weights.

    Returns (step, pairs): the step (zero_grad, forward, cross-entropy, backward, Adam; it
    returns the loss tensor) and, for every rnnkit parameter name, the PyTorch tensor
    holding it and a function mapping that tensor (or its gradient) to rnnkit's layout.
    """
    import torch.nn.functional as F

    from rnnkit.interop import to_torch

    rnn_t = to_torch(model.rnn)  # nn.LSTM/GRU/RNN, batch_first=True
    lin_t = torch_linear(torch, model.head.params["W"], model.head.params["b"])
    params_t = list(rnn_t.parameters()) + list(lin_t.parameters())
    opt = torch.optim.Adam(params_t, lr=LR, **TORCH_ADAM[adam])
    x_t = torch.from_numpy(np.eye(V, dtype=np.float32)[batch["x"]])  # (B, T, V) one-hot
    y_t = torch.from_numpy(batch["y"].reshape(-1))  # (B*T,)

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = rnn_t(x_t)  # (B, T, H)
        loss = F.cross_entropy(lin_t(out).reshape(-1, V), y_t, reduction="mean")
        loss.backward()
        opt.step()
        return loss

    # rnnkit's b is PyTorch's bias_ih (bias_hh starts at zero, but for GRU's n block);
    # PyTorch's bias_hh is an extra parameter that its Adam updates too
    pairs = {"head.W": (lin_t.weight, lambda t: t.T), "head.b": (lin_t.bias, lambda t: t)}
    pairs.update(torch_param_pairs(model.rnn, rnn_t, prefix="rnn."))
    return step, pairs


# --------------------------------------------------------------------------- train
def build_train(cfg: TrainConfig, torch, seed: int, adam: str, numpy_engine: bool = True):
    """Return ([rnnkit_step, torch_step], None), or, when rnnkit's accelerated backend is
    in use, ([rnnkit_step, torch_step, numpy_step], difference) with the rnnkit step on the
    numpy engine, after checking that they compute the same thing: one step each from the
    same weights gives the same loss, gradients and parameters (the two rnnkit engines to a
    relative 1e-5: the difference returned is the largest one found)."""
    import rnnkit.accelerated
    model, batch = make_model(cfg, seed)
    # the PyTorch copy first: rnnkit's step updates model.params in place
    torch_step, pairs = torch_train_step(model, batch, torch, adam)
    rnnkit_step = rnnkit_train_step(model, batch)

    problems = []
    missing = sorted(set(model.params) - set(pairs))
    if missing:
        problems.append("no PyTorch counterpart for " + ", ".join(missing))
    stats, grads = rnnkit_step()
    loss_r = stats["loss"] / stats["count"]
    loss_t = float(torch_step().item())
    if abs(loss_r - loss_t) > 1e-4 * abs(loss_t):
        problems.append(f"loss rnnkit {loss_r:.6f} vs torch {loss_t:.6f}")
    for name, (t, layout) in pairs.items():
        e = rel_err(grads[name], layout(t.grad).numpy())
        if e > 1e-3:
            problems.append(f"gradient {name}: relative error {e:.2e} (expected <= 1e-3)")
    for name, (t, layout) in pairs.items():
        e = rel_err(model.params[name], layout(t.detach()).numpy())
        if e > 1e-4:
            problems.append(f"{name} after the Adam step: relative error {e:.2e} "
                            "(expected <= 1e-4)")
    if problems:
        raise MismatchError(f"{cfg.name}: rnnkit and PyTorch differ: " + "; ".join(problems))
    if not numpy_engine or not rnnkit.accelerated.enabled():
        return [rnnkit_step, torch_step], None

    def numpy_step():
        with rnnkit.accelerated.disabled():
            return rnnkit_step()

    # the two engines from the same state (the weights, Adam's moments and step count)
    saved = {k: v.copy() for k, v in model.params.items()}
    opt = rnnkit_step.opt
    opt_state = {k: {s: a.copy() for s, a in st.items()} for k, st in opt.state.items()}
    t = opt.t
    results = []
    for step in (numpy_step, rnnkit_step):
        for k, v in saved.items():
            np.copyto(model.params[k], v)
        for k, st in opt_state.items():
            for s_, a in st.items():
                np.copyto(opt.state[k][s_], a)
        opt.t = t
        stats, grads = step()
        results.append((stats["loss"], {k: g.copy() for k, g in grads.items()},
                        {k: v.copy() for k, v in model.params.items()}))
    (ln, gn, pn), (la, ga, pa) = results
    # the accelerated backend agrees with the numpy engine to float32 rounding (not bits)
    diff = max([abs(la - ln) / abs(ln)] + [rel_err(ga[k], gn[k]) for k in gn]
               + [rel_err(pa[k], pn[k]) for k in pn])
    if diff > ENGINE_RTOL:
        raise MismatchError(f"{cfg.name}: rnnkit's accelerated backend and its numpy engine "
                            f"differ by {diff:.1e} (relative; expected <= {ENGINE_RTOL:g})")
    return [rnnkit_step, torch_step, numpy_step], diff


def adam_kwargs(variant: str) -> str:
    """The torch.optim.Adam keyword arguments of a variant, as text."""
    kw = TORCH_ADAM[variant]
    return ", ".join(f"{k}={v}" for k, v in kw.items()) if kw else "foreach and fused unset"


def choose_torch_adam(torch, seed: int, reps: int = 20) -> tuple[str, dict, int]:
    """Time ``optimizer.step()`` of the torch.optim.Adam variants (default, foreach, fused)
    on the parameters of ADAM_CHOICE_CONFIG with fixed gradients, interleaved.

    Returns the fastest variant, {variant: median seconds, or an error message} and the
    number of parameters."""
    from rnnkit.interop import to_torch

    model, _ = make_model(ADAM_CHOICE_CONFIG, seed)
    rnn_t = to_torch(model.rnn)
    lin_t = torch_linear(torch, model.head.params["W"], model.head.params["b"])
    base = list(rnn_t.parameters()) + list(lin_t.parameters())
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(p.shape, generator=g) * 1e-2 for p in base]
    steps, results = {}, {}
    for variant, kw in TORCH_ADAM.items():
        params = [p.detach().clone().requires_grad_(True) for p in base]
        for p, gr in zip(params, grads, strict=True):
            p.grad = gr.clone()
        try:
            opt = torch.optim.Adam(params, lr=LR, **kw)
            opt.step()
        except (RuntimeError, ValueError) as e:  # a variant this build does not support
            results[variant] = f"unavailable ({e})"
            continue
        steps[variant] = opt.step
    times = time_interleaved(list(steps.values()), reps, 2)
    for variant, ts in zip(steps, times, strict=True):
        results[variant] = median(ts)
    best = min(steps, key=lambda v: results[v])
    return best, results, sum(p.numel() for p in base)


# --------------------------------------------------------------------------- GEMM floor
def gemm_products(cfg: TrainConfig) -> list[tuple[str, int, int, int, int, bool, bool]]:
    """The matrix products of one training step: (label, m, k, n, count, A transposed,
    B transposed) for ``count`` products (m, k) @ (k, n), operands laid out as in the
    engine (a transposed operand is a transposed view).

    Per recurrent layer (input size D = V for the first, H above): the input projection
    over all T*B rows, T recurrent products forward and T backward, the weight gradients
    dW_h and dW_x, and the input gradient dx except for the first layer (its input is data:
    PyTorch does not compute it). Then the output layer: logits, dW_y, dh.
    """
    B, T, H, G = cfg.batch, cfg.steps, cfg.hidden, GATES[cfg.kind]
    N, GH = T * B, G * H
    out = []
    for k in range(cfg.layers):
        D = V if k == 0 else H
        out += [
            (f"l{k} x @ W_x", N, D, GH, 1, False, False),
            # per-step products feature-major, as the engine does them (W_h^T @ h^T is the
            # faster orientation of these shapes with OpenBLAS)
            (f"l{k} W_h^T @ h^T (per step)", GH, H, B, T, False, False),
            (f"l{k} W_h @ dg^T (per step)", H, GH, B, T, False, False),
            (f"l{k} dW_h = h.T @ dg", H, N, GH, 1, True, False),
            (f"l{k} dW_x = x.T @ dg", D, N, GH, 1, True, False),
        ]
        if k > 0:
            out.append((f"l{k} dx = dg @ W_x.T", N, GH, D, 1, False, True))
    out += [
        ("logits = h @ W_y", N, H, V, 1, False, False),
        ("dW_y = h.T @ dz", H, N, V, 1, True, False),
        ("dh = dz @ W_y.T", N, V, H, 1, False, True),
    ]
    return out


def step_flops(products) -> int:
    return sum(2 * m * k * n * count for _, m, k, n, count, _, _ in products)


class GemmTimer:
    """This machine's float32 matrix-product time in numpy (threads as set for the run),
    per shape and layout: fastest of GEMM_REPS timed calls after one warm-up, small products
    repeated within a call (about 0.5 GFLOP per call). Cached per shape for the run."""

    def __init__(self, seed: int = 0):
        self._cache: dict = {}
        self._rng = np.random.default_rng(seed)

    def product(self, m: int, k: int, n: int, trans_a: bool, trans_b: bool) -> float:
        """Seconds of one (m, k) @ (k, n) product (the fastest call)."""
        key = (m, k, n, trans_a, trans_b)
        if key not in self._cache:
            a = self._rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
            b = self._rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
            a_op = a.T if trans_a else a
            b_op = b.T if trans_b else b
            out = np.empty((m, n), dtype=np.float32)
            inner = min(max(1, round(5e8 / (2 * m * k * n))), 1000)

            def run():
                for _ in range(inner):
                    np.matmul(a_op, b_op, out=out)

            (ts,) = time_interleaved([run], GEMM_REPS, 1)
            self._cache[key] = min(ts) / inner  # a floor: the fastest of the calls
        return self._cache[key]

    def floor(self, products) -> float:
        """Seconds of all the products of a step, each at its measured time."""
        return sum(count * self.product(m, k, n, ta, tb)
                   for _, m, k, n, count, ta, tb in products)


# --------------------------------------------------------------------------- memory
def proc_status_kib(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status in KiB, or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def memory_child(lib: str, name: str, threads: int, seed: int, adam: str) -> int:
    """Peak memory of a training run of one library, in this (fresh) process.

    After the imports, resets the peak-RSS counter and records the current RSS; then
    builds the model, the optimizer and the data, runs 1 + MEMORY_STEPS training steps and
    prints one JSON line with the peak. So the difference is everything the run needs
    (parameters, optimizer state, data, activations and gradients, reused buffers),
    whenever it is allocated. The rnnkit run never imports torch, and loads its accelerated
    kernels (if numba is installed) before the baseline by one step of a tiny model; the
    PyTorch run also builds the rnnkit model it copies its weights from (4 bytes per
    parameter)."""
    cfg = parse_train_name(name)
    set_numpy_threads(threads)
    import rnnkit.models  # noqa: F401  (loaded before the baseline, like torch)

    if lib == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        # load (or compile) the accelerated kernels before the baseline, as the libraries
        # are: one step of a tiny model of the same kind runs the same kernels; then drop the
        # buffers the engine keeps for reuse, where it offers that, so that the run's own
        # buffers count in its peak
        from rnnkit import _workspace

        tiny = TrainConfig(cfg.kind, cfg.layers, 2, 3, 8)
        rnnkit_train_step(*make_model(tiny, seed))()
        _workspace.clear()
    gc.collect()
    method = "clear_refs" if reset_peak_rss() else "ru_maxrss"
    before = proc_status_kib("VmRSS")
    model, batch = make_model(cfg, seed)
    if lib == "rnnkit":
        step = rnnkit_train_step(model, batch)
    else:
        step, pairs = torch_train_step(model, batch, torch, adam)
        del model, pairs
    for _ in range(1 + MEMORY_STEPS):
        step()
    if method == "clear_refs":
        peak = proc_status_kib("VmHWM")
    else:  # the peak since the process started (Linux: KiB)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"lib": lib, "config": name, "method": method, "rss_before_kib": before,
                      "peak_kib": peak, "torch_loaded": "torch" in sys.modules}))
    return 0


def measure_memory(cfg: TrainConfig, threads: int, seed: int, adam: str) -> dict:
    """Run memory_child for rnnkit and for PyTorch, one fresh subprocess each, in turn."""
    out = {}
    for lib in ("rnnkit", "torch"):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_memory-child", lib, cfg.name,
               "--threads", str(threads), "--seed", str(seed), "--torch-adam", adam]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"memory measurement of {cfg.name} ({lib}) failed "
                               f"(exit status {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        res = json.loads(lines[-1])
        if lib == "rnnkit" and res["torch_loaded"]:
            raise RuntimeError(f"memory measurement of {cfg.name}: the rnnkit process "
                               "imported torch")
        if None in (res["rss_before_kib"], res["peak_kib"]):
            raise RuntimeError(f"memory measurement of {cfg.name} ({lib}): /proc/self/status "
                               "unreadable")
        out[lib] = res
    return out


# --------------------------------------------------------------------------- generation
def build_ort_step(model, threads: int):
    """The generation step of ONNX Runtime on the model's exported step graph, or None
    where onnxruntime or onnx is missing: (prev, state) -> probabilities (V,), state."""
    try:
        import onnxruntime as ort

        from rnnkit.onnx import export
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as d:
        path = export(model, Path(d) / "gen.onnx")["step"]
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def ort_probs(prev: int, state):
        logp, h, c = sess.run(None, {"ids": np.array([prev], dtype=np.int64), "h0": state[0],
                                     "c0": state[1]})
        return np.exp(logp[0]), (h, c)

    return ort_probs


def build_gen(cfg: GenConfig, torch, seed: int, threads: int):
    """Return [rnnkit_gen, torch_lstm_gen, torch_cell_gen] and, where onnxruntime is
    installed, ort_gen, each generating cfg.chars characters from a zero state, after
    checking that they give the same probabilities."""
    from rnnkit.interop import to_torch
    from rnnkit.models import LanguageModel

    rng = np.random.default_rng(seed)
    H, L = cfg.hidden, cfg.layers
    model = LanguageModel(V, cell="lstm", hidden_size=H, num_layers=L, dtype=np.float32,
                          rng=rng).eval()
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.uniform(-0.1, 0.1, p.shape).astype(np.float32)
    layer = model.rnn
    W_y, b_y = model.head.params["W"], model.head.params["b"]
    step = model.step  # rnnkit's generation step (the one LanguageModel.generate runs)

    # PyTorch (a): nn.LSTM with carried state; (b): stacked nn.LSTMCell
    lstm_t = to_torch(layer).eval()
    cells_t = []
    for k in range(L):
        cell = torch.nn.LSTMCell(V if k == 0 else H, H)
        with torch.no_grad():
            cell.weight_ih.copy_(getattr(lstm_t, f"weight_ih_l{k}"))
            cell.weight_hh.copy_(getattr(lstm_t, f"weight_hh_l{k}"))
            cell.bias_ih.copy_(getattr(lstm_t, f"bias_ih_l{k}"))
            cell.bias_hh.copy_(getattr(lstm_t, f"bias_hh_l{k}"))
        cells_t.append(cell.eval())
    lin_t = torch_linear(torch, W_y, b_y).eval()
    eye_t = torch.eye(V, dtype=torch.float32)

    def rnnkit_probs(prev: int, state):
        logits, state = step(np.array([prev]), state)  # (1, V)
        return softmax_numpy(logits[0]), state

    def lstm_probs(prev: int, state):
        out, state = lstm_t(eye_t[prev].view(1, 1, V), state)
        return torch.softmax(lin_t(out[0, 0]), dim=-1), state

    def cell_probs(prev: int, states):
        inp = eye_t[prev].view(1, V)
        new = []
        for cell, s in zip(cells_t, states, strict=True):
            h, c = cell(inp, s)
            new.append((h, c))
            inp = h
        return torch.softmax(lin_t(inp[0]), dim=-1), new

    def zero_lstm_state():
        return (torch.zeros(L, 1, H), torch.zeros(L, 1, H))

    def zero_cell_states():
        return [(torch.zeros(1, H), torch.zeros(1, H)) for _ in range(L)]

    def rnnkit_gen():
        g = np.random.default_rng(seed)
        state, prev = None, 0
        for _ in range(cfg.chars):
            p, state = rnnkit_probs(prev, state)
            prev = sample_numpy(p, g)
        return prev

    def torch_lstm_gen():
        g = torch.Generator().manual_seed(seed)
        with torch.inference_mode():
            state, prev = zero_lstm_state(), 0
            for _ in range(cfg.chars):
                p, state = lstm_probs(prev, state)
                prev = int(torch.multinomial(p, 1, generator=g).item())
        return prev

    def torch_cell_gen():
        g = torch.Generator().manual_seed(seed)
        with torch.inference_mode():
            states, prev = zero_cell_states(), 0
            for _ in range(cfg.chars):
                p, states = cell_probs(prev, states)
                prev = int(torch.multinomial(p, 1, generator=g).item())
        return prev

    ort_probs = build_ort_step(model, threads)

    def zero_ort_state():
        return (np.zeros((L, 1, H), dtype=np.float32), np.zeros((L, 1, H), dtype=np.float32))

    def ort_gen():
        g = np.random.default_rng(seed)
        state, prev = zero_ort_state(), 0
        for _ in range(cfg.chars):
            p, state = ort_probs(prev, state)
            prev = sample_numpy(p, g)
        return prev

    # same next-character probabilities along a fixed input sequence
    fixed = rng.integers(0, V, size=20)
    s_r, s_a, s_b, s_o = None, zero_lstm_state(), zero_cell_states(), zero_ort_state()
    worst = worst_ort = 0.0
    with torch.inference_mode():
        for prev in fixed:
            p_r, s_r = rnnkit_probs(int(prev), s_r)
            p_a, s_a = lstm_probs(int(prev), s_a)
            p_b, s_b = cell_probs(int(prev), s_b)
            worst = max(worst, float(np.abs(p_r - p_a.numpy()).max()),
                        float(np.abs(p_r - p_b.numpy()).max()))
            if ort_probs is not None:
                p_o, s_o = ort_probs(int(prev), s_o)
                worst_ort = max(worst_ort, float(np.abs(p_r - p_o).max()))
    if worst > 1e-5:
        raise MismatchError(f"{cfg.name}: next-character probabilities of rnnkit and PyTorch "
                            f"differ by up to {worst:.2e} (expected <= 1e-5)")
    if worst_ort > 1e-5:
        raise MismatchError(f"{cfg.name}: next-character probabilities of rnnkit and ONNX "
                            f"Runtime differ by up to {worst_ort:.2e} (expected <= 1e-5)")
    fns = [rnnkit_gen, torch_lstm_gen, torch_cell_gen]
    return fns + ([ort_gen] if ort_probs is not None else [])


# --------------------------------------------------------------------------- timing
def time_interleaved(fns: list[Callable], reps: int, warmup: int) -> list[list[float]]:
    """Call each function warmup times, then reps times in turn (f0, f1, ..., f0, f1, ...).

    Returns the wall-clock seconds of every timed call, one list per function. The garbage
    collector is off while timing (as in ``timeit``).
    """
    for f in fns:
        for _ in range(warmup):
            f()
    times: list[list[float]] = [[] for _ in fns]
    gc.collect()
    gc.disable()
    try:
        for _ in range(reps):
            for f, ts in zip(fns, times, strict=True):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return times


def print_numpy_note(columns: str, what: str, diffs: list) -> None:
    """What a table's numpy-engine columns hold, and how closely the timed accelerated
    calls matched the numpy engine (diffs: one per row, None where it was not timed)."""
    diffs = [d for d in diffs if d is not None]
    if not diffs:
        print(f"{columns}: not timed (rnnkit's timed calls run on its numpy engine, or "
              "--no-numpy-engine)")
        return
    same = sum(d == 0 for d in diffs)
    print(f"{columns}: the same rnnkit {what} with rnnkit.accelerated.disabled(), interleaved "
          f"with the others; checked before timing against the accelerated {what}: identical "
          f"in {same} of {len(diffs)} configurations, largest relative difference "
          f"{max(diffs):.1e} (at most {ENGINE_RTOL:g} allowed)")


def median(ts: list[float]) -> float:
    return statistics.median(ts)


def spread(ts: list[float]) -> float:
    """Interquartile range relative to the median, in percent (a noise indicator)."""
    if len(ts) < 4:
        return (max(ts) - min(ts)) / median(ts) * 100
    q = statistics.quantiles(ts, n=4)
    return (q[2] - q[0]) / median(ts) * 100


# --------------------------------------------------------------------------- tables
def print_train_table(rows: list, adam: str, threads: int, where: str) -> None:
    print("Training step: forward, linear output + softmax cross-entropy "
          f"(V={V}, mean over B*T), backward, Adam (lr {LR:g}); torch.optim.Adam: {adam}")
    print(f"measured on: {where}")
    print(f"GFLOP = matrix products of one step; floor = numpy float32 time of those "
          f"products alone ({threads} threads, this machine); %GEMM = floor / step "
          "time (100% = the step takes only the time of its matrix products)")
    print_numpy_note("numpy ms / numpy ratio", "step", [row[-1] for row in rows])
    head = (f"{'config':<26}{'rnnkit ms':>11}{'spread':>8}{'torch ms':>11}{'spread':>8}"
            f"{'ratio':>8}{'min ratio':>11}{'numpy ms':>10}{'numpy ratio':>13}"
            f"{'GFLOP':>8}{'floor ms':>10}{'rnnkit %GEMM':>14}{'torch %GEMM':>13}"
            f"{'others':>8}")
    print(head)
    print("-" * len(head))
    for cfg, tr, tt, tn, oth, flops, floor, _ in rows:
        mr, mt = median(tr), median(tt)
        npy = (f"{median(tn) * 1e3:>10.2f}{median(tn) / mt:>13.2f}" if tn
               else f"{'-':>10}{'-':>13}")
        print(f"{cfg.name:<26}{mr * 1e3:>11.2f}{spread(tr):>7.0f}%{mt * 1e3:>11.2f}"
              f"{spread(tt):>7.0f}%{mr / mt:>8.2f}{min(tr) / min(tt):>11.2f}{npy}"
              f"{flops / 1e9:>8.3f}{floor * 1e3:>10.2f}{floor / mr:>13.0%} "
              f"{floor / mt:>12.0%} {pct(oth):>7}")
    print()


def print_memory_table(rows: list, where: str) -> None:
    print(f"Peak memory of a training run: build, then {1 + MEMORY_STEPS} steps; each "
          "library in a fresh process (the rnnkit one without torch)")
    print(f"measured on: {where}")
    methods = sorted({r["method"] for _, res in rows for r in res.values()})
    if methods != ["clear_refs"]:
        print("NOTE: the peak-RSS counter could not be reset (/proc/self/clear_refs): "
              "peaks are ru_maxrss, the peak since the process started, model building "
              "included")
    print("run peak = highest RSS of the run minus the RSS after the imports (model, "
          "optimizer, data, 1 + 3 steps); VmHWM = highest RSS of the process, libraries "
          "included")
    head = (f"{'config':<26}{'rnnkit run MiB':>17}{'torch run MiB':>16}{'ratio':>8}"
            f"{'rnnkit VmHWM MiB':>18}{'torch VmHWM MiB':>17}{'ratio':>8}")
    print(head)
    print("-" * len(head))
    for cfg, res in rows:
        r, t = res["rnnkit"], res["torch"]
        sr = (r["peak_kib"] - r["rss_before_kib"]) / 1024
        st = (t["peak_kib"] - t["rss_before_kib"]) / 1024
        ratio = f"{sr / st:.2f}" if st > 0 else "n/a"
        print(f"{cfg.name:<26}{sr:>17.1f}{st:>16.1f}{ratio:>8}{r['peak_kib'] / 1024:>18.1f}"
              f"{t['peak_kib'] / 1024:>17.1f}{r['peak_kib'] / t['peak_kib']:>8.2f}")
    print()


def _timing_columns(tr, tt, tn, unit: float, width: int, digits: int) -> str:
    """rnnkit, spread, torch, spread, ratio, min ratio, numpy, numpy ratio (rnnkit's numpy
    engine / torch; '-' when it was not timed), times in 1/unit seconds."""
    mr, mt = median(tr), median(tt)
    npy = (f"{median(tn) * unit:>{width}.{digits}f}{median(tn) / mt:>13.2f}" if tn
           else f"{'-':>{width}}{'-':>13}")
    return (f"{mr * unit:>{width + 1}.{digits}f}{spread(tr):>7.0f}%"
            f"{mt * unit:>{width + 1}.{digits}f}{spread(tt):>7.0f}%"
            f"{mr / mt:>8.2f}{min(tr) / min(tt):>11.2f}{npy}")


def _timing_head(unit: str, width: int) -> str:
    return (f"{'rnnkit ' + unit:>{width + 1}}{'spread':>8}{'torch ' + unit:>{width + 1}}"
            f"{'spread':>8}{'ratio':>8}{'min ratio':>11}{'numpy ' + unit:>{width}}"
            f"{'numpy ratio':>13}")


def print_layer_table(rows: list, where: str) -> None:
    print("Recurrent layer alone, dense float32 inputs (D = H): forward + backward with the "
          "input gradient, one pass over the batch")
    print(f"measured on: {where}")
    print("rnnkit: out, _, cache = layer.forward(x); dx, _, grads = layer.backward(dout, "
          "cache); torch: out, _ = m(x) (batch_first, x.requires_grad_(True)), "
          "out.backward(dout)")
    print_numpy_note("numpy ms / numpy ratio", "pass", [row[-1] for row in rows])
    head = f"{'config':<26}{_timing_head('ms', 10)}{'others':>8}"
    print(head)
    print("-" * len(head))
    for cfg, tr, tt, tn, oth, _ in rows:
        print(f"{cfg.name:<26}{_timing_columns(tr, tt, tn, 1e3, 10, 2)}{pct(oth):>8}")
    print()


def print_step_table(rows: list, where: str) -> None:
    calls = sorted({cfg.calls for cfg, *_ in rows})
    print("One LSTM time step per call with carried state, batch 1, x (1, 1, H); time per "
          f"call over {'/'.join(map(str, calls))} consecutive calls")
    print(f"measured on: {where}")
    print("rnnkit: out, state, _ = lstm.forward(x, state) (lstm.eval()); torch: out, state = "
          "m(x, state) under torch.inference_mode()")
    print_numpy_note("numpy us / numpy ratio", "calls", [row[-1] for row in rows])
    head = f"{'config':<20}{_timing_head('us', 10)}{'others':>8}"
    print(head)
    print("-" * len(head))
    for cfg, tr, tt, tn, oth, _ in rows:
        n = cfg.calls
        per = [[t / n for t in ts] if ts else ts for ts in (tr, tt, tn)]
        print(f"{cfg.name:<20}{_timing_columns(*per, 1e6, 10, 1)}{pct(oth):>8}")
    print()


def print_gen_table(rows: list, where: str, ort_version: str | None) -> None:
    print("Generation, batch 1, time per character (one-hot in, step, output layer, "
          "softmax, sample)")
    print(f"measured on: {where}")
    print("(a) torch.nn.LSTM with carried state, (b) torch.nn.LSTMCell loop; "
          "both under torch.inference_mode()")
    if ort_version:
        print(f"(c) ONNX Runtime {ort_version}: the step graph of rnnkit.onnx.export, one "
              "session.run per character (its threads as the libraries'), timed after the "
              "others in a block of its own (its idle workers spin on)")
    else:
        print("(c) ONNX Runtime: not timed (pip install 'rnnkit[onnx]')")
    head = (f"{'config':<20}{'rnnkit us':>11}{'(a) us':>9}{'(b) us':>9}{'(c) us':>9}"
            f"{'ratio (a)':>11}{'ratio (b)':>11}{'ratio (c)':>11}{'spread r/a/b/c':>18}"
            f"{'others':>8}")
    print(head)
    print("-" * len(head))
    for cfg, tr, ta, tb, tc, oth in rows:
        n = cfg.chars
        mr, ma, mb = median(tr) / n, median(ta) / n, median(tb) / n
        sp = f"{spread(tr):.0f}/{spread(ta):.0f}/{spread(tb):.0f}"
        if tc:
            mc = median(tc) / n
            c_us, c_ratio, sp = f"{mc * 1e6:>9.1f}", f"{mr / mc:>11.2f}", f"{sp}/{spread(tc):.0f}"
        else:
            c_us, c_ratio, sp = f"{'-':>9}", f"{'-':>11}", f"{sp}/-"
        print(f"{cfg.name:<20}{mr * 1e6:>11.1f}{ma * 1e6:>9.1f}{mb * 1e6:>9.1f}{c_us}"
              f"{mr / ma:>11.2f}{mr / mb:>11.2f}{c_ratio}{sp + '%':>18}{pct(oth):>8}")
    print()


# --------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Time rnnkit against PyTorch (CPU) side by side: full training steps of "
        "a character model (forward, softmax cross-entropy over 65 symbols, backward, Adam) "
        "with their share of this machine's matrix-product throughput, the recurrent layer "
        "alone (forward + backward with dense inputs), the peak memory of training, "
        "single LSTM steps with carried state, and character-by-character generation. "
        "Prints rnnkit/PyTorch ratios (< 1: rnnkit is faster or smaller).",
        epilog="Run with OpenBLAS tuning variables unset for this command only: "
        "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py",
    )
    ap.add_argument("--quick", action="store_true",
                    help="fast smoke run (seconds): small configurations, 5 repetitions, "
                    f"memory of {MEMORY_QUICK.name}")
    ap.add_argument("--only", nargs="+", metavar="PATTERN",
                    help="time only the configurations whose name matches a glob pattern "
                    "(e.g. 'train/lstm*' 'layer/*' 'step/*' 'gen/*') or contains a plain "
                    "string (e.g. 256); "
                    "no memory measurement unless --memory is given; see --list")
    ap.add_argument("--memory", nargs="*", metavar="PATTERN",
                    help="measure the peak memory of training (each library in a fresh "
                    "subprocess) for the training configurations matching PATTERN (as for "
                    "--only; an exact train/<kind>/<B>x<T>x<H> name outside the table also "
                    f"works), by default {MEMORY_DEFAULT.name} ({MEMORY_QUICK.name} with "
                    "--quick); without --only, only memory is measured. The default full "
                    f"run includes {MEMORY_DEFAULT.name}")
    ap.add_argument("--list", action="store_true",
                    help="print the configuration names (respecting --quick/--only/--memory) "
                    "and exit")
    ap.add_argument("--reps", type=int, default=None,
                    help="timed repetitions per library and configuration "
                    "(default 15, or 5 with --quick)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed warm-up calls per library and configuration "
                    "(default 2)")
    ap.add_argument("--gen-chars", type=int, default=None,
                    help="characters generated per timed generation repetition "
                    "(default 200, or 30 with --quick)")
    ap.add_argument("--step-calls", type=int, default=None,
                    help="consecutive one-step LSTM calls per timed repetition of the step "
                    "table (default 200, or 30 with --quick)")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for both numpy's BLAS (set with threadpoolctl) and PyTorch "
                    "(torch.set_num_threads) (default 2)")
    ap.add_argument("--torch-adam", choices=("auto", *TORCH_ADAM), default="auto",
                    help="torch.optim.Adam variant of the PyTorch step: 'default' (foreach "
                    "and fused unset: the per-parameter loop on CPU), 'foreach' "
                    "(foreach=True), 'fused' (fused=True), or 'auto' (default): the fastest "
                    f"of the three, timed at startup on the parameters of "
                    f"{ADAM_CHOICE_CONFIG.name}")
    ap.add_argument("--no-numpy-engine", action="store_true",
                    help="do not time rnnkit's numpy engine beside its accelerated backend "
                    "(the 'numpy ms' column; it is timed by default when the backend is "
                    "available, i.e. numba is installed)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the weights, data and sampling (default 0)")
    ap.add_argument("--_memory-child", nargs=2, metavar=("LIB", "CONFIG"), dest="memory_child",
                    help="internal, used by --memory: measure the peak memory of LIB (rnnkit "
                    "or torch) training CONFIG in this process and print one JSON line")
    args = ap.parse_args(argv)
    if args.reps is None:
        args.reps = 5 if args.quick else 15
    if args.warmup is None:
        args.warmup = 2
    if args.gen_chars is None:
        args.gen_chars = 30 if args.quick else 200
    if args.step_calls is None:
        args.step_calls = 30 if args.quick else 200
    for name in ("reps", "gen_chars", "step_calls", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        ap.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.memory_child:
        lib, name = args.memory_child
        if lib not in ("rnnkit", "torch"):
            ap.error(f"--_memory-child: LIB must be rnnkit or torch, got {lib!r}")
        try:
            parse_train_name(name)
        except ValueError as e:
            ap.error(f"--_memory-child: {e}")
        if lib == "torch" and args.torch_adam == "auto":
            ap.error("--_memory-child torch needs an explicit --torch-adam variant")
    return args


def memory_configs(args, pool: list) -> list:
    """The training configurations whose peak memory is measured."""
    default = MEMORY_QUICK if args.quick else MEMORY_DEFAULT
    if args.memory is None:  # not asked for: only in the default (full or quick) run
        return [] if args.only else [default]
    if not args.memory:
        return [default]
    cfgs = select(pool, args.memory)
    for pat in args.memory:
        if not any(ch in pat for ch in "*?[") and pat.startswith("train/"):
            try:
                cfg = parse_train_name(pat)
            except ValueError:
                continue
            if cfg not in cfgs:
                cfgs.append(cfg)
    return cfgs


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        return memory_child(*args.memory_child, args.threads, args.seed, args.torch_adam)
    every = (quick_configs if args.quick else full_configs)(args.gen_chars, args.step_calls)
    mem_cfgs = memory_configs(args, [c for c in every if isinstance(c, TrainConfig)])
    # with --memory alone, only memory is measured
    cfgs = [] if args.memory is not None and not args.only else select(every, args.only)
    if args.only and not cfgs:
        print(f"error: --only {' '.join(args.only)} matches no configuration (see --list)",
              file=sys.stderr)
        return 2
    if args.memory and not mem_cfgs:
        print(f"error: --memory {' '.join(args.memory)} matches no training configuration "
              "(see --list)", file=sys.stderr)
        return 2
    if args.list:
        for c in cfgs:
            print(c.name)
        for c in mem_cfgs:
            print(f"memory: {c.name}")
        return 0
    train_cfgs = [c for c in cfgs if isinstance(c, TrainConfig)]

    # numpy's BLAS is set up and described before torch is imported, so that threadpoolctl
    # reports (and limits) numpy's library and not PyTorch's
    set_numpy_threads(args.threads)
    blas = numpy_blas_info()
    import torch

    import rnnkit

    torch.set_num_threads(args.threads)

    print("rnnkit vs PyTorch (CPU), float32; ratio = rnnkit / torch (< 1: rnnkit faster or "
          "smaller)")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores ({platform.machine()}); "
          f"{platform.system()} {platform.release()}; Python {platform.python_version()}")
    print(f"CPU vector extensions: {describe_extensions(long=True)}")
    print(f"numpy BLAS kernel: {blas_kernel(blas)} (threadpoolctl's architecture)")
    print(f"versions: numpy {np.__version__}, torch {torch.__version__}, "
          f"onnxruntime {ort_version() or '(not installed)'}, "
          f"rnnkit {rnnkit.__version__} ({Path(rnnkit.__file__).parent})")
    print(f"numpy BLAS (threadpoolctl): {describe_blas(blas)}")
    print(f"rnnkit engine: {engine_line()}")
    print(f"torch parallel_info: {torch_threads_line(torch)}")
    print("thread-pool spinning: " + ", ".join(f"{k}={os.environ.get(k)}" for k in SPIN_LIMITS)
          + " (OpenBLAS idles 2**value cycles; libgomp spin count)")
    for var in THREAD_VARS:
        if var in os.environ:
            print(f"env: {var}={os.environ[var]}")
    set_vars = {v: os.environ[v] for v in OPENBLAS_VARS if v in os.environ}
    for v in OPENBLAS_VARS:
        print(f"env: {v} is " + (f"SET to {os.environ[v]!r}" if v in set_vars else "unset"))
    if set_vars:
        kernel = ", ".join(str(d.get("architecture")) for d in blas) or "unknown"
        msg = ("WARNING: " + ", ".join(f"{k}={v}" for k, v in set_vars.items()) + " in the "
               f"environment: OpenBLAS may then use a slower kernel than the CPU allows (in "
               f"use: {kernel}), which makes rnnkit look slower than it is. Re-run as: "
               "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py")
        print(msg)
        print(msg, file=sys.stderr)
    adam = args.torch_adam
    if train_cfgs or mem_cfgs:
        if adam == "auto":
            adam, adam_times, n_params = choose_torch_adam(torch, args.seed)
            timed = ", ".join(f"{v} {t * 1e3:.3f} ms" if isinstance(t, float) else f"{v} {t}"
                              for v, t in adam_times.items())
            print(f"torch.optim.Adam: {adam} ({adam_kwargs(adam)}), "
                  f"the fastest optimizer step on the {n_params:,} parameters of "
                  f"{ADAM_CHOICE_CONFIG.name} (medians of 20 interleaved steps: {timed})")
        else:
            print(f"torch.optim.Adam: {adam} ({adam_kwargs(adam)}), set by --torch-adam")
    if cfgs:
        print(f"method: {args.reps} interleaved repetitions (rnnkit, torch[, rnnkit's numpy "
              f"engine], rnnkit, torch, ...) after {args.warmup} warm-up call(s); medians; "
              f"spread = interquartile "
              f"range / median; min ratio = ratio of the fastest calls; {args.threads} threads "
              f"each; others = share of the CPUs used by other processes while a "
              f"configuration ran")
    print(f"load average at start: {load_average()}")
    print(flush=True)

    whole_run = OtherLoad()
    train_rows, layer_rows, step_rows, gen_rows, mem_rows = [], [], [], [], []
    gemm = GemmTimer(args.seed)
    try:
        for cfg in cfgs:
            print(f"  {cfg.name} ...", end="", flush=True)
            t0 = time.perf_counter()
            other = OtherLoad()
            if isinstance(cfg, TrainConfig):
                fns, diff = build_train(cfg, torch, args.seed, adam, not args.no_numpy_engine)
                tr, tt, *tn = time_interleaved(fns, args.reps, args.warmup)
                del fns
                products = gemm_products(cfg)
                floor = gemm.floor(products)  # after the steps: the noise check covers both
                train_rows.append((cfg, tr, tt, tn[0] if tn else None, other.share(),
                                   step_flops(products), floor, diff))
            elif isinstance(cfg, (LayerConfig, StepConfig)):
                build = build_layer if isinstance(cfg, LayerConfig) else build_step
                fns, diff = build(cfg, torch, args.seed, not args.no_numpy_engine)
                tr, tt, *tn = time_interleaved(fns, args.reps, args.warmup)
                del fns
                rows = layer_rows if isinstance(cfg, LayerConfig) else step_rows
                rows.append((cfg, tr, tt, tn[0] if tn else None, other.share(), diff))
            else:
                fns = build_gen(cfg, torch, args.seed, args.threads)
                tr, ta, tb = time_interleaved(fns[:3], args.reps, args.warmup)
                # ONNX Runtime in a block of its own, after the others: its idle workers
                # keep spinning long after session.run returns and would take a core from
                # the library timed next (rnnkit's 512-unit step took 157-193 us
                # interleaved with it, 73-106 us apart). Dropping the session ends them.
                tc = time_interleaved(fns[3:], args.reps, args.warmup)
                del fns
                gc.collect()
                gen_rows.append((cfg, tr, ta, tb, tc[0] if tc else None, other.share()))
            print(f" {time.perf_counter() - t0:.1f} s", flush=True)
        for cfg in mem_cfgs:
            print(f"  memory {cfg.name} ...", end="", flush=True)
            t0 = time.perf_counter()
            mem_rows.append((cfg, measure_memory(cfg, args.threads, args.seed, adam)))
            print(f" {time.perf_counter() - t0:.1f} s", flush=True)
    except MismatchError as e:
        print(f"\nerror: {e}\nThe timings would not compare equal work; aborting.",
              file=sys.stderr)
        return 1
    print()

    where = machine_summary(blas, args.threads)
    if train_rows:
        print_train_table(train_rows, adam, args.threads, where)
    if layer_rows:
        print_layer_table(layer_rows, where)
    if mem_rows:
        print_memory_table(mem_rows, where)
    if step_rows:
        print_step_table(step_rows, where)
    if gen_rows:
        print_gen_table(gen_rows, where, ort_version())
    share = whole_run.share()
    print(f"other processes used {pct(share)} of the CPUs during the run "
          f"(column 'others': per configuration)")
    if share is not None and share > 0.05:
        print("WARNING: other processes competed for the CPUs: multi-threaded timings on a "
              "small machine suffer badly from that; check the spread columns and re-run "
              "when the machine is idle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
