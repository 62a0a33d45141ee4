"""How long `sepspec import` takes against Keras loading the same model: EfficientNetB0 (240 layers) saved as a
.keras file; medians of interleaved repeats in one process: Keras's `load_model` (safe mode), and `from_keras` on
the loaded model (the graph read, the spec written, checked and compared with the model).

    python benchmarks/import_speed.py [--repeats 5] [--name EfficientNetB0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--name", default="EfficientNetB0")
    a = ap.parse_args()
    from sepspec.emit.importer import from_keras
    from sepspec.lazy import import_keras

    keras = import_keras()
    model = getattr(keras.applications, a.name)(weights=None, input_shape=(32, 32, 3), classes=10)
    loads, imports = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        for _ in range(a.repeats):  # interleaved: a machine that changes speed slows both alike
            keras.backend.clear_session()
            t0 = time.perf_counter()
            loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
            loads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            text = from_keras(loaded, path)
            imports.append(time.perf_counter() - t0)
    load, imp = statistics.median(loads), statistics.median(imports)
    print(f"{a.name} ({len(model.layers)} Keras layers, {model.count_params():,} params): Keras's load_model "
          f"{load:.3f} s, sepspec import {imp:.3f} s (medians of {a.repeats}; ratio {imp / load:.2f}); the spec "
          f"{len(text.splitlines())} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
