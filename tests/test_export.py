"""`sepspec export` and `sepspec evaluate FILE.tflite|.onnx` for real: a branchy spec trained for an epoch on small
data in the CIFAR-10 format, converted to every format, each file run by its own runtime and compared with
Keras on the same images; and the checker's static memory estimate against converted models and TensorFlow
Lite Micro's planner."""
import glob
import json
import os
import shutil
import sys

import numpy as np
import pytest

from conftest import OFFLINE, ROOT, run_cli, trained_run

pytest.importorskip("ai_edge_litert")
pytest.importorskip("onnxruntime")

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from deploy_memory import measure, trained_like  # noqa: E402

pytestmark = pytest.mark.slow  # trains, converts or starts the CLI with TensorFlow: not in the inner loop

BRANCHY = """
name: branchy
input: [32, 32, 3]
classes: 10
defaults:
  sepconv: {bias: false, norm: batch, activation: relu, bn_momentum: 0.9}
layers:
  - sepconv: 8
  - residual: {body: [sepconv: 8, sepconv: {filters: 8, activation: none}], activation: relu}
  - mbconv: {filters: 12, stride: 2, expand: 2, se: 0.25}
  - maxpool: 2
  - sepconv: {filters: 10, norm: none, activation: none}
  - gap: {}
  - activation: softmax
train: {epochs: 1, batch_size: 32}
"""
# every other kind the estimate lowers: depthwise/pointwise, a standalone batch norm, silu, sigmoid, average
# pooling, squeeze-excite, flatten and dense
ODD = """
name: odd
input: [32, 32, 3]
classes: 10
layers:
  - depthwise: {kernel: 3}
  - pointwise: 16
  - batchnorm: {}
  - activation: silu
  - avgpool: 2
  - sepconv: {filters: 16, activation: sigmoid, norm: batch}
  - residual: {body: [sepconv: 16, sepconv: {filters: 16, activation: none}], activation: relu}
  - se: {ratio: 0.25}
  - maxpool: 2
  - flatten: {}
  - dense: 10
  - activation: softmax
"""
# the parallel vocabulary: channel groups (equal and not), a dilated branch, concatenation, layer norm (alone and
# in a tail), a gated multiply, grouped 1x1s, a shuffle, a concatenation inside a residual, dilated depthwise and
# separable convolutions
PARALLEL = """
name: parallel
input: [32, 32, 3]
classes: 10
layers:
  - sepconv: {filters: 16, norm: batch, activation: relu}
  - parallel: {split: channels, sizes: [8, 4, 4], branches: [[], [depthwise: 3], [avgpool: {size: 3, stride: 1, padding: same}, depthwise: {kernel: 7, dilation: 3}]]}
  - layernorm: {}
  - parallel: {branches: [[pointwise: 24], [pointwise: {filters: 24, activation: sigmoid}]], merge: multiply}
  - pointwise: {filters: 16, groups: 4, norm: layer}
  - shuffle: 4
  - depthwise: {kernel: 3, dilation: 2, norm: batch, activation: relu}
  - residual: {body: [parallel: {split: channels, branches: [[depthwise: 3], [depthwise: 5]], merge: concat}]}
  - sepconv: {filters: 16, dilation: 2, bias: false}
  - sepconv: {filters: 10, stride: 2}
  - gap: {}
  - activation: softmax
"""
ENV = OFFLINE


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    return trained_run(tmp_path_factory, BRANCHY, data)


def _keras_probabilities(run, x):
    from sepspec.train import rundir
    from sepspec.train.pipeline import normalize
    from sepspec.train.predict import probabilities

    stats = json.load(open(os.path.join(run, "metrics.json")))["normalization"]
    return probabilities(rundir.load_model(os.path.join(run, "best.keras")), normalize(x, stats["mean"], stats["std"]))


