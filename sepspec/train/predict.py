"""Class probabilities of a trained model, with optional flip test-time augmentation (the mean of the
probabilities for each image and its mirror image): one definition for the trainer's validation figures
(`train.tta`) and `sepspec evaluate --tta`."""

from __future__ import annotations

import numpy as np


def gives_probabilities(model) -> bool:
    """Does the model end in softmax (else it gives logits)? A mixed-precision model's float32 cast is skipped."""
    layers = [layer for layer in model.layers if layer.name != "output_float32"]
    return layers[-1].get_config().get("activation") == "softmax"


def probabilities(model, x: np.ndarray, tta: str = "none", batch_size: int = 500) -> np.ndarray:
    """(n, classes) probabilities for normalised images `x` (n, h, w, c)."""
    return by_view(model, x, tta, batch_size)[tta]


def by_view(model, x: np.ndarray, tta: str = "none", batch_size: int = 500) -> dict[str, np.ndarray]:
    """Probabilities without test-time augmentation ("none") and, for `tta="flip"`, with it ("flip"): the
    plain figure comes free with the augmented one."""
    def once(images):
        out = np.asarray(model.predict(images, batch_size=batch_size, verbose=0), np.float64)
        if gives_probabilities(model):
            return out
        out = np.exp(out - out.max(axis=-1, keepdims=True))
        return out / out.sum(axis=-1, keepdims=True)

    p = {"none": once(x)}
    if tta == "flip":
        p["flip"] = (p["none"] + once(x[:, :, ::-1, :])) / 2
    return p


def scores(p: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and cross-entropy (without label smoothing) of probabilities `p` for labels `y`."""
    return {"accuracy": float((p.argmax(axis=-1) == y).mean()),
            "loss": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)).mean())}
