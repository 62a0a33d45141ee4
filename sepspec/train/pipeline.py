"""The input pipeline: tf.data over in-memory uint8 images, batched, normalised and augmented with
vectorised ops on whole batches, and prefetched, so the data never waits on Python.

Everything random is stateless and seeded by (seed, epoch, batch), so a resumed run sees the same data
order and the same augmentation as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

from ..trainconf import Augment


def channel_stats(x_uint8: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training images, in [0, 1] units."""
    x = x_uint8.reshape(-1, x_uint8.shape[-1])
    mean = np.zeros(x.shape[1])
    sq = np.zeros(x.shape[1])
    for i in range(0, len(x), 1 << 20):  # chunks: no float copy of the whole set
        c = x[i:i + (1 << 20)].astype(np.float64) / 255.0
        mean += c.sum(0)
        sq += (c * c).sum(0)
    mean /= len(x)
    std = np.sqrt(np.maximum(sq / len(x) - mean * mean, 1e-12))
    return mean.tolist(), std.tolist()


def normalize(x, mean, std):
    """`(x / 255 - mean) / std` per channel: the one definition of the model's input, for a numpy uint8 array
    (evaluation, benchmarks) and for a float32 TF tensor (the training pipeline) alike."""
    if isinstance(x, np.ndarray):
        x, mean, std = x.astype(np.float32), np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (x / 255.0 - mean) / std


def augment_batch(tf, x, seed, aug: Augment):
    """Flip, pad-and-crop and cutout on a normalised float batch (b, h, w, c); `seed` is a [2] int tensor."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    if aug.flip:
        coin = tf.random.stateless_uniform([b, 1, 1, 1], seed=seed) < 0.5
        x = tf.where(coin, tf.reverse(x, axis=[2]), x)
    if aug.crop:
        p = aug.crop
        padded = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])  # zeros = the mean after normalisation
        off = tf.random.stateless_uniform([b, 2], seed=seed + 1, minval=0, maxval=2 * p + 1, dtype=tf.int32)
        rows = off[:, :1] + tf.range(h)[None, :]
        cols = off[:, 1:] + tf.range(w)[None, :]
        x = tf.gather(padded, rows, axis=1, batch_dims=1)
        x = tf.gather(x, cols, axis=2, batch_dims=1)
    if aug.cutout:
        size, half = aug.cutout, aug.cutout // 2
        cy = tf.random.stateless_uniform([b, 1, 1], seed=seed + 2, minval=0, maxval=h, dtype=tf.int32)
        cx = tf.random.stateless_uniform([b, 1, 1], seed=seed + 3, minval=0, maxval=w, dtype=tf.int32)
        ys = tf.range(h)[None, :, None]
        xs = tf.range(w)[None, None, :]
        inside = (ys >= cy - half) & (ys < cy - half + size) & (xs >= cx - half) & (xs < cx - half + size)
        x = tf.where(inside[..., None], tf.zeros_like(x), x)
    return x


def dataset(x_uint8: np.ndarray, y: np.ndarray, *, batch: int, classes: int, mean, std, seed: int, epoch: int,
            training: bool, aug: Augment | None = None):
    """A tf.data.Dataset of (normalised float32 images, one-hot labels)."""
    import tensorflow as tf

    n = len(x_uint8)
    order = np.random.default_rng([seed, epoch]).permutation(n) if training else np.arange(n)
    images = tf.constant(x_uint8)
    labels = tf.constant(y.astype(np.int32))
    m = tf.constant(np.asarray(mean, np.float32))
    s = tf.constant(np.asarray(std, np.float32))
    ds = tf.data.Dataset.from_tensor_slices(order.astype(np.int64)).batch(batch).enumerate()

    def load(i, idx):
        x = normalize(tf.cast(tf.gather(images, idx), tf.float32), m, s)
        if training and aug is not None and (aug.flip or aug.crop or aug.cutout):
            x = augment_batch(tf, x, tf.stack([tf.cast(seed * 100_003 + epoch, tf.int64), i]), aug)
        return x, tf.one_hot(tf.gather(labels, idx), classes)

    opts = tf.data.Options()
    opts.experimental_deterministic = True
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE).with_options(opts)