def test_every_format_runs_in_its_runtime_and_agrees_with_keras(tmp_path, run, data):
    from ai_edge_litert import schema_py_generated as fb

    from sepspec.data.read import load_data
    from sepspec.deploy.runtime import scores

    x = load_data(data).x_test
    want = _keras_probabilities(run, x)
    files = {}
    for fmt, name in (("litert", "f.tflite"), ("litert-int8", "q.tflite"), ("onnx", "m.onnx"), ("saved_model", "sm")):
        files[fmt] = str(tmp_path / name)
        r = run_cli("export", run, "--format", fmt, "-o", files[fmt], "--calibration", "32", env=ENV)
        assert r.returncode == 0 and f"wrote {files[fmt]}" in r.stdout, r.stderr
    # raw uint8 pixels in: the normalisation is inside each file
    assert np.abs(scores(files["litert"], x) - want).max() < 1e-4
    assert np.abs(scores(files["onnx"], x) - want).max() < 1e-4
    import tensorflow as tf

    loaded = tf.saved_model.load(files["saved_model"])  # kept: its functions need the object alive
    served = loaded.serve(tf.constant(x.astype(np.float32)))
    assert np.abs(np.asarray(served) - want).max() < 1e-4
    q = scores(files["litert-int8"], x)
    assert np.abs(q - want).max() < 0.05, np.abs(q - want).max()  # int8 output steps are 1/256
    # full-integer: uint8 in, int8 out, every op an int8 builtin, every activation tensor integer
    with open(files["litert-int8"], "rb") as f:
        m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(f.read()), 0))
    g = m.subgraphs[0]
    types = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    assert types[g.tensors[g.inputs[0]].type] == "UINT8" and types[g.tensors[g.outputs[0]].type] == "INT8"
    codes = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    ops = {codes[max(m.operatorCodes[o.opcodeIndex].builtinCode, m.operatorCodes[o.opcodeIndex].deprecatedBuiltinCode)]
           for o in g.operators}
    assert not ops & {"DEQUANTIZE", "CUSTOM", "FLEX_DELEGATE"}, ops
    written = {o.outputs[0] for o in g.operators}
    assert {types[g.tensors[t].type] for t in written} <= {"INT8", "UINT8"}

    r = run_cli("evaluate", files["litert-int8"], "--reference", run, env=ENV)
    assert r.returncode == 0, r.stderr
    ev = json.load(open(files["litert-int8"] + ".evaluation.json"))
    y = load_data(data).y_test
    assert ev["test_accuracy"] == pytest.approx(float((q.argmax(-1) == y).mean()))
    assert ev["reference_accuracy"] == pytest.approx(float((want.argmax(-1) == y).mean()))
    assert ev["agreement"] == pytest.approx(float((q.argmax(-1) == want.argmax(-1)).mean()))
    # paths relative to the evaluation file's folder: a committed folder names its files wherever it is cloned
    assert ev["model"] == "q.tflite" and ev["reference"] == os.path.relpath(os.path.join(run, "best.keras"), tmp_path)
    # a checkpoint of the run as the reference, normalised as its run was (one epoch, no average: best.keras)
    ckpt = os.path.join(run, json.load(open(os.path.join(run, "state.json")))["checkpoint"])
    r = run_cli("evaluate", files["litert-int8"], "--reference", ckpt, env=ENV)
    assert r.returncode == 0, r.stderr
    by_ckpt = json.load(open(files["litert-int8"] + ".evaluation.json"))
    assert by_ckpt["reference"] == os.path.relpath(ckpt, tmp_path)
    assert (by_ckpt["reference_accuracy"], by_ckpt["agreement"]) == (ev["reference_accuracy"], ev["agreement"])
    r = run_cli("evaluate", files["litert-int8"], "--reference", str(tmp_path / "none.keras"), env=ENV)
    assert r.returncode == 2 and "none.keras: no model" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("evaluate", files["onnx"], "--reference", run, env=ENV)
    assert r.returncode == 0 and "agrees with it on 100.00%" in r.stdout, r.stdout + r.stderr


