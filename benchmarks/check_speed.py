"""How long `sepspec check` takes on a large network against Keras building it: NASNetMobile (771 Keras layers) as
written by hand with blocks (specs/examples/nasnet_mobile.yaml) and as `sepspec import` writes it (no blocks),
medians of interleaved repeats in one process.

    python benchmarks/check_speed.py [--repeats 5]
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
    a = ap.parse_args()
    import sepspec
    from sepspec.emit.importer import from_keras
    from sepspec.lazy import import_keras

    keras = import_keras()

    def build():
        return keras.applications.NASNetMobile(weights=None, input_shape=(32, 32, 3), classes=10)

    model = build()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "nasnet-mobile.yaml")
        with open(path, "w") as f:
            f.write(from_keras(model, "keras.applications.NASNetMobile"))
        written = os.path.join(ROOT, "specs", "examples", "nasnet_mobile.yaml")
        times: dict[str, list] = {"written": [], "imported": [], "build": []}
        for _ in range(a.repeats):  # interleaved: a machine that changes speed slows all alike
            for key, spec in (("written", written), ("imported", path)):
                t0 = time.perf_counter()
                c = sepspec.check(spec)
                times[key].append(time.perf_counter() - t0)
                assert c.ok, [d.text() for d in c.diagnostics if d.severity == "error"]
            t0 = time.perf_counter()
            build()
            times["build"].append(time.perf_counter() - t0)
            keras.backend.clear_session()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"NASNetMobile, {len(c.report.rows)} Keras layers, {c.report.params:,} params; sepspec check (load, "
          f"analysis, rules, int8 estimate): the written spec {med['written']:.3f} s, the imported one "
          f"{med['imported']:.3f} s; Keras's build {med['build']:.3f} s (medians of {a.repeats}; ratios "
          f"{med['written'] / med['build']:.2f}, {med['imported'] / med['build']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
