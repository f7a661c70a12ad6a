"""The initial values of a recurrent layer's parameters: the schemes of ``init=``.

A scheme is a name, or a dict with its name and argument; every layer, every model and
``rnnkit train --init NAME[:VALUE]`` take one, and checkpoints keep it (``rnnkit info``
shows it). Letters: D input features, H hidden units, G gate blocks (RNN 1, LSTM 4, GRU 3).

==================== ========= ================================================================
name                 argument  values (source)
==================== ========= ================================================================
``default``                    every weight U(-1/sqrt(H), 1/sqrt(H)), biases zero (PyTorch's
                               ``nn.RNN/LSTM/GRU``)
``glorot_orthogonal``          W_x Glorot-uniform, U(+-sqrt(6 / (D + G*H))); each (H, H) gate
                               block of W_h a random orthogonal matrix; biases zero (Keras'
                               defaults: ``glorot_uniform``, ``orthogonal``, ``zeros``)
``identity``         ``scale`` each gate block of W_h ``scale * I`` (default 1), W_x ~ N(0,
                               0.001^2), biases zero (IRNN: Le, Jaitly & Hinton 2015, "A
                               simple way to initialize recurrent networks of rectified linear
                               units"; meant for relu RNNs)
``uniform``          ``range`` every weight and bias U(-range, range) (default 0.08, as
                               Karpathy's char-rnn)
``chrono``           ``t_max`` weights as ``default``; the biases of the gates that keep the
                               state drawn so that its memory spans 1 to t_max - 1 steps:
                               LSTM ``b_f = log(U(1, t_max - 1))``, ``b_i = -b_f``; GRU ``b_z =
                               log(U(1, t_max - 1))`` (z is the share of the state kept);
                               other biases zero (Tallec & Ollivier 2018, "Can recurrent
                               neural networks warp time?"). LSTM and GRU only.
==================== ========= ================================================================

The LSTM's forget-gate biases are then set to ``forget_bias`` (1 by default; Jozefowicz et
al. 2015, Keras' ``unit_forget_bias``, char-rnn), except under ``chrono``, which draws them.
Every random value comes from the layer's ``rng``, in a fixed order.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULTS = {"default": None, "glorot_orthogonal": None, "identity": ("scale", 1.0),
            "uniform": ("range", 0.08), "chrono": ("t_max", None)}
SCHEMES = tuple(DEFAULTS)


def as_scheme(init, kind: str | None = None) -> dict:
    """The scheme ``init`` (a name, or a dict with ``name`` and its argument) as a checked
    dict, e.g. ``{"name": "uniform", "range": 0.08}``. kind: the layer's kind, for the
    schemes that need a gated cell."""
    spec = {"name": init} if isinstance(init, str) else init
    if not isinstance(spec, dict) or spec.get("name") not in DEFAULTS:
        raise ValueError(f"init must be one of {', '.join(SCHEMES)} (or a dict with 'name' "
                         f"and its argument), got {init!r}")
    name, arg = spec["name"], DEFAULTS[spec["name"]]
    extra = set(spec) - {"name"} - ({arg[0]} if arg else set())
    if extra:
        raise ValueError(f"init {name!r} takes {arg[0] if arg else 'no argument'}, got "
                         f"{', '.join(sorted(extra))}")
    out = {"name": name}
    if arg:
        value = spec.get(arg[0], arg[1])
        if value is None:
            raise ValueError(f"init 'chrono' needs t_max, the longest dependency in steps "
                             f"(> 2), e.g. {{'name': 'chrono', 't_max': 100}}; got {init!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value > (2 if name == "chrono" else 0)):
            low = "2" if name == "chrono" else "0"
            raise ValueError(f"init {name!r}: {arg[0]} must be a finite number > {low}, got "
                             f"{value!r}")
        out[arg[0]] = float(value)
    if name == "chrono" and kind not in (None, "lstm", "gru"):
        raise ValueError(f"init 'chrono' sets the biases of an LSTM's or a GRU's gates; this "
                         f"layer is a {kind.upper()}")
    return out


def parse(text: str) -> dict:
    """``NAME`` or ``NAME:VALUE`` (as ``rnnkit train --init`` takes it) -> a scheme dict."""
    name, sep, value = text.partition(":")
    arg = DEFAULTS.get(name)
    if not sep:
        return as_scheme(name)
    if not arg:
        raise ValueError(f"{name} takes no value, got {text!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name}:VALUE needs a number for {arg[0]}, got "
                         f"{value!r}") from None
    return as_scheme({"name": name, arg[0]: number})


def direction(scheme: dict, kind: str, D: int, H: int, bias: bool, forget_bias: float,
              reset_after: bool, rng: np.random.Generator, dtype) -> dict:
    """The initial parameters of one direction: ``W_x (D, G*H)``, ``W_h (H, G*H)`` and, with
    bias, ``b (G*H,)`` (GRU reset after: ``b_hn (H,)``), drawn from rng in that order."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    name = scheme["name"]
    p = {}
    if name in ("default", "chrono"):
        k = 1.0 / math.sqrt(H)
        p["W_x"] = rng.uniform(-k, k, (D, G * H))
        p["W_h"] = rng.uniform(-k, k, (H, G * H))
    elif name == "glorot_orthogonal":
        limit = math.sqrt(6.0 / (D + G * H))
        p["W_x"] = rng.uniform(-limit, limit, (D, G * H))
        p["W_h"] = np.concatenate([_orthogonal(H, rng) for _ in range(G)], axis=1)
    elif name == "identity":
        p["W_x"] = rng.normal(0.0, 0.001, (D, G * H))
        p["W_h"] = np.tile(scheme["scale"] * np.eye(H), (1, G))
    else:  # uniform
        r = scheme["range"]
        p["W_x"] = rng.uniform(-r, r, (D, G * H))
        p["W_h"] = rng.uniform(-r, r, (H, G * H))
    if bias:
        p.update(_biases(scheme, kind, H, forget_bias, reset_after, rng))
    return {k: v.astype(dtype) for k, v in p.items()}


def _biases(scheme: dict, kind: str, H: int, forget_bias: float, reset_after: bool,
            rng: np.random.Generator) -> dict:
    """``b`` (and GRU reset after ``b_hn``) of one direction under the scheme."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    name = scheme["name"]
    if name == "uniform":
        r = scheme["range"]
        b = rng.uniform(-r, r, G * H)
        b_hn = rng.uniform(-r, r, H) if kind == "gru" and reset_after else None
    else:
        b = np.zeros(G * H)
        b_hn = np.zeros(H) if kind == "gru" and reset_after else None
    if name == "chrono":
        keep = np.log(rng.uniform(1.0, scheme["t_max"] - 1.0, H))
        if kind == "lstm":  # gates i, f, g, o
            b[H : 2 * H] = keep
            b[:H] = -keep
        else:  # gates r, z, n
            b[H : 2 * H] = keep
    elif kind == "lstm":
        b[H : 2 * H] = forget_bias
    out = {"b": b}
    if b_hn is not None:
        out["b_hn"] = b_hn
    return out


def _orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random (n, n) orthogonal matrix, uniform over the orthogonal group: the Q of the
    QR factorisation of a standard normal matrix, its columns' signs fixed by R's diagonal
    (Mezzadri 2007)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))
