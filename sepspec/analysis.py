"""The analysis: one walk over the expanded layers -> a `Report` (a row per Keras layer, plus totals).

Pure Python: the facts come from `sepspec.layers`, so no model is built and TensorFlow is not imported.
Receptive field and jump follow the usual recurrence, per axis:
``r_out = r_in + (k_eff - 1) * j_in``, ``j_out = j_in * stride``, ``k_eff = dilation * (k - 1) + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import layers as L
from .spec import Spec

Pair = tuple[int, int]


@dataclass(frozen=True)
class Row:
    layer: L.Layer
    entry: int  # index of the spec entry it comes from
    input: tuple[int, ...]
    output: tuple[int, ...]
    trainable: int
    non_trainable: int
    rf_in: Pair
    jump_in: Pair
    rf: Pair
    jump: Pair
    macs: int
    padding: Pair  # padding before, per axis (for the seed-style comment's p=)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


@dataclass(frozen=True)
class Failure:
    """The walk stopped here: this layer cannot take its input."""

    layer: L.Layer
    entry: int
    input: tuple[int, ...]
    message: str


@dataclass
class Report:
    spec: Spec
    rows: list[Row] = field(default_factory=list)
    failure: Failure | None = None

    @property
    def trainable(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def non_trainable(self) -> int:
        return sum(r.non_trainable for r in self.rows)

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def output(self) -> tuple[int, ...]:
        return self.rows[-1].output if self.rows else tuple(self.spec.input)

    def rf_row(self) -> Row | None:
        """The last layer before global pooling; the last spatial layer when there is none."""
        last_spatial = None
        for r in self.rows:
            if isinstance(r.layer, L.GlobalAveragePooling2D):
                return last_spatial
            if len(r.output) == 3:
                last_spatial = r
        return last_spatial

    @property
    def receptive_field(self) -> Pair:
        row = self.rf_row()
        return row.rf if row else (1, 1)


def analyse(spec: Spec) -> Report:
    """Walk the expanded layers once; stop at the first layer that cannot take its input."""
    report = Report(spec)
    shape = tuple(spec.input)
    rf, jump = (1, 1), (1, 1)
    for layer, entry in spec.expand():
        try:
            layer.check_input(shape)
            out = layer.output_shape(shape)
            pad = layer.padding_before(shape)
        except L.ShapeError as e:
            report.failure = Failure(layer, entry, shape, str(e))
            return report
        rf_in, jump_in = rf, jump
        win = layer.window()
        if win is not None:
            k_eff, stride = win
            rf = tuple(r + (k - 1) * j for r, k, j in zip(rf, k_eff, jump))
            jump = tuple(j * s for j, s in zip(jump, stride))
        trainable, non_trainable = layer.params(shape)
        report.rows.append(Row(layer, entry, shape, out, trainable, non_trainable, rf_in, jump_in, rf, jump,
                               layer.macs(shape, out), pad))
        shape = out
    return report
