"""Which images train and which validate: the seeded held-out split (or the test split, where the recipe asks),
and the check that a spec fits its data, before anything is written."""

from __future__ import annotations

import numpy as np

from ..layers import dims
from ..spec.load import Spec
from .options import Options, TrainError

SPLIT_SEED = 0  # the held-out validation images are the same for every run on the same data


def split(data, train, opts: Options):
    """(x, y, x_val, y_val): the training images and the validation images. `validation: test` validates on the
    test split; a fraction or a count holds that many training images out, chosen by a seeded permutation
    (`SPLIT_SEED`), in their original order, so that every run on the same data validates on the same images."""
    if train.validation == "test":
        return (data.x_train[:opts.train_limit], data.y_train[:opts.train_limit], data.x_test[:opts.val_limit],
                data.y_test[:opts.val_limit])
    k = held_out(train.validation, len(data.x_train))
    held = np.zeros(len(data.x_train), bool)
    held[np.random.default_rng(SPLIT_SEED).permutation(len(held))[:k]] = True
    # the limits cut the lists of indices, not copies of every image (copying CIFAR-10's 45,000 took 0.9 s)
    kept, out = np.flatnonzero(~held)[:opts.train_limit], np.flatnonzero(held)[:opts.val_limit]
    return data.x_train[kept], data.y_train[kept], data.x_train[out], data.y_train[out]


def held_out(validation: float | int, images: int) -> int:
    """How many of `images` training images a fraction or count holds out; TrainError when none or all."""
    k = validation if isinstance(validation, int) else int(round(images * validation))
    if k < 1 or k >= images:
        raise TrainError(f"validation {validation} leaves no training or no validation images (of {images:,})")
    return k


def split_words(validation, images: int) -> str:
    """Where the validation figures come from, as the epoch lines and `metrics.json` say it."""
    return ("the test split" if validation == "test" else f"{images:,} images held out of the training split")


def check_fits(spec: Spec, data, where: str | None = None) -> None:
    """The spec's input and classes must be the data's (CIFAR-10: 32x32x3, 10 classes), before anything is
    written. `where` names the spec in the message."""
    shape = tuple(data.x_train.shape[1:])
    name = where or spec.name
    if tuple(spec.input) != shape:
        hint = "" if spec.input[2] != shape[2] or spec.train.resize else \
            "; train.resize: true resizes the images to the input"
        raise TrainError(f"{name}: input {dims(spec.input)}, but the data's images are {dims(shape)} "
                         f"(e.g. {data.example()}){hint}")
    if spec.classes != len(data.class_names):
        names = ", ".join(data.class_names[:12]) + (", ..." if len(data.class_names) > 12 else "")
        raise TrainError(f"{name}: classes: {spec.classes}, but the data has {len(data.class_names)} classes "
                         f"({names})")
