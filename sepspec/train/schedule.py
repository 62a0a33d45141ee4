"""Learning rate per epoch or per step, for every schedule a spec can name. Pure Python, so it is tested exactly.

With `per: epoch` (the default) the rate changes once per epoch, with e = 0 in the first epoch, as in the seed's
log (Keras's InverseTimeDecay would decay per step). With `per: step` it is a function of the training time in
epochs, t = epoch + batch / steps, set before every step; both are functions of the position alone, so a resumed
run gets the rates an uninterrupted one had. `reduce_on_plateau` keeps its state in a small dict that the
trainer saves with each checkpoint, so a resumed run continues with the same rate.

On JAX a rate assigned between two steps of one `fit` is not seen: its compiled step carries the optimizer's
state from step to step and reads the variable once per `fit`. There a `per: step` rate is computed inside the
step instead, from the optimizer's update count, by the same `rate_at_time` on Keras's ops (`steprate.StepRate`).
"""

from __future__ import annotations

import math

from ..spec.trainconf import Train

# the schedules whose rates depend on the total number of epochs (a run's length cannot change under them)
BY_LENGTH = ("cosine", "one_cycle", "linear")


def per_step(train: Train) -> bool:
    return getattr(train.schedule, "per", "epoch") == "step"


def lr_at(train: Train, epoch: int, plateau: dict | None = None, batch: int = 0, steps: int = 1) -> float:
    """The learning rate of 0-based `epoch`, and with `per: step` of its 0-based step `batch` of `steps`."""
    s = train.schedule
    if s.name == "reduce_on_plateau":
        return (plateau or {}).get("lr", train.optimizer.learning_rate)
    if per_step(train):
        return rate_at_time(train, epoch + batch / steps, epoch * steps + batch + 1, steps)
    return rate_at_time(train, epoch, epoch + 1, 1)


class _PythonMath:
    """What `rate_at_time` needs of its arithmetic, for Python numbers (the rates the trainer assigns)."""

    cos, floor = math.cos, math.floor

    @staticmethod
    def where(condition, a, b):
        return a if condition else b


def rate_at_time(train: Train, t, k, steps: int, m=_PythonMath):
    """The rate at time t (epochs trained so far); k counts the updates including this one, `steps` per epoch
    (warm-ups rise by k, so the first update is not at zero). `m` is the arithmetic (`cos`, `floor`, `where`):
    Python's, or Keras's ops inside a compiled step (`steprate.StepRate`)."""
    base = train.optimizer.learning_rate
    s = train.schedule
    n = train.epochs
    if s.name == "constant":
        return base + 0 * t  # a tensor where t is one
    if s.name == "inverse_time":
        return base / (1 + s.decay_rate * t)
    if s.name == "step":
        return base * s.factor ** m.floor(m.floor(t) / s.every)
    if s.name == "cosine":
        u = (t - s.warmup_epochs) / max(n - s.warmup_epochs, 1)
        return m.where(t < s.warmup_epochs, base * k / ((s.warmup_epochs * steps) or 1),  # no warm-up: never taken
                       s.min_lr + (base - s.min_lr) * 0.5 * (1 + m.cos(math.pi * u)))
    if s.name == "one_cycle":
        if not per_step(train):  # per epoch: the peak on a whole epoch, the last epoch at end_factor
            peak = max(int(round(s.peak_at * n)), 1)
            return m.where(t < peak, base * (s.start_factor + (1 - s.start_factor) * t / peak),
                           base * (1 + (s.end_factor - 1) * (t - peak) / max(n - 1 - peak, 1)))
        peak = s.peak_at * n
        return m.where(t < peak, base * (s.start_factor + (1 - s.start_factor) * t / peak),
                       base * (1 + (s.end_factor - 1) * (t - peak) / (n - peak)))
    if s.name == "linear":
        u = (t - s.warmup_epochs) / max(n - s.warmup_epochs, 1e-9)
        return m.where(t < s.warmup_epochs, base * k / ((s.warmup_epochs * steps) or 1),  # no warm-up: never taken
                       base * (1 + (s.end_factor - 1) * u))
    raise ValueError(f"unknown schedule {s.name}")


def in_step(keras, train: Train) -> bool:
    """Whether the trainer computes the rate inside the compiled step (`steprate.StepRate`): `per: step` schedules on
    JAX and PyTorch. TensorFlow reads a rate assigned before each step, as its committed runs were trained."""
    return per_step(train) and keras.backend.backend() != "tensorflow"


def plateau_update(train: Train, plateau: dict, val_loss: float) -> dict:
    """After an epoch: reduce the rate by `factor` when val_loss has not improved for `patience` epochs."""
    s = train.schedule
    p = {"lr": train.optimizer.learning_rate, "best": None, "wait": 0, **plateau}  # JSON-safe: no Infinity
    if s.name != "reduce_on_plateau":
        return p
    if p["best"] is None or val_loss < p["best"] - 1e-4:
        p["best"], p["wait"] = val_loss, 0
    else:
        p["wait"] += 1
        if p["wait"] >= s.patience:
            p["lr"], p["wait"] = max(p["lr"] * s.factor, s.min_lr), 0
    return p
