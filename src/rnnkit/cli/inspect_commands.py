"""``rnnkit inspect`` (how the gradient flows back through time in a trained model) and
``rnnkit viz`` (what its units do on a text, as one self-contained HTML page).

    rnnkit inspect CHECKPOINT [TEXT_FILE] [-o flow.png]
    rnnkit viz CHECKPOINT TEXT_FILE -o report.html [--png unit.png]

``inspect`` without TEXT_FILE reads the text the run was trained on, as its checkpoint
records it (the built-in dinosaur names, or the file, while it is still there).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ._common import _fail, read_text_file
from .checkpoint_commands import _encode, _load
from .train import BUILTIN

DIRECTIONS = ("forward", "reverse")
PLOT_MISSING = "matplotlib is not installed (pip install 'rnnkit[plot]')"


def add_inspect_parsers(sub) -> None:
    """Register the ``inspect`` and ``viz`` subcommands on the subparsers ``sub``."""
    i = sub.add_parser("inspect", help="gradient flow back through time, by distance",
                       description="Run a checkpoint's forward and backward on a batch of a "
                       "text and print, for each layer and direction, the mean norm of "
                       "dL/dh_t by distance between step t and the loss: the loss of the "
                       "last step, and the sum of the losses of all steps. Also draws it "
                       "(needs matplotlib).")
    i.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz written by rnnkit train")
    i.add_argument("text", metavar="TEXT_FILE", nargs="?",
                   help="UTF-8 text to take the batch from (default: the text the run was "
                        "trained on, as its checkpoint records it)")
    i.add_argument("-o", "--output", metavar="PNG",
                   help="where to draw the plot (default: CHECKPOINT's stem + "
                        "_gradient_flow.png, next to it)")
    i.add_argument("--no-plot", action="store_true", help="print the table only")
    i.add_argument("--seq-len", type=int, default=100,
                   help="steps T of the batch's sequences (default: 100)")
    i.add_argument("--batch-size", type=int, default=16,
                   help="sequences B, from evenly spaced places of the text (default: 16)")
    i.add_argument("--every", type=int, default=10,
                   help="print every N-th distance (and the last) (default: 10)")
    i.set_defaults(func=cmd_inspect)

    v = sub.add_parser("viz", help="an HTML page of the model's units on a text",
                       description="Write one self-contained HTML page (no network): the "
                       "text coloured by a unit's activation with a unit picker, the units "
                       "that correlate most with position in the line, quotes, brackets and "
                       "the entropy of the next prediction, each layer's gate saturation, "
                       "and the top next-token predictions on hover.")
    v.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz written by rnnkit train")
    v.add_argument("text", metavar="TEXT_FILE", help="UTF-8 text to run the model on")
    v.add_argument("-o", "--output", metavar="HTML", default="report.html",
                   help="the page to write (default: report.html)")
    v.add_argument("--png", metavar="FILE",
                   help="also save a still image of the text coloured by the shown unit "
                        "(needs matplotlib)")
    v.add_argument("--start", type=int, default=0,
                   help="first character (or word) of TEXT_FILE to use (default: 0)")
    v.add_argument("--length", type=int, default=20_000,
                   help="characters (or words) of TEXT_FILE to use (default: 20000)")
    v.add_argument("--layer", type=int, help="layer of the unit shown first (default: the "
                   "unit of largest |r| with a feature)")
    v.add_argument("--direction", choices=DIRECTIONS, default="forward",
                   help="direction of the unit shown first (default: forward)")
    v.add_argument("--state", choices=("h", "c"), default="h",
                   help="h, or the LSTM's cell c, of the unit shown first (default: h)")
    v.add_argument("--unit", type=int, help="the unit shown first (with --layer)")
    v.add_argument("--top", type=int, default=5,
                   help="next-token predictions shown on hover (default: 5)")
    v.add_argument("--png-length", type=int, default=400,
                   help="characters (or words) drawn in the --png image (default: 400)")
    v.add_argument("--png-width", type=int, default=80,
                   help="columns of the --png image before a line wraps (default: 80)")
    v.set_defaults(func=cmd_viz)


def _positive(args, *names) -> None:
    for name in names:
        value = getattr(args, name)
        if value < 1:
            _fail(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def _load_plain(path):
    """``_load`` for a model these commands can run: one without a conditioning vector."""
    model, meta, vocab, _ = _load(path)
    if model.cond_size:
        _fail(f"{str(path)!r} holds a model that needs a conditioning vector (cond_size "
              f"{model.cond_size}); inspect and viz run models without one")
    return model, meta, vocab


def _check_output(path, flag: str) -> Path:
    """The file a flag names, checked before any work: not a folder, in a folder that
    exists."""
    p = Path(path)
    if p.is_dir():
        _fail(f"{flag} {str(path)!r} is a folder; give the file to write")
    if not p.parent.is_dir():
        _fail(f"{flag} {str(path)!r}: the folder {str(p.parent)!r} does not exist")
    return p


def _default_text(args, meta) -> tuple[str, str]:
    """The text of ``inspect`` without TEXT_FILE: the run's, as its checkpoint records it."""
    from ..data import dinos_text

    source = meta.get("source")
    if source == BUILTIN:
        return dinos_text().lower(), "the built-in dinosaur names"
    if isinstance(source, str) and Path(source).is_file():
        return read_text_file(source), source
    _fail(f"no TEXT_FILE given, and the text the checkpoint {str(args.checkpoint)!r} was "
          f"trained on ({source!r}) is not there: give TEXT_FILE")


