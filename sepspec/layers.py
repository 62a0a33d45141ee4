"""The vocabulary: one small class per Keras layer a spec can become.

Each class knows, from the same arguments, everything the rest of sepspec asks of a layer: its
output shape, its parameters (trainable / non-trainable, as Keras counts them), its receptive-field
step (effective kernel and stride), its multiply-accumulates, and the Keras class name and keyword
arguments it becomes. The analysis, the rules and the emitter all read these classes, so what is
checked and what is built cannot drift apart.

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


def dims(s) -> str:
    """A shape or pair as `32x32x3`."""
    return "x".join(str(v) for v in s)


def axes(pair) -> str:
    """A per-axis figure as one number when both axes agree (`3`), else `3x5`."""
    return str(pair[0]) if len(set(pair)) == 1 else dims(pair)


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

    def _conv_kwargs(self) -> dict:
        return {"kernel_size": self.kernel, "strides": self.strides, "padding": self.padding,
                "dilation_rate": self.dilation}


@dataclass(frozen=True)
class SeparableConv2D(_Windowed):
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
                "depth_multiplier": self.depth_multiplier, "use_bias": self.use_bias}


@dataclass(frozen=True)
class DepthwiseConv2D(_Windowed):
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
                "use_bias": self.use_bias}


@dataclass(frozen=True)
class Conv2D(_Windowed):
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
        return {**kw, "activation": self.activation} if self.activation else kw


@dataclass(frozen=True)
class _Pool(_Windowed):
    def output_shape(self, s):
        return (*self.spatial_out(s), s[2])

    def keras_kwargs(self):
        return {"pool_size": self.kernel, "strides": self.strides, "padding": self.padding}


@dataclass(frozen=True)
class MaxPooling2D(_Pool):
    keras: ClassVar[str] = "MaxPooling2D"


@dataclass(frozen=True)
class AveragePooling2D(_Pool):
    keras: ClassVar[str] = "AveragePooling2D"


@dataclass(frozen=True)
class Dropout(Layer):
    rate: float = 0.0
    keras: ClassVar[str] = "Dropout"

    def keras_kwargs(self):
        return {"rate": self.rate}


@dataclass(frozen=True)
class BatchNormalization(Layer):
    momentum: float = 0.99
    epsilon: float = 0.001
    gamma: str = "ones"  # the scale's initial value; "zeros" starts a residual body as nothing (the identity block)
    keras: ClassVar[str] = "BatchNormalization"

    def params(self, s):
        return 2 * s[-1], 2 * s[-1]  # gamma, beta / moving mean, moving variance

    def keras_kwargs(self):
        out = {"momentum": self.momentum, "epsilon": self.epsilon}
        if self.gamma != "ones":
            out["gamma_initializer"] = self.gamma
        return out


@dataclass(frozen=True)
class LayerNormalization(Layer):
    """Normalises each pixel over its channels (the last axis), with a per-channel scale and shift."""

    epsilon: float = 0.001
    keras: ClassVar[str] = "LayerNormalization"

    def params(self, s):
        return 2 * s[-1], 0  # gamma, beta

    def keras_kwargs(self):
        return {"epsilon": self.epsilon}


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


@dataclass(frozen=True)
class Permute(Layer):
    """Reorders the axes (1-based, batch excluded, as Keras counts them): a channel shuffle's transpose."""

    order: tuple[int, ...] = ()
    keras: ClassVar[str] = "Permute"

    def output_shape(self, s):
        return tuple(s[i - 1] for i in self.order)

    def keras_kwargs(self):
        return {"dims": tuple(self.order)}


@dataclass(frozen=True)
class Activation(Layer):
    function: str = "linear"
    keras: ClassVar[str] = "Activation"

    def keras_kwargs(self):
        return {"activation": self.function}


@dataclass(frozen=True)
class GlobalAveragePooling2D(Layer):
    keepdims: bool = False  # True inside squeeze-and-excitation: (1, 1, c), and not the classifier's pooling
    keras: ClassVar[str] = "GlobalAveragePooling2D"
    spatial: ClassVar[bool] = True

    def output_shape(self, s):
        self.check_input(s)
        return (1, 1, s[2]) if self.keepdims else (s[2],)

    def keras_kwargs(self):
        return {"keepdims": True} if self.keepdims else {}


@dataclass(frozen=True)
class Flatten(Layer):
    keras: ClassVar[str] = "Flatten"

    def output_shape(self, s):
        n = 1
        for v in s:
            n *= v
        return (n,)


@dataclass(frozen=True)
class Dense(Layer):
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
        return {"units": self.units, "use_bias": self.use_bias}



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
