"""Weight EMA: an exponential moving average of every model weight, kept beside the live weights.

Keras's `use_ema` overwrites the live weights with the average at the end of every `fit`, and the trainer
calls `fit` once per epoch, so training would go on from the average. Here the average is updated after every
step, swapped in for validation and for `best.keras` (so `sepspec evaluate` sees it), and swapped out again to
train on; the checkpoint keeps the live weights and `ema-NNNN.npz` the average with its step count, so that
`--resume` continues exactly. The decay warms up as ``min(decay, (1 + t) / (10 + t))`` after t steps (as
TensorFlow's ExponentialMovingAverage with `num_updates`), so a short run is not dominated by its initial
weights. Two stores, one arithmetic: on TensorFlow a graph function over variables (`_GraphAverage`), on the
other backends NumPy copies on the host (`_HostAverage`), both in float32.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from .devices import backend


def weight_average(keras, model, decay: float) -> "WeightAverage":
    cls = _GraphAverage if backend(keras) == "tensorflow" else _HostAverage
    return cls(model, decay)


class WeightAverage:
    """What the trainer uses: `callback`, `swapped_in`, `to_bytes`, `load`. Subclasses keep the numbers."""

    def __init__(self, model, decay: float):
        self.model, self.decay = model, decay
        self.weights = [w for w in model.weights if "float" in str(w.dtype)]

    def update(self) -> None:
        raise NotImplementedError

    def values(self) -> list[np.ndarray]:
        raise NotImplementedError

    def steps(self) -> int:
        raise NotImplementedError

    def restore(self, values: list[np.ndarray], steps: int) -> None:
        raise NotImplementedError

    def callback(self, keras):
        return keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: self.update())

    @contextlib.contextmanager
    def swapped_in(self):
        """The model holds the average inside the block, its live weights again after it."""
        live = [w.numpy() for w in self.weights]
        for w, a in zip(self.weights, self.values()):
            w.assign(a.astype(w.dtype))
        try:
            yield
        finally:
            for w, v in zip(self.weights, live):
                w.assign(v)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, steps=np.int64(self.steps()), **{f"w{i}": a for i, a in enumerate(self.values())})
        return buf.getvalue()

    def load(self, path: str) -> None:
        with np.load(path) as f:
            if len(f.files) != len(self.weights) + 1:
                raise ValueError(f"{path}: {len(f.files) - 1} averaged weights, the model has {len(self.weights)}")
            self.restore([np.asarray(f[f"w{i}"], np.float32) for i in range(len(self.weights))], int(f["steps"]))


class _GraphAverage(WeightAverage):
    """tf.Variables updated by one graph function per step: no copy to the host while training."""

    def __init__(self, model, decay: float):
        super().__init__(model, decay)
        import tensorflow as tf

        self._average = [tf.Variable(np.asarray(w.numpy(), np.float32), trainable=False) for w in self.weights]
        self._steps = tf.Variable(0, dtype=tf.int64, trainable=False)

        @tf.function
        def update():
            self._steps.assign_add(1)
            t = tf.cast(self._steps, tf.float32)
            d = tf.minimum(tf.constant(decay, tf.float32), (1.0 + t) / (10.0 + t))
            for a, w in zip(self._average, self.weights):
                a.assign(d * a + (1.0 - d) * tf.cast(w.value, tf.float32))

        self.update = update

    def values(self):
        return [a.numpy() for a in self._average]

    def steps(self):
        return int(self._steps.numpy())

    def restore(self, values, steps):
        for a, v in zip(self._average, values):
            a.assign(v)
        self._steps.assign(steps)


class _HostAverage(WeightAverage):
    """NumPy copies, for backends whose variables a TensorFlow graph cannot read (JAX, PyTorch)."""

    def __init__(self, model, decay: float):
        super().__init__(model, decay)
        self._average = [np.asarray(w.numpy(), np.float32) for w in self.weights]
        self._steps = 0

    def update(self):
        if hasattr(self.model, "jax_state_sync"):  # JAX's fit holds the weights outside the variables until synced
            self.model.jax_state_sync()
        self._steps += 1
        d = np.float32(min(self.decay, (1.0 + self._steps) / (10.0 + self._steps)))
        for i, w in enumerate(self.weights):
            self._average[i] = d * self._average[i] + (np.float32(1) - d) * np.asarray(w.numpy(), np.float32)

    def values(self):
        return list(self._average)

    def steps(self):
        return self._steps

    def restore(self, values, steps):
        self._average, self._steps = list(values), steps
