"""Optimizers, gradient clipping and learning-rate schedules.

An optimizer holds a reference to a dict of parameters and updates the arrays **in place**
(``opt.step(grads)``, grads keyed like the parameters), so layers and models that share
those arrays see the new values. Settings are validated at construction; running state
(moments, step count) is kept per parameter name and round-trips through
``state_dict()`` / ``load_state_dict()`` as plain arrays and numbers (no pickle).

The update rules follow ``torch.optim`` exactly (same defaults and the same formulas), so
the same gradients give the same parameters.
"""

from __future__ import annotations

import math

import numpy as np

from . import accelerated
from ._checks import shape_str


def _check_number(value, name, minimum=0.0, strict=False, maximum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    bad = (value <= minimum) if strict else (value < minimum)
    if maximum is not None and value >= maximum:
        bad = True
    if bad or not math.isfinite(value):
        lo = f"> {minimum}" if strict else f">= {minimum}"
        hi = f" and < {maximum}" if maximum is not None else ""
        raise ValueError(f"Invalid {name}: {value} (must be {lo}{hi})")
    return value


class Optimizer:
    """Base class. ``params``: dict name -> float array, updated in place by ``step``."""

    #: names of the per-parameter state arrays, e.g. ("m", "v")
    slots: tuple[str, ...] = ()

    def __init__(self, params: dict, lr: float, weight_decay: float = 0.0):
        if not isinstance(params, dict) or not params:
            raise TypeError("params must be a non-empty dict of name -> numpy array")
        for k, v in params.items():
            if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
                raise TypeError(
                    f"params[{k!r}] must be a float numpy array, got {type(v).__name__}")
        self.params = params
        self.lr = _check_number(lr, "learning rate", 0.0, strict=True)
        self.weight_decay = _check_number(weight_decay, "weight_decay")
        self.t = 0  # steps taken
        self.state: dict[str, dict[str, np.ndarray]] = {
            k: {s: np.zeros_like(v) for s in self.slots} for k, v in params.items()
        }

    def _check_grads(self, grads: dict) -> None:
        for k, p in self.params.items():
            if k not in grads:
                raise KeyError(f"grads has no entry for parameter {k!r}")
            if grads[k].shape != p.shape:
                raise ValueError(f"grads[{k!r}] has shape {shape_str(grads[k].shape)}, "
                                 f"expected {shape_str(p.shape)}")

    def step(self, grads: dict) -> None:
        """Apply one update with ``grads`` (dict keyed like params, same shapes)."""
        self._check_grads(grads)
        self.t += 1
        for k, p in self.params.items():
            g = grads[k]
            if g.dtype != p.dtype:
                g = g.astype(p.dtype)
            self._update(p, g, self.state[k])

    def _update(self, p, g, s) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def settings(self) -> dict:
        """The constructor settings (JSON-serialisable)."""
        return {"name": type(self).__name__, "lr": self.lr, "weight_decay": self.weight_decay}

    def state_dict(self) -> dict:
        """``{"t": int, "lr": float, "arrays": {"<param>/<slot>": array}}``."""
        arrays = {f"{k}/{s}": a for k, st in self.state.items() for s, a in st.items()}
        return {"t": self.t, "lr": self.lr, "arrays": arrays}

    def load_state_dict(self, sd: dict) -> None:
        """Restore what ``state_dict`` returned (copies into the existing arrays)."""
        arrays = sd["arrays"]
        for k, st in self.state.items():
            for s, a in st.items():
                key = f"{k}/{s}"
                if key not in arrays:
                    raise KeyError(f"optimizer state has no array {key!r}")
                if arrays[key].shape != a.shape:
                    raise ValueError(
                        f"optimizer state {key!r} has shape {shape_str(arrays[key].shape)}, "
                        f"expected {shape_str(a.shape)}")
                np.copyto(a, arrays[key])
        self.t = int(sd["t"])
        self.lr = float(sd["lr"])


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum / Nesterov (torch.optim.SGD).

    ``buf = momentum*buf + g`` (first step: ``buf = g``); ``g = g + momentum*buf`` if
    nesterov else ``buf``; ``p -= lr*g``. weight_decay adds ``wd*p`` to g.
    """

    slots = ("buf",)

    def __init__(self, params, lr=0.001, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum = _check_number(momentum, "momentum")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def _update(self, p, g, s):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            buf = s["buf"]
            if self.t == 1:
                np.copyto(buf, g)
            else:
                buf *= self.momentum
                buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g

    def settings(self):
        """The constructor settings (JSON-serialisable)."""
        return {**super().settings(), "momentum": self.momentum, "nesterov": self.nesterov}


class Momentum(SGD):
    """SGD with momentum 0.9 by default (see :class:`SGD`)."""

    def __init__(self, params, lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr, momentum, nesterov, weight_decay)


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad): ``sum += g^2``; ``p -= lr * g / (sqrt(sum) + eps)``."""

    slots = ("sum",)

    def __init__(self, params, lr=0.01, eps=1e-10, initial_accumulator_value=0.0,
                 weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.eps = _check_number(eps, "eps")
        self.initial_accumulator_value = _check_number(initial_accumulator_value,
                                                       "initial_accumulator_value")
        for st in self.state.values():
            st["sum"][...] = self.initial_accumulator_value

    def _update(self, p, g, s):
        if self.weight_decay:
            g = g + self.weight_decay * p
        s["sum"] += g * g
        p -= self.lr * g / (np.sqrt(s["sum"]) + self.eps)

    def settings(self):
        """The constructor settings (JSON-serialisable)."""
        return {**super().settings(), "eps": self.eps,
                "initial_accumulator_value": self.initial_accumulator_value}


class RMSProp(Optimizer):
    """RMSProp (torch.optim.RMSprop): ``v = alpha*v + (1-alpha)*g^2``;
    ``p -= lr * g / (sqrt(v) + eps)`` (with momentum: through a buffer)."""

    slots = ("v", "buf")

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.alpha = _check_number(alpha, "alpha", 0.0, maximum=1.0)
        self.eps = _check_number(eps, "eps")
        self.momentum = _check_number(momentum, "momentum")

    def _update(self, p, g, s):
        if self.weight_decay:
            g = g + self.weight_decay * p
        v = s["v"]
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        step = g / (np.sqrt(v) + self.eps)
        if self.momentum:
            buf = s["buf"]
            buf *= self.momentum
            buf += step
            step = buf
        p -= self.lr * step

    def settings(self):
        """The constructor settings (JSON-serialisable)."""
        return {**super().settings(), "alpha": self.alpha, "eps": self.eps,
                "momentum": self.momentum}


class Adam(Optimizer):
    """Adam (torch.optim.Adam): bias-corrected first and second moments.

    ``m = b1*m + (1-b1)*g``; ``v = b2*v + (1-b2)*g^2``;
    ``p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``. weight_decay adds ``wd*p``
    to g (L2); see :class:`AdamW` for decoupled decay.
    """

    slots = ("m", "v")
    _l2 = True  # weight decay added to the gradient (AdamW: applied to the parameters)

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_number(betas[0], "beta1", maximum=1.0),
                      _check_number(betas[1], "beta2", maximum=1.0))
        self.eps = _check_number(eps, "eps")
        self._scratch: dict[int, np.ndarray] = {}  # one work array per parameter

    def _decay(self, p, g):
        return g + self.weight_decay * p if self.weight_decay else g

    def _update(self, p, g, s):
        b1, b2 = self.betas
        m, v = s["m"], s["v"]
        fast = accelerated.kernels(p.dtype)
        if fast is not None and all(a.flags.c_contiguous for a in (p, g, m, v)):
            # one fused pass (rnnkit.accelerated), the operations of the code below
            l2 = self.weight_decay if self._l2 else 0.0
            if not self._l2:
                g = self._decay(p, g)
            t = p.dtype.type
            fast.adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                             t(l2), t(1 - b1), t(b2), t(1 - b2),
                             t(math.sqrt(1 - b2**self.t)), t(self.eps),
                             t(self.lr / (1 - b1**self.t)))
            return
        g = self._decay(p, g)
        tmp = self._scratch.get(id(p))
        if tmp is None or tmp.shape != p.shape or tmp.dtype != p.dtype:
            tmp = self._scratch[id(p)] = np.empty_like(p)
        # m += (1 - b1) (g - m)  (= b1 m + (1 - b1) g, as torch computes it)
        np.subtract(g, m, out=tmp)
        tmp *= 1 - b1
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        bc1 = 1 - b1**self.t
        bc2 = 1 - b2**self.t
        np.sqrt(v, out=tmp)
        tmp /= math.sqrt(bc2)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / bc1
        p -= tmp

    def settings(self):
        """The constructor settings (JSON-serialisable)."""
        return {**super().settings(), "betas": list(self.betas), "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): ``p *= 1 - lr*wd`` first."""

    _l2 = False

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)

    def _decay(self, p, g):
        if self.weight_decay:
            p *= 1 - self.lr * self.weight_decay
        return g


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adagrad": Adagrad, "rmsprop": RMSProp,
              "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, params: dict, **settings) -> Optimizer:
    """Build an optimizer by name: sgd, momentum, adagrad, rmsprop, adam, adamw."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    return OPTIMIZERS[name](params, **settings)


# --------------------------------------------------------------------------- clipping
def clip_by_value(grads: dict, max_value: float) -> dict:
    """Element-wise clip of every gradient to [-max_value, max_value], in place (the seeds'
    ``clip``). Returns grads."""
    max_value = _check_number(max_value, "max_value", 0.0, strict=True)
    for g in grads.values():
        np.clip(g, -max_value, max_value, out=g)
    return grads


def clip_by_norm(grads: dict, max_norm: float) -> dict:
    """Rescale each gradient whose L2 norm exceeds max_norm to norm max_norm, in place.
    Returns {name: pre-clip norm}."""
    max_norm = _check_number(max_norm, "max_norm", 0.0, strict=True)
    norms = {}
    for k, g in grads.items():
        n = float(np.sqrt(np.sum(g.astype(np.float64) ** 2)))
        norms[k] = n
        if n > max_norm:
            g *= g.dtype.type(max_norm / (n + 1e-6))
    return norms


def global_norm(grads: dict) -> float:
    """sqrt of the sum of squares of every gradient entry (float64 accumulation)."""
    total = 0.0
    for g in grads.values():
        g = np.asarray(g, dtype=np.float64).ravel()  # float32 squares overflow past ~1e19
        total += float(np.dot(g, g))
    return math.sqrt(total)


def clip_by_global_norm(grads: dict, max_norm: float) -> float:
    """Rescale all gradients together so that their global norm is at most max_norm
    (torch.nn.utils.clip_grad_norm_: factor max_norm/(norm+1e-6)), in place.
    Returns the pre-clip global norm."""
    max_norm = _check_number(max_norm, "max_norm", 0.0, strict=True)
    norm = global_norm(grads)
    if norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= g.dtype.type(scale)
    return norm


def clip_gradients(grads: dict, mode: str, value: float) -> float:
    """Clip by ``mode`` ("value", "norm", "global_norm" or "none"); returns the pre-clip
    global norm."""
    norm = global_norm(grads)
    if mode == "value":
        clip_by_value(grads, value)
    elif mode == "norm":
        clip_by_norm(grads, value)
    elif mode == "global_norm":
        clip_by_global_norm(grads, value)
    elif mode != "none":
        raise ValueError(f"clip mode must be one of value, norm, global_norm, none; got {mode!r}")
    return norm


# --------------------------------------------------------------------------- schedules
class Schedule:
    """Learning rate as a function of the step (0-based): ``lr = schedule(step)``."""

    def __init__(self, base_lr: float):
        self.base_lr = _check_number(base_lr, "base_lr", 0.0, strict=True)

    def __call__(self, step: int) -> float:
        return self.base_lr

    def settings(self) -> dict:
        """The constructor settings (JSON-serialisable)."""
        return {"name": "constant", "base_lr": self.base_lr}


class StepDecay(Schedule):
    """char-rnn style: ``lr = base * gamma ** floor(max(0, step - start) / every)``."""

    def __init__(self, base_lr, every, gamma=0.97, start=0):
        super().__init__(base_lr)
        self.every = int(_check_number(every, "every", 0, strict=True))
        self.gamma = _check_number(gamma, "gamma", 0.0, strict=True)
        self.start = int(_check_number(start, "start"))

    def __call__(self, step):
        return self.base_lr * self.gamma ** (max(0, step - self.start) // self.every)

    def settings(self):
        """The constructor settings (JSON-serialisable)."""
        return {"name": "step", "base_lr": self.base_lr, "every": self.every,
                "gamma": self.gamma, "start": self.start}


class ExponentialDecay(Schedule):
    """``lr = base * gamma ** step``."""

    def __init__(self, base_lr, gamma):
        super().__init__(base_lr)
        self.gamma = _check_number(gamma, "gamma", 0.0, strict=True)

    def __call__(self, step):
        return self.base_lr * self.gamma**step

    def settings(self):
        """The constructor settings (JSON-serialisable)."""
        return {"name": "exponential", "base_lr": self.base_lr, "gamma": self.gamma}


class CosineDecay(Schedule):
    """``lr = min + (base - min) * (1 + cos(pi * min(step, total) / total)) / 2``."""

    def __init__(self, base_lr, total_steps, min_lr=0.0):
        super().__init__(base_lr)
        self.total_steps = int(_check_number(total_steps, "total_steps", 0, strict=True))
        self.min_lr = _check_number(min_lr, "min_lr")

    def __call__(self, step):
        frac = min(step, self.total_steps) / self.total_steps
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * frac)) / 2

    def settings(self):
        """The constructor settings (JSON-serialisable)."""
        return {"name": "cosine", "base_lr": self.base_lr, "total_steps": self.total_steps,
                "min_lr": self.min_lr}


class Warmup(Schedule):
    """Linear warm-up over ``warmup_steps`` (from base/warmup_steps to base), then ``after``."""

    def __init__(self, after: Schedule, warmup_steps):
        if not isinstance(after, Schedule):
            raise TypeError(f"after must be a Schedule, got {type(after).__name__}")
        super().__init__(after.base_lr)
        self.after = after
        self.warmup_steps = int(_check_number(warmup_steps, "warmup_steps", 0, strict=True))

    def __call__(self, step):
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        return self.after(step - self.warmup_steps)

    def settings(self):
        """The constructor settings (JSON-serialisable)."""
        return {"name": "warmup", "warmup_steps": self.warmup_steps, "after": self.after.settings()}
