"""A small builder of ONNX graphs: named nodes, weights as initializers, typed inputs and
outputs, and the finished, checked model written atomically.

The ``onnx`` package is imported here, and this module only by :mod:`rnnkit.onnx` when an
export runs, so that ``import rnnkit`` stays numpy-only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..checkpoint import as_new_file


def onnx_package():
    """The ``onnx`` package, or ImportError saying how to install it."""
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("rnnkit.onnx needs the onnx package: pip install 'rnnkit[onnx]' "
                          "(brings onnx and onnxruntime)") from e
    return onnx


class Graph:
    """One ONNX graph under construction.

    Args:
        name: the graph's name.
        dtype: the float type of its weights and activations (np.float32 or np.float64).
        opset: the ONNX operator set version of the default domain.

    Tensors are referred to by name: :meth:`op` returns the names of a node's outputs,
    :meth:`const` the name of an initializer. Names are made unique with a counter.
    """

    def __init__(self, name: str, dtype, opset: int):
        self.onnx = onnx_package()
        self.name, self.dtype, self.opset = name, np.dtype(dtype), opset
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._used: set[str] = set()

    def fresh(self, base: str) -> str:
        """A tensor name not used yet, from ``base`` (``base``, ``base_1``, ...)."""
        name, k = base, 0
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    # ------------------------------------------------------------------ tensors
    def const(self, array, name: str = "const") -> str:
        """An initializer holding ``array`` (float arrays in the graph's float type)."""
        a = np.asarray(array)
        if a.dtype.kind == "f":
            a = a.astype(self.dtype)
        tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(a), self.fresh(name))
        self.initializers.append(tensor)
        return tensor.name

    def ints(self, values, name: str = "ints") -> str:
        """A 1-D int64 initializer (shapes, axes, slice bounds)."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1), name)

    def op(self, op_type: str, inputs, n_out: int = 1, name: str | None = None,
           outputs=None, **attrs):
        """Add a node; returns its output name (a list of names when n_out > 1).

        inputs: tensor names ("" for an omitted optional input); outputs: the names to give
        the outputs (default: fresh names from ``name`` or the op type)."""
        base = name or op_type.lower()
        if outputs is None:
            outputs = [self.fresh(base if n_out == 1 else f"{base}_{k}") for k in range(n_out)]
        else:
            for o in outputs:
                self._used.add(o)
        node = self.onnx.helper.make_node(op_type, list(inputs), list(outputs),
                                          name=self.fresh(f"{base}_node"), **attrs)
        self.nodes.append(node)
        return outputs[0] if n_out == 1 else list(outputs)

    def reduce(self, op_type: str, x: str, axes, keepdims: int = 0, name=None) -> str:
        """ReduceSum/Mean/Max/Prod over ``axes``: the axes are an input from opset 18 on
        (ReduceSum from 13), an attribute before."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes, "axes")], name=name, keepdims=keepdims)
        return self.op(op_type, [x], name=name, axes=list(axes), keepdims=keepdims)

    def elem_type(self, kind: str) -> int:
        """The ONNX element type of "int64" or "float" (the graph's float type)."""
        tp = self.onnx.TensorProto
        if kind == "int64":
            return tp.INT64
        return tp.DOUBLE if self.dtype == np.float64 else tp.FLOAT

    def input(self, name: str, shape, kind: str = "float") -> str:
        """Declare a graph input; shape: ints and strings (symbolic sizes such as "B")."""
        self._used.add(name)
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, self.elem_type(kind),
                                                                   list(shape)))
        return name

    def output(self, name: str, tensor: str, shape, kind: str = "float") -> None:
        """Declare ``tensor`` as the graph output ``name`` (an Identity node if renamed)."""
        if tensor != name:
            self.op("Identity", [tensor], outputs=[name])
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, self.elem_type(kind),
                                                                    list(shape)))

    # ------------------------------------------------------------------ the model
    def model(self, doc: str, metadata: dict):
        """The finished ModelProto, checked by ``onnx.checker`` (with shape inference).

        metadata: str -> JSON-serialisable values, stored as ``metadata_props`` (strings
        as they are, anything else as JSON)."""
        from .. import __version__

        onnx = self.onnx
        graph = onnx.helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                       self.initializers, doc_string=doc)
        model = onnx.helper.make_model(graph, producer_name="rnnkit",
                                       producer_version=__version__, doc_string=doc,
                                       opset_imports=[onnx.helper.make_opsetid("", self.opset)])
        props = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
        onnx.helper.set_model_props(model, props)
        onnx.checker.check_model(model, full_check=True)
        return model


def save_model(model, path: Path) -> Path:
    """Write a ModelProto to path atomically (a temporary file in the same folder, then a
    rename): an interrupted export never leaves a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        as_new_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
