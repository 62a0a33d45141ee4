"""Where a training step's time goes, layer by layer: each layer of a spec's emitted model timed alone on its own
input shape (forward and backward: the gradients of its weights and of its input), with Keras's own batch norm and
dropout and with the trainer's fast layers (`sepspec.train.fastpath`), then summed by kind of layer beside the
whole step (forward, backward and the optimizer's update) of the same model. TensorFlow backend.

    python benchmarks/layer_profile.py specs/base.yaml specs/residual.yaml [--batch 256] [--repeats 7]

Each figure is the median of `--repeats` timings of 3 calls, and the two variants are timed interleaved, layer by
layer, so that a machine that changes speed changes both alike. Layers timed alone do not share the whole step's
memory traffic or its thread pool's overlap, so the kinds' sum is not exactly the step: the table says which
kinds are worth making faster, the step column what the whole step costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict

import numpy as np


def _timer(tf, layer, shapes, batch):
    """A compiled forward + backward of `layer` alone on random inputs of its input shapes."""
    xs = [tf.random.normal((batch, *s)) for s in shapes]
    weights = layer.trainable_weights

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(xs)
            y = layer(xs if len(xs) > 1 else xs[0], training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32)) * 1e-6
        return tape.gradient(loss, [*xs, *weights])

    step()
    return step


def _seconds(fn, calls: int = 3) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        out = fn()
    np.asarray(out[0])  # wait for the last call's result
    return (time.perf_counter() - t0) / calls


def profile(spec_path: str, batch: int, repeats: int) -> None:
    from sepspec.lazy import import_keras
    from sepspec.train.compiled import compile_model
    from sepspec.train.fastpath import fast_training
    from sepspec.train.options import Options
    from sepspec.train.trainer import training_report

    keras = import_keras()
    import tensorflow as tf

    report = training_report(Options(spec=spec_path, batch_size=batch))
    t = report.spec.train
    models = {"keras": compile_model(keras, report, t, mixed=False, jit_compile=False),
              "fast": compile_model(keras, report, t, mixed=False, jit_compile=False)}
    fast_training(models["fast"])
    timers = {k: [] for k in models}  # per layer: (kind, step function)
    for name, model in models.items():
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            ins = layer.input if isinstance(layer.input, list) else [layer.input]
            shapes = [tuple(i.shape[1:]) for i in ins]
            timers[name].append((type(layer).__name__, _timer(tf, layer, shapes, batch)))
    x = tf.random.normal((batch, *report.spec.input))
    y = tf.one_hot(tf.random.uniform((batch,), 0, report.spec.classes, tf.int32), report.spec.classes)
    for model in models.values():  # the whole step, as fit runs it
        model.make_train_function()
        model.train_on_batch(x, y)
    seconds = {k: defaultdict(list) for k in models}
    whole = {k: [] for k in models}
    for _ in range(repeats):
        for name in models:
            for i, (_, fn) in enumerate(timers[name]):
                seconds[name][i].append(_seconds(fn))
            whole[name].append(_seconds(lambda m=models[name]: [m.train_on_batch(x, y)]))
    by_kind = {k: defaultdict(float) for k in models}
    count = defaultdict(int)
    for name in models:
        for i, (kind, _) in enumerate(timers[name]):
            by_kind[name][kind] += statistics.median(seconds[name][i]) * 1000
            count[kind] += name == "keras"
    step = {k: statistics.median(v) * 1000 for k, v in whole.items()}
    total = {k: sum(v.values()) for k, v in by_kind.items()}
    print(f"\n{report.spec.name}: batch {batch}, {report.params:,} params, {len(timers['keras'])} layers, "
          f"median of {repeats}")
    print("| layer kind | layers | Keras's layers, ms | share | fast layers, ms | share | Keras / fast |")
    print("|---|---|---|---|---|---|---|")
    for kind in sorted(count, key=lambda k: -by_kind["keras"][k]):
        k, f = by_kind["keras"][kind], by_kind["fast"][kind]
        print(f"| {kind} | {count[kind]} | {k:,.1f} | {k / total['keras']:.0%} | {f:,.1f} | "
              f"{f / total['fast']:.0%} | {k / f:.2f} |")
    print(f"| all layers, each alone | {sum(count.values())} | {total['keras']:,.1f} | | {total['fast']:,.1f} | | "
          f"{total['keras'] / total['fast']:.2f} |")
    print(f"| the whole step (train_on_batch) | | {step['keras']:,.1f} | | {step['fast']:,.1f} | | "
          f"{step['keras'] / step['fast']:.2f} |")
    print(f"images/s of the whole step: Keras's layers {batch / step['keras'] * 1000:,.0f}, "
          f"fast layers {batch / step['fast'] * 1000:,.0f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(argv)
    for s in a.specs:
        profile(s, a.batch, a.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
