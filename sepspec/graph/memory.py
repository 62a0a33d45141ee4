"""The static deployment estimate: what an int8 model of the spec needs on a device, in pure Python.

Defined as TensorFlow's full-integer converter builds the model `sepspec export --format litert-int8` writes
(checked against converted files and TensorFlow Lite Micro's memory planner: docs/deployment.md):

- the exported model takes uint8 pixels: QUANTIZE to int8, then the trainer's per-channel normalisation as
  MUL and ADD (when the recipe normalises);
- a separable convolution is two ops, DEPTHWISE_CONV_2D then a 1x1 CONV_2D, with an int8 tensor between them;
- every convolution and dense layer has an int32 bias (a folded batch norm's shift, zeros without one);
- a batch norm right after a convolution folds into it; relu and relu6 fuse into the op before them; dropout
  and `linear` are gone; other activations are ops of their own (silu/swish: LOGISTIC, then MUL);
- a dilated depthwise convolution is SPACE_TO_BATCH_ND, DEPTHWISE_CONV_2D, BATCH_TO_SPACE_ND (+ an ADD for its
  bias), as TensorFlow computes it; a grouped convolution one CONV_2D with `cin/groups` input channels;
- a channel group is a STRIDED_SLICE, a concatenation CONCATENATION, a shuffle RESHAPE, TRANSPOSE, RESHAPE (a
  reshape of a dynamic batch is four ops, like a flatten), a layer norm the nine int8 ops the exporter writes.

Flash is the weight buffers (int8 weights, int32 biases, constants), not the file (which adds names and
quantisation parameters); equal constants (zero biases of one size, the MEANs' axes, the slices' begin/end/
strides, the reshapes' sizes) are stored once, by their bytes, as the converter does. Activation memory is int8 at batch 1: while an op runs, every tensor written before and read by
it or later is alive (a branch's input stays alive until its merge); `peak_bytes` is the largest such sum over
the ops in the analysis's order, `arena_bytes` the arena TensorFlow Lite Micro's greedy planner lays them out
in (what a device must reserve; it can exceed the peak by the gaps that planner leaves).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from .. import layers as L
from .analysis import INPUT, Report

FUSED = {"relu", "relu6"}  # into the op that writes their input
ACTIVATION_OPS = {"sigmoid": ("LOGISTIC",), "tanh": ("TANH",), "gelu": ("GELU",), "leaky_relu": ("LEAKY_RELU",),
                  "softmax": ("SOFTMAX",), "hard_sigmoid": ("MUL",), "silu": ("LOGISTIC", "MUL"),
                  "swish": ("LOGISTIC", "MUL"), "relu": ("RELU",), "relu6": ("RELU6",)}
# no int8 kernel (the converter leaves float ops or fails; TensorFlow's converter crashes on some of them)
NOT_INT8 = {"elu", "selu", "log_softmax", "softplus", "softsign", "mish", "exponential"}
_FUSES = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "MAX_POOL_2D", "AVERAGE_POOL_2D"}
_FOLDS_BN = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
BIAS = 4  # bytes per int32 bias


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


def _estimate(rep: Report) -> Deployment:
    d = Deployment()
    users: dict[str, int] = {}
    for r in rep.rows:
        for t in r.inputs:
            users[t] = users.get(t, 0) + 1
    shape = tuple(rep.spec.input)
    d.ops += [Op("pixels", "INPUT", "", (), shape), Op("quantize", "QUANTIZE", "", ("pixels",), shape)]
    tensor = {INPUT: "quantize"}  # Keras tensor -> the op tensor that holds it
    if rep.spec.train.normalize == "per_channel":
        c = shape[-1]
        d.ops += [Op("normalize/scale", "MUL", "", ("quantize",), shape, c),
                  Op("normalize", "ADD", "", ("normalize/scale",), shape, c)]
        tensor[INPUT] = "normalize"
    producer = {o.name: o for o in d.ops}

    def emit(name, op, layer, inputs, shape, weights=0, bias=0, bias_zero=False, consts=()):
        o = Op(name, op, layer, tuple(inputs), tuple(shape), weights, bias, bias_zero, tuple(consts))
        d.ops.append(o)
        producer[name] = o
        return name

    def depthwise(name, r, x, out, weights, bias_zero):
        """A depthwise convolution (alone or a separable one's first half). Dilated, TensorFlow computes it on a
        space-to-batch view: SPACE_TO_BATCH_ND (the input padded to a multiple of the dilation), a plain
        DEPTHWISE_CONV_2D with valid padding, BATCH_TO_SPACE_ND (cropping the extra); the converter keeps the
        three ops."""
        lay = r.layer
        c = out[-1]
        if lay.dilation == (1, 1):
            return emit(name, "DEPTHWISE_CONV_2D", r.name, (x,), out, weights, BIAS * c, bias_zero)
        pads, crops, blocks = [], [], []
        for n, k, d, p in zip(r.input[:2], lay.k_eff(), lay.dilation, r.padding):
            before, after = (p, k - 1 - p) if lay.padding == "same" else (0, 0)
            extra = (d - (n + before + after) % d) % d
            pads.append((before, after + extra))
            crops.append((0, extra))
            blocks.append((n + before + after + extra) // d)
        kh, kw = lay.kernel
        # the file declares the batch-of-blocks tensors at batch 1 (the converter's static shapes), and TensorFlow
        # Lite Micro plans them at that size
        s2b = emit(f"{r.name}/space_to_batch", "SPACE_TO_BATCH_ND", r.name, (x,), (*blocks, r.input[2]),
                   consts=[_i32(*lay.dilation), _i32(*sum(pads, ()))])
        conv = emit(f"{r.name}/depthwise_valid", "DEPTHWISE_CONV_2D", r.name, (s2b,),
                    (blocks[0] - kh + 1, blocks[1] - kw + 1, c), weights, BIAS * c, bias_zero)
        return emit(name, "BATCH_TO_SPACE_ND", r.name, (conv,), out,
                    consts=[_i32(*lay.dilation), _i32(*sum(crops, ()))])

    def reshape(name, layer, x, shape_in, target):
        """A Keras Reshape or Flatten: the batch is dynamic, so the new shape is computed, in int32: SHAPE, take
        the batch (STRIDED_SLICE), PACK it with the target's sizes, RESHAPE."""
        sh = emit(f"{name}/shape", "SHAPE", layer, (x,), (len(shape_in) + 1,))
        n = emit(f"{name}/batch", "STRIDED_SLICE", layer, (sh,), (1,), consts=[_i32(0), _i32(1), _i32(1)])
        new = emit(f"{name}/new_shape", "PACK", layer, (n,), (len(target) + 1,), consts=[_i32(v) for v in target])
        for o in d.ops[-3:]:
            o.itemsize = 4
        return emit(name, "RESHAPE", layer, (x, new), target)

    for r in rep.rows:
        x = [tensor[t] for t in r.inputs]
        lay, out, cin = r.layer, r.output, r.input[-1]
        alone = users.get(r.inputs[0], 0) == 1  # the only reader of its input: may fold or fuse into its writer
        if isinstance(lay, L.SeparableConv2D):
            (kh, kw), dm = lay.kernel, lay.depth_multiplier
            dw = depthwise(f"{r.name}/depthwise", r, x[0], (*out[:2], cin * dm), kh * kw * cin * dm, True)
            tensor[r.name] = emit(r.name, "CONV_2D", r.name, (dw,), out, cin * dm * lay.filters,
                                  BIAS * lay.filters, not lay.use_bias)
        elif isinstance(lay, L.DepthwiseConv2D):
            c = cin * lay.depth_multiplier
            dilated = lay.dilation != (1, 1)
            # dilated, the bias is added after the batch is turned back into space (int8, one per channel)
            late_bias = dilated and lay.use_bias
            y = depthwise(f"{r.name}/depthwise" if late_bias else r.name, r, x[0], out,
                          lay.kernel[0] * lay.kernel[1] * c, dilated or not lay.use_bias)
            tensor[r.name] = emit(r.name, "ADD", r.name, (y,), out, c) if late_bias else y
        elif isinstance(lay, L.Conv2D):
            y = emit(r.name, "CONV_2D", r.name, x, out, lay.kernel[0] * lay.kernel[1] * cin // lay.groups * lay.filters,
                     BIAS * lay.filters, not lay.use_bias)
            tensor[r.name] = _activation(d, emit, r.name, lay.activation or "linear", y, out, True)
        elif isinstance(lay, L.Dense):
            tensor[r.name] = emit(r.name, "FULLY_CONNECTED", r.name, x, out, cin * lay.units, BIAS * lay.units,
                                  not lay.use_bias)
        elif isinstance(lay, L.Dropout):
            tensor[r.name] = x[0]
        elif isinstance(lay, L.BatchNormalization):
            if alone and producer[x[0]].op in _FOLDS_BN:
                producer[x[0]].bias_zero = False  # the batch norm's shift becomes its bias
                tensor[r.name] = x[0]
            else:
                c = out[-1]
                m = emit(f"{r.name}/mul", "MUL", r.name, x, out, c)
                tensor[r.name] = emit(r.name, "ADD", r.name, (m,), out, c)
        elif isinstance(lay, L.Activation):
            tensor[r.name] = _activation(d, emit, r.name, lay.function, x[0], out,
                                         alone and producer[x[0]].op in _FUSES)
        elif isinstance(lay, (L.MaxPooling2D, L.AveragePooling2D)):
            op = "MAX_POOL_2D" if isinstance(lay, L.MaxPooling2D) else "AVERAGE_POOL_2D"
            tensor[r.name] = emit(r.name, op, r.name, x, out)
        elif isinstance(lay, L.GlobalAveragePooling2D):
            tensor[r.name] = emit(r.name, "MEAN", r.name, x, out, consts=[_i32(1, 2)])  # the axes
        elif isinstance(lay, (L.Flatten, L.Reshape)):
            tensor[r.name] = reshape(r.name, r.name, x[0], r.input, out)
        elif isinstance(lay, L.Permute):
            perm = (0, *lay.order)
            tensor[r.name] = emit(r.name, "TRANSPOSE", r.name, x, out, consts=[_i32(*perm)])
        elif isinstance(lay, L.ChannelSlice):  # x[..., start:stop]; a stop at the end is 0 (masked)
            rank = len(r.input) + 1
            zeros = (0,) * (rank - 1)
            end = lay.stop - lay.channels
            tensor[r.name] = emit(r.name, "STRIDED_SLICE", r.name, x, out,
                                  consts=[_i32(*zeros, lay.start), _i32(*zeros, end), _i32(*(1,) * rank)])
        elif isinstance(lay, L.Concatenate):
            tensor[r.name] = emit(r.name, "CONCATENATION", r.name, x, out)
        elif isinstance(lay, L.LayerNormalization):
            tensor[r.name] = _layer_norm(emit, r.name, x[0], out)
        elif isinstance(lay, L.Add):
            tensor[r.name] = emit(r.name, "ADD", r.name, x, out)
        elif isinstance(lay, L.Multiply):
            tensor[r.name] = emit(r.name, "MUL", r.name, x, out)
        else:  # a layer kind this estimate does not know yet must not pass silently
            raise NotImplementedError(f"no int8 lowering for {lay.keras}")
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
    d.live = _live(d.ops)
    d.arena_bytes = _greedy_arena(d.ops)
    return d


def _i32(*values: int) -> bytes:
    """An int32 constant's bytes in the file: the converter keeps one buffer per content, whatever the shape (a
    slice's begin [0, 0, 0, 0] and a zero crop [[0, 0], [0, 0]] share one, measured)."""
    return b"".join(int(v).to_bytes(4, "little", signed=True) for v in values)


def _layer_norm(emit, name: str, x: str, shape) -> str:
    """LayerNormalization over the channels as the exporter writes it for the int8 converter (Keras's own form
    leaves a float NEG): mean, x - mean, its square's mean, + epsilon, RSQRT, then times gamma, plus beta.
    The axis (-1) and epsilon (one int8 127) are constants shared by every layer norm."""
    c, one = shape[-1], (*shape[:-1], 1)
    mean = emit(f"{name}/mean", "MEAN", name, (x,), one, consts=[_i32(-1)])
    centred = emit(f"{name}/centred", "SUB", name, (x, mean), shape)
    square = emit(f"{name}/square", "MUL", name, (centred, centred), shape)
    var = emit(f"{name}/variance", "MEAN", name, (square,), one, consts=[_i32(-1)])
    var = emit(f"{name}/variance_eps", "ADD", name, (var,), one, consts=[bytes([127])])  # epsilon, int8
    inv = emit(f"{name}/rsqrt", "RSQRT", name, (var,), one)
    normed = emit(f"{name}/normed", "MUL", name, (centred, inv), shape)
    scaled = emit(f"{name}/gamma", "MUL", name, (normed,), shape, c)
    return emit(name, "ADD", name, (scaled,), shape, c)


def _activation(d: Deployment, emit, name: str, function: str, x: str, shape, fusable: bool) -> str:
    if function == "linear" or (function in FUSED and fusable):
        return x
    if function in NOT_INT8:
        d.not_int8.append((name, function))
    ops = ACTIVATION_OPS.get(function, (function.upper(),))
    if ops == ("LOGISTIC", "MUL"):  # x * sigmoid(x): x stays alive until the MUL
        s = emit(f"{name}/sigmoid", "LOGISTIC", name, (x,), shape)
        return emit(name, "MUL", name, (x, s), shape)
    return emit(name, ops[0], name, (x,), shape)


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
