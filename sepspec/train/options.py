"""What a training is asked (`Options`: what the command line sets, recorded in run.json) and how it ended
(`Result`), and the trainer's one-line error."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..diagnostics import UserError
from . import PRECISIONS, STRATEGIES, STREAMS


@dataclass
class Options:
    """What the command line sets; recorded in run.json so that --resume continues with the same."""

    spec: str | None = None  # the spec file (None for a Spec given in code)
    epochs: int | None = None
    batch_size: int | None = None
    data: str | None = None
    out: str | None = None
    train_limit: int | None = None
    val_limit: int | None = None
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)
    strategy: str = "default"
    jit_compile: bool = False
    precision: str = "auto"  # auto: float32 on CPU; on a GPU as measured per backend
    fast_layers: bool = True  # on TensorFlow: the fused batch norm and integer dropout masks (train/fastpath.py)
    stream: str = "auto"  # an image folder read from disk batch by batch: auto (when large), on, off

    def __post_init__(self):
        """Refuse a bad choice at once (API callers and tampered run.json files), before any data is loaded."""
        for name, value, choices in (("strategy", self.strategy, STRATEGIES), ("precision", self.precision, PRECISIONS),
                                     ("stream", self.stream, STREAMS)):
            if value not in choices:
                raise TrainError(f"unknown {name} {value!r} ({', '.join(choices)})")
        if self.seed is not None and not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
            raise TrainError(f"--seed {self.seed}: expected an integer from 0 to {2**32 - 1}")


class TrainError(UserError):
    """A clear, one-line problem (bad option, bad TF_CONFIG, missing run); the CLI prints it."""


@dataclass
class Result:
    """How a run ended (`status`: finished, pruned by a sweep's `on_epoch`, nan, interrupted; the command line's
    exit status is `sepspec.status.of_training(status)`) and its folder."""

    status: str
    run: str
