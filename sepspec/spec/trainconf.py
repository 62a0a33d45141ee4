"""The `train:` section of a spec: optimizer, schedule, augmentation and the rest of the recipe.

Validated with the rest of the spec (so `check` catches a bad learning rate), read only by the trainer.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, Discriminator, Field, Tag

from .fields import STRICT, NonNegFloat, PosFloat, PosInt


def _named(default: str):
    """A tagged union on `name`, where a mapping without `name` means `default`."""
    return lambda v: (v.get("name", default) if isinstance(v, dict) else getattr(v, "name", None))


class Adam(BaseModel):
    model_config = STRICT
    name: Literal["adam"] = "adam"
    learning_rate: PosFloat = 0.01
    weight_decay: NonNegFloat = 0.0


class AdamW(BaseModel):
    model_config = STRICT
    name: Literal["adamw"] = "adamw"
    learning_rate: PosFloat = 0.001
    weight_decay: NonNegFloat = 0.004


class SGD(BaseModel):
    model_config = STRICT
    name: Literal["sgd"] = "sgd"
    learning_rate: PosFloat = 0.01
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = False
    weight_decay: NonNegFloat = 0.0


Optimizer = Annotated[Union[Annotated[Adam, Tag("adam")], Annotated[AdamW, Tag("adamw")],
                            Annotated[SGD, Tag("sgd")]], Discriminator(_named("adam"))]


class Constant(BaseModel):
    model_config = STRICT
    name: Literal["constant"] = "constant"


class InverseTime(BaseModel):
    """lr(e) = lr / (1 + decay_rate * e), e = 0 in the first epoch (the seed's schedule)."""

    model_config = STRICT
    name: Literal["inverse_time"] = "inverse_time"
    decay_rate: NonNegFloat = 0.319


class Step(BaseModel):
    model_config = STRICT
    name: Literal["step"] = "step"
    every: PosInt = 10  # epochs
    factor: Annotated[float, Field(gt=0, le=1)] = 0.1


class Cosine(BaseModel):
    model_config = STRICT
    name: Literal["cosine"] = "cosine"
    min_lr: NonNegFloat = 0.0
    warmup_epochs: Annotated[int, Field(ge=0)] = 0


class OneCycle(BaseModel):
    model_config = STRICT
    name: Literal["one_cycle"] = "one_cycle"
    peak_at: Annotated[float, Field(gt=0, lt=1)] = 0.25  # fraction of training at the peak
    start_factor: Annotated[float, Field(gt=0, le=1)] = 0.04  # lr starts at learning_rate * start_factor
    end_factor: Annotated[float, Field(ge=0, le=1)] = 0.0


class ReduceOnPlateau(BaseModel):
    model_config = STRICT
    name: Literal["reduce_on_plateau"] = "reduce_on_plateau"
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.5
    patience: PosInt = 3
    min_lr: NonNegFloat = 1e-5


Schedule = Annotated[Union[tuple(Annotated[c, Tag(c.model_fields["name"].default)]
                                 for c in (Constant, InverseTime, Step, Cosine, OneCycle, ReduceOnPlateau))],
                     Discriminator(_named("inverse_time"))]


class Augment(BaseModel):
    model_config = STRICT
    flip: bool = False  # random horizontal flip
    crop: Annotated[int, Field(ge=0, le=16)] = 0  # pad by this many pixels, then crop back at random
    cutout: Annotated[int, Field(ge=0, le=32)] = 0  # side of a random square set to zero


class Train(BaseModel):
    model_config = STRICT
    epochs: Annotated[int, Field(gt=0, le=10_000)] = 50
    batch_size: Annotated[int, Field(gt=0, le=65_536)] = 256
    optimizer: Optimizer = Adam()
    schedule: Schedule = InverseTime()
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    normalize: Literal["per_channel", "none"] = "per_channel"
    augment: Augment = Augment()
    # the images that validate each epoch and choose best.keras: a fraction or a count held out of the training
    # split (seeded), or `test`, the test split (then selection is on the test set: say so where it is used)
    validation: Union[Literal["test"], Annotated[float, Field(gt=0, lt=1)], Annotated[int, Field(ge=1)]] = 0.1
    seed: Optional[Annotated[int, Field(ge=0, lt=2**32)]] = None  # numpy's and Keras's seeds are 32-bit
    tta: Literal["none", "flip"] = "none"  # validation figures from each image and its mirror image
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.0  # decay of a weight average used for validation; 0: none
    tensorboard: bool = True  # TensorBoard event files in the run folder (`tensorboard --logdir runs/`)
    # images of another height and width than the spec's input are resized to it (bilinear) as they are read;
    # false: such data is refused. Channels are never converted
    resize: bool = False
    labels: Literal["fine", "coarse"] = "fine"  # CIFAR-100's 100 fine or 20 coarse classes
