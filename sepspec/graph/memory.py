"""The static deployment estimate: what an int8 model of the spec needs on a device, in pure Python.

Defined as TensorFlow's full-integer converter builds the model `sepspec export --format litert-int8` writes
(checked against converted files and TensorFlow Lite Micro's memory planner: docs/deployment.md). Each layer
class lowers itself (`layers.Layer.lower`); this module walks the rows, shares equal constants and plans the
arena. The exported model takes uint8 pixels: QUANTIZE to int8, then the trainer's per-channel normalisation as
MUL and ADD (when the recipe normalises); then come each layer's ops.

Flash is the weight buffers (int8 weights, int32 biases, constants), not the file (which adds names and
quantisation parameters); equal constants (zero biases of one size, the MEANs' axes, the slices' begin/end/
strides, the reshapes' sizes) are stored once, by their bytes, as the converter does. Activation memory is int8
at batch 1: while an op runs, every tensor written before and read by it or later is alive (a branch's input stays
alive until its merge); `peak_bytes` is the largest such sum over the ops in the analysis's order, `arena_bytes`
the arena TensorFlow Lite Micro's greedy planner lays them out in (what a device must reserve; it can exceed the
peak by the gaps that planner leaves).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from .. import layers as L
from .analysis import INPUT, Report


@dataclass
class Op:
    name: str  # the tensor it writes
    op: str  # the TFLite builtin
    layer: str  # the analysis row it lowers ("" for the exported model's input stage)
    inputs: tuple[str, ...]
    shape: tuple[int, ...]  # of the tensor it writes (batch 1, int8; uint8 for the input)
    weights: int = 0  # bytes of its own int8 weights and constants
    bias: int = 0  # bytes of its int32 bias
    bias_zero: bool = False  # all zeros (no bias, no folded batch norm): stored once per size, like any constant
    consts: tuple = ()  # the bytes of constants the converter stores once for the whole file (by their content)
    weight_bytes: int = 0  # what this op adds to flash (set once all ops are known)
    itemsize: int = 1  # int8; 4 for the int32 shape tensors of a flatten
    macs: int = 0  # multiply-accumulates (convolutions and dense layers; their sum is the analysis's MACs)

    @property
    def bytes(self) -> int:
        return math.prod(self.shape) * self.itemsize


@dataclass
class Deployment:
    ops: list[Op] = field(default_factory=list)
    live: list[int] = field(default_factory=list)  # activation bytes alive while each op runs
    arena_bytes: int = 0  # the activations laid out as TensorFlow Lite Micro's greedy planner does
    not_int8: list[tuple[str, str]] = field(default_factory=list)  # (layer, activation) without an int8 kernel

    @property
    def flash_bytes(self) -> int:
        return sum(o.weight_bytes for o in self.ops)

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    def summary(self) -> str:
        """The one line deployment tools print (STM32Cube.AI's analyze, Edge Impulse): MACs, weights, activations."""
        return f"macc={self.macs:,}, weights={self.flash_bytes:,} B, activations={self.arena_bytes:,} B"

    @property
    def peak_bytes(self) -> int:
        return max(self.live, default=0)

    @property
    def peak_at(self) -> Op | None:
        return self.ops[self.live.index(self.peak_bytes)] if self.ops else None

    def by_layer(self) -> dict[str, tuple[int, int]]:
        """layer -> (flash bytes, bytes alive at the peak of its ops); layers lowered to nothing are absent."""
        out: dict[str, tuple[int, int]] = {}
        for o, live in zip(self.ops, self.live):
            if o.layer:
                flash, peak = out.get(o.layer, (0, 0))
                out[o.layer] = (flash + o.weight_bytes, max(peak, live))
        return out


def estimate(rep: Report) -> Deployment:
    """Lower the analysed rows to int8 ops and measure them. A failed analysis is estimated up to its failure.
    Computed once per report: the rules SEP215/SEP216, `show`'s summary and `--memory` all read the same one."""
    cached = rep.__dict__.get("_deployment")
    if cached is None:
        cached = rep.__dict__["_deployment"] = _estimate(rep)
    return cached


class _Ops(L.Lowering):
    """The ops of one estimate, written by the layers' own `lower` (`layers.Lowering`)."""

    def __init__(self, d: Deployment, users: dict[str, int]):
        self.d, self.users, self.producer = d, users, {}

    def op(self, name, op, layer, inputs, shape, weights=0, bias=0, bias_zero=False, consts=(), itemsize=1, macs=0):
        o = Op(name, op, layer, tuple(inputs), tuple(shape), weights, bias, bias_zero, tuple(consts), itemsize=itemsize,
               macs=macs)
        self.d.ops.append(o)
        self.producer[name] = o
        return name

    def writer(self, tensor):
        return self.producer[tensor].op

    def alone(self, tensor):
        return self.users.get(tensor, 0) == 1

    def fold_bias(self, tensor):
        self.producer[tensor].bias_zero = False

    def without_int8(self, layer, function):
        self.d.not_int8.append((layer, function))

    def unscale(self, tensor):
        shift = self.producer[tensor]
        scale = self.producer.get(f"{shift.layer}/gamma")
        if shift.op != "ADD" or shift.inputs != (f"{shift.layer}/gamma",) or scale is None or scale.op != "MUL" \
                or not self.alone(tensor):
            return tensor
        self.d.ops.remove(shift)
        self.d.ops.remove(scale)
        return scale.inputs[0]

    def unpad(self, tensor, k_eff, strides):
        o = self.producer[tensor]
        if o.op != "PAD" or not self.alone(tensor):
            return tensor
        n = self.producer[o.inputs[0]].shape[:2]
        pads = [int.from_bytes(o.consts[0][i:i + 4], "little", signed=True) for i in range(0, 32, 4)]
        same = []
        for size, k, s in zip(n, k_eff, strides):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            same += [total // 2, total - total // 2]
        if pads[2:6] != same:
            return tensor
        self.d.ops.remove(o)
        return o.inputs[0]


def _estimate(rep: Report) -> Deployment:
    d = Deployment()
    users: dict[str, int] = {}
    for r in rep.rows:
        for t in r.inputs:
            users[t] = users.get(t, 0) + 1
    q = _Ops(d, users)
    shape = tuple(rep.spec.input)
    q.op("pixels", "INPUT", "", (), shape)
    tensor = {INPUT: q.op("quantize", "QUANTIZE", "", ("pixels",), shape)}  # Keras tensor -> the op tensor holding it
    # the export puts the run's normalisation first (`deploy.export.convert`): a scale and an offset per channel;
    # a scale alone for `none` (the converter drops an offset of zeros); nothing for `pixels`
    norm = rep.spec.train.normalize
    if norm != "pixels":
        c = shape[-1]
        scaled = q.op("normalize/scale", "MUL", "", ("quantize",), shape, c)
        tensor[INPUT] = q.op("normalize", "ADD", "", (scaled,), shape, c) if norm == "per_channel" else scaled
    for r in rep.rows:  # each layer knows its own int8 form (layers.py)
        tensor[r.name] = r.layer.lower(q, r, [tensor[t] for t in r.inputs])
    shared: set[bytes] = set()  # the converter stores equal constants once
    for o in d.ops:
        o.weight_bytes = o.weights
        consts = list(o.consts)
        if o.bias_zero:
            consts.append(bytes(o.bias))  # zeros, stored like any constant
        else:
            o.weight_bytes += o.bias
        for key in consts:
            if key not in shared:
                shared.add(key)
                o.weight_bytes += len(key)
    return plan(d)


def plan(d: Deployment) -> Deployment:
    """The bytes alive while each op runs, and the arena TensorFlow Lite Micro's planner lays them out in (for a
    spec's lowered ops, or for a .tflite file's: `deploy/tflite_file.py`)."""
    d.live = _live(d.ops)
    d.arena_bytes = _greedy_arena(d.ops)
    return d


def _lifetimes(ops: list[Op]) -> list[tuple[int, int]]:
    """(first, last) op index of each op's tensor: from its writer to its last reader (the output to the end)."""
    last = {o.name: i for i, o in enumerate(ops)}
    for i, o in enumerate(ops):
        for t in o.inputs:
            last[t] = i
    if ops:
        last[ops[-1].name] = len(ops) - 1
    return [(i, last[o.name]) for i, o in enumerate(ops)]


ALIGN = 16  # TFLM aligns every tensor buffer to 16 bytes


def _greedy_arena(ops: list[Op]) -> int:
    """The arena TensorFlow Lite Micro's GreedyMemoryPlanner lays the tensors out in: largest first (ties: the
    tensor written last first, as measured), each at the lowest offset that no tensor alive at the same time
    occupies. Can exceed the live peak: equal tensors placed in that order leave gaps."""
    life = _lifetimes(ops)
    size = [-(-o.bytes // ALIGN) * ALIGN for o in ops]
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last), by offset
    top = 0
    for i in sorted(range(len(ops)), key=lambda j: (-size[j], -j)):
        first, last = life[i]
        offset = 0
        for off, sz, f, la in placed:
            if la < first or f > last:
                continue
            if off - offset >= size[i]:
                break
            offset = max(offset, off + sz)
        bisect.insort(placed, (offset, size[i], first, last))
        top = max(top, offset + size[i])
    return top


def _live(ops: list[Op]) -> list[int]:
    """Bytes alive while each op runs."""
    life = _lifetimes(ops)
    ends = [0] * (len(ops) + 1)
    for o, (_, last) in zip(ops, life):
        ends[last + 1] += o.bytes
    live, total = [], 0
    for i, o in enumerate(ops):
        total += o.bytes - ends[i]
        live.append(total)
    return live
