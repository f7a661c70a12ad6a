"""A still image of the report for READMEs: the text coloured by one unit, drawn with
matplotlib (optional: ``pip install 'rnnkit[plot]'``), no browser needed.

The colours are those of the page: blue for -1, white for 0, red for +1 (an LSTM's cell
``c`` and relu states through tanh first).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .activity import FEATURES, Report

BLUE, RED = np.array([33, 102, 172]) / 255, np.array([215, 48, 39]) / 255
SHOWN = {"\n": "\u21b5", "\t": "\u21e5"}


def colours(v: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] (N,) -> RGB (N, 3) in [0, 1]: blue, white, red."""
    v = np.clip(np.asarray(v, np.float64), -1.0, 1.0)[:, None]
    end = np.where(v >= 0, RED, BLUE)
    return 1.0 + (end - 1.0) * np.abs(v)


def _layout(tokens: list, width: int, sep: str) -> list:
    """Rows of (token index, column, text) cells: a newline ends its row (shown as an
    arrow), rows wrap at ``width`` columns."""
    rows, row, col = [], [], 0
    for t, tok in enumerate(tokens):
        text = SHOWN.get(tok, tok)
        gap = 1 if sep and row and tok != "\n" else 0
        if row and col + gap + len(text) > width:
            rows.append(row)
            row, col, gap = [], 0, 0
        row.append((t, col + gap, text))
        col += gap + len(text)
        if tok == "\n":
            rows.append(row)
            row, col = [], 0
    if row:
        rows.append(row)
    return rows


def write_png(rep: Report, path, selected: tuple | None = None, max_tokens: int = 800,
              width: int = 100, dpi: int = 100) -> Path:
    """Draw the first ``max_tokens`` tokens of the report's text, each on the colour of a
    unit's activation after it, and save a PNG at ``path``.

    selected: (state, unit), state a key of ``rep.states`` (default: the best unit,
    :meth:`Report.best_unit`); width: columns before a row wraps. Returns the path.
    Raises ImportError with the command to install matplotlib when it is missing.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("write_png needs matplotlib, which is not installed: "
                          "pip install 'rnnkit[plot]'") from None
    state, unit = rep.best_unit()[:2] if selected is None else selected
    if state not in rep.states:
        raise ValueError(f"state {state!r} is not one of {list(rep.states)}")
    if not 0 <= unit < rep.model["hidden"]:
        raise ValueError(f"unit must be in [0, {rep.model['hidden']}), got {unit}")
    v = rep.states[state][:max_tokens, unit].astype(np.float64)
    squash = state[2] == "c" or rep.model.get("nonlinearity") == "relu"
    rgb = colours(np.tanh(v) if squash else v)
    rows = _layout(rep.tokens[:max_tokens], width, " " if rep.vocab.level == "word" else "")
    caption = _caption(rep, state, unit)
    # wide enough for the caption too (a proportional font: ~0.75 columns per character)
    cols = max(max(c + len(x) for row in rows for _, c, x in row), int(0.75 * len(caption)) + 2)
    cw, ch = 0.09, 0.21  # inches per column and row (10 pt monospace)
    fig = Figure(figsize=(cols * cw + 0.4, len(rows) * ch + 0.75), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.2 / (cols * cw + 0.4), 0.1 / (len(rows) * ch + 0.75),
                       cols * cw / (cols * cw + 0.4), len(rows) * ch / (len(rows) * ch + 0.75)))
    ax.set_xlim(0, cols)
    ax.set_ylim(len(rows), 0)
    ax.axis("off")
    for r, row in enumerate(rows):
        for t, c, text in row:
            ax.add_patch(_rect(c, r, len(text), rgb[t]))
            light = np.abs(np.tanh(v[t]) if squash else np.clip(v[t], -1, 1)) > 0.65
            ax.text(c + len(text) / 2, r + 0.55, text, ha="center", va="center",
                    family="monospace", fontsize=10, color="white" if light else "#1d1d1f")
    fig.suptitle(caption, x=0.2 / (cols * cw + 0.4), ha="left",
                 fontsize=10, y=1 - 0.08 / (len(rows) * ch + 0.75), va="top")
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=dpi, facecolor="white")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _rect(x, y, w, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, 1, facecolor=colour, edgecolor="none")


def _caption(rep: Report, state: tuple, unit: int) -> str:
    """"layer 1 c, unit 37 (r = +0.81 with position in the line); blue -1, white 0, red +1"."""
    layer, direction, kind = state
    name = f"layer {layer}" + (f" {direction}" if rep.model["directions"] > 1 else "")
    best = [(abs(c[state][unit]), c[state][unit], FEATURES[f])
            for f, c in rep.correlations.items() if c is not None]
    what = ""
    if best:
        _, r, feature = max(best)
        what = f" (r = {r:+.2f} with {feature})"
    squash = " (through tanh)" if kind == "c" else ""
    return (f"{name} {kind}, unit {unit}{what}; colour{squash}: blue \u22121, white 0, "
            "red +1")
