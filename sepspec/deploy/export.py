"""`sepspec export`: a trained model as a file for a device (LiteRT float or full-integer int8, ONNX, SavedModel).

The exported model takes raw pixels (0-255): the per-channel normalisation the trainer applies outside the model
goes into the graph (a per-channel Rescaling layer in front). `litert-int8` is full-integer post-training quantisation:
uint8 input (camera pixels as they come), int8 weights, activations and output, built-in int8 ops only,
calibrated on training images. TensorFlow's converter leaks memory per call and crashes on some activations, so
the conversion runs in a subprocess (`python -m sepspec.cli.convert`, which calls `convert`); a crash becomes a
one-line error, and the file appears only when it is complete. `export` returns an `Exported` record.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from ..atomic import writable_folder
from ..diagnostics import UserError
from ..layers import NOT_INT8
from ..train import rundir

FORMATS = ("litert", "litert-int8", "onnx", "saved_model", "tflm")  # tflm: litert-int8 as C++ sources (deploy/tflm)
CONVERTER_CRASHES = {"mish", "softplus", "exponential"}  # TensorFlow's LiteRT converter segfaults on these


@dataclass
class Exported:
    """What `export` wrote: the file (a folder for saved_model), its format, and what the converter reports of it
    (`bytes`; for LiteRT files `buffer_bytes`, `ops`, `input` and `output`)."""

    path: str
    format: str
    info: dict


def _source(source: str, normalization: str | None) -> tuple[str, dict | None, str | None]:
    """(model file, {"mean", "std"} or None, the run directory whose data calibrates, if any)."""
    if os.path.isdir(source):
        model, run = rundir.model_of(source)  # its best.keras (a committed run: final.keras)
        if normalization is not None:
            raise UserError(f"{source}: a run directory brings its own normalisation; --normalization is for a "
                            ".keras file")
    elif os.path.isfile(source):
        model, run = source, None
    else:
        raise UserError(f"{source}: no such run directory or .keras file")
    stats_from = run if run else (None if normalization in (None, "none") else normalization)
    if stats_from is None:
        return model, None, None
    norm = rundir.normalization(stats_from)
    if norm is None:
        raise UserError(f"{stats_from}: no {rundir.METRICS} to take the normalisation from (a run directory, or "
                        f"--normalization none)")
    return model, {"mean": norm[0], "std": norm[1]}, stats_from


def job_of(source: str, fmt: str, *, normalization: str | None = None, calibration: int = 300,
           data: str | None = None, seed: int = 0) -> dict:
    """What the converter is given: the model file, the normalisation to put in front, the calibration images."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    model, stats, run = _source(source, normalization)
    fmt = "litert-int8" if fmt == "tflm" else fmt  # the C++ sources hold the int8 file
    calib = None
    if fmt == "litert-int8":
        calib = data or (rundir.recorded_data(run) if run else None) or os.environ.get("SEPSPEC_DATA") or ""
    # calibration images are read as the run's spec reads them (CIFAR-100's labels, resizing)
    options = {}
    if run and fmt == "litert-int8" and rundir.is_run(run):
        from ..data.read import options_of

        options = options_of(rundir.read_spec(run))
    return {"model": os.path.abspath(model), "format": fmt, "stats": stats, "calibration": calibration,
            "data": calib, "seed": seed, "options": options}


