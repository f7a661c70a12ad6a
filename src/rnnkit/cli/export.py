"""``rnnkit export CHECKPOINT -o model.onnx``: write the ONNX graphs of a saved model (see
:mod:`rnnkit.onnx`), with the run's vocabulary and sampling defaults in their metadata, and
check them in ONNX Runtime when it is installed."""

from __future__ import annotations

import sys
from pathlib import Path

from ..checkpoint import CheckpointError
from ._common import _fail

# what a checkpoint written by ``rnnkit train`` holds that a runtime needs to generate text
CARRIED_META = ("vocab", "sample_defaults", "source")
CHECK_TOL = 1e-4  # largest difference between ONNX Runtime and rnnkit still float32 rounding


def add_export_parser(sub) -> None:
    """Register the ``export`` subcommand on the subparsers ``sub``."""
    x = sub.add_parser("export", help="write the ONNX graphs of a checkpoint",
                       description="Export a checkpoint to ONNX (standard operators; needs "
                       "the onnx extra: pip install 'rnnkit[onnx]'). A language model gives "
                       "a step graph (OUTPUT) and a sequence graph (OUTPUT's stem + "
                       ".sequence.onnx); a Seq2Seq an encoder (OUTPUT) and a decoder step "
                       "graph (.decoder.onnx).")
    x.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="a .npz written by rnnkit train or Model.save")
    x.add_argument("-o", "--output", metavar="OUTPUT",
                   help="the .onnx file of the first graph (default: CHECKPOINT with the "
                        "suffix .onnx)")
    x.add_argument("--lengths", action="store_true",
                   help="give the sequence graphs an input 'lengths' (B,) of valid steps")
    x.add_argument("--float64", action="store_true",
                   help="keep float64 weights as float64 (ONNX Runtime's recurrent operators "
                        "run float32 only; the default rounds them to float32)")
    x.add_argument("--opset", type=int, default=17,
                   help="ONNX operator set version, 15 or later (default: 17)")
    x.add_argument("--no-check", action="store_true",
                   help="skip running the graphs in ONNX Runtime against rnnkit")
    x.set_defaults(func=cmd_export)


def _shape(value_info) -> str:
    dims = [d.dim_param or str(d.dim_value) for d in value_info.type.tensor_type.shape.dim]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _describe(onnx, path: Path) -> str:
    """``inputs -> outputs`` of the graph at path, with shapes and non-float types."""
    g = onnx.load(str(path)).graph
    ints = onnx.TensorProto.INT64

    def io(vs):
        return ", ".join(f"{v.name} {_shape(v)}"
                         + (" int64" if v.type.tensor_type.elem_type == ints else "")
                         for v in vs)

    return f"{io(g.input)} -> {io(g.output)}"


def cmd_export(args) -> int:
    """``rnnkit export``: write the ONNX graphs of a checkpoint; returns the exit code."""
    import numpy as np

    from ..models import load_model

    try:
        import onnx

        from ..onnx import MIN_OPSET, export, training_only
    except ImportError:
        _fail("rnnkit export needs the onnx package: pip install 'rnnkit[onnx]' (onnx and "
              "onnxruntime)")
    out = Path(args.output) if args.output else Path(args.checkpoint).with_suffix(".onnx")
    if out.suffix != ".onnx":
        _fail(f"--output must end in .onnx, got {str(out)!r}")
    if not out.parent.is_dir():
        _fail(f"--output: the folder {str(out.parent)!r} does not exist")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= args.opset <= newest:
        _fail(f"--opset must be in [{MIN_OPSET}, {newest}] (the installed onnx package's "
              f"newest), got {args.opset}")
    try:
        model, meta, _ = load_model(args.checkpoint)
    except CheckpointError as e:
        _fail(str(e))
    try:
        paths = export(model, out, lengths=args.lengths, opset=args.opset,
                       dtype=np.float64 if args.float64 else np.float32,
                       metadata={k: meta[k] for k in CARRIED_META if k in meta})
    except (TypeError, ValueError) as e:  # what the graphs cannot express
        _fail(f"{args.checkpoint}: {e}")
    dropped = training_only(model)
    if dropped:
        print("note: training-only options, not in the graphs (they compute eval mode): "
              + ", ".join(dropped))
    if model.dtype == np.float64 and not args.float64:
        print("note: the model is float64; the graphs are float32 (--float64 keeps float64)")
    for name, path in paths.items():
        print(f"wrote {path} ({name}): {_describe(onnx, path)}")
    return 0 if args.no_check else _check(model, paths, args.float64)


def _check(model, paths: dict, float64: bool) -> int:
    """Run the graphs in ONNX Runtime against rnnkit; 1 if they differ beyond float32
    rounding (CHECK_TOL), else 0."""
    from ..onnx import check

    try:
        import onnxruntime
    except ImportError:
        print("not checked: onnxruntime is not installed (pip install 'rnnkit[onnx]')")
        return 0
    if float64:
        print("not checked: ONNX Runtime runs the recurrent operators in float32 only")
        return 0
    worst = 0.0
    for name, what, diff in check(model, paths):
        print(f"checked {name} in ONNX Runtime {onnxruntime.__version__} against rnnkit "
              f"({what}): largest difference {diff:.1e}")
        worst = max(worst, diff)
    if worst > CHECK_TOL:
        print(f"rnnkit: error: the graphs differ from rnnkit by {worst:.1e} (more than "
              f"{CHECK_TOL:g}, float32 rounding)", file=sys.stderr)
        return 1
    return 0
