"""Weight EMA: an exponential moving average of every model weight, kept beside the live weights.

Keras's `use_ema` overwrites the live weights with the average at the end of every `fit`, and the trainer
calls `fit` once per epoch, so training would go on from the average. Here the average is updated after every
step, swapped in for validation and for `best.keras` (so `sepspec evaluate` sees it), and swapped out again to
train on; the checkpoint keeps the live weights and `ema-NNNN.npz` the average with its step count, so that
`--resume` continues exactly. The decay warms up as ``min(decay, (1 + t) / (10 + t))`` after t steps (as
TensorFlow's ExponentialMovingAverage with `num_updates`), so a short run is not dominated by its initial
weights.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np


class WeightAverage:
    def __init__(self, tf, model, decay: float):
        self.model, self.tf = model, tf
        self.weights = [w for w in model.weights if "float" in str(w.dtype)]
        self.average = [tf.Variable(np.asarray(w.numpy(), np.float32), trainable=False) for w in self.weights]
        self.steps = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.decay = decay

        @tf.function
        def update():
            self.steps.assign_add(1)
            t = tf.cast(self.steps, tf.float32)
            d = tf.minimum(tf.constant(decay, tf.float32), (1.0 + t) / (10.0 + t))
            for a, w in zip(self.average, self.weights):
                a.assign(d * a + (1.0 - d) * tf.cast(w.value, tf.float32))

        self._update = update

    def callback(self, keras):
        return keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: self._update())

    @contextlib.contextmanager
    def swapped_in(self):
        """The model holds the average inside the block, its live weights again after it."""
        live = [w.numpy() for w in self.weights]
        for w, a in zip(self.weights, self.average):
            w.assign(a.numpy().astype(w.dtype))
        try:
            yield
        finally:
            for w, v in zip(self.weights, live):
                w.assign(v)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, steps=np.int64(self.steps.numpy()), **{f"w{i}": a.numpy() for i, a in enumerate(self.average)})
        return buf.getvalue()

    def load(self, path: str) -> None:
        with np.load(path) as f:
            if len(f.files) != len(self.average) + 1:
                raise ValueError(f"{path}: {len(f.files) - 1} averaged weights, the model has {len(self.average)}")
            for i, a in enumerate(self.average):
                a.assign(f[f"w{i}"])
            self.steps.assign(int(f["steps"]))
