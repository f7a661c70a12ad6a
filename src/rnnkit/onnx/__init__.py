"""Export to ONNX with standard operators, for ONNX Runtime and other runtimes (an optional
extra: ``pip install 'rnnkit[onnx]'`` brings ``onnx`` and ``onnxruntime``).

``export(obj, path)`` writes the graphs of a recurrent layer or of a whole model and returns
them by name. The first graph is written to ``path``, the others beside it as
``<stem>.<graph>.onnx``:

=====================  ==============================  ====================================
object                 graphs (first at ``path``)      inputs -> outputs
=====================  ==============================  ====================================
``RNN/LSTM/GRU``       ``layer``                       x (B, T, D) [, lengths] [, h0, c0]
                                                       -> y, h_n [, c_n]
``LanguageModel``      ``step``                        ids (B,), h0 [, c0]
                                                       -> log_probs (B, V), h_n [, c_n]
                       ``sequence``                    ids (B, T), h0 [, c0] [, lengths]
                                                       -> log_probs (B, T, V), h_n [, c_n]
                       ``initial_state`` (cond_size)   cond (B, C) -> h0 [, c0]
``SequenceClassifier`` ``classifier``                  ids (B, T) or x (B, T, D) [, lengths]
                                                       -> logits (B, C)
``SequenceRegressor``  ``regressor``                   x (B, T, D) [, lengths] -> y (B, K)
``SequenceTagger``     ``tagger``                      ids (B, T) or x (B, T, D) [, lengths]
                                                       -> logits (B, T, C)
``Seq2Seq``            ``encoder``                     src (B, S) [, lengths] -> h_n [, c_n]
                       ``decoder``                     ids (B,), h0 [, c0]
                                                       -> log_probs (B, V_tgt), h_n [, c_n]
=====================  ==============================  ====================================

Ids and lengths are int64; floats are float32 (ONNX Runtime's recurrent operators run
float32 only: a float64 model's weights are rounded to float32, unless ``dtype=float64`` is
asked for). States are ``(L*dirs, B, H)`` as rnnkit's (c0/c_n only for the LSTM); feed h_n
(c_n) back as h0 (c0) to carry the state. ``lengths (B,)`` gives the valid steps of each
sequence (a prefix; padded steps output zeros and leave the state unchanged, and the
reverse direction starts at each sequence's own end, as in rnnkit). Token models with a
padding id (classifier, tagger, encoder) count the ids that are not padding, as rnnkit's
mask ``ids != pad_id`` does when the padding is at the end.

The graphs compute the model in eval mode. Dropout, ``recurrent_dropout`` and
``variational`` act only in training and are not part of them; everything else
(several layers, bidirectional with any merge, both GRU forms, relu RNNs, no biases, a
learned initial state, the pooling of a classifier) is expressed exactly. What cannot be
(attention, which the decoder step would need with all encoder outputs) is refused with a
ValueError. Each file's ``metadata_props`` hold ``rnnkit.model``, ``rnnkit.graph``,
``rnnkit.graphs`` (all the files of the export), ``rnnkit.config`` and the caller's
``metadata`` as ``rnnkit.<key>`` (JSON).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._checks import check_positive_int

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "check", "export", "graph_names", "training_only"]

DEFAULT_OPSET = 17
MIN_OPSET = 15  # Shape(start, end) needs 15


def check(obj, paths: dict, seed: int = 0) -> list[tuple[str, str, float]]:
    """Run the graphs that :func:`export` wrote for obj (``paths``, as it returns them) in
    ONNX Runtime on random inputs and compare them with rnnkit's own outputs in eval mode:
    per graph (name, what was run, largest absolute difference over its outputs). Step
    graphs run 20 steps with carried state. Needs onnxruntime; float32 graphs."""
    from ._check import check as run_check

    return run_check(obj, paths, seed)


def graph_names(obj) -> list[str]:
    """The names of the graphs :func:`export` writes for ``obj``, the first at ``path``."""
    from ..models import LanguageModel, Seq2Seq, SequenceClassifier, SequenceTagger
    from ..recurrent import Recurrent

    if isinstance(obj, Recurrent):
        return ["layer"]
    if isinstance(obj, LanguageModel):
        return ["step", "sequence"] + (["initial_state"] if obj.cond_size else [])
    if isinstance(obj, SequenceClassifier):
        return ["regressor" if obj.loss_name == "mse" else "classifier"]
    if isinstance(obj, SequenceTagger):
        return ["tagger"]
    if isinstance(obj, Seq2Seq):
        return ["encoder", "decoder"]
    raise TypeError(f"export: cannot export a {type(obj).__module__}.{type(obj).__qualname__}; "
                    "expected an rnnkit RNN, LSTM or GRU layer, or a LanguageModel, "
                    "SequenceClassifier, SequenceRegressor, SequenceTagger or Seq2Seq")


def training_only(obj) -> list[str]:
    """The options of obj that act in training only, and so are not in its graphs (which
    compute eval mode): e.g. ``["rnn.dropout=0.2", "rnn.recurrent_dropout=0.1",
    "dropout=0.2 (before the output layer)"]``; empty when there are none."""
    from ..recurrent import Recurrent

    layers = {"": obj} if isinstance(obj, Recurrent) else getattr(obj, "modules", {})
    found = []
    for name, m in layers.items():
        if not isinstance(m, Recurrent):
            continue
        prefix = f"{name}." if name else ""
        found += [f"{prefix}{k}={getattr(m, k):g}" for k in ("dropout", "recurrent_dropout")
                  if getattr(m, k) > 0]
        if m.variational and m.dropout > 0:
            found.append(f"{prefix}variational")
    found += [f"dropout={d.p:g} (before the output layer)" for d in getattr(obj, "aux", [])
              if getattr(d, "p", 0) > 0]
    return found


def _paths(path, names: list[str]) -> dict[str, Path]:
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"path must end in .onnx, got {str(path)!r}")
    if not path.parent.is_dir():
        raise ValueError(f"path: the folder {str(path.parent)!r} does not exist")
    out = {names[0]: path}
    for name in names[1:]:
        out[name] = path.with_name(f"{path.stem}.{name}.onnx")
    return out


def _refuse_unexpressible(obj) -> None:
    """ValueError for what the graphs cannot compute."""
    modules = getattr(obj, "modules", {})
    config = obj.config() if hasattr(obj, "config") else {}
    if getattr(obj, "attention", None) or "attention" in modules or config.get("attention"):
        raise ValueError("export: this Seq2Seq uses attention; its decoder step reads all the "
                         "encoder's outputs, which the exported encoder and decoder step "
                         "graphs do not carry (export a Seq2Seq without attention)")


def _build(obj, name: str, g, lengths: bool, state: bool) -> str:
    from . import _models as m

    build = {
        "layer": lambda: m.layer_graph(g, obj, lengths, state),
        "step": lambda: m.lm_step_graph(g, obj),
        "sequence": lambda: m.lm_sequence_graph(g, obj, lengths),
        "initial_state": lambda: m.lm_initial_state_graph(g, obj),
        "classifier": lambda: m.classifier_graph(g, obj, lengths),
        "regressor": lambda: m.classifier_graph(g, obj, lengths),
        "tagger": lambda: m.tagger_graph(g, obj, lengths),
        "encoder": lambda: m.encoder_graph(g, obj, lengths),
        "decoder": lambda: m.decoder_step_graph(g, obj),
    }
    return build[name]()



def export(obj, path, *, lengths: bool = False, state: bool = True, dtype=np.float32,
           opset: int = DEFAULT_OPSET, metadata: dict | None = None) -> dict[str, Path]:
    """Write the ONNX graphs of a recurrent layer or a model (in eval mode).

    Args:
        obj: an rnnkit ``RNN``/``LSTM``/``GRU``, ``LanguageModel``, ``SequenceClassifier``
            (or ``SequenceRegressor``), ``SequenceTagger`` or ``Seq2Seq``.
        path: the file of the first graph, ending in ``.onnx``; the others go beside it as
            ``<stem>.<graph>.onnx`` (see the table of the module).
        lengths: give the sequence graphs an input ``lengths (B,)`` int64 of valid steps
            (token models with a padding id count them from the padding without it).
        state: a layer's graph takes its initial state as inputs h0 (c0) ``(L*dirs, B,
            H)``; False uses the layer's own (zeros or learned). Language-model and decoder
            graphs always take the state (it is carried from call to call).
        dtype: float32 (default; what ONNX Runtime runs) or float64.
        opset: the ONNX operator set, 15 or later (default 17).
        metadata: extra JSON-serialisable values stored as ``rnnkit.<key>`` in every file
            (``rnnkit export`` stores the vocabulary as ``rnnkit.vocab``).
    Returns:
        {graph name: path written}, in order. Each model is checked by ``onnx.checker``.
    """
    from ._graph import Graph, onnx_package, save_model

    names = graph_names(obj)
    _refuse_unexpressible(obj)
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    opset = check_positive_int(opset, "opset")
    newest = onnx_package().defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be in [{MIN_OPSET}, {newest}] (the installed onnx "
                         f"package's newest), got {opset}")
    for k, v in (("lengths", lengths), ("state", state)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{k} must be True or False, got {v!r}")
    paths = _paths(path, names)
    files = {k: p.name for k, p in paths.items()}
    common = {"rnnkit.model": type(obj).__name__, "rnnkit.graphs": files,
              "rnnkit.config": obj.config()}
    common.update({f"rnnkit.{k}": v for k, v in (metadata or {}).items()})
    dropped = training_only(obj)
    dropped = (" Training-only options, not in the graph: " + ", ".join(dropped) + "."
               if dropped else "")
    models = {}
    for name in names:  # build all before writing any: an error leaves no partial export
        g = Graph(f"rnnkit_{type(obj).__name__}_{name}", dtype, opset)
        doc = _build(obj, name, g, bool(lengths), bool(state))
        doc = (f"rnnkit {type(obj).__name__}, {name} graph (eval mode). {doc}. Inputs: "
               + ", ".join(i.name for i in g.inputs) + "; outputs: "
               + ", ".join(o.name for o in g.outputs) + "." + dropped)
        models[name] = g.model(doc, {**common, "rnnkit.graph": name})
    return {name: save_model(models[name], paths[name]) for name in names}
