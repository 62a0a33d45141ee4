"""Learning rate per epoch, for every schedule a spec can name. Pure Python, so it is tested exactly.

The rate changes once per epoch, with e = 0 in the first epoch, as in the seed's log (Keras's
InverseTimeDecay would decay per step). `reduce_on_plateau` keeps its state in a small dict that the
trainer saves with each checkpoint, so a resumed run continues with the same rate.
"""

from __future__ import annotations

import math

from ..spec.trainconf import Train


def lr_at(train: Train, epoch: int, plateau: dict | None = None) -> float:
    """The learning rate of 0-based `epoch`."""
    base = train.optimizer.learning_rate
    s = train.schedule
    n = train.epochs
    if s.name == "constant":
        return base
    if s.name == "inverse_time":
        return base / (1 + s.decay_rate * epoch)
    if s.name == "step":
        return base * s.factor ** (epoch // s.every)
    if s.name == "cosine":
        if epoch < s.warmup_epochs:
            return base * (epoch + 1) / s.warmup_epochs
        span = max(n - s.warmup_epochs, 1)
        t = (epoch - s.warmup_epochs) / span
        return s.min_lr + (base - s.min_lr) * 0.5 * (1 + math.cos(math.pi * t))
    if s.name == "one_cycle":
        peak = max(int(round(s.peak_at * n)), 1)
        if epoch < peak:
            return base * (s.start_factor + (1 - s.start_factor) * epoch / peak)
        t = (epoch - peak) / max(n - 1 - peak, 1)
        return base * (1 + (s.end_factor - 1) * t)
    if s.name == "reduce_on_plateau":
        return (plateau or {}).get("lr", base)
    raise ValueError(f"unknown schedule {s.name}")


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
