"""Step by step, how long the training steps of a `fit` take: for a machine whose runs alternate between two speeds
(docs/experiments.md, "Training speed"), whether a slow run is every step slower or a few steps held.

    python benchmarks/step_times.py specs/residual.yaml [--steps 30] [--repeats 8] [--keras-layers]

Each repeat is one `fit` epoch of `--steps` batches of the spec's batch size on a cached tf.data dataset of random
tensors (the trainer's fast layers unless `--keras-layers`). Per repeat it prints the wall time, the process's CPU
time (user + system, all threads) and its ratio to the wall time, the median and the slowest step, and how many
steps took over 1.5 times the median of all steps of all repeats.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--keras-layers", action="store_true")
    a = ap.parse_args(argv)
    from sepspec.lazy import import_keras
    from sepspec.train.compiled import compile_model
    from sepspec.train.fastpath import fast_training
    from sepspec.train.options import Options
    from sepspec.train.trainer import training_report

    keras = import_keras()
    import tensorflow as tf

    report = training_report(Options(spec=a.spec))
    t = report.spec.train
    model = compile_model(keras, report, t, mixed=False, jit_compile=False)
    if not a.keras_layers:
        fast_training(model)
    n = a.steps * t.batch_size
    x = tf.random.normal((n, *report.spec.input))
    y = tf.one_hot(tf.random.uniform((n,), 0, report.spec.classes, tf.int32), report.spec.classes)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(t.batch_size).cache().prefetch(tf.data.AUTOTUNE)

    class Steps(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.t0)

    steps = Steps()
    model.fit(ds, epochs=1, verbose=0)  # tracing and the cache
    runs = []
    for _ in range(a.repeats):
        steps.times = []
        w0, c0 = time.perf_counter(), _cpu()
        model.fit(ds, epochs=1, verbose=0, callbacks=[steps])
        runs.append((time.perf_counter() - w0, _cpu() - c0, steps.times))
    median = statistics.median(s for _, _, times in runs for s in times)
    print(f"{report.spec.name}: {a.steps} steps of {t.batch_size}, {'Keras' if a.keras_layers else 'fast'} layers; "
          f"median step {median * 1000:.0f} ms over all repeats")
    for i, (wall, cpu, times) in enumerate(runs):
        slow = sum(s > 1.5 * median for s in times)
        print(f"repeat {i}: wall {wall:6.2f} s ({n / wall:5.0f} images/s), CPU {cpu:6.2f} s (CPU/wall {cpu / wall:.2f}), "
              f"median step {statistics.median(times) * 1000:4.0f} ms, slowest {max(times) * 1000:5.0f} ms, "
              f"{slow} steps over 1.5x the median")
    return 0


if __name__ == "__main__":
    sys.exit(main())
