"""Teacher forcing and scheduled sampling (Bengio, Vinyals, Jaitly & Shazeer 2015).

At training step i, each target token of each sequence is fed to the decoder as the true
previous token with probability ``eps_i``, and as the model's own guess from the previous
step otherwise (drawn from its output distribution, or its argmax). ``eps_i = 1`` is
teacher forcing. The schedules of Bengio et al. (section 2.4), i the training step::

    constant:         eps_i = ratio
    linear:           eps_i = max(minimum, k - c i)
    exponential:      eps_i = max(minimum, k^i)            (k < 1)
    inverse_sigmoid:  eps_i = max(minimum, k / (k + exp(i / k)))   (k >= 1)

No gradient flows through the choice of a token (as in the paper): a fed guess is an input
like the true token.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .._checks import check_choice

SCHEDULES = ("constant", "linear", "exponential", "inverse_sigmoid")
TOKENS = ("sample", "argmax")


def _number(value, name: str, lo: float | None = None, hi: float | None = None,
            strict_lo: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (lo is not None and (v <= lo if strict_lo else v < lo)) or (
            hi is not None and v > hi):
        lo_s = "" if lo is None else f"{'>' if strict_lo else '>='} {lo:g}"
        hi_s = "" if hi is None else f"<= {hi:g}"
        bounds = " and ".join(filter(None, (lo_s, hi_s)))
        raise ValueError(f"{name} must be a finite number {bounds}, got {value!r}")
    return v


@dataclass(frozen=True)
class TeacherForcing:
    """The probability of feeding the true previous token, by training step.

    Args:
        schedule: one of :data:`SCHEDULES`.
        ratio: eps of the constant schedule, in [0, 1].
        k, c: the schedule's constants (linear: offset k and slope c >= 0; exponential:
            0 < k < 1; inverse_sigmoid: k >= 1).
        minimum: the floor of eps, in [0, 1].
        token: how a guess is made: ``"sample"`` from the model's softmax (Bengio et al.) or
            its ``"argmax"``.
    """

    schedule: str = "constant"
    ratio: float = 1.0
    k: float | None = None
    c: float | None = None
    minimum: float = 0.0
    token: str = "sample"

    def __post_init__(self):
        check_choice(self.schedule, "schedule", SCHEDULES)
        check_choice(self.token, "token", TOKENS)
        set_ = object.__setattr__  # frozen: the checked values replace the given ones
        set_(self, "ratio", _number(self.ratio, "ratio", 0.0, 1.0))
        set_(self, "minimum", _number(self.minimum, "minimum", 0.0, 1.0))
        need = {"linear": ("k", "c"), "exponential": ("k",), "inverse_sigmoid": ("k",)}
        for name in need.get(self.schedule, ()):
            if getattr(self, name) is None:
                raise ValueError(f"the {self.schedule} schedule needs {name}")
        if self.schedule == "linear":
            set_(self, "k", _number(self.k, "k"))
            set_(self, "c", _number(self.c, "c", 0.0))
        elif self.schedule == "exponential":
            set_(self, "k", _number(self.k, "k", 0.0, 1.0, strict_lo=True))
        elif self.schedule == "inverse_sigmoid":
            set_(self, "k", _number(self.k, "k", 1.0))

    def __call__(self, step: int) -> float:
        """eps at training step ``step`` (>= 0), in [0, 1]."""
        if self.schedule == "constant":
            return self.ratio
        if self.schedule == "linear":
            eps = self.k - self.c * step
        elif self.schedule == "exponential":
            eps = self.k ** step
        else:
            eps = self.k / (self.k + math.exp(min(step / self.k, 700.0)))
        return min(1.0, max(self.minimum, eps))

    @property
    def always(self) -> bool:
        """True when every step feeds the true token (plain teacher forcing)."""
        return self.schedule == "constant" and self.ratio == 1.0

    def config(self) -> dict:
        """The settings as a JSON dict (what :func:`as_teacher_forcing` reads back)."""
        return asdict(self)

    @classmethod
    def parse(cls, spec: str) -> TeacherForcing:
        """From a command-line string: ``"0.75"`` (constant), ``"linear:k=1,c=1e-4,minimum=0.5"``,
        ``"exponential:k=0.999"``, ``"inverse_sigmoid:k=500"``, optionally ``",token=argmax"``."""
        name, _, rest = str(spec).partition(":")
        try:
            if not rest and name not in SCHEDULES:
                return cls(ratio=float(name))
            kw: dict = {}
            for part in filter(None, rest.split(",")):
                key, _, value = part.partition("=")
                kw[key.strip()] = value.strip() if key.strip() == "token" else float(value)
            return cls(schedule=name, **kw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"teacher forcing {spec!r} is not a ratio or "
                             f"'schedule:k=...,c=...': {e}") from None


def as_teacher_forcing(value) -> TeacherForcing:
    """A ratio in [0, 1], a :class:`TeacherForcing`, or its ``config()`` dict ->
    TeacherForcing."""
    if isinstance(value, TeacherForcing):
        return value
    if isinstance(value, dict):
        return TeacherForcing(**value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"teacher_forcing must be a ratio in [0, 1], a TeacherForcing or its "
                        f"config dict, got {value!r}")
    return TeacherForcing(ratio=value)
