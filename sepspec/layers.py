"""The vocabulary: one small class per Keras layer a spec can become.

Each class knows, from the same arguments, everything the rest of sepspec asks of a layer: its
output shape, its parameters (trainable / non-trainable, as Keras counts them), its receptive-field
step (effective kernel and stride), its multiply-accumulates, the Keras class name and keyword
arguments it becomes, and its int8 lowering (the TFLite ops, weight bytes and constants TensorFlow's
full-integer converter writes for it: `lower`). The analysis, the rules, the emitter and the static
deployment estimate all read these classes, so what is checked, built and deployed cannot drift apart;
a new layer kind is one class here (and its spec entry in `spec/kinds.py`).

Shapes exclude the batch dimension: ``(h, w, c)`` for images, ``(n,)`` after global pooling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

Shape = tuple[int, ...]
Pair = tuple[int, int]


class ShapeError(ValueError):
    """The layer cannot take this input. `kind`: input_rank, spatial_size, merge_shape or merge_jump."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Span:
    """Per axis: the first input pixel that output pixel 0 sees (`start`, negative inside the padding), how
    many it sees (`rf`), and the input-pixel distance between neighbouring outputs (`jump`)."""

    start: Pair = (0, 0)
    rf: Pair = (1, 1)
    jump: Pair = (1, 1)


def _out_len(n: int, k_eff: int, stride: int, padding: str) -> int:
    # Keras/TensorFlow: 'same' -> ceil(n / s); 'valid' -> floor((n - k_eff) / s) + 1
    if padding == "same":
        return -(-n // stride)
    return (n - k_eff) // stride + 1


def _pad_before(n: int, out: int, k_eff: int, stride: int, padding: str) -> int:
    if padding != "same":
        return 0
    return max((out - 1) * stride + k_eff - n, 0) // 2


# ------------------------------------------------------------------------------------------- int8 lowering
# As TensorFlow's full-integer converter writes a layer (measured against converted files: docs/deployment.md):
# a batch norm right after a convolution folds into it; relu and relu6 fuse into the op before them; other
# activations are ops of their own; every convolution and dense layer has an int32 bias.
FUSED = {"relu", "relu6", "hard_tanh"}  # into the op that writes their input (hard_tanh: RELU_N1_TO_1)
ACTIVATION_OPS = {"sigmoid": ("LOGISTIC",), "tanh": ("TANH",), "gelu": ("GELU",), "leaky_relu": ("LEAKY_RELU",),
                  "softmax": ("SOFTMAX",), "hard_sigmoid": ("MUL",), "silu": ("LOGISTIC", "MUL"),
                  "swish": ("LOGISTIC", "MUL"), "relu": ("RELU",), "relu6": ("RELU6",), "hard_silu": ("HARD_SWISH",),
                  "hard_tanh": ("RELU_N1_TO_1",), "tanh_shrink": ("TANH", "SUB")}
# no int8 kernel (the converter leaves float ops or fails; TensorFlow's converter crashes on some of them)
NOT_INT8 = {"elu", "selu", "log_softmax", "softplus", "softsign", "mish", "exponential", "hard_shrink", "soft_shrink",
            "log_sigmoid", "sparse_plus", "sparsemax", "squareplus"}  # (the last six measured: float ops remain)
FUSES = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "MAX_POOL_2D", "AVERAGE_POOL_2D"}
FOLDS_BN = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
BIAS = 4  # bytes per int32 bias


class Lowering:
    """What a layer's `lower` writes its ops through (the static estimate, `graph/memory.py`, implements it)."""

    def op(self, name: str, op: str, layer: str, inputs, shape, weights: int = 0, bias: int = 0,
           bias_zero: bool = False, consts=(), itemsize: int = 1, macs: int = 0) -> str:
        """An op writing tensor `name` (int8 unless `itemsize`) of `shape` from `inputs`, with `weights` bytes of
        int8 weights, `bias` bytes of int32 bias (all zeros: `bias_zero`), `consts` (constants the converter
        stores once per content) and `macs` multiply-accumulates (the layer's, split over its ops); returns `name`."""
        raise NotImplementedError

    def writer(self, tensor: str) -> str:
        """The op (its TFLite name) that writes `tensor`."""
        raise NotImplementedError

    def alone(self, tensor: str) -> bool:
        """Whether `tensor` has exactly one reader (which may then fold or fuse into its writer)."""
        raise NotImplementedError

    def fold_bias(self, tensor: str) -> None:
        """A batch norm folded into the writer of `tensor`: its shift becomes that op's (non-zero) bias."""
        raise NotImplementedError

    def without_int8(self, layer: str, function: str) -> None:
        """`layer` applies `function`, which has no int8 kernel."""
        raise NotImplementedError

    def unscale(self, tensor: str) -> str:
        """A FULLY_CONNECTED reads `tensor`: when a layer norm's scale and shift (MUL and ADD of per-channel
        constants) write it and nothing else reads it, the converter folds them into its weights and bias
        (measured: a layer norm on the pooled vector before the classifier), and the MUL's input is what it
        reads. Else `tensor`."""
        raise NotImplementedError

    def unpad(self, tensor: str, k_eff: Pair, strides: Pair) -> str:
        """A convolution with `valid` padding reads `tensor`: when a PAD that nothing else reads writes it, adding
        exactly what `same` padding would add to its input, the converter folds the two into one `same`
        convolution (measured), and the PAD's input is what the convolution reads. Else `tensor`."""
        raise NotImplementedError


