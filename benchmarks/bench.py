"""rnnkit against PyTorch (CPU), side by side in one run: training steps and generation.

What is timed (float32, both libraries on the same number of threads):

* **train**: one training step, forward + backward, of a recurrent layer followed by a
  per-step linear output layer and a softmax cross-entropy summed over all B*T targets,
  V = 65 symbols. Input: one-hot vectors (B, T, 65). No optimizer update.
* **gen**: generating characters one at a time with batch 1: feed the previous character
  (one-hot), one recurrent step, output layer, softmax, sample. rnnkit uses
  ``layer.step``; PyTorch is timed two ways, (a) ``nn.LSTM`` on a (1, 1, 65) input with
  carried state and (b) a loop of ``nn.LSTMCell`` (stacked for 2 layers), both under
  ``torch.inference_mode()``.

Before timing, each configuration checks that rnnkit and PyTorch compute the same loss and
gradients (train) or the same next-character probabilities (gen) from the same weights, so
that the timings compare equal work; it aborts otherwise.

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
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

V = 65  # vocabulary size (tiny Shakespeare has 65 symbols)
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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


@dataclass(frozen=True)
class GenConfig:
    """One generation measurement (LSTM, batch 1)."""

    layers: int  # stacked LSTM layers
    hidden: int  # H
    chars: int  # characters generated per timed repetition

    @property
    def name(self) -> str:
        return f"gen/lstm/h{self.hidden}-l{self.layers}"


def full_configs(gen_chars: int) -> list:
    shapes = [(32, 100, 128), (32, 100, 256), (64, 100, 512)]
    cfgs: list = [TrainConfig(k, 1, *s) for s in shapes for k in ("lstm", "gru", "rnn")]
    cfgs.append(TrainConfig("lstm", 2, 32, 100, 256))
    # the setting of Karpathy's min-char-rnn: batch 1, 25 steps, 100 hidden units
    cfgs += [TrainConfig(k, 1, 1, 25, 100) for k in ("lstm", "gru", "rnn")]
    cfgs += [GenConfig(L, H, gen_chars) for H in (256, 512) for L in (1, 2)]
    return cfgs


def quick_configs(gen_chars: int) -> list:
    cfgs: list = [TrainConfig(k, 1, 8, 20, 64) for k in ("lstm", "gru", "rnn")]
    cfgs.append(TrainConfig("lstm", 2, 8, 20, 64))
    cfgs.append(TrainConfig("rnn", 1, 1, 25, 100))
    cfgs += [GenConfig(L, 64, gen_chars) for L in (1, 2)]
    return cfgs


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
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unavailable"


class OtherLoad:
    """How much CPU other processes used while a block ran: a direct noise indicator.

    ``/proc/stat`` gives the machine's busy time and ``os.times`` this process's own;
    the difference over the block, divided by its wall time and the number of CPUs, is the
    share of the machine that other processes took (0 on an idle machine). None where
    ``/proc/stat`` is unavailable.
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
        own = os.times()
        return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.perf_counter()

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