# explicit padding and cropping (PAD, STRIDED_SLICE), batch norms without scale or shift, hard_swish, gap keepdims,
# an mbconv with its expanded width and squeeze written out, a squeeze rounded to a multiple of 8
PADDED = """
name: padded
input: [32, 32, 3]
classes: 10
layers:
  - zeropad: [[0, 1], [0, 1]]
  - conv: {filters: 8, kernel: 3, stride: 2, padding: valid, bias: false, norm: batch, bn_scale: false, bn_epsilon: 0.00001, activation: hard_swish}
  - se: {ratio: 0.5, divisor: 8}
  - zeropad: 1
  - sepconv: {filters: 12, padding: valid, norm: batch, activation: relu}
  - crop: [[1, 0], [0, 1]]
  - batchnorm: {scale: false, center: false}
  - mbconv: {filters: 12, expand_filters: 20, se: {filters: 6, activation: relu, gate: hard_sigmoid}, activation: hard_swish}
  - zeropad: [1, 2]
  - maxpool: {size: 3, stride: 2}
  - sepconv: {filters: 10}
  - gap: {keepdims: true}
  - conv: {filters: 10, kernel: 1}
  - flatten: {}
  - activation: softmax
"""


# hard_tanh fused into the op before it (a convolution, a residual's ADD, a batch norm's ADD), tanh_shrink as TANH + SUB,
# hard_silu as HARD_SWISH, a LeakyReLU of its own slope as LEAKY_RELU; a head of a 1x1 convolution on the pooled pixel, reshaped to the classes
ACTS = """
name: acts
input: [32, 32, 3]
classes: 10
layers:
  - conv: {filters: 8, stride: 2, activation: hard_tanh}
  - sepconv: {filters: 8, activation: tanh_shrink}
  - sepconv: {filters: 8, norm: batch, activation: hard_silu}
  - leaky_relu: 0.1
  - prelu: {init: 0.25, shared_axes: [1, 2]}
  - residual: {body: [sepconv: 8], activation: hard_tanh}
  - prelu: {}
  - batchnorm: {}
  - activation: hard_tanh
  - gap: {keepdims: true}
  - pointwise: 10
  - reshape: [10]
  - prelu: 0.1
  - activation: softmax
train: {normalize: none}
"""


# preprocessing in the model: Rescaling (MUL, and ADD for an offset) and Normalization (SUB, MUL), one constant or one
# per channel, its statistics as weights or written out
PRE = """
name: pre
input: [32, 32, 3]
classes: 10
layers:
  - rescale: 0.00392156862745098
  - normalize: {}
  - rescale: {scale: [0.5, 1.0, 2.0], offset: -1.0}
  - normalize: {mean: [0.1, 0.2, 0.3], variance: [1.0, 2.0, 4.0]}
  - conv: {filters: 8, stride: 2, activation: relu}
  - sepconv: 10
  - gap:
train: {normalize: pixels}
"""

# ConvNeXt's block: a 7x7 convolution of one group per channel, layer norm, Dense on the image (written as the 1x1
# convolution it is), a learned per-channel `scale` (a 1x1 DEPTHWISE_CONV_2D); a merge over names; a layer norm on
# the pooled vector, whose scale and shift fold into the classifier's FULLY_CONNECTED (hard_silu: the TFLM runtime
# here has no GELU kernel)
NEXT = """
name: next
input: [32, 32, 3]
classes: 10
layers:
  - conv: {filters: 16, kernel: 4, stride: 4, padding: valid}
  - layernorm: {epsilon: 0.000001}
  - residual:
      body:
        - conv: {filters: 16, kernel: 7, groups: 16}
        - layernorm: {epsilon: 0.000001}
        - dense: {units: 64, activation: hard_silu}
        - dense: 16
        - scale: 0.000001
  - conv: {filters: 24, kernel: 2, stride: 2, padding: valid, name: down}
  - dense: {units: 24, name: mix}
  - scale: {init: 0.5, name: gain}
  - add: [down, gain]
  - gap: {}
  - layernorm: {}
  - dense: {units: 10, activation: softmax}
"""