def i32(*values: int) -> bytes:
    """An int32 constant's bytes in the file: the converter keeps one buffer per content, whatever the shape (a
    slice's begin [0, 0, 0, 0] and a zero crop [[0, 0], [0, 0]] share one, measured)."""
    return b"".join(int(v).to_bytes(4, "little", signed=True) for v in values)


def lower_activation(q: Lowering, name: str, function: str, x: str, shape, fusable: bool) -> str:
    """An activation after the op that writes `x`: fused into it where it can be, else its own ops."""
    if function == "linear" or (function in FUSED and fusable):
        return x
    if function in NOT_INT8:
        q.without_int8(name, function)
    ops = ACTIVATION_OPS.get(function, (function.upper(),))
    if len(ops) == 2:  # x * sigmoid(x), x - tanh(x): x stays alive until the second op
        s = q.op(f"{name}/{ops[0].lower()}", ops[0], name, (x,), shape)
        return q.op(name, ops[1], name, (x, s), shape)
    if function == "hard_sigmoid":  # relu6(x + 3) / 6: the +3 and relu6 go into the op before, then times 1/6 (one
        return q.op(name, "MUL", name, (x,), shape, consts=[bytes([127])])  # int8 127, measured)
    return q.op(name, ops[0], name, (x,), shape)


def lower_reshape(q: Lowering, name: str, x: str, shape_in, target) -> str:
    """A Keras Reshape or Flatten: the batch is dynamic, so the new shape is computed, in int32: SHAPE, take the
    batch (STRIDED_SLICE), PACK it with the target's sizes, RESHAPE."""
    sh = q.op(f"{name}/shape", "SHAPE", name, (x,), (len(shape_in) + 1,), itemsize=4)
    n = q.op(f"{name}/batch", "STRIDED_SLICE", name, (sh,), (1,), consts=[i32(0), i32(1), i32(1)], itemsize=4)
    new = q.op(f"{name}/new_shape", "PACK", name, (n,), (len(target) + 1,), consts=[i32(v) for v in target],
               itemsize=4)
    return q.op(name, "RESHAPE", name, (x, new), target)


@dataclass(frozen=True)
class Layer:
    name: str
    keras: ClassVar[str]
    spatial: ClassVar[bool] = False  # needs an (h, w, c) input
    weighted: ClassVar[bool] = False  # conv/depthwise/pointwise/dense: counts MACs
    inputs: ClassVar[int] = 1  # tensors it takes (merges: 2)

    def output_shape(self, s: Shape) -> Shape:
        return s

    def params(self, s: Shape) -> tuple[int, int]:
        """(trainable, non_trainable) for input shape `s`."""
        return 0, 0

    def window(self) -> tuple[Pair, Pair] | None:
        """(effective kernel, stride) for the receptive-field walk; None: no spatial step."""
        return None

    def padding_before(self, s: Shape) -> Pair:
        return 0, 0

    def macs(self, s: Shape, out: Shape) -> int:
        return 0

    def keras_kwargs(self) -> dict:
        return {}

    def check_input(self, s: Shape) -> None:
        if self.spatial and len(s) != 3:
            raise ShapeError("input_rank", f"{self.keras} needs an image input (h, w, c), got {dims(s)}")

    def lower(self, q: "Lowering", r, x: list[str]) -> str:
        """Its int8 form: the ops it becomes, written through `q`, for the analysis row `r` (its input and output
        shapes, padding) reading the op tensors `x`; returns the tensor that holds its output."""
        raise NotImplementedError(f"no int8 lowering for {self.keras}")  # a new kind must not pass silently

    def span(self, s: Shape, span: Span) -> Span:
        """The receptive-field span after this layer, for input shape `s` and input span `span`:
        ``start - p * jump``, ``rf + (k_eff - 1) * jump``, ``jump * stride`` (p: padding before)."""
        win = self.window()
        if win is None:
            return span
        (k_eff, stride), pad = win, self.padding_before(s)
        return Span(tuple(st - p * j for st, p, j in zip(span.start, pad, span.jump)),
                    tuple(r + (k - 1) * j for r, k, j in zip(span.rf, k_eff, span.jump)),
                    tuple(j * st for j, st in zip(span.jump, stride)))


def keras_classes() -> set[str]:
    """The `keras.layers` classes a spec can become: the names the classes here declare (emit's fixed table; no
    name from a spec is ever looked up)."""
    out, todo = set(), [Layer]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if "keras" in cls.__dict__:
            out.add(cls.keras)
    return out


def dims(s) -> str:
    """A shape or pair as `32x32x3`."""
    return "x".join(str(v) for v in s)


def axes(pair) -> str:
    """A per-axis figure as one number when both axes agree (`3`), else `3x5`."""
    return str(pair[0]) if len(set(pair)) == 1 else dims(pair)


# Keras's class of each initializer a spec names (`spec/fields.py`); the import reads it backwards
INIT_CLASSES = {"glorot_uniform": "GlorotUniform", "glorot_normal": "GlorotNormal", "he_normal": "HeNormal",
                "he_uniform": "HeUniform", "lecun_normal": "LecunNormal", "lecun_uniform": "LecunUniform",
                "zeros": "Zeros", "ones": "Ones", "variance_scaling": "VarianceScaling",
                "random_normal": "RandomNormal", "truncated_normal": "TruncatedNormal",
                "random_uniform": "RandomUniform", "orthogonal": "Orthogonal", "constant": "Constant"}


