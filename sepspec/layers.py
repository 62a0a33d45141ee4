"""The vocabulary: one small class per Keras layer a spec can become.

Each class knows, from the same arguments, everything the rest of sepspec asks of a layer: its
output shape, its parameters (trainable / non-trainable, as Keras counts them), its receptive-field
step (effective kernel and stride), its multiply-accumulates, and the Keras class name and keyword
arguments it becomes. The analysis, the rules and the emitter all read these classes, so what is
checked and what is built cannot drift apart.

Shapes exclude the batch dimension: ``(h, w, c)`` for images, ``(n,)`` after global pooling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

Shape = tuple[int, ...]
Pair = tuple[int, int]


class ShapeError(ValueError):
    """The layer cannot take this input (wrong rank, or a spatial size that drops below 1)."""


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
            raise ShapeError(f"{self.keras} needs an image input (h, w, c), got {_fmt(s)}")


def _fmt(s: Shape) -> str:
    return "x".join(str(v) for v in s)


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
                f"spatial size drops below 1: input {_fmt(s[:2])}, window {_fmt(self.k_eff())}, "
                f"stride {_fmt(self.strides)}, padding {self.padding} -> {_fmt(out)}")
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
    keras: ClassVar[str] = "Conv2D"
    weighted: ClassVar[bool] = True

    def output_shape(self, s):
        return (*self.spatial_out(s), self.filters)

    def params(self, s):
        return self.kernel[0] * self.kernel[1] * s[2] * self.filters + (self.filters if self.use_bias else 0), 0

    def macs(self, s, out):
        return out[0] * out[1] * self.filters * s[2] * self.kernel[0] * self.kernel[1]

    def keras_kwargs(self):
        return {"filters": self.filters, **self._conv_kwargs(), "use_bias": self.use_bias}


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
    keras: ClassVar[str] = "BatchNormalization"

    def params(self, s):
        return 2 * s[-1], 2 * s[-1]  # gamma, beta / moving mean, moving variance

    def keras_kwargs(self):
        return {"momentum": self.momentum, "epsilon": self.epsilon}


@dataclass(frozen=True)
class Activation(Layer):
    function: str = "linear"
    keras: ClassVar[str] = "Activation"

    def keras_kwargs(self):
        return {"activation": self.function}


@dataclass(frozen=True)
class GlobalAveragePooling2D(Layer):
    keras: ClassVar[str] = "GlobalAveragePooling2D"
    spatial: ClassVar[bool] = True

    def output_shape(self, s):
        self.check_input(s)
        return (s[2],)


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

