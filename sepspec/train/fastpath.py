"""Faster training steps on TensorFlow for two layers, with the model still plain Keras: batch norm through
TensorFlow's fused kernel, and dropout with integer masks.

Keras 3's `BatchNormalization` on TensorFlow computes the batch moments and the normalisation as separate ops
(keras-core#225, "BatchNorm is slow"); `FusedBatchNormV3` (oneDNN on CPU, cuDNN on GPU) does the same arithmetic
in one op and its gradient in another. `fuse_batch_norms(model)` replaces the `call` of each BatchNormalization
*instance* of a model: in training, the fused op normalises with the batch statistics and the moving statistics
are updated as Keras updates them (same momentum; the biased batch variance: the op returns the Bessel-corrected
one, which is scaled back); everything else (inference, masks, other dtypes or ranks) is Keras's own call. The
layers' class, config and weights do not change, so a saved `.keras` file is plain Keras, export is unchanged,
and a model loaded from a checkpoint is fused again by the trainer.

Keras's dropout on TensorFlow draws a 32-bit random word per element (a float32 uniform: 23 bits of it used);
the draw is most of a dropout's cost. `cheap_dropouts(model)` draws half as many words from the layer's own seed
generator (so its state, which the trainer saves for exact resume, advances as Keras's does) and gives each
element 16 of their bits: an element is kept when its 16 bits are at least `round(rate * 2**16)`, and scaled by
`1 / (1 - rate)` as Keras scales.
Each element is an independent Bernoulli draw whose rate is the spec's rate on a grid of 2**-16 (0.07 becomes
4,588 / 65,536 = 0.0700073; Keras's float32 comparison puts it on a grid of 2**-23). On 2 cores, forward and
backward of a 256x32x32x64 tensor: Keras's dropout 43 ms, these masks 31 ms, a ReLU 18 ms
(`benchmarks/dropout_masks.py`). Other masks than Keras's, so a run keeps the kind it started with.
"""

from __future__ import annotations

import types


def fast_training(model) -> dict:
    """Both: {"batch_norm": how many fused, "dropout": how many with integer masks} (zeros off TensorFlow)."""
    return {"batch_norm": fuse_batch_norms(model), "dropout": cheap_dropouts(model)}


def cheap_dropouts(model) -> int:
    """Give every Dropout of `model` (without a noise shape) integer masks in training; returns how many."""
    from ..lazy import import_keras

    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        return 0
    n = 0
    for layer in _layers(model):
        if type(layer) is keras.layers.Dropout and layer.noise_shape is None:
            layer.call = types.MethodType(_dropout_call(layer.call), layer)
            n += 1
    return n


MASK_BITS = 16  # random bits per element of a dropout mask


def mask_threshold(rate: float) -> int:
    """An element is kept when its 16 random bits are at least this: the drop rate on the 2**-16 grid (never
    0 or 1, which would change what the layer does)."""
    return min(max(int(round(rate * 2**MASK_BITS)), 1), 2**MASK_BITS - 1)


def _dropout_call(keras_call):
    import tensorflow as tf

    def call(self, inputs, training=False):
        if not (training and 0.0 < self.rate < 1.0):
            return keras_call(inputs, training=training)
        seed = self.seed_generator.next()
        if seed.dtype != tf.int32:  # as Keras casts its generator's int64 state for the stateless ops
            seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
        n = tf.size(inputs)
        words = tf.random.stateless_uniform([(n + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
        bits = tf.reshape(tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:n], tf.shape(inputs))
        threshold = tf.constant(mask_threshold(self.rate), tf.uint16)
        scale = tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(bits >= threshold, inputs * scale, tf.zeros_like(inputs))

    return call


def fuse_batch_norms(model) -> int:
    """Route the training step of every eligible BatchNormalization in `model` (nested models too) through
    `FusedBatchNormV3`; returns how many. Only on the TensorFlow backend (elsewhere: 0, nothing changes)."""
    from ..lazy import import_keras

    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        return 0
    n = 0
    for layer in _layers(model):
        if type(layer) is keras.layers.BatchNormalization and _eligible(layer):
            layer.call = types.MethodType(_fused_call(layer.call), layer)
            n += 1
    return n


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers") and layer is not model:
            yield from _layers(layer)


def _eligible(layer) -> bool:
    return layer.axis in (-1, 3) and not getattr(layer, "renorm", False) and not getattr(layer, "synchronized", False)


def _fused_call(keras_call):
    import tensorflow as tf

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or inputs.shape.rank != 4 \
                or inputs.dtype not in (tf.float32, tf.float16):
            return keras_call(inputs, training=training, mask=mask)
        c = inputs.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([c], tf.float32)
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([c], tf.float32)
        empty = tf.constant([], tf.float32)
        y, mean, var, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        count = tf.cast(tf.size(inputs) // c, tf.float32)
        var = var * (count - 1.0) / tf.maximum(count, 1.0)  # back to the biased variance Keras uses
        m = self.momentum
        self.moving_mean.assign(tf.cast(self.moving_mean, tf.float32) * m + mean * (1.0 - m))
        self.moving_variance.assign(tf.cast(self.moving_variance, tf.float32) * m + var * (1.0 - m))
        return tf.cast(y, self.compute_dtype)

    return call