def export(source: str, fmt: str, out: str, *, normalization: str | None = None, calibration: int = 300,
           data: str | None = None, seed: int = 0) -> Exported:
    """Convert in a subprocess, then move the result to `out` (a file; a folder for saved_model and tflm)."""
    job = job_of(source, fmt, normalization=normalization, calibration=calibration, data=data, seed=seed)
    folder_out = fmt in ("saved_model", "tflm")
    parent = writable_folder(out)
    suffix = {"litert": ".tflite", "litert-int8": ".tflite", "onnx": ".onnx"}.get(fmt)
    if suffix and not out.endswith(suffix):
        raise UserError(f"{out}: a {fmt} file must end in {suffix}")
    if os.path.isdir(out) and not folder_out:
        raise UserError(f"{out}: is a folder; give a file name")
    if folder_out and os.path.isfile(out):
        raise UserError(f"{out}: is a file; {fmt} writes a folder")
    remove_stale_temps(parent)
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".sepspec-export-{os.getpid()}-") as tmp:
        target = os.path.join(tmp, {"saved_model": "model", "tflm": "model.tflite"}.get(fmt, os.path.basename(out)))
        # the converters are TensorFlow's: a .keras file from any backend loads on it (a run trained on JAX too)
        r = subprocess.run([sys.executable, "-m", "sepspec.cli.convert", json.dumps(job), target],
                           capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
        if r.returncode != 0:
            lines = [x for x in r.stderr.strip().splitlines() if x.startswith("sepspec export: ")]
            if lines:
                raise UserError(lines[-1][len("sepspec export: "):])
            why = f"signal {-r.returncode}" if r.returncode < 0 else f"exit {r.returncode}"
            tail = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "no message"
            raise UserError(f"{source}: the {fmt} converter crashed ({why}: {tail[:200]})")
        info = json.loads(r.stdout.strip().splitlines()[-1])
        if fmt == "tflm":
            target, sources = _tflm_folder(target, tmp, source, job)
            info["tflm"] = sources
        _move(target, out)
    return Exported(out, fmt, info)


def _tflm_folder(tflite: str, tmp: str, source: str, job: dict) -> tuple[str, dict]:
    """The folder `--format tflm` writes (the C++ sources and the .tflite they hold), and what the sources say."""
    from .tflm import planned_arena, write_sources

    folder = os.path.join(tmp, "tflm")
    os.makedirs(folder)
    run = os.path.dirname(job["model"])
    estimate, classes = None, []
    if rundir.is_run(run) and job["stats"] is not None:  # the run's own spec: its static plan of the activations
        from ..data.read import CLASS_NAMES

        estimate = planned_arena(run)
        classes = ((rundir.read_record(run).get("data") or {}).get("classes")
                   or (CLASS_NAMES if rundir.read_spec(run).classes == 10 else []))
    written = write_sources(tflite, folder, class_names=list(classes), origin=source, estimate=estimate)
    os.replace(tflite, os.path.join(folder, "model.tflite"))
    return folder, written


def remove_stale_temps(parent: str) -> None:
    """Remove the working folders of exports that were killed (SIGKILL skips their clean-up): each is named after
    its process, and only those whose process is gone are removed."""
    for name in os.listdir(parent):
        parts = name.split("-")
        if not (name.startswith(".sepspec-export-") and len(parts) >= 4 and parts[2].isdigit()):
            continue
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        except (PermissionError, OverflowError):  # alive under another user, or no such pid at all
            continue


def _move(src: str, dst: str) -> None:
    """Put the finished file or folder at `dst`, replacing what was there only once the new one is complete."""
    if os.path.isdir(src):
        old = None
        if os.path.exists(dst):
            old = dst + ".old-" + os.path.basename(os.path.dirname(src))
            os.replace(dst, old)
        os.replace(src, dst)
        if old:
            shutil.rmtree(old, ignore_errors=True) if os.path.isdir(old) else os.remove(old)
    else:
        os.replace(src, dst)


def tflite_buffer_bytes(path: str) -> tuple[int, int]:
    """(bytes of the buffers that tensors hold, number of ops) of a .tflite file: the weights and constants as the
    file stores them (not its metadata buffers, names or quantisation parameters)."""
    from .tflite_file import read

    m = read(path)
    held = {t.buffer for g in m.subgraphs for t in (g.tensors or []) if m.buffers[t.buffer].data is not None}
    return sum(len(m.buffers[b].data) for b in held), sum(len(g.operators or []) for g in m.subgraphs)


# ---- the conversion, in a process of its own (sepspec.cli.convert) -------------------------------------------

def _float32(keras, model):
    """The model with every layer in float32 (a mixed-precision model computes in float16)."""
    if all(getattr(layer.dtype_policy, "name", "float32") == "float32" for layer in model.layers):
        return model

    def fix(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy" or node.get("class_name") == "DTypePolicyMap":
                return "float32"
            return {k: ("float32" if k == "dtype" and isinstance(v, str) else fix(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    clone = model.__class__.from_config(fix(model.get_config()))
    clone.set_weights(model.get_weights())
    return clone


def _replaced(keras, model, choose):
    """A copy of the model in which each layer that `choose(layer)` gives a class for is built as that class
    (same config and weights); the model itself when it gives none."""
    if not any(choose(layer) for layer in model.layers):
        return model

    def clone(layer):
        return (choose(layer) or layer.__class__).from_config(layer.get_config())

    out = keras.models.clone_model(model, clone_function=clone)
    out.set_weights(model.get_weights())
    return out


def _int8_layer_norms(keras, model):
    """The model with each LayerNormalization computed as mean, x - mean, the mean of its square, RSQRT, scale,
    shift: the same values, and every op has an int8 kernel. (Keras's own form, `x * s + (beta - mean * s)`,
    leaves a float NEG between a DEQUANTIZE and a QUANTIZE in the converted file.)"""
    ops = keras.ops

    class CentredLayerNorm(keras.layers.LayerNormalization):
        def call(self, x):
            centred = ops.subtract(x, ops.mean(x, axis=-1, keepdims=True))
            var = ops.mean(ops.multiply(centred, centred), axis=-1, keepdims=True)
            normed = ops.multiply(centred, ops.rsqrt(ops.add(var, self.epsilon)))
            return ops.add(ops.multiply(normed, self.gamma), self.beta)

    return _replaced(keras, model, lambda layer: CentredLayerNorm
                     if type(layer) is keras.layers.LayerNormalization else None)


def _pixelwise_dense(keras, model):
    """The model with each Dense on an image (h, w, c) computed as the 1x1 convolution it is: the same values.
    Keras's Dense on a rank-4 tensor converts to LiteRT as a FULLY_CONNECTED between reshapes computed from the
    tensor's shape at run time, which TensorFlow Lite Micro cannot plan; a 1x1 convolution is one CONV_2D."""
    ops = keras.ops

    class PixelwiseDense(keras.layers.Dense):
        def call(self, x):
            if len(x.shape) != 4:
                return super().call(x)
            y = ops.conv(x, ops.reshape(self.kernel, (1, 1, *self.kernel.shape)), padding="valid")
            if self.use_bias:
                y = ops.add(y, self.bias)
            return self.activation(y) if self.activation is not None else y

    return _replaced(keras, model, lambda layer: PixelwiseDense
                     if type(layer) is keras.layers.Dense and len(layer.input.shape) == 4 else None)


def _split_grouped_convs(keras, model):
    """The model with each grouped Conv2D computed group by group (split, one convolution per group, concatenate):
    the same values. Keras runs a grouped convolution on TensorFlow's CPU through an XLA-compiled function, which
    tf2onnx cannot convert."""
    ops = keras.ops

    class SplitGroupsConv2D(keras.layers.Conv2D):
        def call(self, x):
            xs = ops.split(x, self.groups, axis=-1)
            ks = ops.split(self.kernel, self.groups, axis=-1)
            y = ops.concatenate([ops.conv(a, k, strides=self.strides, padding=self.padding,
                                          dilation_rate=self.dilation_rate) for a, k in zip(xs, ks)], axis=-1)
            if self.use_bias:
                y = ops.add(y, self.bias)
            return self.activation(y) if self.activation is not None else y

    return _replaced(keras, model, lambda layer: SplitGroupsConv2D
                     if type(layer) is keras.layers.Conv2D and layer.groups > 1 else None)


def _activations(model) -> set[str]:
    out = set()
    for layer in model.layers:
        act = layer.get_config().get("activation")
        if isinstance(act, str):
            out.add(act)
    return out


def convert(job: dict, target: str) -> dict:
    """Write the converted model to `target` and describe it; what the subprocess runs (a benchmark that converts
    many models in one process calls it directly)."""
    from ..lazy import import_keras
    from ..train.pipeline import are_pixel_stats

    keras = import_keras()
    import numpy as np
    import tensorflow as tf

    model = rundir.load_model(job["model"])
    fmt = job["format"]
    acts = _activations(model)
    if fmt.startswith("litert") and acts & CONVERTER_CRASHES:
        raise UserError(f"{job['model']}: {', '.join(sorted(acts & CONVERTER_CRASHES))} cannot be converted to LiteRT "
                        "(TensorFlow's converter crashes on it); use relu, relu6, silu, gelu, sigmoid, tanh, "
                        "leaky_relu")
    if fmt == "litert-int8" and acts & NOT_INT8:
        raise UserError(f"{job['model']}: {', '.join(sorted(acts & NOT_INT8))} has no int8 kernel; export --format "
                        "litert (float) or onnx, or train with relu, relu6, silu, gelu, sigmoid, tanh, leaky_relu")
    model = _float32(keras, model)
    if fmt.startswith("litert"):
        model = _pixelwise_dense(keras, model)
    if fmt == "litert-int8":
        model = _int8_layer_norms(keras, model)
    if fmt == "onnx":
        model = _split_grouped_convs(keras, model)
    shape = tuple(model.input_shape[1:])
    pixels = keras.Input(shape, name="pixels")
    x = pixels
    if job["stats"] and not are_pixel_stats(job["stats"]["mean"], job["stats"]["std"]):  # pixels: the model's own
        mean = np.asarray(job["stats"]["mean"], np.float64) * 255.0  # the trainer scales to [0, 1] first
        std = np.asarray(job["stats"]["std"], np.float64) * 255.0
        if len(mean) != shape[-1]:
            raise UserError(f"the normalisation has {len(mean)} channels, the model takes {shape[-1]}")
        # constants, not variables (ONNX export would make a Normalization layer's statistics graph inputs)
        x = keras.layers.Rescaling(scale=(1.0 / std).tolist(), offset=(-mean / std).tolist(), name="normalize")(x)
    wrapped = keras.Model(pixels, model(x), name=model.name)
    wrapped(np.zeros((1, *shape), np.float32))  # ONNX export needs a model that has been called
    info: dict = {}
    if fmt == "saved_model":
        wrapped.export(target, format="tf_saved_model", verbose=False)
        info["bytes"] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(target) for f in fs)
    elif fmt == "onnx":
        wrapped.export(target, format="onnx", verbose=False)
        info["bytes"] = os.path.getsize(target)
    else:
        options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
        if fmt == "litert-int8":
            from ..data.read import load_data

            options = dict(job.get("options") or {})
            if options.get("size"):
                options["size"] = tuple(options["size"])
            data = load_data(job["data"] or None, **options)
            if data.x_train.shape[1:] != shape:
                raise UserError(f"calibration images are {data.x_train.shape[1:]}, the model takes {shape}")
            rng = np.random.default_rng(job["seed"])
            images = np.asarray(data.x_train[rng.choice(len(data.x_train), min(job["calibration"], len(data.x_train)),
                                                        replace=False)], np.float32)

            def representative():
                for i in range(len(images)):
                    yield [images[i:i + 1]]

            options = {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative,
                       "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
                       "inference_input_type": tf.uint8, "inference_output_type": tf.int8}
        wrapped.export(target, format="litert", verbose=False, **options)
        info["bytes"] = os.path.getsize(target)
        info["buffer_bytes"], info["ops"] = tflite_buffer_bytes(target)
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=target)
        i, o = it.get_input_details()[0], it.get_output_details()[0]
        info["input"] = f"{i['dtype'].__name__} {'x'.join(str(int(v)) for v in i['shape'])}"
        info["output"] = f"{o['dtype'].__name__} {'x'.join(str(int(v)) for v in o['shape'])}"
    return info