@dataclass(frozen=True)
class _Kernels:
    """How a weighted layer's kernels start and what they add to the loss: `kernel_init` (`()` Keras's default,
    glorot_uniform; `(name,)`; `(name, (arg, value), ...)`) and an L1 / L2 penalty on every kernel it has. None of
    it changes the analysis or the int8 file; Keras's layer options are written only where they are not Keras's
    defaults, so a spec without them compiles to the very configuration it always did."""

    kernel_init: tuple = ()
    l1: float = 0.0
    l2: float = 0.0

    def _kernel_kwargs(self, *kernels: str) -> dict:
        """Keras's arguments for the kernels named (`kernel`; `depthwise`, `pointwise`)."""
        out = {}
        if self.kernel_init:
            name, *args = self.kernel_init
            init = {"class_name": INIT_CLASSES[name], "config": dict(args)} if args else name
            out.update({f"{k}_initializer": init for k in kernels})
        if self.l1 or self.l2:
            cls, config = (("L1L2", {"l1": self.l1, "l2": self.l2}) if self.l1 and self.l2 else
                           ("L1", {"l1": self.l1}) if self.l1 else ("L2", {"l2": self.l2}))
            out.update({f"{k}_regularizer": {"class_name": cls, "config": config} for k in kernels})
        return out


