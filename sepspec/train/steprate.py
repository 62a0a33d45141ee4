"""A `per: step` learning rate inside the compiled step: on JAX (and PyTorch) the trainer cannot assign a rate
between two steps of one `fit` (JAX's step carries the optimizer's state from step to step), so the optimizer
computes it from its update count with the schedule's one definition (`schedule._rate`) on Keras's ops.

A module of its own, which imports Keras. A checkpoint's optimizer names this class: `rundir.load_model` imports
the module before it loads one; elsewhere `import sepspec.train.steprate` first (or load with `compile=False`,
as scoring and export do).
"""

from __future__ import annotations

import keras

from ..spec.trainconf import Train
from .schedule import rate_at_time


class _KerasMath:
    cos, floor, where = keras.ops.cos, keras.ops.floor, keras.ops.where


@keras.saving.register_keras_serializable(package="sepspec")
class StepRate(keras.optimizers.schedules.LearningRateSchedule):
    """The rate of update `iterations` (= epoch * steps + batch, so a resumed run, whose optimizer keeps its
    count, goes on with the same rates), in float32: `lr_at` to float32 rounding."""

    def __init__(self, train: dict, steps: int):
        self.train, self.steps = train, steps
        self._t = Train.model_validate(train)

    def __call__(self, iterations):
        i = keras.ops.cast(iterations, "float32")
        return keras.ops.cast(rate_at_time(self._t, i / self.steps, i + 1, self.steps, _KerasMath), "float32")

    def get_config(self):
        return {"train": self.train, "steps": self.steps}


def step_rate(train: Train, steps: int) -> StepRate:
    return StepRate(train.model_dump(mode="json"), steps)