def set_numpy_threads(n: int) -> None:
    """Limit numpy's BLAS (only the libraries loaded so far: call before importing torch)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print(f"warning: threadpoolctl missing, numpy's BLAS threads not set to {n}",
              file=sys.stderr)
        return
    threadpool_limits(limits=n, user_api="blas")  # stays in force for the whole run


def torch_threads_line(torch) -> str:
    keep = ("at::get_num_threads", "at::get_num_interop_threads", "omp_get_max_threads",
            "mkl_get_max_threads", "Math Kernel Library", "MKL-DNN", "parallel backend")
    lines = [ln.strip() for ln in torch.__config__.parallel_info().splitlines()]
    return "; ".join(ln for ln in lines if any(k in ln for k in keep))


# --------------------------------------------------------------------------- numpy loss
# The output layer and loss of the rnnkit side are written here with plain numpy, so that
# the table measures the recurrent engine plus a minimal, fixed amount of extra work.
# TODO: switch to the library's own output layer and loss (rnnkit.layers.Dense and
# rnnkit.losses.softmax_cross_entropy(logits, targets, reduction="sum")) so that the table
# shows what a user of the library pays, argument checks included.
def output_loss_numpy(hs: np.ndarray, W_y: np.ndarray, b_y: np.ndarray, targets: np.ndarray):
    """Per-step linear output layer + softmax cross-entropy summed over all targets.

    hs (N, H) hidden states, W_y (H, V), b_y (V,), targets (N,) ints.
    Returns loss (float), dhs (N, H), dW_y (H, V), db_y (V,).
    """
    N = hs.shape[0]
    rows = np.arange(N)
    z = hs @ W_y  # (N, V) logits
    z += b_y
    z -= z.max(axis=1, keepdims=True)
    picked = z[rows, targets]  # shifted logits of the targets, (N,)
    np.exp(z, out=z)
    sums = z.sum(axis=1, keepdims=True)  # (N, 1)
    loss = float(np.log(sums).sum() - picked.sum(dtype=np.float64))
    z /= sums  # probabilities; the gradient of the loss w.r.t. the logits is p - onehot
    z[rows, targets] -= 1
    dW_y = hs.T @ z
    db_y = z.sum(axis=0)
    dhs = z @ W_y.T
    return loss, dhs, dW_y, db_y


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
def make_layer(kind: str, layers: int, hidden: int, rng: np.random.Generator):
    """An rnnkit layer with non-zero biases (so that bias handling is checked too)."""
    import rnnkit

    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[kind]
    layer = cls(V, hidden, num_layers=layers, dtype=np.float32, rng=rng)
    for name, p in layer.params.items():
        if name.endswith(".b") or name.endswith(".b_hn"):
            p[...] = rng.uniform(-0.1, 0.1, p.shape).astype(np.float32)
    return layer


def make_output(hidden: int, rng: np.random.Generator):
    k = 1.0 / np.sqrt(hidden)
    W_y = rng.uniform(-k, k, (hidden, V)).astype(np.float32)
    b_y = rng.uniform(-k, k, V).astype(np.float32)
    return W_y, b_y


def torch_linear(torch, W_y: np.ndarray, b_y: np.ndarray):
    lin = torch.nn.Linear(W_y.shape[0], V)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W_y.T)))
        lin.bias.copy_(torch.from_numpy(b_y))
    return lin


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-30))


class MismatchError(RuntimeError):
    """rnnkit and PyTorch disagree: the timings would not compare equal work."""


# --------------------------------------------------------------------------- train
def build_train(cfg: TrainConfig, torch, seed: int):
    """Return (rnnkit_step, torch_step), after checking that they compute the same thing."""
    import torch.nn.functional as F

    from rnnkit.interop import to_torch

    rng = np.random.default_rng(seed)
    B, T, H = cfg.batch, cfg.steps, cfg.hidden
    layer = make_layer(cfg.kind, cfg.layers, H, rng)
    W_y, b_y = make_output(H, rng)
    chars = rng.integers(0, V, size=(B, T + 1))
    eye = np.eye(V, dtype=np.float32)
    x = eye[chars[:, :-1]]  # (B, T, V) one-hot inputs
    targets = chars[:, 1:].reshape(-1)  # (B*T,) the next characters

    def rnnkit_step():
        out, _, cache = layer.forward(x)  # (B, T, H)
        loss, dhs, dW_y, db_y = output_loss_numpy(out.reshape(B * T, H), W_y, b_y, targets)
        _, _, grads = layer.backward(dhs.reshape(B, T, H), cache)
        grads["W_y"], grads["b_y"] = dW_y, db_y
        # ---- optimizer update (Adam) goes here once rnnkit has one ----
        return loss, grads

    rnn_t = to_torch(layer)
    lin_t = torch_linear(torch, W_y, b_y)
    params_t = list(rnn_t.parameters()) + list(lin_t.parameters())
    x_t = torch.from_numpy(x)
    y_t = torch.from_numpy(targets)

    def torch_step():
        for p in params_t:
            p.grad = None
        out, _ = rnn_t(x_t)  # (B, T, H)
        loss = F.cross_entropy(lin_t(out).reshape(-1, V), y_t, reduction="sum")
        loss.backward()
        # ---- optimizer update (torch.optim.Adam) goes here, matching the rnnkit side ----
        return loss

    # same loss and gradients for the same weights, or the comparison is meaningless
    loss_r, grads = rnnkit_step()
    loss_t = float(torch_step().item())
    problems = []
    if abs(loss_r - loss_t) > 1e-4 * abs(loss_t):
        problems.append(f"loss rnnkit {loss_r:.6f} vs torch {loss_t:.6f}")
    pairs = {"W_y": lin_t.weight.grad.T, "b_y": lin_t.bias.grad}
    for k in range(cfg.layers):
        pairs[f"l{k}.W_x"] = getattr(rnn_t, f"weight_ih_l{k}").grad.T
        pairs[f"l{k}.W_h"] = getattr(rnn_t, f"weight_hh_l{k}").grad.T
    for name, g_t in pairs.items():
        e = rel_err(grads[name], g_t.numpy())
        if e > 1e-3:
            problems.append(f"gradient {name}: relative error {e:.2e}")
    if problems:
        raise MismatchError(f"{cfg.name}: rnnkit and PyTorch differ: " + "; ".join(problems))
    return rnnkit_step, torch_step


# --------------------------------------------------------------------------- generation
def build_gen(cfg: GenConfig, torch, seed: int):
    """Return (rnnkit_gen, torch_lstm_gen, torch_cell_gen), each generating cfg.chars
    characters from a zero state, after checking that they give the same probabilities."""
    from rnnkit.interop import to_torch

    rng = np.random.default_rng(seed)
    H, L = cfg.hidden, cfg.layers
    layer = make_layer("lstm", L, H, rng).eval()
    W_y, b_y = make_output(H, rng)
    eye = np.eye(V, dtype=np.float32)

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
        h, state = layer.step(eye[prev : prev + 1], state)  # h (1, H)
        return softmax_numpy((h @ W_y)[0] + b_y), state

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

    # same next-character probabilities along a fixed input sequence
    fixed = rng.integers(0, V, size=20)
    s_r, s_a, s_b = None, zero_lstm_state(), zero_cell_states()
    worst = 0.0
    with torch.inference_mode():
        for prev in fixed:
            p_r, s_r = rnnkit_probs(int(prev), s_r)
            p_a, s_a = lstm_probs(int(prev), s_a)
            p_b, s_b = cell_probs(int(prev), s_b)
            worst = max(worst, float(np.abs(p_r - p_a.numpy()).max()),
                        float(np.abs(p_r - p_b.numpy()).max()))
    if worst > 1e-5:
        raise MismatchError(f"{cfg.name}: next-character probabilities of rnnkit and PyTorch "
                            f"differ by up to {worst:.2e} (expected <= 1e-5)")
    return rnnkit_gen, torch_lstm_gen, torch_cell_gen


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


def median(ts: list[float]) -> float:
    return statistics.median(ts)


def spread(ts: list[float]) -> float:
    """Interquartile range relative to the median, in percent (a noise indicator)."""
    if len(ts) < 4:
        return (max(ts) - min(ts)) / median(ts) * 100
    q = statistics.quantiles(ts, n=4)
    return (q[2] - q[0]) / median(ts) * 100


# --------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Time rnnkit against PyTorch (CPU) side by side: training steps "
        "(forward + backward with a softmax cross-entropy over 65 symbols) and "
        "character-by-character generation. Prints rnnkit/PyTorch time ratios "
        "(< 1: rnnkit is faster).",
        epilog="Run with OpenBLAS tuning variables unset for this command only: "
        "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py",
    )
    ap.add_argument("--quick", action="store_true",
                    help="fast smoke run (seconds): small configurations, 5 repetitions")
    ap.add_argument("--only", nargs="+", metavar="PATTERN",
                    help="run only the configurations whose name matches a glob pattern "
                    "(e.g. 'train/lstm*' 'gen/*') or contains a plain string (e.g. 256); "
                    "see --list")
    ap.add_argument("--list", action="store_true",
                    help="print the configuration names (respecting --quick/--only) and exit")
    ap.add_argument("--reps", type=int, default=None,
                    help="timed repetitions per library and configuration "
                    "(default 15, or 5 with --quick)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed warm-up calls per library and configuration "
                    "(default 2)")
    ap.add_argument("--gen-chars", type=int, default=None,
                    help="characters generated per timed generation repetition "
                    "(default 200, or 30 with --quick)")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for both numpy's BLAS and PyTorch (default 2)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the weights, data and sampling (default 0)")
    args = ap.parse_args(argv)
    if args.reps is None:
        args.reps = 5 if args.quick else 15
    if args.warmup is None:
        args.warmup = 2
    if args.gen_chars is None:
        args.gen_chars = 30 if args.quick else 200
    for name in ("reps", "gen_chars", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        ap.error(f"--warmup must be >= 0, got {args.warmup}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cfgs = select((quick_configs if args.quick else full_configs)(args.gen_chars), args.only)
    if args.list:
        print("\n".join(c.name for c in cfgs))
        return 0
    if not cfgs:
        print(f"error: --only {' '.join(args.only)} matches no configuration (see --list)",
              file=sys.stderr)
        return 2

    # numpy's BLAS is set up and described before torch is imported, so that threadpoolctl
    # reports (and limits) numpy's library and not PyTorch's
    set_numpy_threads(args.threads)
    blas = numpy_blas_info()
    import torch

    import rnnkit

    torch.set_num_threads(args.threads)

    print("rnnkit vs PyTorch (CPU), float32; ratio = rnnkit time / torch time (< 1: rnnkit "
          "faster)")
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores; {platform.system()} "
          f"{platform.release()}; Python {platform.python_version()}")
    print(f"versions: numpy {np.__version__}, torch {torch.__version__}, "
          f"rnnkit {rnnkit.__version__}")
    print(f"numpy BLAS (threadpoolctl): {describe_blas(blas)}")
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
    print(f"method: {args.reps} interleaved repetitions (rnnkit, torch, rnnkit, torch, ...) "
          f"after {args.warmup} warm-up call(s); "
          f"medians; spread = interquartile range / median; min ratio = ratio of the "
          f"fastest calls; {args.threads} threads each; others = share of the CPUs used "
          f"by other processes while a configuration ran")
    print(f"load average at start: {load_average()}")
    print(flush=True)

    whole_run = OtherLoad()
    train_rows, gen_rows = [], []
    try:
        for cfg in cfgs:
            print(f"  {cfg.name} ...", end="", flush=True)
            t0 = time.perf_counter()
            other = OtherLoad()
            if isinstance(cfg, TrainConfig):
                fns = build_train(cfg, torch, args.seed)
                tr, tt = time_interleaved(list(fns), args.reps, args.warmup)
                train_rows.append((cfg, tr, tt, other.share()))
            else:
                fns = build_gen(cfg, torch, args.seed)
                tr, ta, tb = time_interleaved(list(fns), args.reps, args.warmup)
                gen_rows.append((cfg, tr, ta, tb, other.share()))
            print(f" {time.perf_counter() - t0:.1f} s", flush=True)
    except MismatchError as e:
        print(f"\nerror: {e}\nThe timings would not compare equal work; aborting.",
              file=sys.stderr)
        return 1
    print()

    if train_rows:
        print("Training step: forward + backward, linear output + softmax cross-entropy "
              f"(V={V}, sum over B*T), no optimizer update")
        head = (f"{'config':<26}{'rnnkit ms':>11}{'spread':>8}{'torch ms':>11}{'spread':>8}"
                f"{'ratio':>8}{'min ratio':>11}{'others':>8}")
        print(head)
        print("-" * len(head))
        for cfg, tr, tt, oth in train_rows:
            mr, mt = median(tr), median(tt)
            print(f"{cfg.name:<26}{mr * 1e3:>11.2f}{spread(tr):>7.0f}%{mt * 1e3:>11.2f}"
                  f"{spread(tt):>7.0f}%{mr / mt:>8.2f}{min(tr) / min(tt):>11.2f}"
                  f"{pct(oth):>8}")
        print()
    if gen_rows:
        print("Generation, batch 1, time per character (one-hot in, step, output layer, "
              "softmax, sample)")
        print("(a) torch.nn.LSTM with carried state, (b) torch.nn.LSTMCell loop; "
              "both under torch.inference_mode()")
        head = (f"{'config':<20}{'rnnkit us':>11}{'(a) us':>9}{'(b) us':>9}"
                f"{'ratio (a)':>11}{'ratio (b)':>11}{'spread r/a/b':>16}{'others':>8}")
        print(head)
        print("-" * len(head))
        for cfg, tr, ta, tb, oth in gen_rows:
            n = cfg.chars
            mr, ma, mb = median(tr) / n, median(ta) / n, median(tb) / n
            sp = f"{spread(tr):.0f}/{spread(ta):.0f}/{spread(tb):.0f}%"
            print(f"{cfg.name:<20}{mr * 1e6:>11.1f}{ma * 1e6:>9.1f}{mb * 1e6:>9.1f}"
                  f"{mr / ma:>11.2f}{mr / mb:>11.2f}{sp:>16}{pct(oth):>8}")
        print()
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
