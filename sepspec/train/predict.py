"""Class probabilities of a trained model, with optional test-time augmentation: one definition for the trainer's
validation figures (`train.tta`) and `sepspec evaluate --tta`.

`flip` is the mean of the class probabilities for each image and its mirror image; `flip_shift` the mean over
six views: those two, each also shifted by one pixel up-left and down-right (the vacated row and column are
zeros, the mean colour after normalisation, as the training crop pads)."""

from __future__ import annotations

import numpy as np

SHIFTS = ((1, 1), (-1, -1))  # (rows, columns) of flip_shift's shifted views, besides the unshifted one


def gives_probabilities(model) -> bool:
    """Does the model end in softmax (else it gives logits)? A mixed-precision model's float32 cast is skipped."""
    layers = [layer for layer in model.layers if layer.name != "output_float32"]
    return layers[-1].get_config().get("activation") == "softmax"


PREDICT_BATCH = 500  # images per predict call when scoring (the test split, evaluate)


def probabilities(model, x: np.ndarray, tta: str = "none", batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """(n, classes) probabilities for normalised images `x` (n, h, w, c)."""
    return by_view(model, x, tta, batch_size)[tta]


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images moved down by dy and right by dx pixels (negative: up, left), zeros where nothing moved in."""
    out = np.zeros_like(x)
    h, w = x.shape[1], x.shape[2]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[:, max(-dy, 0):h - max(dy, 0),
                                                                     max(-dx, 0):w - max(dx, 0)]
    return out


def by_view(model, x: np.ndarray, tta: str = "none", batch_size: int = PREDICT_BATCH) -> dict[str, np.ndarray]:
    """Probabilities without test-time augmentation ("none") and with each level up to `tta` ("flip",
    "flip_shift"): the cheaper figures come free with the dearer one."""
    def once(images):
        out = predict(model, images, batch_size)
        if gives_probabilities(model):
            return out
        out = np.exp(out - out.max(axis=-1, keepdims=True))
        return out / out.sum(axis=-1, keepdims=True)

    p = {"none": once(x)}
    if tta in ("flip", "flip_shift"):
        mirrored = x[:, :, ::-1, :]
        p["flip"] = (p["none"] + once(mirrored)) / 2
        if tta == "flip_shift":
            views = [once(shifted(v, dy, dx)) for v in (x, mirrored) for dy, dx in SHIFTS]
            p["flip_shift"] = (2 * p["flip"] + sum(views)) / (2 + len(views))
    return p


def predict(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's float64 outputs for `x`, in batches of exactly `batch_size` images: the last one is padded
    with zeros and the padding's rows dropped. So every call of a run (validation, its views, the test split)
    runs one compiled shape, where a shorter last batch costs a compilation of its own on JAX and a retrace on
    TensorFlow. Inference scores each image on its own (batch norm uses its moving statistics), so the padding
    changes no image's scores. A split smaller than a batch is one batch of its own size (padding it would
    score more blanks than images), except under a distribution, whose devices share every batch."""
    n = len(x)
    if n == 0:
        return np.zeros((0, *model.output_shape[1:]), np.float64)
    batch = batch_size if _distributed() else min(batch_size, n)
    pad = -n % batch
    if pad:
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    return np.asarray(model.predict(*_batches(x, batch), verbose=0), np.float64)[:n]


def _distributed() -> bool:
    """Is a `keras.distribution` set (`--strategy data`: each batch split over the devices)?"""
    from ..lazy import import_keras

    return import_keras().distribution.distribution() is not None


def _batches(x: np.ndarray, batch_size: int) -> tuple:
    """`predict`'s arguments. On TensorFlow a tf.data dataset without autotuning (`pipeline.fixed`: `predict` on
    an array makes one with it, and its end can wait seconds for the autotuning thread); elsewhere the array,
    with the batch size said (Keras's default is 32)."""
    from ..lazy import import_keras

    if import_keras().backend.backend() != "tensorflow":
        return (x, batch_size)
    import tensorflow as tf

    from .pipeline import fixed

    return (fixed(tf, tf.data.Dataset.from_tensor_slices(x).batch(batch_size)),)


def scores(p: np.ndarray, y: np.ndarray, label_smoothing: float = 0.0) -> dict:
    """Accuracy and cross-entropy of probabilities `p` for labels `y`, with label smoothing as Keras's loss
    defines it (the target: 1 - s on the label plus s / classes on every class), so that a validation loss
    is the loss the recipe trains on."""
    logp = np.log(np.clip(p, 1e-12, 1.0))
    s = label_smoothing
    loss = -(1 - s) * logp[np.arange(len(y)), y] - (s / p.shape[-1]) * logp.sum(axis=-1)  # s = 0: plain, exactly
    return {"accuracy": float((p.argmax(axis=-1) == y).mean()), "loss": float(loss.mean())}
