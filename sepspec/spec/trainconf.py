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


# the weights an optimizer's weight decay may spare (decoupled decay: w -= lr * weight_decay * w after each step)
Spared = Literal["depthwise", "norm", "bias", "alpha"]


class _Decaying(BaseModel):
    model_config = STRICT
    # depthwise: the depthwise kernels (of depthwise and separable convolutions), norm: batch/layer-norm scales
    # and offsets, bias: every bias, alpha: PReLU's slopes; small tensors whose decay costs accuracy and saves nothing
    no_decay: Annotated[list[Spared], Field(max_length=4)] = []


class Adam(_Decaying):
    name: Literal["adam"] = "adam"
    learning_rate: PosFloat = 0.01
    weight_decay: NonNegFloat = 0.0


class AdamW(_Decaying):
    name: Literal["adamw"] = "adamw"
    learning_rate: PosFloat = 0.001
    weight_decay: NonNegFloat = 0.004


class SGD(_Decaying):
    name: Literal["sgd"] = "sgd"
    learning_rate: PosFloat = 0.01
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = False
    weight_decay: NonNegFloat = 0.0


Optimizer = Annotated[Union[Annotated[Adam, Tag("adam")], Annotated[AdamW, Tag("adamw")],
                            Annotated[SGD, Tag("sgd")]], Discriminator(_named("adam"))]


class _Timed(BaseModel):
    """A rate that is a function of time: set once per epoch (the seed's way) or before every step."""

    model_config = STRICT
    per: Literal["epoch", "step"] = "epoch"


class Constant(_Timed):
    name: Literal["constant"] = "constant"


class InverseTime(_Timed):
    """lr(e) = lr / (1 + decay_rate * e), e = 0 in the first epoch (the seed's schedule)."""

    name: Literal["inverse_time"] = "inverse_time"
    decay_rate: NonNegFloat = 0.319


class Step(_Timed):
    name: Literal["step"] = "step"
    every: PosInt = 10  # epochs
    factor: Annotated[float, Field(gt=0, le=1)] = 0.1


class Cosine(_Timed):
    name: Literal["cosine"] = "cosine"
    min_lr: NonNegFloat = 0.0
    warmup_epochs: Annotated[int, Field(ge=0)] = 0


class OneCycle(_Timed):
    name: Literal["one_cycle"] = "one_cycle"
    peak_at: Annotated[float, Field(gt=0, lt=1)] = 0.25  # fraction of training at the peak
    start_factor: Annotated[float, Field(gt=0, le=1)] = 0.04  # lr starts at learning_rate * start_factor
    end_factor: Annotated[float, Field(ge=0, le=1)] = 0.0


class Linear(_Timed):
    """Linear warm-up from near zero over `warmup_epochs`, then linear decay to learning_rate * end_factor."""

    name: Literal["linear"] = "linear"
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0
    end_factor: Annotated[float, Field(ge=0, le=1)] = 0.0


class ReduceOnPlateau(BaseModel):
    model_config = STRICT
    name: Literal["reduce_on_plateau"] = "reduce_on_plateau"
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.5
    patience: PosInt = 3
    min_lr: NonNegFloat = 1e-5


Schedule = Annotated[Union[tuple(Annotated[c, Tag(c.model_fields["name"].default)]
                                 for c in (Constant, InverseTime, Step, Cosine, OneCycle, Linear, ReduceOnPlateau))],
                     Discriminator(_named("inverse_time"))]


class Augment(BaseModel):
    model_config = STRICT
    # true: a random horizontal flip; alternate: each image is flipped at random in the first epoch and then in
    # every other epoch (derandomised: no image is seen the same way twice running)
    flip: Union[bool, Literal["alternate"]] = False
    crop: Annotated[int, Field(ge=0, le=16)] = 0  # pad by this many pixels, then crop back at random
    cutout: Annotated[int, Field(ge=0, le=32)] = 0  # side of a random square set to zero
    # mixup: each training image and its one-hot label blended with another image of its batch and that one's
    # label, the weight drawn per image from Beta(mixup, mixup); 0: none
    mixup: Annotated[float, Field(ge=0, le=10)] = 0.0


class Train(BaseModel):
    model_config = STRICT
    epochs: Annotated[int, Field(gt=0, le=10_000)] = 50
    batch_size: Annotated[int, Field(gt=0, le=65_536)] = 256
    optimizer: Optimizer = Adam()
    schedule: Schedule = InverseTime()
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # the model's input: per_channel, (x / 255 - mean) / std with the training images' statistics; none, x / 255;
    # pixels, x itself (0-255: a model that rescales its pixels itself, Keras's `Rescaling(1 / 255)`)
    normalize: Literal["per_channel", "none", "pixels"] = "per_channel"
    augment: Augment = Augment()
    # the images that validate each epoch and choose best.keras: a fraction or a count held out of the training
    # split (seeded), or `test`, the test split (then selection is on the test set: say so where it is used)
    validation: Union[Literal["test"], Annotated[float, Field(gt=0, lt=1)], Annotated[int, Field(ge=1)]] = 0.1
    seed: Optional[Annotated[int, Field(ge=0, lt=2**32)]] = None  # numpy's and Keras's seeds are 32-bit
    # validation figures from each image and its mirror image (flip), or from six views: those two, each also
    # shifted by one pixel up-left and down-right (flip_shift)
    tta: Literal["none", "flip", "flip_shift"] = "none"
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.0  # decay of a weight average used for validation; 0: none
    tensorboard: bool = True  # TensorBoard event files in the run folder (`tensorboard --logdir runs/`)
    # images of another height and width than the spec's input are resized to it (bilinear) as they are read;
    # false: such data is refused. Channels are never converted
    resize: bool = False
    labels: Literal["fine", "coarse"] = "fine"  # CIFAR-100's 100 fine or 20 coarse classes
