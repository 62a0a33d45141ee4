"""The last mile to a microcontroller: an int8 `.tflite` file as C++ sources for TensorFlow Lite Micro, and the
file run on TFLM's own kernels (the reference kernels, which CMSIS-NN's optimised ones match bit for bit).

`write_sources` writes what a TFLM project includes as it is (TFLM's own guide does these steps by hand):

- `model_data.h` / `model_data.cc`: the file as a 16-byte-aligned `const` array and its length (`xxd -i`, aligned);
- `model_settings.h`: the tensor arena's size, the input's and output's shape, scale and zero point, the classes;
- `model_ops.h`: `RegisterOps(resolver)`, a `MicroMutableOpResolver<kNumOps>` with exactly the file's operators.

The arena is the activations' plan (the static estimate, `graph/memory.py`, where the spec is known; else TFLM's
own plan) plus what TFLM's interpreter keeps beside them (its persistent "tail": tensor and node structures),
measured by TFLM's Python interpreter on this host. A 64-bit host's structures are at least as large as a 32-bit
microcontroller's, so the figure is enough there too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np

from ..diagnostics import UserError
from ..train import rundir
from .tflite_file import operator_names, read

ALIGN = 16
# TFLite builtin operator -> TFLM's MicroMutableOpResolver method (tensorflow/lite/micro/micro_mutable_op_resolver.h)
RESOLVER = {
    "ADD": "AddAdd", "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize", "FULLY_CONNECTED": "AddFullyConnected", "GELU": "AddGelu",
    "HARD_SWISH": "AddHardSwish", "LEAKY_RELU": "AddLeakyRelu", "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D", "MEAN": "AddMean", "MUL": "AddMul", "PACK": "AddPack", "PAD": "AddPad",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize", "REDUCE_MAX": "AddReduceMax", "RELU": "AddRelu", "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "RSQRT": "AddRsqrt",
    "SHAPE": "AddShape", "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub",
    "TANH": "AddTanh", "TRANSPOSE": "AddTranspose",
}
FILES = ("model_data.h", "model_data.cc", "model_settings.h", "model_ops.h")


_MICRO = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))
d = it.get_input_details(0)
it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
it.invoke()
it.print_allocations()
"""


def micro_arena(path: str, arena_size: int = 4 << 20) -> dict:
    """What TensorFlow Lite Micro's memory planner allocates for a .tflite file: {"total", "head", "tail"} bytes
    (head: the activations; tail: persistent structures). Runs in a subprocess: TFLM prints to the C stderr."""
    r = subprocess.run([sys.executable, "-c", _MICRO, path, str(arena_size)], capture_output=True, text=True)
    found = {}
    for line in (r.stdout + r.stderr).splitlines():
        for key in ("total", "head", "tail"):
            if f"Arena allocation {key} " in line:
                found[key] = int(line.split(f"Arena allocation {key} ")[1].split()[0])
    if r.returncode != 0 or len(found) != 3:
        missing = re.search(r"Failed to get registration from op code (\w+)", r.stdout + r.stderr)
        if missing:  # GELU: TFLM has the kernel, its Python runtime's op resolver does not
            raise UserError(f"{path}: TensorFlow Lite Micro's Python runtime, which measures the arena here, has no "
                            f"{missing.group(1)} kernel; export --format litert-int8 and build it with TFLM, or use "
                            f"another activation")
        tail = (r.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"{path}: TensorFlow Lite Micro could not run it ({tail[:200]})")
    return found


def operators(path: str) -> list[str]:
    """The builtin operators a .tflite file uses, in the order the file lists them."""
    return operator_names(read(path))


def planned_arena(run: str) -> int | None:
    """The static estimate of the activation arena for the spec of the run folder `run` (None for no run)."""
    if not rundir.is_run(run):
        return None
    from ..graph.analysis import analyse
    from ..graph.memory import estimate

    return estimate(analyse(rundir.read_spec(run))).arena_bytes