def _batch(ids: np.ndarray, B: int, T: int, where: str) -> dict:
    """B sequences of T steps from evenly spaced starts of ids (N,): x, y (B, T)."""
    N = ids.size
    if N < T + 1:
        _fail(f"{where} holds {N:,} tokens: --seq-len {T} needs at least {T + 1} "
              "(give a longer text or a smaller --seq-len)")
    starts = np.linspace(0, N - T - 1, B).round().astype(np.int64)
    idx = starts[:, None] + np.arange(T)[None, :]
    return {"x": ids[idx], "y": ids[idx + 1]}


def cmd_inspect(args) -> int:
    """``rnnkit inspect``: print (and draw) the gradient flow; returns the exit code."""
    from ..inspect import LOSSES, flow_table, gradient_flow, plot_flows

    _positive(args, "seq_len", "batch_size", "every")
    out = Path(args.checkpoint).with_name(Path(args.checkpoint).stem + "_gradient_flow.png")
    if args.output:
        out = _check_output(args.output, "--output")
    model, meta, vocab = _load_plain(args.checkpoint)
    if args.text is None:
        text, where = _default_text(args, meta)
    else:
        text, where = read_text_file(args.text), str(args.text)
    batch = _batch(_encode(vocab, text, where), args.batch_size, args.seq_len, where)
    try:
        with np.errstate(over="ignore", under="ignore"):
            flows = {loss: gradient_flow(model, batch, loss) for loss in LOSSES}
    except ValueError as e:  # a loss that is not finite on this batch
        _fail(f"{where}: {e}")
    print(f"gradient flow of {args.checkpoint} on {where}: {args.batch_size} sequences of "
          f"{args.seq_len} steps; mean |dL/dh_t| by distance to the end")
    print(flow_table(flows, args.every))
    if args.no_plot:
        return 0
    try:
        rnn = model.rnn
        plot_flows(flows, out, f"{Path(args.checkpoint).name}: {rnn.kind.upper()}, "
                   f"{rnn.num_layers} x {rnn.hidden_size} units, {where}")
    except ImportError:
        print(f"plot not drawn: {PLOT_MISSING}", file=sys.stderr)
        return 0
    print(f"plot: {out}")
    return 0


def _selected(args, rnn):
    """The (state, unit) the page shows first, from the flags, checked against the model's
    recurrent layer ``rnn``; None for the best unit."""
    if args.layer is None and args.unit is None:
        return None
    H, layers = rnn.hidden_size, rnn.num_layers
    layer = 0 if args.layer is None else args.layer
    if not 0 <= layer < layers:
        _fail(f"--layer must be in [0, {layers - 1}] for this {layers}-layer model, got {layer}")
    if args.direction == "reverse" and rnn.num_directions < 2:
        _fail("--direction reverse needs a bidirectional model; this one runs forward only")
    if args.state == "c" and rnn.kind != "lstm":
        _fail(f"--state c is the cell of an LSTM; this model is a {rnn.kind.upper()}")
    unit = 0 if args.unit is None else args.unit
    if not 0 <= unit < H:
        _fail(f"--unit must be in [0, {H - 1}] for {H} units, got {unit}")
    return (layer, args.direction, args.state), unit


def cmd_viz(args) -> int:
    """``rnnkit viz``: write the HTML report (and a still image); returns the exit code."""
    from .. import viz

    _positive(args, "length", "top", "png_length", "png_width")
    if args.start < 0:
        _fail(f"--start must be >= 0, got {args.start}")
    out = _check_output(args.output, "--output")
    if args.png:
        _check_output(args.png, "--png")
    t0 = time.perf_counter()
    model, meta, vocab = _load_plain(args.checkpoint)
    selected = _selected(args, model.rnn)
    tokens = vocab.split(read_text_file(args.text))
    if args.start >= len(tokens):
        _fail(f"--start {args.start} is past the end of {str(args.text)!r} "
              f"({len(tokens):,} {vocab.level}s)")
    tokens = tokens[args.start: args.start + args.length]
    _encode(vocab, tokens, str(args.text))
    with np.errstate(over="ignore", under="ignore"):
        rep = viz.report(model, vocab, tokens, top=args.top)
    viz.write_html(rep, out, selected, source=Path(args.text).name)
    took = time.perf_counter() - t0
    print(f"{out}: {len(tokens):,} {vocab.level}s, {out.stat().st_size / 1e6:.2f} MB, "
          f"in {took:.1f} s")
    _print_ranked(rep)
    if args.png:
        try:
            viz.write_png(rep, args.png, selected, args.png_length, args.png_width)
        except ImportError:
            print(f"--png not drawn: {PLOT_MISSING}", file=sys.stderr)
            return 0
        print(f"image: {args.png}")
    return 0


def _print_ranked(rep) -> None:
    """The units of largest |r| with each feature, three per feature, one line each."""
    from ..viz import FEATURES

    for name, rows in rep.ranked.items():
        if not rows:
            print(f"  {FEATURES[name]}: does not vary in this text")
            continue
        shown = ", ".join(f"layer {s[0]}{' ' + s[1] if rep.model['directions'] > 1 else ''} "
                          f"{s[2]} {u} (r = {r:+.2f})" for s, u, r in rows[:3])
        print(f"  {FEATURES[name]}: {shown}")
