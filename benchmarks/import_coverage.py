"""Which `keras.applications` networks `sepspec import` takes, exactly or refused and why: one row per constructor
(weights=None, 10 classes, the smallest input it accepts of 32, 75 or 96 pixels), the seconds Keras takes to build
it and sepspec to import it, the spec's lines against Keras's layers. A markdown table on standard output.

    python benchmarks/import_coverage.py [NAME ...]     # default: one network per family
    python benchmarks/import_coverage.py --all          # every constructor keras.applications has
"""

from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FAMILY = ["MobileNet", "MobileNetV2", "MobileNetV3Small", "DenseNet121", "ResNet50", "ResNet50V2", "VGG16",
          "Xception", "InceptionV3", "InceptionResNetV2", "NASNetMobile", "EfficientNetB0", "EfficientNetV2B0",
          "ConvNeXtTiny"]


def main(names: list[str]) -> int:
    from sepspec.emit.importer import ImportError_, from_keras
    from sepspec.lazy import import_keras

    keras = import_keras()
    print("| network | input | Keras layers | params | build s | import s | result | spec lines |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        fn = getattr(keras.applications, name)
        model, size = None, None
        t0 = time.perf_counter()
        for size in (32, 75, 96):
            try:
                model = fn(weights=None, input_shape=(size, size, 3), classes=10)
                break
            except Exception as e:  # too small for it: the next size
                err = str(e).splitlines()[0][:80]
        built = time.perf_counter() - t0
        if model is None:
            print(f"| {name} | - | | | | | Keras did not build it at 32-96 px ({err}) | |", flush=True)
            continue
        t0 = time.perf_counter()
        try:
            text = from_keras(model, f"keras.applications.{name}")
            lines = sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#"))
            result, count = "exact", f"{lines:,}"
        except ImportError_ as e:
            result, count = f"refused: {str(e).split(': ', 1)[1][:150]}", ""
        took = time.perf_counter() - t0
        print(f"| {name} | {size} | {len(model.layers):,} | {model.count_params():,} | {built:.1f} | {took:.1f} | "
              f"{result} | {count} |", flush=True)
        keras.backend.clear_session()
    return 0


def every() -> list[str]:
    from sepspec.lazy import import_keras

    apps = import_keras().applications
    return sorted(n for n in dir(apps) if n[:1].isupper() and callable(getattr(apps, n)))


if __name__ == "__main__":
    sys.exit(main(every() if sys.argv[1:] == ["--all"] else sys.argv[1:] or FAMILY))