def io_details(path: str) -> dict:
    """The input's and output's shape, dtype, scale and zero point, as TFLM's interpreter reads the file."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_file(path, arena_size=8 << 20)

    def detail(d):
        q = d["quantization_parameters"]
        return {"shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                "scale": float(q["scales"][0]) if len(q["scales"]) else 0.0,
                "zero_point": int(q["zero_points"][0]) if len(q["zero_points"]) else 0}

    return {"input": detail(it.get_input_details(0)), "output": detail(it.get_output_details(0))}


def arena_size(path: str, estimate: int | None = None) -> dict:
    """The tensor arena a device reserves: the activations (`estimate`, the static plan, where known; else TFLM's)
    plus TFLM's persistent structures, measured; `head` is what TFLM itself planned for the activations."""
    measured = micro_arena(path)
    # the estimate equals TFLM's plan for every spec tested (docs/deployment.md); were they ever to differ, the
    # larger is reserved and the record says so
    activations = measured["head"] if estimate is None else max(estimate, measured["head"])
    size = -(-(activations + measured["tail"]) // ALIGN) * ALIGN
    return {"bytes": size, "activations": activations, "persistent": measured["tail"], "head": measured["head"],
            "estimate": estimate}


def _c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_sources(tflite: str, folder: str, *, class_names: list[str], origin: str,
                  estimate: int | None = None) -> dict:
    """Write the C++ sources for `tflite` into `folder` (which exists); returns what they say."""
    data = open(tflite, "rb").read()
    ops = list(dict.fromkeys(operators(tflite)))  # each once, in the file's order
    missing = [o for o in ops if o not in RESOLVER]
    if missing:
        raise UserError(f"{tflite}: TensorFlow Lite Micro has no resolver entry sepspec knows for "
                        f"{', '.join(missing)}")
    io = io_details(tflite)
    arena = arena_size(tflite, estimate)
    if len(class_names) != io["output"]["shape"][-1]:
        class_names = [f"class_{i}" for i in range(io["output"]["shape"][-1])]
    head = f"// Generated by sepspec export --format tflm from {origin}. Do not edit: export again.\n"
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + 12]) for i in range(0, len(data), 12)]
    files = {
        "model_data.h": head + "#ifndef SEPSPEC_MODEL_DATA_H_\n#define SEPSPEC_MODEL_DATA_H_\n\n"
        "// The model (a .tflite flatbuffer), aligned as TFLM requires; read in place, never copied.\n"
        "extern const unsigned char g_model[];\nextern const unsigned int g_model_len;\n\n#endif\n",
        "model_data.cc": head + '#include "model_data.h"\n\n'
        f"alignas({ALIGN}) const unsigned char g_model[] = {{\n    " + ",\n    ".join(rows) + "\n};\n"
        f"const unsigned int g_model_len = {len(data)};\n",
        "model_settings.h": head + _settings(io, arena, class_names),
        "model_ops.h": head + "#ifndef SEPSPEC_MODEL_OPS_H_\n#define SEPSPEC_MODEL_OPS_H_\n\n"
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        f"constexpr int kNumOps = {len(ops)};  // {', '.join(ops)}\n\n"
        "// Registers exactly the operators the model uses.\n"
        "inline TfLiteStatus RegisterOps(tflite::MicroMutableOpResolver<kNumOps>& resolver) {\n"
        + "".join(f"  TF_LITE_ENSURE_STATUS(resolver.{RESOLVER[o]}());\n" for o in ops)
        + "  return kTfLiteOk;\n}\n\n#endif\n",
    }
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    return {"bytes": len(data), "ops": ops, "arena": arena, **io}


def _settings(io: dict, arena: dict, class_names: list[str]) -> str:
    i, o = io["input"], io["output"]
    dims = "".join(f"constexpr int kInputDim{k} = {v};\n" for k, v in enumerate(i["shape"]))
    return ("#ifndef SEPSPEC_MODEL_SETTINGS_H_\n#define SEPSPEC_MODEL_SETTINGS_H_\n\n"
            f"// The tensor arena: {arena['activations']:,} bytes of activations (the planned peak) + "
            f"{arena['persistent']:,} bytes TFLM keeps beside them\n"
            f"constexpr int kTensorArenaSize = {arena['bytes']};\n\n"
            f"// Input: {i['dtype']} {'x'.join(map(str, i['shape']))} (raw pixels; the normalisation is in the model)\n"
            + dims +
            f"constexpr float kInputScale = {i['scale']!r}f;\nconstexpr int kInputZeroPoint = {i['zero_point']};\n\n"
            f"// Output: {o['dtype']} {'x'.join(map(str, o['shape']))}; probability = (q - kOutputZeroPoint) * "
            "kOutputScale\n"
            f"constexpr float kOutputScale = {o['scale']!r}f;\nconstexpr int kOutputZeroPoint = {o['zero_point']};\n"
            f"constexpr int kNumClasses = {len(class_names)};\n"
            f"constexpr const char* kClassNames[kNumClasses] = {{{', '.join(map(_c_string, class_names))}}};\n\n"
            "#endif\n")


def resolver_calls(header: str) -> list[str]:
    """The `AddXxx` calls of a generated model_ops.h, in order (what the tests compare with the file)."""
    return re.findall(r"resolver\.(Add\w+)\(\)", header)


def scores(path: str, pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """(n, classes) dequantised scores of a .tflite file on TensorFlow Lite Micro's kernels, one image at a time
    (TFLM runs batch 1), and the activation bytes TFLM planned for it (its arena's head)."""
    from tflite_micro.python.tflite_micro import runtime

    measured = micro_arena(path)
    it = runtime.Interpreter.from_file(path, arena_size=measured["total"] + 4096)
    i, o = it.get_input_details(0), it.get_output_details(0)
    if tuple(i["shape"][1:]) != pixels.shape[1:]:
        raise UserError(f"{path}: takes {'x'.join(map(str, i['shape'][1:]))} images, the data has "
                        f"{'x'.join(map(str, pixels.shape[1:]))}")
    (iscale,), (izero,) = i["quantization_parameters"]["scales"], i["quantization_parameters"]["zero_points"]
    (oscale,), (ozero,) = o["quantization_parameters"]["scales"], o["quantization_parameters"]["zero_points"]
    info = np.iinfo(i["dtype"])
    out = np.empty((len(pixels), int(o["shape"][-1])), np.float32)
    for k in range(len(pixels)):
        x = np.asarray(pixels[k:k + 1], np.float32)
        q = np.clip(np.round(x / iscale + izero) if iscale else x, info.min, info.max).astype(i["dtype"])
        it.set_input(q, 0)
        it.invoke()
        out[k] = (it.get_output(0)[0].astype(np.float32) - ozero) * oscale
    return out, measured["head"]
