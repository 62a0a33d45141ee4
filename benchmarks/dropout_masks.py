"""What a dropout costs in training, by how its mask is drawn: forward and backward of one tensor (TensorFlow, a
compiled function, the median of interleaved repeats), beside a ReLU of the same tensor.

    python benchmarks/dropout_masks.py [--shape 256 32 32 64] [--rate 0.07] [--repeats 5]

Rows: Keras's dropout (`Dropout`'s training call: a float32 uniform per element), a 32-bit integer per element, and
the trainer's masks (`sepspec.train.fastpath.cheap_dropouts`: 16 bits per element, two elements per random word).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs="+", default=[256, 32, 32, 64])
    ap.add_argument("--rate", type=float, default=0.07)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    from sepspec.lazy import import_keras
    from sepspec.train.fastpath import cheap_dropouts

    keras = import_keras()
    import tensorflow as tf

    x, g = tf.random.normal(a.shape), tf.random.normal(a.shape)
    seed = tf.constant([1, 2], tf.int32)

    def word32(t):
        bits = tf.random.stateless_uniform(tf.shape(t), seed, minval=None, maxval=None, dtype=tf.uint32)
        keep = bits >= tf.constant(int(round(a.rate * 2**32)), tf.uint32)
        return tf.where(keep, t * (1 / (1 - a.rate)), tf.zeros_like(t))

    def layer(fast: bool):
        d = keras.layers.Dropout(a.rate, seed=1)
        i = keras.Input(a.shape[1:])
        m = keras.Model(i, d(i))
        if fast:
            assert cheap_dropouts(m) == 1
        return lambda t: m(t, training=True)

    def compiled(f):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(f(x) * g)
            return tape.gradient(loss, x)
        step()
        return step

    rows = {"a ReLU": compiled(tf.nn.relu), "Keras's dropout (a float32 uniform per element)": compiled(layer(False)),
            "a 32-bit integer per element": compiled(word32),
            "the trainer's masks (16 bits per element)": compiled(layer(True))}
    times = {k: [] for k in rows}
    for _ in range(a.repeats):
        for k, f in rows.items():
            t0 = time.perf_counter()
            for _ in range(3):
                out = f()
            out.numpy()
            times[k].append((time.perf_counter() - t0) / 3 * 1000)
    keras_ms = statistics.median(times["Keras's dropout (a float32 uniform per element)"])
    print(f"shape {a.shape}, rate {a.rate}, forward and backward, median of {a.repeats} x 3 calls")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"{k:<50} {m:7.1f} ms  [{min(v):.1f}-{max(v):.1f}]  Keras / this {keras_ms / m:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
