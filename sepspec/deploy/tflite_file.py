"""A `.tflite` file read as the static estimate's `Deployment`: its ops in execution order with their output
tensors, weight bytes and multiply-accumulates (a dilated depthwise convolution's over all its space-to-batch
blocks, which the file declares at batch 1), planned by the same live-bytes walk and TensorFlow Lite Micro
arena planner as a spec's estimate, so that `sepspec show FILE.tflite --memory` prints the table `show SPEC
--memory` prints, for a model sepspec did not make too. Needs `ai-edge-litert` (the export extra) for the file's
schema; no TensorFlow.
"""

from __future__ import annotations

import math
import os

from ..diagnostics import UserError
from ..graph.memory import Deployment, Op, plan

ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8}  # TensorType -> bytes (FLOAT32, FLOAT16, ...)


def _name(b) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else str(b)


def read(path: str):
    """The file as the schema's object tree (`ModelT`); a file that is not a model is a one-line error."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    from ai_edge_litert import schema_py_generated as fb  # the export extra, which brings numpy too

    try:
        with open(path, "rb") as f:
            m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(f.read()), 0))
        m.subgraphs[0]
    except Exception:  # a file that is not a flatbuffer of this schema
        raise UserError(f"{path}: not a .tflite model (it does not read as TFLite's flatbuffer schema)") from None
    return m


def operator_names(m) -> list[str]:
    """The builtin operator of each of the model's operator codes, in the file's order (`CONV_2D`, ...)."""
    from ai_edge_litert import schema_py_generated as fb

    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    return [names.get(max(c.builtinCode, c.deprecatedBuiltinCode), f"BUILTIN_{c.builtinCode}")
            for c in m.operatorCodes]


def deployment(path: str) -> Deployment:
    """The ops of the file's main subgraph, as a Deployment (flash: each constant buffer counted once, where it is
    first read)."""
    import numpy as np

    m = read(path)
    g, kinds = m.subgraphs[0], operator_names(m)
    tensors = g.tensors

    def shape(i):
        return tuple(int(v) for v in (tensors[i].shape if tensors[i].shape is not None else ()))

    def const(i):
        return i >= 0 and m.buffers[tensors[i].buffer].data is not None

    d = Deployment()
    seen: set[int] = set()
    blocks: dict[int, int] = {}  # a SPACE_TO_BATCH_ND's output -> its blocks (the file declares them at batch 1)
    for i in g.inputs:
        d.ops.append(Op(_name(tensors[i].name), "INPUT", "", (), shape(i)[1:] if shape(i)[:1] == (1,) else shape(i),
                        itemsize=ITEMSIZE.get(tensors[i].type, 1)))
    for op in g.operators:
        kind = kinds[op.opcodeIndex]
        weights = 0
        for i in op.inputs:
            if const(i) and tensors[i].buffer not in seen:
                seen.add(tensors[i].buffer)
                weights += len(m.buffers[tensors[i].buffer].data)
        out = op.outputs[0]
        out_shape = shape(out)
        if kind == "SPACE_TO_BATCH_ND" and len(op.inputs) > 1 and const(op.inputs[1]):
            blocks[out] = int(np.prod(np.frombuffer(bytes(m.buffers[tensors[op.inputs[1]].buffer].data), "<i4")))
        factor = blocks.get(op.inputs[0], 1) if kind == "DEPTHWISE_CONV_2D" else 1
        o = Op(_name(tensors[out].name), kind, "", tuple(_name(tensors[i].name) for i in op.inputs
                                                          if i >= 0 and not const(i)),
               out_shape[1:] if out_shape[:1] == (1,) else out_shape, weights=weights,
               itemsize=ITEMSIZE.get(tensors[out].type, 1),
               macs=factor * _macs(kind, [shape(i) for i in op.inputs if i >= 0], out_shape))
        o.weight_bytes = weights
        d.ops.append(o)
    plan(d)
    return d


def _macs(kind: str, inputs: list[tuple], out: tuple) -> int:
    """Multiply-accumulates of a convolution or dense op from its tensors' shapes (others: 0, as the analysis
    counts them)."""
    if kind == "CONV_2D" and len(inputs) >= 2:  # filter (cout, kh, kw, cin per group)
        cout, kh, kw, cin = inputs[1]
        return math.prod(out[1:3]) * cout * kh * kw * cin
    if kind == "DEPTHWISE_CONV_2D" and len(inputs) >= 2:  # filter (1, kh, kw, cout)
        _, kh, kw, cout = inputs[1]
        return math.prod(out[1:3]) * cout * kh * kw
    if kind == "FULLY_CONNECTED" and len(inputs) >= 2:  # weights (units, in)
        units, n = inputs[1]
        return math.prod(out[:-1]) * units * n if len(out) > 1 else units * n
    return 0