@dataclass(frozen=True)
class _Windowed(Layer):
    """Anything that slides a window: convolutions and pooling."""

    kernel: Pair = (1, 1)
    strides: Pair = (1, 1)
    padding: str = "valid"
    dilation: Pair = (1, 1)
    spatial: ClassVar[bool] = True

    def k_eff(self) -> Pair:
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    def window(self):
        return self.k_eff(), self.strides

    def spatial_out(self, s: Shape) -> Pair:
        self.check_input(s)
        out = tuple(_out_len(n, k, st, self.padding) for n, k, st in zip(s[:2], self.k_eff(), self.strides))
        if min(out) < 1:
            raise ShapeError(
                "spatial_size", f"spatial size drops below 1: input {dims(s[:2])}, window {dims(self.k_eff())}, "
                f"stride {dims(self.strides)}, padding {self.padding} -> {dims(out)}")
        return out

    def padding_before(self, s: Shape) -> Pair:
        out = self.spatial_out(s)
        return tuple(_pad_before(n, o, k, st, self.padding)
                     for n, o, k, st in zip(s[:2], out, self.k_eff(), self.strides))

    def _unpadded(self, q: Lowering, x: str) -> str:
        """The input the converted convolution reads: an explicit zero padding before it folds in (`unpad`)."""
        return q.unpad(x, self.k_eff(), self.strides) if self.padding == "valid" and self.dilation == (1, 1) else x

    def _conv_kwargs(self) -> dict:
        return {"kernel_size": self.kernel, "strides": self.strides, "padding": self.padding,
                "dilation_rate": self.dilation}

    def _lower_depthwise(self, q: Lowering, name: str, r, x: str, out, weights: int, bias_zero: bool,
                         macs: int) -> str:
        """A depthwise convolution (alone or a separable one's first half). Dilated, TensorFlow computes it on a
        space-to-batch view: SPACE_TO_BATCH_ND (the input padded to a multiple of the dilation), a plain
        DEPTHWISE_CONV_2D with valid padding, BATCH_TO_SPACE_ND (cropping the extra); the converter keeps the
        three ops."""
        c = out[-1]
        if self.dilation == (1, 1):
            return q.op(name, "DEPTHWISE_CONV_2D", self.name, (x,), out, weights, BIAS * c, bias_zero, macs=macs)
        pads, crops, blocks = [], [], []
        for n, k, d, p in zip(r.input[:2], self.k_eff(), self.dilation, r.padding):
            before, after = (p, k - 1 - p) if self.padding == "same" else (0, 0)
            extra = (d - (n + before + after) % d) % d
            pads.append((before, after + extra))
            crops.append((0, extra))
            blocks.append((n + before + after + extra) // d)
        kh, kw = self.kernel
        # the file declares the batch-of-blocks tensors at batch 1 (the converter's static shapes), and TensorFlow
        # Lite Micro plans them at that size
        s2b = q.op(f"{self.name}/space_to_batch", "SPACE_TO_BATCH_ND", self.name, (x,), (*blocks, r.input[2]),
                   consts=[i32(*self.dilation), i32(*sum(pads, ()))])
        inner = (blocks[0] - kh + 1, blocks[1] - kw + 1, c)
        # the work done: every block's valid window, the padded margin included (so it can exceed `macs`, the
        # analysis's count of the output's windows)
        done = inner[0] * inner[1] * c * kh * kw * self.dilation[0] * self.dilation[1]
        conv = q.op(f"{self.name}/depthwise_valid", "DEPTHWISE_CONV_2D", self.name, (s2b,), inner, weights,
                    BIAS * c, bias_zero, macs=done)
        return q.op(name, "BATCH_TO_SPACE_ND", self.name, (conv,), out,
                    consts=[i32(*self.dilation), i32(*sum(crops, ()))])


@dataclass(frozen=True)
class SeparableConv2D(_Kernels, _Windowed):
    filters: int = 1
    depth_multiplier: int = 1
    use_bias: bool = True
    keras: ClassVar[str] = "SeparableConv2D"
    weighted: ClassVar[bool] = True

    def output_shape(self, s):
        return (*self.spatial_out(s), self.filters)

    def params(self, s):
        cin, kh, kw, dm = s[2], *self.kernel, self.depth_multiplier
        return kh * kw * cin * dm + cin * dm * self.filters + (self.filters if self.use_bias else 0), 0

    def macs(self, s, out):
        cin, (kh, kw), dm = s[2], self.kernel, self.depth_multiplier
        return out[0] * out[1] * cin * dm * (kh * kw + self.filters)

    def keras_kwargs(self):
        return {"filters": self.filters, **self._conv_kwargs(),
                "depth_multiplier": self.depth_multiplier, "use_bias": self.use_bias,
                **self._kernel_kwargs("depthwise", "pointwise")}

    def lower(self, q, r, x):  # DEPTHWISE_CONV_2D, an int8 tensor, then a 1x1 CONV_2D
        (kh, kw), dm, cin = self.kernel, self.depth_multiplier, r.input[-1]
        pixels = r.output[0] * r.output[1]
        dw = self._lower_depthwise(q, f"{self.name}/depthwise", r, self._unpadded(q, x[0]), (*r.output[:2], cin * dm),
                                   kh * kw * cin * dm, True, pixels * cin * dm * kh * kw)
        return q.op(self.name, "CONV_2D", self.name, (dw,), r.output, cin * dm * self.filters, BIAS * self.filters,
                    not self.use_bias, macs=pixels * cin * dm * self.filters)


@dataclass(frozen=True)
class DepthwiseConv2D(_Kernels, _Windowed):
    depth_multiplier: int = 1
    use_bias: bool = True
    keras: ClassVar[str] = "DepthwiseConv2D"
    weighted: ClassVar[bool] = True

    def output_shape(self, s):
        return (*self.spatial_out(s), s[2] * self.depth_multiplier)

    def params(self, s):
        cout = s[2] * self.depth_multiplier
        return self.kernel[0] * self.kernel[1] * cout + (cout if self.use_bias else 0), 0

    def macs(self, s, out):
        return out[0] * out[1] * out[2] * self.kernel[0] * self.kernel[1]

    def keras_kwargs(self):
        return {**self._conv_kwargs(), "depth_multiplier": self.depth_multiplier,
                "use_bias": self.use_bias, **self._kernel_kwargs("depthwise")}

    def lower(self, q, r, x):
        c = r.input[-1] * self.depth_multiplier
        dilated = self.dilation != (1, 1)
        late_bias = dilated and self.use_bias  # dilated, added after the batch is turned back into space (int8)
        y = self._lower_depthwise(q, f"{self.name}/depthwise" if late_bias else self.name, r, self._unpadded(q, x[0]),
                                  r.output,
                                  self.kernel[0] * self.kernel[1] * c, dilated or not self.use_bias, r.macs)
        return q.op(self.name, "ADD", self.name, (y,), r.output, c) if late_bias else y


@dataclass(frozen=True)
class ChannelScale(DepthwiseConv2D):
    """A learned scale per channel, x * gamma (ConvNeXt's LayerScale): a 1x1 DepthwiseConv2D without bias whose
    kernel starts at `init`, so that the model stays plain Keras (a .keras file any Keras loads)."""

    kernel: Pair = (1, 1)
    use_bias: bool = False
    init: float = 1.0

    def keras_kwargs(self):
        return {**super().keras_kwargs(),
                "depthwise_initializer": {"class_name": "Constant", "config": {"value": self.init}}}


@dataclass(frozen=True)
class Conv2D(_Kernels, _Windowed):
    filters: int = 1
    use_bias: bool = True
    activation: str | None = None  # inside the layer (squeeze-and-excitation's convolutions)
    groups: int = 1  # each of `groups` filter groups sees only its own group of input channels
    keras: ClassVar[str] = "Conv2D"
    weighted: ClassVar[bool] = True

    def check_input(self, s):
        super().check_input(s)
        if self.groups > 1 and (s[2] % self.groups or self.filters % self.groups):
            raise ShapeError("groups", f"groups {self.groups} must divide both the input's {s[2]} channels and "
                             f"the {self.filters} filters")

    def output_shape(self, s):
        return (*self.spatial_out(s), self.filters)  # spatial_out checks the input, groups included

    def params(self, s):
        cin = s[2] // self.groups
        return self.kernel[0] * self.kernel[1] * cin * self.filters + (self.filters if self.use_bias else 0), 0

    def macs(self, s, out):
        return out[0] * out[1] * self.filters * (s[2] // self.groups) * self.kernel[0] * self.kernel[1]

    def keras_kwargs(self):
        kw = {"filters": self.filters, **self._conv_kwargs(), "use_bias": self.use_bias}
        if self.groups > 1:
            kw["groups"] = self.groups
        kw.update(self._kernel_kwargs("kernel"))
        return {**kw, "activation": self.activation} if self.activation else kw

    def lower(self, q, r, x):  # one CONV_2D, grouped ones with cin/groups input channels
        y = q.op(self.name, "CONV_2D", self.name, (self._unpadded(q, x[0]),), r.output,
                 self.kernel[0] * self.kernel[1] * r.input[-1] // self.groups * self.filters, BIAS * self.filters,
                 not self.use_bias, macs=r.macs)
        return lower_activation(q, self.name, self.activation or "linear", y, r.output, True)


@dataclass(frozen=True)
class _Pool(_Windowed):
    def output_shape(self, s):
        return (*self.spatial_out(s), s[2])

    def keras_kwargs(self):
        return {"pool_size": self.kernel, "strides": self.strides, "padding": self.padding}

    def lower(self, q, r, x):
        return q.op(self.name, self.int8_op, self.name, x, r.output)


@dataclass(frozen=True)
class MaxPooling2D(_Pool):
    keras: ClassVar[str] = "MaxPooling2D"
    int8_op: ClassVar[str] = "MAX_POOL_2D"


@dataclass(frozen=True)
class AveragePooling2D(_Pool):
    keras: ClassVar[str] = "AveragePooling2D"
    int8_op: ClassVar[str] = "AVERAGE_POOL_2D"


@dataclass(frozen=True)
class Dropout(Layer):
    rate: float = 0.0
    noise_shape: tuple[int, ...] | None = None  # per image, 1 where one draw is shared: (1, 1, 1) drops whole images
    keras: ClassVar[str] = "Dropout"

    def check_input(self, s):
        if self.noise_shape is None:
            return
        if len(self.noise_shape) != len(s) or any(n not in (1, d) for n, d in zip(self.noise_shape, s)):
            raise ShapeError("input_rank", f"dropout noise_shape {list(self.noise_shape)} does not fit its input "
                             f"{dims(s)}: one number per axis, each 1 (one draw shared along it) or the axis's size")

    def keras_kwargs(self):
        if self.noise_shape is None:
            return {"rate": self.rate}
        return {"rate": self.rate, "noise_shape": (None, *self.noise_shape)}

    def lower(self, q, r, x):  # gone at inference
        return x[0]


@dataclass(frozen=True)
class BatchNormalization(Layer):
    momentum: float = 0.99
    epsilon: float = 0.001
    gamma: str = "ones"  # the scale's initial value; "zeros" starts a residual body as nothing (the identity block)
    scale: bool = True  # a learned scale (gamma); Inception's batch norms have none
    center: bool = True  # a learned shift (beta)
    keras: ClassVar[str] = "BatchNormalization"

    def params(self, s):  # gamma and beta where learned / moving mean, moving variance
        return (int(self.scale) + int(self.center)) * s[-1], 2 * s[-1]

    def keras_kwargs(self):
        out = {"momentum": self.momentum, "epsilon": self.epsilon}
        if self.gamma != "ones":
            out["gamma_initializer"] = self.gamma
        if not self.scale:
            out["scale"] = False
        if not self.center:
            out["center"] = False
        return out

    def lower(self, q, r, x):
        if q.alone(r.inputs[0]) and q.writer(x[0]) in FOLDS_BN:  # folds into the convolution before it
            q.fold_bias(x[0])
            return x[0]
        c = r.output[-1]
        m = q.op(f"{self.name}/mul", "MUL", self.name, x, r.output, c)
        return q.op(self.name, "ADD", self.name, (m,), r.output, c)


def _per_channel(what: str, values, s) -> None:
    """A constant given per channel must have one value per channel of the input."""
    if isinstance(values, tuple) and len(values) != s[-1]:
        raise ShapeError("channels", f"{what} has {len(values)} values for an input of {s[-1]} channels ({dims(s)})")


@dataclass(frozen=True)
class Rescaling(Layer):
    """x * scale + offset, each one number or one per channel: how a model takes raw pixels (1/255, or 1/127.5 and -1).
    The converter turns it into MUL and ADD (measured), each with its constant."""

    scale: float | tuple[float, ...] = 1.0
    offset: float | tuple[float, ...] = 0.0
    keras: ClassVar[str] = "Rescaling"

    def output_shape(self, s):
        _per_channel("scale", self.scale, s)
        _per_channel("offset", self.offset, s)
        return s

    def keras_kwargs(self):
        return {"scale": list(self.scale) if isinstance(self.scale, tuple) else self.scale,
                "offset": list(self.offset) if isinstance(self.offset, tuple) else self.offset}

    def lower(self, q, r, x):
        c = len(self.scale) if isinstance(self.scale, tuple) else 1
        y = q.op(f"{self.name}/scale", "MUL", self.name, x, r.output, c)
        if not any(self.offset if isinstance(self.offset, tuple) else (self.offset,)):  # no offset: no ADD
            return y
        c = len(self.offset) if isinstance(self.offset, tuple) else 1
        return q.op(self.name, "ADD", self.name, (y,), r.output, c)


@dataclass(frozen=True)
class Normalization(Layer):
    """(x - mean) / sqrt(variance) per channel (Keras's Normalization over the last axis). With `mean` and
    `variance` written out they are constants; without, they are the layer's statistics (non-trainable weights: the
    mean and variance of each channel and a count), set by Keras's `adapt` or copied with the model's weights."""

    mean: float | tuple[float, ...] | None = None
    variance: float | tuple[float, ...] | None = None
    keras: ClassVar[str] = "Normalization"

    def output_shape(self, s):
        _per_channel("mean", self.mean, s)
        _per_channel("variance", self.variance, s)
        return s

    def params(self, s):
        return (0, 0) if self.mean is not None else (0, 2 * s[-1] + 1)

    def keras_kwargs(self):
        if self.mean is None:
            return {"axis": -1}
        n = next((len(v) for v in (self.mean, self.variance) if isinstance(v, tuple)), None)

        def value(v):  # Keras wants both of one shape: a number beside a list becomes one per channel
            return list(v) if isinstance(v, tuple) else ([v] * n if n else v)

        return {"axis": -1, "mean": value(self.mean), "variance": value(self.variance)}

    def lower(self, q, r, x):
        c = r.output[-1]
        y = q.op(f"{self.name}/centre", "SUB", self.name, x, r.output, c)
        return q.op(self.name, "MUL", self.name, (y,), r.output, c)


@dataclass(frozen=True)
class LayerNormalization(Layer):
    """Normalises each pixel over its channels (the last axis), with a per-channel scale and shift."""

    epsilon: float = 0.001
    keras: ClassVar[str] = "LayerNormalization"

    def params(self, s):
        return 2 * s[-1], 0  # gamma, beta

    def keras_kwargs(self):
        return {"epsilon": self.epsilon}

    def lower(self, q, r, x):
        """As the exporter writes it for the int8 converter (Keras's own form leaves a float NEG): mean, x - mean,
        its square's mean, + epsilon, RSQRT, then times gamma, plus beta. The axis (-1) and epsilon (one int8
        127) are constants shared by every layer norm."""
        name, shape = self.name, r.output
        c, one = shape[-1], (*shape[:-1], 1)
        mean = q.op(f"{name}/mean", "MEAN", name, x, one, consts=[i32(-1)])
        centred = q.op(f"{name}/centred", "SUB", name, (x[0], mean), shape)
        square = q.op(f"{name}/square", "MUL", name, (centred, centred), shape)
        var = q.op(f"{name}/variance", "MEAN", name, (square,), one, consts=[i32(-1)])
        var = q.op(f"{name}/variance_eps", "ADD", name, (var,), one, consts=[bytes([127])])  # epsilon, int8
        inv = q.op(f"{name}/rsqrt", "RSQRT", name, (var,), one)
        normed = q.op(f"{name}/normed", "MUL", name, (centred, inv), shape)
        scaled = q.op(f"{name}/gamma", "MUL", name, (normed,), shape, c)
        return q.op(name, "ADD", name, (scaled,), shape, c)


def _moved(span: Span, rows: int, cols: int) -> Span:
    """The span with output pixel 0 `rows`, `cols` input steps further on (negative: back); what it sees stays."""
    return Span(tuple(st + n * j for st, n, j in zip(span.start, (rows, cols), span.jump)), span.rf, span.jump)


@dataclass(frozen=True)
class ZeroPadding2D(Layer):
    """Zeros around the image: ((top, bottom), (left, right)). Output pixel 0 now sits `top` pixels before the
    input's first, so the span's start moves back; what a pixel sees does not grow."""

    padding: tuple[Pair, Pair] = ((0, 0), (0, 0))
    keras: ClassVar[str] = "ZeroPadding2D"
    spatial: ClassVar[bool] = True

    def output_shape(self, s):
        self.check_input(s)
        (t, b), (left, right) = self.padding
        return (s[0] + t + b, s[1] + left + right, s[2])

    def span(self, s, span):
        return _moved(span, -self.padding[0][0], -self.padding[1][0])

    def keras_kwargs(self):
        return {"padding": tuple(tuple(p) for p in self.padding)}

    def lower(self, q, r, x):  # a PAD with its [[0, 0], [top, bottom], [left, right], [0, 0]]
        (t, b), (left, right) = self.padding
        return q.op(self.name, "PAD", self.name, x, r.output, consts=[i32(0, 0, t, b, left, right, 0, 0)])


@dataclass(frozen=True)
class Cropping2D(Layer):
    """Rows and columns cut off: ((top, bottom), (left, right)). Output pixel 0 is input pixel (top, left)."""

    cropping: tuple[Pair, Pair] = ((0, 0), (0, 0))
    keras: ClassVar[str] = "Cropping2D"
    spatial: ClassVar[bool] = True

    def output_shape(self, s):
        self.check_input(s)
        (t, b), (left, right) = self.cropping
        out = (s[0] - t - b, s[1] - left - right)
        if min(out) < 1:
            raise ShapeError("spatial_size", f"cropping {t}+{b} rows and {left}+{right} columns of {dims(s[:2])} "
                             f"leaves {dims(out)}")
        return (*out, s[2])

    def span(self, s, span):
        return _moved(span, self.cropping[0][0], self.cropping[1][0])

    def keras_kwargs(self):
        return {"cropping": tuple(tuple(c) for c in self.cropping)}

    def lower(self, q, r, x):  # x[:, top:h-bottom, left:w-right, :]: a STRIDED_SLICE (an end of 0 is masked)
        (t, b), (left, right) = self.cropping
        return q.op(self.name, "STRIDED_SLICE", self.name, x, r.output,
                    consts=[i32(0, t, left, 0), i32(0, -b, -right, 0), i32(1, 1, 1, 1)])


@dataclass(frozen=True)
class ChannelSlice(Layer):
    """Channels [start, stop) of an image, as Keras's built-in Cropping2D does it when told the tensor is
    channels-first: it then crops the last two axes, width (by nothing) and channels. A plain layer that any
    Keras loads in safe mode, with no custom class; a channel group sees what its input sees."""

    start: int = 0
    stop: int = 1
    channels: int = 1  # of the input (Cropping2D is told what to cut from either end)
    keras: ClassVar[str] = "Cropping2D"
    spatial: ClassVar[bool] = True

    def output_shape(self, s):
        self.check_input(s)
        if s[2] != self.channels or not 0 <= self.start < self.stop <= s[2]:
            raise ShapeError("groups", f"cannot take channels {self.start}..{self.stop - 1} of {dims(s)}")
        return (s[0], s[1], self.stop - self.start)

    def keras_kwargs(self):
        return {"cropping": ((0, 0), (self.start, self.channels - self.stop)), "data_format": "channels_first"}

    def lower(self, q, r, x):  # x[..., start:stop]: a STRIDED_SLICE; a stop at the end is 0 (masked)
        rank = len(r.input) + 1
        zeros = (0,) * (rank - 1)
        return q.op(self.name, "STRIDED_SLICE", self.name, x, r.output,
                    consts=[i32(*zeros, self.start), i32(*zeros, self.stop - self.channels), i32(*(1,) * rank)])


@dataclass(frozen=True)
class Reshape(Layer):
    """A view of the same values in another shape (the first and last steps of a channel shuffle)."""

    target: tuple[int, ...] = ()
    keras: ClassVar[str] = "Reshape"

    def output_shape(self, s):
        if math.prod(s) != math.prod(self.target):
            raise ShapeError("groups", f"cannot view {dims(s)} as {dims(self.target)}")
        return tuple(self.target)

    def keras_kwargs(self):
        return {"target_shape": tuple(self.target)}

    def lower(self, q, r, x):
        return lower_reshape(q, self.name, x[0], r.input, r.output)


@dataclass(frozen=True)
class Permute(Layer):
    """Reorders the axes (1-based, batch excluded, as Keras counts them): a channel shuffle's transpose."""

    order: tuple[int, ...] = ()
    keras: ClassVar[str] = "Permute"

    def output_shape(self, s):
        return tuple(s[i - 1] for i in self.order)

    def keras_kwargs(self):
        return {"dims": tuple(self.order)}

    def lower(self, q, r, x):
        return q.op(self.name, "TRANSPOSE", self.name, x, r.output, consts=[i32(0, *self.order)])


@dataclass(frozen=True)
class Activation(Layer):
    function: str = "linear"
    keras: ClassVar[str] = "Activation"

    def keras_kwargs(self):
        return {"activation": self.function}

    def lower(self, q, r, x):
        return lower_activation(q, self.name, self.function, x[0], r.output,
                                q.alone(r.inputs[0]) and q.writer(x[0]) in FUSES)


@dataclass(frozen=True)
class LeakyReLU(Layer):
    """Keras's LeakyReLU layer, `x` above 0 and `negative_slope * x` below, at a slope of its own (the activation
    function `leaky_relu` has Keras's 0.2); int8: one LEAKY_RELU op, its slope in the op's options."""

    negative_slope: float = 0.3
    keras: ClassVar[str] = "LeakyReLU"

    def keras_kwargs(self):
        return {"negative_slope": self.negative_slope}

    def lower(self, q, r, x):
        return q.op(self.name, "LEAKY_RELU", self.name, x, r.output)


@dataclass(frozen=True)
class PReLU(Layer):
    """Keras's PReLU layer: `x` above 0, `alpha * x` below, alpha learned: one per value of its input, or shared
    along `shared_axes` (Keras's, 1-based, batch excluded: `(1, 2)` is one alpha per channel, the form small
    networks use), starting at `init`; int8: one PRELU op with alpha an int8 constant of its shape."""

    shared_axes: tuple[int, ...] = ()
    init: float = 0.0
    keras: ClassVar[str] = "PReLU"

    def check_input(self, s):
        if any(a > len(s) for a in self.shared_axes):
            raise ShapeError("input_rank", f"shared_axes {list(self.shared_axes)} on a {dims(s)} input (axes 1 to "
                             f"{len(s)}, batch excluded)")

    def alpha(self, s) -> tuple[int, ...]:
        return tuple(1 if i + 1 in self.shared_axes else v for i, v in enumerate(s))

    def params(self, s):
        return math.prod(self.alpha(s)), 0

    def keras_kwargs(self):
        out = {"shared_axes": list(self.shared_axes)} if self.shared_axes else {}
        if self.init != 0.0:
            out["alpha_initializer"] = {"class_name": "Constant", "config": {"value": self.init}}
        return out

    def lower(self, q, r, x):
        return q.op(self.name, "PRELU", self.name, x, r.output, math.prod(self.alpha(r.input)))


@dataclass(frozen=True)
class GlobalPooling(Layer):
    """One value per channel from the whole image: the classifier's pooling (a vector), or with `keepdims` a 1x1
    image (inside a squeeze-and-excitation, or before a head of 1x1 convolutions)."""

    keepdims: bool = False
    spatial: ClassVar[bool] = True
    int8_op: ClassVar[str]  # a reduction over the axes [1, 2]

    def output_shape(self, s):
        self.check_input(s)
        return (1, 1, s[2]) if self.keepdims else (s[2],)

    def keras_kwargs(self):
        return {"keepdims": True} if self.keepdims else {}

    def lower(self, q, r, x):
        return q.op(self.name, self.int8_op, self.name, x, r.output, consts=[i32(1, 2)])  # the axes


@dataclass(frozen=True)
class GlobalAveragePooling2D(GlobalPooling):
    keras: ClassVar[str] = "GlobalAveragePooling2D"
    int8_op: ClassVar[str] = "MEAN"


@dataclass(frozen=True)
class GlobalMaxPooling2D(GlobalPooling):
    keras: ClassVar[str] = "GlobalMaxPooling2D"
    int8_op: ClassVar[str] = "REDUCE_MAX"


@dataclass(frozen=True)
class Flatten(Layer):
    keras: ClassVar[str] = "Flatten"

    def output_shape(self, s):
        return (math.prod(s),)

    def lower(self, q, r, x):
        return lower_reshape(q, self.name, x[0], r.input, r.output)


@dataclass(frozen=True)
class Dense(_Kernels, Layer):
    units: int = 1
    use_bias: bool = True
    keras: ClassVar[str] = "Dense"
    weighted: ClassVar[bool] = True

    def output_shape(self, s):
        return (*s[:-1], self.units)  # Keras applies Dense to the last axis

    def params(self, s):
        return s[-1] * self.units + (self.units if self.use_bias else 0), 0

    def macs(self, s, out):
        n = 1
        for v in out:
            n *= v
        return n * s[-1]

    def keras_kwargs(self):
        return {"units": self.units, "use_bias": self.use_bias, **self._kernel_kwargs("kernel")}

    def lower(self, q, r, x):  # on an image: the exporter writes it as the 1x1 convolution it is
        if len(r.input) == 3:
            return q.op(self.name, "CONV_2D", self.name, x, r.output, r.input[-1] * self.units, BIAS * self.units,
                        not self.use_bias, macs=r.macs)
        read = q.unscale(x[0])
        return q.op(self.name, "FULLY_CONNECTED", self.name, (read,), r.output, r.input[-1] * self.units,
                    BIAS * self.units, not self.use_bias and read == x[0], macs=r.macs)



def _union(spans: list[Span]) -> Span:
    """The span of a merge: every input pixel that any of its inputs sees."""
    start = tuple(min(sp.start[a] for sp in spans) for a in range(2))
    end = tuple(max(sp.start[a] + sp.rf[a] for sp in spans) for a in range(2))
    return Span(start, tuple(e - st for e, st in zip(end, start)), spans[0].jump)


def _aligned(verb: str, spans: list[Span], names: list[str]) -> None:
    if any(sp.jump != spans[0].jump for sp in spans):
        raise ShapeError("merge_jump", f"cannot {verb} " + " and ".join(
            f"{n} (jump {dims(sp.jump)})" for n, sp in zip(names, spans)) +
            ": their pixels step over the input by different distances, so they do not line up")


def _same(verb: str, shapes: list[Shape], names: list[str], upto: int | None = None) -> None:
    if any(s[:upto] != shapes[0][:upto] or len(s) != len(shapes[0]) for s in shapes):
        what = "the shapes differ" if upto is None else "their sizes (all but the channels) differ"
        raise ShapeError("merge_shape", f"cannot {verb} " + " and ".join(
            f"{n} ({dims(s)})" for n, s in zip(names, shapes)) + ": " + what)


@dataclass(frozen=True)
class Add(Layer):
    """The merge of a residual or parallel block: equal shapes; the output sees the union of what its inputs
    see."""

    keras: ClassVar[str] = "Add"
    inputs: ClassVar[int] = 2

    def merge(self, shapes: list[Shape], spans: list[Span], names: list[str]) -> tuple[Shape, Span]:
        _same("add", shapes, names)
        _aligned("add", spans, names)
        return shapes[0], _union(spans)

    def lower(self, q, r, x):
        return q.op(self.name, "ADD", self.name, x, r.output)


@dataclass(frozen=True)
class Concatenate(Layer):
    """Branches side by side along the channels: equal sizes otherwise; the union of what they see."""

    keras: ClassVar[str] = "Concatenate"
    inputs: ClassVar[int] = 2

    def merge(self, shapes, spans, names):
        _same("concatenate", shapes, names, upto=-1)
        _aligned("concatenate", spans, names)
        return (*shapes[0][:-1], sum(s[-1] for s in shapes)), _union(spans)

    def keras_kwargs(self):
        return {"axis": -1}

    def lower(self, q, r, x):
        return q.op(self.name, "CONCATENATION", self.name, x, r.output)


@dataclass(frozen=True)
class Multiply(Layer):
    """Element-wise product: of equal shapes (a parallel block's gate; the union of what they see), or a tensor
    times a per-channel gate (1, 1, c) (squeeze-and-excitation: the output sees what the scaled tensor sees)."""

    keras: ClassVar[str] = "Multiply"
    inputs: ClassVar[int] = 2

    def merge(self, shapes, spans, names):
        x, gate = shapes[0], shapes[-1]
        if len(shapes) == 2 and len(x) == 3 and gate == (1, 1, x[2]) and x != gate:
            return x, spans[0]
        _same("multiply", shapes, names)
        _aligned("multiply", spans, names)
        return x, _union(spans)

    def lower(self, q, r, x):
        return q.op(self.name, "MUL", self.name, x, r.output)
