"""Weight EMA: an exponential moving average of every model weight, kept beside the live weights.

Keras's `use_ema` overwrites the live weights with the average at the end of every `fit`, and the trainer
calls `fit` once per epoch, so training would go on from the average. Here the average is updated after every
step, swapped in for validation and for `best.keras` (so `sepspec evaluate` sees it), and swapped out again to
train on; the checkpoint keeps the live weights and `ema-NNNN.npz` the average with its step count, so that
`--resume` continues exactly. The decay warms up as ``min(decay, (1 + t) / (10 + t))`` after t steps (as
TensorFlow's ExponentialMovingAverage with `num_updates`), so a short run is not dominated by its initial
weights. On TensorFlow the update is a graph function over variables; on the other backends it runs on
NumPy copies (the same arithmetic in float32).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np


class WeightAverage:
    def __init__(self, keras, model, decay: float):
        self.model, self.decay = model, decay
        self.weights = [w for w in model.weights if "float" in str(w.dtype)]
        if keras.backend.backend() == "tensorflow":
            self._graph_average()
        else:
            self.average = [np.asarray(w.numpy(), np.float32) for w in self.weights]
            self.steps = 0
            self._update = self._numpy_update

    def _graph_average(self):
        import tensorflow as tf

        self.average = [tf.Variable(np.asarray(w.numpy(), np.float32), trainable=False) for w in self.weights]
        self._steps = tf.Variable(0, dtype=tf.int64, trainable=False)
        decay = self.decay

        @tf.function
        def update():
            self._steps.assign_add(1)
            t = tf.cast(self._steps, tf.float32)
            d = tf.minimum(tf.constant(decay, tf.float32), (1.0 + t) / (10.0 + t))
            for a, w in zip(self.average, self.weights):
                a.assign(d * a + (1.0 - d) * tf.cast(w.value, tf.float32))

        self._update = update

    def _numpy_update(self):
        if hasattr(self.model, "jax_state_sync"):  # JAX's fit holds the weights outside the variables until synced
            self.model.jax_state_sync()
        self.steps += 1
        d = np.float32(min(self.decay, (1.0 + self.steps) / (10.0 + self.steps)))
        for i, w in enumerate(self.weights):
            self.average[i] = d * self.average[i] + (np.float32(1) - d) * np.asarray(w.numpy(), np.float32)

    def _values(self) -> list[np.ndarray]:
        return [np.asarray(a if isinstance(a, np.ndarray) else a.numpy()) for a in self.average]

    def _step_count(self) -> int:
        return int(self._steps.numpy()) if hasattr(self, "_steps") else self.steps

    def callback(self, keras):
        return keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: self._update())

    @contextlib.contextmanager
    def swapped_in(self):
        """The model holds the average inside the block, its live weights again after it."""
        live = [w.numpy() for w in self.weights]
        for w, a in zip(self.weights, self._values()):
            w.assign(a.astype(w.dtype))
        try:
            yield
        finally:
            for w, v in zip(self.weights, live):
                w.assign(v)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, steps=np.int64(self._step_count()), **{f"w{i}": a for i, a in enumerate(self._values())})
        return buf.getvalue()

    def load(self, path: str) -> None:
        with np.load(path) as f:
            if len(f.files) != len(self.average) + 1:
                raise ValueError(f"{path}: {len(f.files) - 1} averaged weights, the model has {len(self.average)}")
            for i in range(len(self.average)):
                if isinstance(self.average[i], np.ndarray):
                    self.average[i] = np.asarray(f[f"w{i}"], np.float32)
                else:
                    self.average[i].assign(f[f"w{i}"])
            if hasattr(self, "_steps"):
                self._steps.assign(int(f["steps"]))
            else:
                self.steps = int(f["steps"])
