"""The report as one self-contained HTML page: the data inline, compact, no network.

:func:`page_data` packs a :class:`~rnnkit.viz.activity.Report` into a JSON document;
:func:`render_html` puts it into the page's template (``template.html``, its CSS and
JavaScript inline) and :func:`write_html` writes the file.

The packing (format 1), chosen so that 20,000 characters stay small and fast to decode:

* every state's activations are quantised per unit to 8 bits over the unit's own range,
  ``v = lo + q * (hi - lo) / 255`` (q an integer 0..255; the error is at most half a
  step, ``(hi - lo) / 510``), stored unit-major: the N values of unit 0, then of unit 1,
  ..., each unit's row padded with zeros to ``stride`` bytes, a multiple of 3, so that its
  base64 stands alone: the page decodes only the units it shows, when it shows them;
* probabilities are 16-bit, ``p = q / 65535``; the entropy is ``q / 1000`` bits;
* integer and quantised arrays are little-endian bytes in base64, ``{"dtype": "u1" |
  "u2", "b64": ...}``; correlations and saturation fractions are rounded decimals.
"""

from __future__ import annotations

import base64
import html
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from .activity import FEATURES, Report

FORMAT = 1
MARK = "__RNNKIT_DATA__"


def _b64(a: np.ndarray) -> dict:
    """An unsigned integer array as ``{"dtype", "b64"}`` (little-endian bytes)."""
    code = {1: "u1", 2: "u2"}[a.dtype.itemsize]
    return {"dtype": code, "b64": base64.b64encode(a.astype("<" + code).tobytes()).decode()}


def _ids(a: np.ndarray) -> dict:
    return _b64(np.asarray(a, np.uint8 if a.max(initial=0) < 256 else np.uint16))


def _sig(x: np.ndarray, digits: int = 6) -> np.ndarray:
    """x rounded to ``digits`` significant digits (the values the page gets as JSON)."""
    return np.array([float(f"{v:.{digits}g}") for v in np.asarray(x, np.float64)])


def quantise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (N, H) -> q (H, N) uint8, lo (H,), hi (H,) with ``x ~ lo + q * (hi - lo) / 255``
    per unit (lo, hi rounded to 6 significant digits, as the page reads them)."""
    x = np.asarray(x, np.float64)
    lo, hi = _sig(x.min(axis=0)), _sig(x.max(axis=0))
    span = hi - lo
    scale = np.where(span > 0, 255.0 / np.where(span > 0, span, 1.0), 0.0)
    q = np.clip(np.rint((x - lo) * scale), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(q.T), lo, hi


def dequantise(q: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The values the page shows: q (H, N) uint8, lo, hi (H,) -> (N, H) float64."""
    return (lo[:, None] + q.astype(np.float64) * ((hi - lo) / 255.0)[:, None]).T


def _colour(kind: str, model: dict) -> str:
    """How the page maps a state's values to colours: ``linear`` ([-1, 1], tanh-bounded
    states) or ``tanh`` (LSTM cells and relu states, unbounded)."""
    return "linear" if kind == "h" and model.get("nonlinearity", "tanh") == "tanh" else "tanh"


def page_data(rep: Report, selected: tuple | None = None, title: str = "",
              source: str = "") -> dict:
    """The JSON document of the page (format 1, see the module text).

    selected: (state, unit) shown first, state a key of ``rep.states`` (default: the best
    unit, :meth:`Report.best_unit`); title, source: shown in the page's header."""
    keys = list(rep.states)
    if selected is None:
        selected = rep.best_unit()[:2]
    state, unit = selected
    if state not in rep.states:
        raise ValueError(f"selected state {state!r} is not one of {keys}")
    H = rep.model["hidden"]
    if not 0 <= unit < H:
        raise ValueError(f"selected unit must be in [0, {H}), got {unit}")
    states = []
    for k in keys:
        q, lo, hi = quantise(rep.states[k])
        stride = -(-q.shape[1] // 3) * 3
        rows = np.zeros((q.shape[0], stride), np.uint8)
        rows[:, : q.shape[1]] = q
        states.append({"layer": k[0], "direction": k[1], "kind": k[2],
                       "colour": _colour(k[2], rep.model), "lo": lo.tolist(),
                       "hi": hi.tolist(), "stride": stride, "q": _b64(rows)})
    return {
        "format": FORMAT, "title": title, "source": source, "model": rep.model,
        "level": rep.vocab.level, "vocab": rep.vocab.tokens, "n": int(rep.ids.size),
        "ids": _ids(rep.ids), "states": states,
        "top": {"k": int(rep.top_ids.shape[1]), "ids": _ids(rep.top_ids.reshape(-1)),
                "p": _b64(_prob16(rep.top_p.reshape(-1)))},
        "p_next": _b64(_prob16(rep.p_next)),
        "entropy": _b64(np.rint(np.clip(rep.entropy, 0, 65.535) * 1000).astype(np.uint16)),
        "loss": None if not np.isfinite(rep.loss) else round(rep.loss, 6),
        "features": [_feature(rep, name, keys) for name in FEATURES],
        "saturation": [{"layer": l, "direction": d,
                        "gates": [{"gate": g, "below": round(b, 6), "above": round(a, 6)}
                                  for g, (b, a) in gates.items()]}
                       for (l, d), gates in rep.saturation.items()],
        "selected": {"state": keys.index(state), "unit": int(unit)},
    }


def _prob16(p: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(p, 0.0, 1.0) * 65535).astype(np.uint16)


def _feature(rep: Report, name: str, keys: list) -> dict:
    corr = rep.correlations.get(name)
    out = {"key": name, "name": FEATURES[name], "present": corr is not None}
    if corr is not None:
        out["r"] = [np.round(corr[k], 3).tolist() for k in keys]
        out["ranked"] = [{"state": keys.index(k), "unit": u, "r": round(r, 3)}
                         for k, u, r in rep.ranked.get(name, [])]
    return out


def _template() -> str:
    return resources.files("rnnkit.viz").joinpath("template.html").read_text(encoding="utf-8")


def render_html(rep: Report, selected: tuple | None = None, title: str | None = None,
                source: str = "") -> str:
    """The page as a string: the template with :func:`page_data` inline."""
    title = title or "rnnkit: neuron activity"
    data = json.dumps(page_data(rep, selected, title, source), ensure_ascii=False,
                      separators=(",", ":"), allow_nan=False)
    # inside <script>: "</" would end the element, "<!--" would start a comment
    data = data.replace("</", "<\\/").replace("<!--", "<\\u0021--")
    head, tail = _template().split(MARK)
    head = head.replace("__RNNKIT_TITLE__", html.escape(title))
    return head + data + tail


def write_html(rep: Report, path, selected: tuple | None = None, title: str | None = None,
               source: str = "") -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8; written to a temporary file, then
    renamed). Returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(render_html(rep, selected, title, source), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
