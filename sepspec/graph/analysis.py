"""The analysis: one walk over the spec's layer graph -> a `Report` (a row per Keras layer, plus totals).

Pure Python: the facts come from `sepspec.layers`, the expansion of each kind from `sepspec.kinds`, so no
model is built and TensorFlow is not imported. Rows are in an order Keras can build them in (inputs before
users); each names its inputs (`input` is the model's input). The receptive field is carried per axis with
its position (`layers.Span`): ``start - p*jump``, ``rf + (k_eff - 1) * jump``, ``jump * stride``; a merge
covers the union of its inputs' spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import layers as L
from ..diagnostics import dotted
from ..spec.kinds import Origin, expand_entries
from ..spec.load import Spec

Pair = tuple[int, int]
INPUT = "input"
# Keras's functional graph walk recurses along a path and fails with a RecursionError on a chain of 1,000 layers
# (measured, Keras 3.15 / TF 2.21, Python's limit of 1,000 frames), so a spec's longest input-to-output path may be
# at most this many layers (NASNetMobile is 770 layers but 213 deep, and builds), so whatever `check` passes builds:
# chains of 903 and 963 layers build, save, load (safe mode), train and import again, the 903 one converts to LiteRT
# and ONNX (2026-12-05). Keras's own EfficientNetV2L, 1,030 deep, builds because the walk takes its shortcuts first;
# the longest path is the bound that holds for every graph.
MAX_DEPTH = 900
MAX_LAYERS = 5000  # in all: bounds the analysis's own time (100 entries of `repeat: 100` are refused at once)


@dataclass(frozen=True)
class Row:
    layer: L.Layer
    origin: Origin  # the spec entry it comes from
    inputs: tuple[str, ...]  # names of the tensors it takes
    input: tuple[int, ...]  # the (first) input's shape
    output: tuple[int, ...]
    trainable: int
    non_trainable: int
    span_in: L.Span  # the (first) input's span
    span: L.Span
    macs: int
    padding: Pair  # padding before, per axis (for the seed-style comment's p=)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def rf(self) -> Pair:
        return self.span.rf

    @property
    def jump(self) -> Pair:
        return self.span.jump

    @property
    def start(self) -> Pair:
        return self.span.start

    @property
    def rf_in(self) -> Pair:
        return self.span_in.rf

    @property
    def jump_in(self) -> Pair:
        return self.span_in.jump


@dataclass(frozen=True)
class Failure:
    """The walk stopped here. `code`: the diagnostic's code; `at`: the argument of the entry it concerns."""

    code: str
    message: str
    layer: str
    origin: Origin
    at: tuple = ()


class Stop(Exception):
    def __init__(self, failure: Failure):
        self.failure = failure


_SHAPE_CODES = {"spatial_size": "SEP205", "input_rank": "SEP206", "merge_shape": "SEP211", "merge_jump": "SEP212",
                "groups": "SEP218", "channels": "SEP223"}


@dataclass
class Report:
    spec: Spec
    rows: list[Row] = field(default_factory=list)
    failure: Failure | None = None
    tensors: dict[str, tuple[tuple[int, ...], L.Span]] = field(default_factory=dict)
    scope: object = None  # the entry names visible while the graph is built (`kinds.Scope`)
    depths: dict[str, int] = field(default_factory=dict)  # each tensor's longest path from the input, in layers

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

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)

    def classifier_pool(self) -> Row | None:
        """The last `gap` or `gmp` entry's pooling to a vector (never a squeeze-and-excitation's internal pooling)."""
        pools = [r for r in self.rows if isinstance(r.layer, L.GlobalPooling) and not r.layer.keepdims]
        return pools[-1] if pools else None

    def rf_row(self) -> Row | None:
        """The layer that feeds global pooling; the last spatial layer when there is none."""
        pool = self.classifier_pool()
        if pool is not None:
            return self.row(pool.inputs[0])
        spatial = [r for r in self.rows if len(r.output) == 3]
        return spatial[-1] if spatial else None

    @property
    def receptive_field(self) -> Pair:
        row = self.rf_row()
        return row.rf if row else (1, 1)

    # -- the Builder that `sepspec.kinds` expands into
    def add(self, layer: L.Layer, inputs: tuple[str, ...], origin: Origin) -> str:
        depth = 1 + max(self.depths.get(t, 0) for t in inputs)
        if depth > MAX_DEPTH or len(self.rows) >= MAX_LAYERS:
            what = (f"its longest path from the input would be more than {MAX_DEPTH} Keras layers deep (Keras "
                    f"cannot build a model much deeper: it fails at about 1,000)" if depth > MAX_DEPTH else
                    f"the model would have more than {MAX_LAYERS} Keras layers")
            self.fail("SEP214", f"{dotted(origin.path)}: {what}", origin,
                      ("repeat",) if origin.block.repeat > 1 else (), layer=layer.name)
        if layer.name in self.tensors:
            at = ("name",) if origin.block.name else ()
            what = "the model's input" if layer.name == INPUT else "another layer"
            self.fail("SEP107", f"{dotted(origin.path)}: layer name {layer.name!r} is already used by {what}",
                      origin, at, layer=layer.name)
        shapes = [self.tensors[t][0] for t in inputs]
        spans = [self.tensors[t][1] for t in inputs]
        try:
            if len(inputs) > 1:
                out, span = layer.merge(shapes, spans, list(inputs))
                pad = (0, 0)
            else:
                layer.check_input(shapes[0])
                out = layer.output_shape(shapes[0])
                pad = layer.padding_before(shapes[0])
                span = layer.span(shapes[0], spans[0])
        except L.ShapeError as e:
            self.fail(_SHAPE_CODES[e.kind], f"{dotted(origin.path)} ({layer.name}): {e}", origin, layer=layer.name)
        trainable, non_trainable = layer.params(shapes[0])
        self.rows.append(Row(layer, origin, tuple(inputs), shapes[0], out, trainable, non_trainable, spans[0], span,
                             layer.macs(shapes[0], out), pad))
        self.tensors[layer.name] = (out, span)
        self.depths[layer.name] = depth
        return layer.name

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.tensors[tensor][0]

    def jump(self, tensor: str) -> Pair:
        return self.tensors[tensor][1].jump

    def has(self, tensor: str) -> bool:
        return tensor in self.tensors

    def fail(self, code: str, message: str, origin: Origin, at: tuple = (), layer: str | None = None):
        raise Stop(Failure(code, message, layer or "", origin, at))


def analyse(spec: Spec) -> Report:
    """Expand and analyse the layers once, inputs before users; stop at the first layer that cannot be built."""
    report = Report(spec)
    report.tensors[INPUT] = (tuple(spec.input), L.Span())
    try:
        expand_entries(report, spec.layers, INPUT, "", ("layers",))
        _all_read(report)
    except Stop as s:
        report.failure = s.failure
    return report


def _all_read(report: Report) -> None:
    """Every tensor but the model's output feeds a later layer: a dead end (an entry whose output nothing reads
    after a `from:` or a merge jumped past it) would not be in the Keras model, whose layers are those between its
    input and its output."""
    read = {t for r in report.rows for t in r.inputs}
    for r in report.rows[:-1]:
        if r.name not in read:
            report.fail("SEP221", f"{dotted(r.origin.path)} ({r.name}): its output is never read (a later entry's "
                        f"`from:` or a merge skips it)", r.origin, layer=r.name)
