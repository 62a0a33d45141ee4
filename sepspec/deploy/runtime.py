"""Run an exported file itself: a .tflite in the LiteRT interpreter (`ai-edge-litert`), an .onnx in ONNX Runtime.

Both take raw pixels, as `sepspec export` writes them; the input is quantised as the file says (an int8 model
takes uint8 pixels with its own scale and zero point) and an integer output is dequantised.
"""

from __future__ import annotations

import os

import numpy as np

from ..diagnostics import UserError

EXPORTED = (".tflite", ".onnx")


def _quantise(x: np.ndarray, dtype, scale: float, zero: int) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if scale:
            x = np.round(x / scale + zero)
        return np.clip(x, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def scores(path: str, pixels: np.ndarray, batch: int = 250) -> np.ndarray:
    """(n, classes) class scores (dequantised) of the exported file for uint8 images (n, h, w, c)."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    try:
        if path.endswith(".tflite"):
            return _litert(path, pixels, batch)
        if path.endswith(".onnx"):
            return _onnx(path, pixels, batch)
    except UserError:
        raise
    except ModuleNotFoundError:
        raise
    except Exception as e:  # the runtimes raise many kinds for a damaged file
        first = (str(e).strip().splitlines() or [""])[0]
        raise UserError(f"{path}: cannot run it ({type(e).__name__}: {first[:200]})") from None
    raise UserError(f"{path}: not an exported model (expected {' or '.join(EXPORTED)})")


def _litert(path, pixels, batch):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    if tuple(i["shape"][1:]) != pixels.shape[1:]:
        raise UserError(f"{path}: takes {'x'.join(map(str, i['shape'][1:]))} images, the data has "
                        f"{'x'.join(map(str, pixels.shape[1:]))}")
    try:  # run a batch once to find out whether the default delegate (XNNPACK) can run this graph
        it.resize_tensor_input(i["index"], [batch, *pixels.shape[1:]])
        it.allocate_tensors()
        it.set_tensor(i["index"], np.zeros([batch, *pixels.shape[1:]], i["dtype"]))
        it.invoke()
    except RuntimeError:  # XNNPACK (the default delegate) refuses some int8 graphs: the built-in kernels run them
        from ai_edge_litert.interpreter import OpResolverType

        it = Interpreter(model_path=path,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.resize_tensor_input(i["index"], [batch, *pixels.shape[1:]])
        it.allocate_tensors()
    scale, zero = i["quantization"]
    oscale, ozero = o["quantization"]
    out = []
    for s in range(0, len(pixels), batch):
        x = pixels[s:s + batch]
        n = len(x)
        if n < batch:  # the last, short batch: pad (the interpreter's shape is fixed)
            x = np.concatenate([x, np.zeros((batch - n, *x.shape[1:]), x.dtype)])
        it.set_tensor(i["index"], _quantise(x.astype(np.float32), i["dtype"], scale, zero))
        it.invoke()
        y = it.get_tensor(o["index"])[:n].astype(np.float32)
        out.append((y - ozero) * oscale if oscale else y)
    return np.concatenate(out)


def _onnx(path, pixels, batch):
    import onnxruntime as ort

    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    dtype = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8}.get(inp.type, np.float32)
    return np.concatenate([s.run(None, {inp.name: pixels[k:k + batch].astype(dtype)})[0]
                           for k in range(0, len(pixels), batch)])
