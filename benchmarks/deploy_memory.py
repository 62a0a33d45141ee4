"""The static deployment estimate (`sepspec show --memory`) against the converted model, for every spec.

For each spec: build its model, give every batch norm, layer norm and bias trained-like values (random moving statistics,
scales and shifts; an untrained model's all-zero shifts would let the converter share buffers that a trained
one cannot), convert it as `sepspec export --format litert-int8` does (uint8 pixels in, the normalisation of
`--normalization RUN`), then compare the estimate's flash with the weight buffers in the .tflite file and its
activation figures with what TensorFlow Lite Micro's planner allocates (the arena's head).

    python benchmarks/deploy_memory.py [SPEC ...] [--normalization RUN_DIR] [--data PATH]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def trained_like(spec_path: str, out: str, seed: int = 0) -> None:
    """The spec's Keras model with random batch-norm statistics and biases, saved as .keras."""
    import sepspec
    from sepspec.lazy import import_keras

    keras = import_keras()
    rng = np.random.default_rng(seed)
    model = sepspec.build_model(sepspec.check(spec_path).spec)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # gamma and beta where it learns them
            c = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c)] * layer.scale + [rng.normal(0, 0.2, c)] * layer.center
                              + [rng.normal(0, 0.2, c), rng.uniform(0.5, 2.0, c)])
        elif isinstance(layer, keras.layers.LayerNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c)])
        elif isinstance(layer, keras.layers.Normalization) and layer.input_mean is None:  # its statistics
            c = layer.adapt_mean.shape[-1]
            layer.set_weights([rng.normal(0, 0.2, c), rng.uniform(0.5, 2.0, c), np.array(100)])
        elif isinstance(layer, keras.layers.DepthwiseConv2D) and tuple(layer.kernel_size) == (1, 1) and \
                not layer.use_bias:  # a `scale`: its kernel starts at one constant, a trained one's varies
            layer.kernel.assign(rng.uniform(0.5, 1.5, layer.kernel.shape))
        elif getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape))
    model.save(out)


def _own_shape(spec, tmp: str) -> tuple[str, str]:
    """(a .npz of random images in the spec's shape, a folder whose metrics.json has statistics for its channels)."""
    rng = np.random.default_rng(0)
    h, w, c = spec.input
    x = rng.integers(0, 256, (64, h, w, c), dtype=np.uint8)
    y = rng.integers(0, spec.classes, 64)
    npz = os.path.join(tmp, f"{spec.name}-calibration.npz")  # the keras.datasets layout
    np.savez(npz, x_train=x, y_train=y, x_test=x[:16], y_test=y[:16])
    return npz, _stats(spec, tmp, [0.5] * c, [0.25] * c)


def _stats(spec, tmp: str, mean: list, std: list) -> str:
    """A folder whose metrics.json holds a normalisation, as a run's does."""
    stats = os.path.join(tmp, f"{spec.name}-stats")
    os.makedirs(stats, exist_ok=True)
    with open(os.path.join(stats, "metrics.json"), "w") as f:
        json.dump({"normalization": {"mean": mean, "std": std}}, f)
    return stats


def measure(spec_path: str, normalization: str, data: str | None, tmp: str) -> dict:
    import sepspec
    from sepspec.deploy.export import convert, job_of, tflite_buffer_bytes
    from sepspec.deploy.tflm import micro_arena
    from sepspec.graph.memory import estimate
    from sepspec.train.pipeline import input_stats

    name = os.path.splitext(os.path.basename(spec_path))[0]
    keras_file, tflite = os.path.join(tmp, name + ".keras"), os.path.join(tmp, name + ".tflite")
    trained_like(spec_path, keras_file)
    spec = sepspec.load(spec_path)
    if tuple(spec.input) != (32, 32, 3):  # not CIFAR's shape: random calibration images and statistics of its own
        data, normalization = _own_shape(spec, tmp)
    if spec.train.normalize != "per_channel":  # what the trainer records for the spec's own normalisation
        no_images = np.zeros((0, 1, 1, spec.input[-1]), np.uint8)  # none and pixels need only the channels
        normalization = _stats(spec, tmp, *input_stats(spec.train.normalize, no_images))
    # converted in this process (what `sepspec export` runs in its subprocess): one TensorFlow start for all specs
    convert(job_of(keras_file, "litert-int8", normalization=normalization, calibration=50, data=data), tflite)
    from sepspec.deploy.tflite_file import deployment

    rep = sepspec.check(spec_path).report
    d = estimate(rep)
    buffers, ops = tflite_buffer_bytes(tflite)
    arena = micro_arena(tflite)
    read = deployment(tflite)  # the file read back as `show FILE.tflite --memory` reads it
    est_ops = sum(1 for o in d.ops if o.op != "INPUT")
    return {"spec": name, "flash_est": d.flash_bytes, "flash_file": buffers, "ops_est": est_ops, "ops_file": ops,
            "live_peak": d.peak_bytes, "arena_est": d.arena_bytes, "head": arena["head"], "tail": arena["tail"],
            "macs": rep.macs, "macs_est": d.macs, "macs_read": read.macs, "flash_read": read.flash_bytes,
            "arena_read": read.arena_bytes,
            "file_bytes": os.path.getsize(tflite)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="*")
    ap.add_argument("--normalization", default=os.path.join(ROOT, "results", "base-50ep"))
    ap.add_argument("--data")
    a = ap.parse_args()
    specs = a.specs or sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml")))
    print(f"{'spec':<12} {'flash est':>10} {'buffers':>10} {'ops':>7} {'live peak':>10} {'arena est':>10} "
          f"{'TFLM head':>10} {'arena/head':>10} {'file':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for path in specs:
            m = measure(path, a.normalization, a.data, tmp)
            print(f"{m['spec']:<12} {m['flash_est']:>10,} {m['flash_file']:>10,} {m['ops_est']:>3}/{m['ops_file']:<3} "
                  f"{m['live_peak']:>10,} {m['arena_est']:>10,} {m['head']:>10,} {m['arena_est'] / m['head']:>10.3f} "
                  f"{m['file_bytes']:>9,}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