# global max pooling (REDUCE_MAX): beside global average pooling in a channel attention (CBAM's: both pooled
# descriptors through 1x1 convolutions, added, a sigmoid gate on the features), and as the classifier's pooling
GMP = """
name: gmp
input: [32, 32, 3]
classes: 10
layers:
  - conv: {filters: 8, stride: 2, norm: batch, activation: relu}
  - sepconv: {filters: 16, norm: batch, activation: relu, name: feat}
  - parallel:
      branches:
        - [gap: {keepdims: true}, pointwise: {filters: 4, activation: relu}]
        - [gmp: {keepdims: true}, pointwise: {filters: 4, activation: relu}]
      merge: add
  - pointwise: {filters: 16, activation: sigmoid, name: gate}
  - multiply: [feat, gate]
  - maxpool: 2
  - sepconv: 10
  - gmp: {}
  - activation: softmax
"""

INLINE = {"branchy": BRANCHY, "odd": ODD, "parallel": PARALLEL, "padded": PADDED, "acts": ACTS, "pre": PRE,
          "next": NEXT, "gmp": GMP}


@pytest.mark.parametrize("spec", sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml"))) + sorted(INLINE))
def test_static_estimate_equals_the_converted_model(tmp_path, spec, run, data):
    """Flash equals the .tflite file's weight buffers and the activation estimate equals the arena head TensorFlow
    Lite Micro allocates (both measured exact for every spec here), with as many ops as the converter makes."""
    spec_name = os.path.splitext(os.path.basename(spec))[0]
    if spec in INLINE:
        path = tmp_path / f"{spec}.yaml"
        path.write_text(INLINE[spec].lstrip())
        spec = str(path)
    m = measure(spec, run, data, str(tmp_path))
    assert m["flash_est"] == m["flash_file"], m
    assert m["ops_est"] == m["ops_file"], m
    assert m["arena_est"] == m["head"], m
    assert m["live_peak"] <= m["head"]
    # the per-op MACs (what the int8 model computes) are the file's, read back as `show FILE.tflite --memory` reads
    # it; they add up to the analysis's, but for dilated depthwise convolutions, which also compute the padded
    # margin of their space-to-batch view
    assert m["macs_est"] == m["macs_read"], m
    assert m["macs_est"] == m["macs"] if spec_name not in ("mixgate", "parallel") else m["macs_est"] >= m["macs"], m
    assert m["flash_read"] == m["flash_file"] and m["arena_read"] == m["head"], m


def test_export_errors_are_one_line_and_leave_nothing(tmp_path, run, data):
    from sepspec.lazy import import_keras

    def refused(*args, says):
        r = run_cli("export", *args, env=ENV)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    out = tmp_path / "m.tflite"
    out.write_bytes(b"keep me")
    refused(str(tmp_path / "nothing"), "--format", "litert", "-o", str(out), says="no such run directory or .keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    refused(str(bad), "--format", "litert", "-o", str(out), says="cannot load the model")
    refused(run, "--format", "litert", "-o", str(tmp_path / "m.onnx"), says="must end in .tflite")
    refused(run, "--format", "onnx", "-o", str(tmp_path / "no" / "m.onnx"), says="does not exist")
    keras = import_keras()
    elu = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.SeparableConv2D(4, 3, activation="elu"),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")])
    elu.save(tmp_path / "elu.keras")
    refused(str(tmp_path / "elu.keras"), "--format", "litert-int8", "-o", str(out), "--data", data,
            says="elu has no int8 kernel")
    assert out.read_bytes() == b"keep me"
    assert sorted(os.listdir(tmp_path)) == ["bad.keras", "elu.keras", "m.tflite"]  # no temporary left behind
    r = run_cli("evaluate", str(out), "--data", data, env=ENV)
    assert r.returncode == 2 and "cannot run it" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_mixed_precision_model_is_exported_in_float32(tmp_path, data):
    """ONNX export needs float32: a mixed_float16 model is rebuilt in float32 with the same weights."""
    import onnx

    import sepspec
    from sepspec.data.read import load_data
    from sepspec.deploy.runtime import scores
    from sepspec.lazy import import_keras

    keras = import_keras()
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = sepspec.build_model(sepspec.check(os.path.join(ROOT, "specs", "base.yaml")).spec)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    model.save(tmp_path / "mixed.keras")
    r = run_cli("export", str(tmp_path / "mixed.keras"), "--format", "onnx", "-o", str(tmp_path / "m.onnx"), env=ENV)
    assert r.returncode == 0, r.stderr
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert onnx.TensorProto.FLOAT16 not in {t.data_type for t in graph.initializer}
    x = load_data(data).x_test[:16]
    want = model.predict(x.astype(np.float32), verbose=0).astype(np.float32)  # float16 compute: close, not equal
    assert np.abs(scores(str(tmp_path / "m.onnx"), x) - want).max() < 2e-2


def test_an_operator_tflms_python_runtime_lacks_is_named(tmp_path, data):
    """GELU has a TFLM kernel (the C++ sources register AddGelu) but the TFLM Python runtime that measures the
    arena has none: one line naming it, not TFLM's "failed to allocate tensors"."""
    from sepspec.deploy.export import convert, job_of
    from sepspec.deploy.tflm import micro_arena
    from sepspec.diagnostics import UserError

    spec = tmp_path / "g.yaml"
    spec.write_text(NEXT.replace("hard_silu", "gelu"))
    trained_like(str(spec), str(tmp_path / "g.keras"))
    convert(job_of(str(tmp_path / "g.keras"), "litert-int8", calibration=8, data=data),
            str(tmp_path / "g.tflite"))
    with pytest.raises(UserError, match="Python runtime, which measures the arena here, has no GELU kernel"):
        micro_arena(str(tmp_path / "g.tflite"))


def test_an_int8_file_that_xnnpack_refuses_runs_on_the_builtin_kernels():
    """`sepspec export` of results/mbconv-10ep-seed0: LiteRT's default delegate (XNNPACK) fails to prepare this
    graph ("failed to create XNNPACK runtime"); evaluation falls back to the built-in int8 kernels."""
    from ai_edge_litert.interpreter import Interpreter

    from sepspec.deploy.runtime import scores

    path = os.path.join(ROOT, "tests", "fixtures", "mbconv-int8-xnnpack-refuses.tflite")
    with pytest.raises(RuntimeError, match="XNNPack|XNNPACK"):
        it = Interpreter(model_path=path)
        it.allocate_tensors()
        it.invoke()
    x = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    p = scores(path, x, batch=4)
    assert p.shape == (7, 10) and np.allclose(p.sum(axis=1), 1, atol=0.05)


def test_a_killed_exports_working_folder_is_removed_by_the_next_export(tmp_path):
    """SIGKILL skips an export's clean-up; the next export in that folder removes the working folder of a process
    that is gone, and nothing of a live one or anything else."""
    import subprocess

    from sepspec.deploy.export import remove_stale_temps

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f".sepspec-export-{dead.pid}-abc", f".sepspec-export-{os.getpid()}-def", ".sepspec-export-x-y",
                 "keep"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.tflite").write_bytes(b"partial")
    remove_stale_temps(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted([f".sepspec-export-{os.getpid()}-def", ".sepspec-export-x-y", "keep"])


# ------------------------------------------------------------------------------------- TensorFlow Lite Micro
def _stand_in_resolver(root) -> None:
    """A minimal stand-in for TFLM's micro_mutable_op_resolver.h (TFLM's headers are not here): what the generated
    model_ops.h calls, each method recording its name so that a program can print what was registered."""
    from sepspec.deploy.tflm import RESOLVER

    d = root / "tensorflow" / "lite" / "micro"
    d.mkdir(parents=True)
    methods = "".join(f'  TfLiteStatus {m}() {{ return Record("{m}"); }}\n' for m in sorted(set(RESOLVER.values())))
    (d / "micro_mutable_op_resolver.h").write_text(
        "#pragma once\n#include <cstdio>\n"
        "typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;\n"
        "#define TF_LITE_ENSURE_STATUS(a) do { const TfLiteStatus s_ = (a); if (s_ != kTfLiteOk) return s_; } while (0)\n"
        "namespace tflite {\ntemplate <unsigned int tOpCount> class MicroMutableOpResolver {\n public:\n"
        + methods + " private:\n  unsigned int n_ = 0;\n"
        "  TfLiteStatus Record(const char* name) { if (n_ >= tOpCount) return kTfLiteError; ++n_; "
        "std::printf(\"%s\\n\", name); return kTfLiteOk; }\n};\n}  // namespace tflite\n")


@pytest.mark.skipif(not shutil.which("g++"), reason="no C++ compiler (g++) here")
def test_tflm_sources_hold_the_file_compile_with_warnings_as_errors_and_register_exactly_its_operators(
        tmp_path, run, data):
    import subprocess

    from sepspec import analyse
    from sepspec.deploy.tflm import RESOLVER, micro_arena, operators, resolver_calls
    from sepspec.graph.memory import estimate
    from sepspec.train import rundir

    out = tmp_path / "tflm"
    r = run_cli("export", run, "--format", "tflm", "-o", str(out), "--calibration", "32", env=ENV)
    assert r.returncode == 0, r.stderr
    assert "tensor arena" in r.stdout and "operators to register" in r.stdout
    assert sorted(os.listdir(out)) == ["model.tflite", "model_data.cc", "model_data.h", "model_ops.h",
                                       "model_settings.h"]
    tflite = (out / "model.tflite").read_bytes()
    _stand_in_resolver(tmp_path / "include")
    (tmp_path / "main.cc").write_text(
        '#include <cstdint>\n#include <cstdio>\n#include "model_data.h"\n#include "model_ops.h"\n'
        '#include "model_settings.h"\n'
        "int main(int argc, char** argv) {\n"
        "  if (argc != 2 || reinterpret_cast<std::uintptr_t>(g_model) % 16 != 0) return 3;\n"
        '  std::FILE* f = std::fopen(argv[1], "wb");\n'
        "  if (std::fwrite(g_model, 1, g_model_len, f) != g_model_len) return 4;\n  std::fclose(f);\n"
        "  tflite::MicroMutableOpResolver<kNumOps> resolver;\n  if (RegisterOps(resolver) != kTfLiteOk) return 5;\n"
        '  std::printf("arena %d classes %d first %s\\n", kTensorArenaSize, kNumClasses, kClassNames[0]);\n'
        "  return 0;\n}\n")
    cc = subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I", str(out), "-I",
                         str(tmp_path / "include"), str(tmp_path / "main.cc"), str(out / "model_data.cc"), "-o",
                         str(tmp_path / "prog")], capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    ran = subprocess.run([str(tmp_path / "prog"), str(tmp_path / "back.tflite")], capture_output=True, text=True)
    assert ran.returncode == 0, (ran.returncode, ran.stderr)
    assert (tmp_path / "back.tflite").read_bytes() == tflite  # the array is the file, byte for byte, 16-aligned
    registered = ran.stdout.splitlines()[:-1]
    ops = operators(str(out / "model.tflite"))
    assert registered == resolver_calls((out / "model_ops.h").read_text()) == [RESOLVER[o] for o in ops]
    assert len(set(ops)) == len(ops)  # each once: kNumOps is exact
    # the arena: the static estimate of the run's spec (TFLM's own plan, equal) plus TFLM's persistent structures
    measured = micro_arena(str(out / "model.tflite"))
    planned = estimate(analyse(rundir.read_spec(run))).arena_bytes
    assert planned == measured["head"]
    size = int(ran.stdout.splitlines()[-1].split()[1])
    assert size == -(-(planned + measured["tail"]) // 16) * 16
    assert ran.stdout.splitlines()[-1].endswith("classes 10 first airplane")
    # and the same file on TFLM's own kernels, beside LiteRT's
    r = run_cli("evaluate", str(out / "model.tflite"), "--runtime", "tflm", "--reference", run, env=ENV)
    assert r.returncode == 0, r.stderr
    ev = json.load(open(out / "model.tflite.tflm.evaluation.json"))
    assert ev["runtime"] == "tflm" and ev["arena"] == {"tflm_activations": planned, "estimate": planned}
    assert 0 <= ev["litert_agreement"] <= 1 and ev["litert_agreement"] > 0.9 and "(equal)" in r.stdout
    assert "reference" in ev and sum(map(sum, ev["confusion"])) == 64
