"""What scoring a split costs in the trainer's predict batches (`predict.predict`: batches of exactly the run's
batch size, the last padded) against the ways before: Keras's `predict` on an array with its default batch of 32
(how validation with `tta` or `ema` and the test split were scored on JAX and PyTorch), and batches of the run's
size with a shorter last one (a second compiled shape on JAX, a retrace on TensorFlow). Each way scores the same
images with a fresh model of the spec (the compilation is per model), first once (with its compilation) and then
again; ways alternate round by round. Prints each way's medians and its ratio to the padded batches.

    python benchmarks/predict_batches.py SPEC [--images 1000] [--batch 512] [--views 6] [--rounds 3]
    KERAS_BACKEND=jax python benchmarks/predict_batches.py specs/frontier.yaml --images 1000
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import sepspec
from sepspec.train.predict import predict


def ways(batch: int):
    return {"padded, one shape": lambda m, x: predict(m, x, batch),
            f"batch {batch}, shorter last": lambda m, x: m.predict(x, batch_size=batch, verbose=0),
            "Keras default (32)": lambda m, x: m.predict(x, verbose=0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--images", type=int, default=1000, help="images scored per view (default 1000)")
    ap.add_argument("--batch", type=int, default=512, help="the run's batch size (default 512)")
    ap.add_argument("--views", type=int, default=6, help="predict calls per scoring: 6 = flip_shift (default)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    import keras

    spec = sepspec.load(a.spec)
    x = np.random.default_rng(0).normal(size=(a.images, *spec.input)).astype(np.float32)
    times = {name: {"first": [], "again": []} for name in ways(a.batch)}
    for r in range(a.rounds):
        for name, score in ways(a.batch).items():
            keras.utils.clear_session()
            model = sepspec.build_model(spec)
            for when in ("first", "again"):
                t0 = time.perf_counter()
                for _ in range(a.views):
                    score(model, x)
                times[name][when].append(time.perf_counter() - t0)
            print(f"round {r + 1} {name:>24}: first {times[name]['first'][-1]:7.2f} s, "
                  f"again {times[name]['again'][-1]:7.2f} s", flush=True)
    base = {w: statistics.median(times["padded, one shape"][w]) for w in ("first", "again")}
    print(f"\n{keras.backend.backend()}, {a.spec}, {a.images} images x {a.views} views, batch {a.batch}, "
          f"medians of {a.rounds}:")
    for name, t in times.items():
        first, again = statistics.median(t["first"]), statistics.median(t["again"])
        print(f"{name:>24}: first {first:7.2f} s ({first / base['first']:.2f}x), "
              f"again {again:7.2f} s ({again / base['again']:.2f}x)")


if __name__ == "__main__":
    main()
