"""The layer kinds a spec can write (`sepconv`, `maxpool`, `residual`, `mbconv`, `se`, ...): their arguments
as pydantic models, and their expansion into the primitive Keras layers of `sepspec.layers`.

This is the one place that knows what each kind becomes. A kind expands through a small graph-building
interface (`Builder`: add a layer, ask a tensor's shape or jump, stop with an error), which the analysis
implements; so a block whose form depends on shapes (`residual`'s `auto` shortcut, `mbconv`'s skip) decides
here, from the analysis's own shapes, and nothing downstream re-derives them.

Names: an entry's `name`, else `<kind>_<n>` (n counts the entries of that kind in the same list, from 1);
`repeat` copies are `<name>_2`, `<name>_3`, ...; a tail adds `_dropout`, `_bn` or `_ln`, `_<activation>`; a
block's layers are `<block name>_<part>`, where a body entry's part is its own name, a shortcut entry's is
`shortcut_<its name>` and a parallel branch i's entry's is `b<i>_<its name>`.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, Optional, Protocol, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    create_model,
    model_validator,
)

from .. import layers as L
from ..diagnostics import dotted
from .fields import (
    DEFAULT_INIT,
    STRICT,
    Act,
    ActOrNone,
    Edges,
    KernelInit,
    Name,
    Padding,
    Pair,
    Penalty,
    PosInt,
    Rate,
    init_key,
)


@dataclass(frozen=True)
class Origin:
    """Where a layer comes from: the entry's path in the spec data (`("layers", 2, "residual", "body", 0)`),
    its kind and its arguments. Rules report at `path` (+ an argument)."""

    path: tuple
    kind: str
    block: "Block"


class Builder(Protocol):
    """What an expansion needs from the graph it builds (implemented by `sepspec.analysis`)."""

    def add(self, layer: L.Layer, inputs: tuple[str, ...], origin: Origin) -> str: ...
    def shape(self, tensor: str) -> tuple[int, ...]: ...
    def jump(self, tensor: str) -> tuple[int, int]: ...
    def fail(self, code: str, message: str, origin: Origin, at: tuple = (), layer: str | None = None): ...
    def has(self, tensor: str) -> bool: ...
    scope: "Scope | None"  # the entry names visible where the graph is being built (`expand_entries` sets it)


# ----------------------------------------------------------------------------------- layer kinds
class Block(BaseModel):
    """Arguments every layer entry takes. `main` names the argument a scalar shorthand sets."""

    model_config = STRICT
    kind: ClassVar[str]
    main: ClassVar[Optional[str]] = None
    not_defaults: ClassVar[tuple[str, ...]] = ("name", "repeat", "source")  # what `defaults.<kind>` may not set
    repeat: Annotated[int, Field(ge=1, le=100)] = 1
    name: Optional[Name] = None
    # `from: NAME`: the entry reads that tensor instead of the previous entry's output (`Scope`)
    source: Optional[Name] = Field(None, alias="from")

    def primitives(self, name: str) -> list[L.Layer]:
        raise NotImplementedError

    def build(self, g: Builder, x: str, name: str, origin: Origin) -> str:
        """Add this entry's layers after tensor `x`; return the output tensor's name."""
        for layer in self.primitives(name):
            x = g.add(layer, (x,), origin)
        return x

    def children(self) -> list[tuple[tuple, list]]:
        """(where, entries) of the layer lists this entry holds: `("body",)`, `("shortcut",)` for a residual,
        `("branches", i)` for a parallel block's branch i."""
        return []


Momentum = Annotated[float, Field(ge=0, le=1)]
# a batch norm's initial scale: zeros on the last one of a residual body starts the block as its shortcut
Gamma = Literal["ones", "zeros"]


class Kernels(BaseModel):
    """How an entry's kernels start (`kernel_init`, Keras's glorot_uniform unless written) and the L1 / L2 penalty
    each adds to the training loss (Keras's `kernel_regularizer`): on every kernel the entry compiles to (a
    separable convolution's depthwise and pointwise kernels, an `mbconv`'s three, an `se`'s two), never its biases
    or batch norms. The trainer's loss is Keras's, which adds the penalties."""

    model_config = STRICT
    kernel_init: KernelInit = KernelInit(DEFAULT_INIT)
    l1: Penalty = 0.0
    l2: Penalty = 0.0

    def kernels(self) -> dict:
        """The options as `sepspec.layers`'s weighted layers take them."""
        return {"kernel_init": init_key(self.kernel_init), "l1": self.l1, "l2": self.l2}


class Tail(Kernels, Block):
    """A weighted layer followed, in the seed's order, by optional Dropout, BatchNormalization, Activation."""

    dropout: Rate = 0.0
    norm: Literal["batch", "layer", "none"] = "none"  # layer: LayerNormalization over the channels
    bn_momentum: Momentum = 0.99  # of that batch norm's moving statistics (Keras's default)
    bn_gamma: Gamma = "ones"  # that batch norm's initial scale
    bn_scale: bool = True  # that batch norm learns a scale (Inception's do not)
    bn_center: bool = True  # ... and a shift
    bn_epsilon: Annotated[float, Field(gt=0)] = 0.001
    activation: ActOrNone = "none"

    def tail(self, name: str) -> list[L.Layer]:
        out: list[L.Layer] = []
        if self.dropout > 0:
            out.append(L.Dropout(f"{name}_dropout", rate=self.dropout))
        if self.norm == "batch":
            out.append(L.BatchNormalization(f"{name}_bn", momentum=self.bn_momentum, gamma=self.bn_gamma,
                                            epsilon=self.bn_epsilon, scale=self.bn_scale, center=self.bn_center))
        elif self.norm == "layer":
            out.append(L.LayerNormalization(f"{name}_ln"))
        if self.activation != "none":
            out.append(L.Activation(f"{name}_{self.activation}", function=self.activation))
        return out


class SepConv(Tail):
    kind = "sepconv"
    main = "filters"
    filters: PosInt
    kernel: Pair = 3
    stride: Pair = 1
    padding: Padding = "same"
    dilation: Pair = 1
    depth_multiplier: PosInt = 1
    bias: bool = True

    def primitives(self, name):
        return [L.SeparableConv2D(name, kernel=tuple(self.kernel), strides=tuple(self.stride),
                                  padding=self.padding, dilation=tuple(self.dilation),
                                  filters=self.filters, depth_multiplier=self.depth_multiplier,
                                  use_bias=self.bias, **self.kernels()), *self.tail(name)]


class Conv(Tail):
    kind = "conv"
    main = "filters"
    filters: PosInt
    kernel: Pair = 3
    stride: Pair = 1
    padding: Padding = "same"
    dilation: Pair = 1
    groups: PosInt = 1  # Keras Conv2D(groups=...): must divide the input's channels and the filters
    bias: bool = True

    def primitives(self, name):
        return [L.Conv2D(name, kernel=tuple(self.kernel), strides=tuple(self.stride), padding=self.padding,
                         dilation=tuple(self.dilation), filters=self.filters, use_bias=self.bias,
                         groups=self.groups, **self.kernels()), *self.tail(name)]


class Depthwise(Tail):
    kind = "depthwise"
    main = "kernel"
    kernel: Pair = 3
    stride: Pair = 1
    padding: Padding = "same"
    dilation: Pair = 1
    depth_multiplier: PosInt = 1
    bias: bool = True

    def primitives(self, name):
        return [L.DepthwiseConv2D(name, kernel=tuple(self.kernel), strides=tuple(self.stride),
                                  padding=self.padding, dilation=tuple(self.dilation),
                                  depth_multiplier=self.depth_multiplier, use_bias=self.bias, **self.kernels()),
                *self.tail(name)]


class Pointwise(Tail):
    """The 1x1 half of a separable convolution (a Keras Conv2D with kernel 1)."""

    kind = "pointwise"
    main = "filters"
    filters: PosInt
    groups: PosInt = 1  # a grouped 1x1 (ShuffleNet): must divide the input's channels and the filters
    bias: bool = True

    def primitives(self, name):
        return [L.Conv2D(name, kernel=(1, 1), filters=self.filters, use_bias=self.bias, groups=self.groups,
                         **self.kernels()), *self.tail(name)]


class Dense(Tail):
    kind = "dense"
    main = "units"
    units: PosInt
    bias: bool = True

    def primitives(self, name):
        return [L.Dense(name, units=self.units, use_bias=self.bias, **self.kernels()), *self.tail(name)]


class _Pool(Block):
    main = "size"
    size: Pair = 2
    stride: Optional[Pair] = None  # defaults to size
    padding: Padding = "valid"
    layer: ClassVar[type]

    def primitives(self, name):
        size = tuple(self.size)
        return [self.layer(name, kernel=size, strides=tuple(self.stride) if self.stride else size,
                           padding=self.padding)]


class MaxPool(_Pool):
    kind = "maxpool"
    layer = L.MaxPooling2D


class AvgPool(_Pool):
    kind = "avgpool"
    layer = L.AveragePooling2D


class DropoutBlock(Block):
    """Dropout; with `noise_shape` (Keras's, without the batch axis) one draw is shared along each axis given as 1:
    `[1, 1, 1]` drops whole images (EfficientNet's stochastic depth, before a residual's Add)."""

    kind = "dropout"
    main = "rate"
    rate: Rate
    noise_shape: Optional[Annotated[list[PosInt], Field(min_length=1, max_length=3)]] = None

    def primitives(self, name):
        return [L.Dropout(name, rate=self.rate,
                          noise_shape=tuple(self.noise_shape) if self.noise_shape is not None else None)]


class BatchNorm(Block):
    kind = "batchnorm"
    momentum: Momentum = 0.99
    epsilon: Annotated[float, Field(gt=0)] = 0.001
    gamma: Gamma = "ones"
    scale: bool = True  # a learned scale (gamma)
    center: bool = True  # a learned shift (beta)

    def primitives(self, name):
        return [L.BatchNormalization(name, momentum=self.momentum, epsilon=self.epsilon, gamma=self.gamma,
                                     scale=self.scale, center=self.center)]


Floats = Union[float, Annotated[list[float], Field(min_length=1)]]  # one number, or one per channel


def _floats(v):
    return tuple(v) if isinstance(v, list) else v


class Rescale(Block):
    """x * scale + offset (Keras's Rescaling): raw pixels into the range a model was trained on."""

    kind = "rescale"
    main = "scale"
    scale: Floats
    offset: Floats = 0.0

    def primitives(self, name):
        return [L.Rescaling(name, scale=_floats(self.scale), offset=_floats(self.offset))]


class Normalize(Block):
    """(x - mean) / sqrt(variance) per channel (Keras's Normalization): written out, or left to be the layer's
    statistics (non-trainable weights, set by Keras's `adapt` or copied with a model's weights)."""

    kind = "normalize"
    mean: Optional[Floats] = None
    variance: Optional[Floats] = None

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.mean is None) != (self.variance is None):
            raise ValueError("give `mean` and `variance` both (constants) or neither (the layer's statistics)")
        return self

    def primitives(self, name):
        return [L.Normalization(name, mean=_floats(self.mean), variance=_floats(self.variance))]


class LayerNorm(Block):
    """LayerNormalization over the channels of each pixel (as `norm: layer` in a tail)."""

    kind = "layernorm"
    epsilon: Annotated[float, Field(gt=0)] = 0.001

    def primitives(self, name):
        return [L.LayerNormalization(name, epsilon=self.epsilon)]


class Scale(Block):
    """A learned scale per channel, x * gamma (ConvNeXt's and CaiT's LayerScale): `init` is gamma's value at the
    start (1e-6 starts a residual branch as almost nothing). Compiles to a 1x1 DepthwiseConv2D without bias."""

    kind = "scale"
    main = "init"
    init: Annotated[float, Field(allow_inf_nan=False)] = 1.0

    def primitives(self, name):
        return [L.ChannelScale(name, init=self.init)]


class Shuffle(Block):
    """ShuffleNet's channel shuffle with `groups` groups: channel j of group i moves to position j*groups + i.
    Three parameter-free Keras layers: Reshape to (h, w, groups, c/groups), Permute, Reshape back."""

    kind = "shuffle"
    main = "groups"
    groups: Annotated[int, Field(ge=2)]

    def build(self, g, x, name, origin):
        s = g.shape(x)
        if len(s) != 3:
            g.fail("SEP206", f"{dotted(origin.path)} ({name}): a channel shuffle needs an image input (h, w, c), "
                   f"got {L.dims(s)}", origin, layer=name)
        h, w, c = s
        if c % self.groups:
            g.fail("SEP218", f"{dotted(origin.path)} ({name}): shuffle groups {self.groups} do not divide the "
                   f"input's {c} channels", origin, ("groups",), layer=name)
        x = g.add(L.Reshape(f"{name}_groups", target=(h, w, self.groups, c // self.groups)), (x,), origin)
        x = g.add(L.Permute(f"{name}_transpose", order=(1, 2, 4, 3)), (x,), origin)
        return g.add(L.Reshape(name, target=(h, w, c)), (x,), origin)


class ActivationBlock(Block):
    kind = "activation"
    main = "function"
    function: Act

    def primitives(self, name):
        return [L.Activation(name, function=self.function)]


class LeakyReluBlock(Block):
    """Keras's LeakyReLU layer with its own slope below zero (`leaky_relu: 0.1`); Keras's default is 0.3, the
    activation function's (`activation: leaky_relu`) 0.2."""

    kind = "leaky_relu"
    main = "negative_slope"
    negative_slope: Annotated[float, Field(ge=0)] = 0.3

    def primitives(self, name):
        return [L.LeakyReLU(name, negative_slope=self.negative_slope)]


class PReluBlock(Block):
    """Keras's PReLU layer, its slope below zero learned (`prelu: {shared_axes: [1, 2]}`: one per channel, as small
    networks use it; Keras's default, no shared axes, learns one per value of its input), starting at `init`."""

    kind = "prelu"
    main = "init"
    init: float = 0.0
    shared_axes: Annotated[list[Literal[1, 2, 3]], Field(max_length=3)] = []

    @model_validator(mode="after")
    def _distinct(self):
        if len(set(self.shared_axes)) != len(self.shared_axes):
            raise ValueError(f"shared_axes {self.shared_axes}: each axis once")
        return self

    def primitives(self, name):
        return [L.PReLU(name, shared_axes=tuple(sorted(self.shared_axes)), init=self.init)]


class Gap(Block):
    kind = "gap"
    keepdims: bool = False  # (1, 1, c) instead of (c,), as a head of 1x1 convolutions wants it

    def primitives(self, name):
        return [L.GlobalAveragePooling2D(name, keepdims=self.keepdims)]


class Gmp(Block):
    """Global max pooling: each channel's largest value over the image."""

    kind = "gmp"
    keepdims: bool = False

    def primitives(self, name):
        return [L.GlobalMaxPooling2D(name, keepdims=self.keepdims)]


class ReshapeBlock(Block):
    """Keras Reshape, for what networks do with it: an image of one pixel to its channels, the channels to an
    image of one pixel (a squeeze head of 1x1 convolutions), or anything to one axis. A reshape that moves pixels
    would leave no receptive field to speak of: refused (SEP222)."""

    kind = "reshape"
    main = "target"
    target: Annotated[list[PosInt], Field(min_length=1, max_length=3)]

    def build(self, g, x, name, origin):
        s, t = g.shape(x), tuple(self.target)
        size, want = math.prod(s), math.prod(t)
        if size != want:
            g.fail("SEP222", f"{dotted(origin.path)} ({name}): cannot view {L.dims(s)} ({size:,} values) as "
                   f"{L.dims(t)} ({want:,})", origin, ("target",), layer=name)
        def one_pixel(shape):
            return len(shape) == 1 or (len(shape) == 3 and tuple(shape[:2]) == (1, 1))

        if not (len(t) == 1 or (one_pixel(s) and one_pixel(t))):
            g.fail("SEP222", f"{dotted(origin.path)} ({name}): a reshape of {L.dims(s)} to {L.dims(t)} moves "
                   f"pixels; a spec reshapes one pixel's channels or flattens", origin, ("target",), layer=name)
        return g.add(L.Reshape(name, target=t), (x,), origin)


class ZeroPad(Block):
    """Keras ZeroPadding2D: zeros around the image, e.g. before a `valid` convolution as Keras's applications
    write an explicit padding."""

    kind = "zeropad"
    main = "padding"
    padding: Edges

    def primitives(self, name):
        return [L.ZeroPadding2D(name, padding=tuple(tuple(p) for p in self.padding))]


class Crop(Block):
    """Keras Cropping2D: rows and columns cut off the image's edges."""

    kind = "crop"
    main = "cropping"
    cropping: Edges

    def primitives(self, name):
        return [L.Cropping2D(name, cropping=tuple(tuple(c) for c in self.cropping))]


class FlattenBlock(Block):
    kind = "flatten"

    def primitives(self, name):
        return [L.Flatten(name)]


# ------------------------------------------------------------------------------------ blocks
Gate = Literal["sigmoid", "hard_sigmoid"]


def squeeze_excite(g: Builder, x: str, name: str, width: int, activation: str, gate: str, origin: Origin,
                   kernels: dict) -> str:
    """GlobalAveragePooling2D(keepdims) -> Conv2D(width, 1, activation) -> Conv2D(C, 1, gate) -> x * gate."""
    c = g.shape(x)[-1]
    p = g.add(L.GlobalAveragePooling2D(f"{name}_pool", keepdims=True), (x,), origin)
    s = g.add(L.Conv2D(f"{name}_squeeze", filters=width, activation=activation, **kernels), (p,), origin)
    e = g.add(L.Conv2D(f"{name}_excite", filters=c, activation=gate, **kernels), (s,), origin)
    return g.add(L.Multiply(f"{name}_scale"), (x, e), origin)


def divisible(v: float, divisor: int) -> int:
    """Keras's applications' `_make_divisible` (MobileNetV2/V3, EfficientNet): the nearest multiple of `divisor`,
    at least `divisor`, and not under 90% of `v`."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


Ratio = Annotated[float, Field(gt=0, le=1)]


class _Squeeze(BaseModel):
    """How wide a squeeze-and-excitation's bottleneck is: `filters`, or `ratio` of the channels (rounded down, or to
    a multiple of `divisor` as Keras's applications round)."""

    ratio: Optional[Ratio] = None
    filters: Optional[PosInt] = None
    divisor: Optional[PosInt] = None

    @model_validator(mode="after")
    def _one_width(self):
        if (self.ratio is None) == (self.filters is None):
            raise ValueError("give the squeeze's width as `ratio` or as `filters` (one of them)")
        if self.filters is not None and self.divisor is not None:
            raise ValueError("`divisor` rounds a `ratio`; `filters` is taken as written")
        return self

    def width(self, channels: int) -> int:
        if self.filters is not None:
            return self.filters
        if self.divisor is not None:
            return divisible(channels * self.ratio, self.divisor)
        return max(1, int(channels * self.ratio))


class SE(_Squeeze, Kernels, Block):
    """Squeeze-and-excitation of the current tensor (Hu et al.; as in MobileNetV3 and EfficientNet)."""

    kind = "se"
    main = "ratio"
    activation: Act = "relu"
    gate: Gate = "sigmoid"

    def build(self, g, x, name, origin):
        return squeeze_excite(g, x, name, self.width(g.shape(x)[-1]), self.activation, self.gate, origin,
                              self.kernels())


class SEOptions(_Squeeze):
    """An `mbconv`'s squeeze-and-excitation, written out: its width (`ratio` of the block's input channels, or
    `filters`), its activation (default: the block's) and gate."""

    model_config = STRICT
    activation: Optional[Act] = None
    gate: Gate = "sigmoid"


class MBConv(Kernels, Block):
    """Inverted residual (MobileNetV2; Keras's EfficientNet `block`): expand 1x1, depthwise, [SE], project 1x1."""

    kind = "mbconv"
    main = "filters"
    filters: PosInt
    expand: PosInt = 6
    expand_filters: Optional[PosInt] = None  # the expanded width as written (MobileNetV3's 72 from 16), for `expand`
    kernel: Pair = 3
    stride: Pair = 1
    # a ratio of the input's channels, or written out (one error for either form: tagged by what was written)
    se: Annotated[Union[Annotated[Annotated[float, Field(ge=0, le=1)], Tag("ratio")],
                        Annotated[SEOptions, Tag("options")]],
                  Discriminator(lambda v: "options" if isinstance(v, (dict, SEOptions)) else "ratio")] = 0.0
    activation: Act = "relu6"
    skip: bool = True
    bn_momentum: Momentum = 0.99  # of its three batch norms
    project_gamma: Gamma = "ones"  # the project batch norm's: zeros starts a block with a skip as its input

    @model_validator(mode="after")
    def _one_expansion(self):
        if {"expand", "expand_filters"} <= self.model_fields_set:
            raise ValueError("give the expansion as `expand` (a factor) or as `expand_filters` (a width), not both")
        return self

    def build(self, g, x, name, origin):
        cin, k = g.shape(x)[-1], self.kernels()
        y = x
        if self.expand_filters is not None or self.expand != 1:
            width = self.expand_filters or cin * self.expand
            for layer in (L.Conv2D(f"{name}_expand", filters=width, use_bias=False, **k),
                          L.BatchNormalization(f"{name}_expand_bn", momentum=self.bn_momentum),
                          L.Activation(f"{name}_expand_{self.activation}", function=self.activation)):
                y = g.add(layer, (y,), origin)
        for layer in (L.DepthwiseConv2D(f"{name}_dw", kernel=tuple(self.kernel), strides=tuple(self.stride),
                                        padding="same", use_bias=False, **k),
                      L.BatchNormalization(f"{name}_dw_bn", momentum=self.bn_momentum),
                      L.Activation(f"{name}_dw_{self.activation}", function=self.activation)):
            y = g.add(layer, (y,), origin)
        if isinstance(self.se, SEOptions):
            y = squeeze_excite(g, y, f"{name}_se", self.se.width(cin), self.se.activation or self.activation,
                               self.se.gate, origin, k)
        elif self.se > 0:
            y = squeeze_excite(g, y, f"{name}_se", max(1, int(cin * self.se)), self.activation, "sigmoid", origin,
                               k)
        for layer in (L.Conv2D(f"{name}_project", filters=self.filters, use_bias=False, **k),
                      L.BatchNormalization(f"{name}_project_bn", momentum=self.bn_momentum,
                                           gamma=self.project_gamma)):
            y = g.add(layer, (y,), origin)
        if self.skip and tuple(self.stride) == (1, 1) and cin == self.filters:
            y = g.add(L.Add(f"{name}_add"), (y, x), origin)
        return y


class Residual(Block):
    """y = add(body(x), shortcut(x)), then the optional activation."""

    kind = "residual"
    not_defaults = ("name", "repeat", "body")
    body: Annotated[list["LayerEntry"], Field(min_length=1)]
    shortcut: Union[Literal["auto", "identity", "project"], Annotated[list["LayerEntry"], Field(min_length=1)]] = "auto"
    activation: ActOrNone = "none"
    bn_momentum: Momentum = 0.99  # of the project shortcut's batch norm

    def children(self):
        out = [(("body",), self.body)]
        if isinstance(self.shortcut, list):
            out.append((("shortcut",), self.shortcut))
        return out

    def build(self, g, x, name, origin):
        here = origin.path + (self.kind,)
        y = expand_entries(g, self.body, x, f"{name}_", here + ("body",))
        if isinstance(self.shortcut, list):
            s = expand_entries(g, self.shortcut, x, f"{name}_shortcut_", here + ("shortcut",))
        else:
            mode = self.shortcut
            if mode == "auto":
                mode = "identity" if g.shape(x) == g.shape(y) else "project"
            if mode == "identity":
                if g.shape(x) != g.shape(y):
                    g.fail("SEP211", f"{name}: shortcut identity gives the block's input {L.dims(g.shape(x))}, "
                           f"the body gives {L.dims(g.shape(y))}; they cannot be added", origin, ("shortcut",),
                           layer=name)
                s = x
            else:
                s = self._project(g, x, y, name, origin)
        out = g.add(L.Add(f"{name}_add"), (y, s), origin)
        if self.activation != "none":
            out = g.add(L.Activation(f"{name}_{self.activation}", function=self.activation), (out,), origin)
        return out

    def _project(self, g, x, y, name, origin):
        sx, sy = g.shape(x), g.shape(y)
        at = ("shortcut",) if self.shortcut == "project" else ()
        if len(sx) != 3 or len(sy) != 3:
            g.fail("SEP213", f"{name}: a project shortcut needs images (h, w, c) on both sides, got input "
                   f"{L.dims(sx)} and body {L.dims(sy)}", origin, at, layer=name)
        strides = tuple(jy // jx for jx, jy in zip(g.jump(x), g.jump(y)))
        conv = L.Conv2D(f"{name}_project", filters=sy[-1], strides=strides, use_bias=False)
        made = conv.output_shape(sx)
        if made != sy:
            g.fail("SEP213", f"{name}: the project shortcut (1x1, stride {L.dims(strides)}) turns the input "
                   f"{L.dims(sx)} into {L.dims(made)}, the body gives {L.dims(sy)}", origin, at, layer=name)
        s = g.add(conv, (x,), origin)
        return g.add(L.BatchNormalization(f"{name}_project_bn", momentum=self.bn_momentum), (s,), origin)


class Parallel(Block):
    """Branches side by side on the block's input, then one merge (concat, add or multiply) and an optional
    activation. `split: channels` cuts the input's channels, in order, into one group per branch (`sizes`, or
    equal groups); `copy` gives every branch the whole input. An empty branch is the identity."""

    kind = "parallel"
    not_defaults = ("name", "repeat", "branches", "sizes")
    split: Literal["copy", "channels"] = "copy"
    sizes: Optional[list[PosInt]] = None  # only with split: channels
    branches: Annotated[list[list["LayerEntry"]], Field(min_length=2)]
    merge: Literal["concat", "add", "multiply"] = "concat"
    activation: ActOrNone = "none"

    def children(self):
        return [(("branches", i), b) for i, b in enumerate(self.branches)]

    def build(self, g, x, name, origin):
        here = origin.path + (self.kind,)
        inputs = self._split(g, x, name, origin)
        outs = [expand_entries(g, branch, t, f"{name}_b{i + 1}_", here + ("branches", i))
                for i, (branch, t) in enumerate(zip(self.branches, inputs))]
        merge = {"concat": L.Concatenate, "add": L.Add, "multiply": L.Multiply}[self.merge]
        y = g.add(merge(f"{name}_{self.merge}"), tuple(outs), origin)
        if self.activation != "none":
            y = g.add(L.Activation(f"{name}_{self.activation}", function=self.activation), (y,), origin)
        return y

    def _split(self, g, x, name, origin) -> list[str]:
        n = len(self.branches)
        if self.split == "copy":
            if self.sizes is not None:
                g.fail("SEP218", f"{dotted(origin.path)} ({name}): sizes are the channel groups of split: channels; "
                       f"this block copies its input to every branch", origin, ("sizes",), layer=name)
            return [x] * n
        s = g.shape(x)
        if len(s) != 3:
            g.fail("SEP206", f"{dotted(origin.path)} ({name}): split: channels needs an image input (h, w, c), "
                   f"got {L.dims(s)}", origin, layer=name)
        c = s[-1]
        sizes = self.sizes
        if sizes is None:
            if c % n:
                g.fail("SEP218", f"{dotted(origin.path)} ({name}): {n} equal channel groups do not divide the "
                       f"input's {c} channels", origin, ("split",), layer=name)
            sizes = [c // n] * n
        elif len(sizes) != n or sum(sizes) != c:
            g.fail("SEP218", f"{dotted(origin.path)} ({name}): sizes {list(sizes)} must be one group per branch "
                   f"({n}) summing to the input's {c} channels (they sum to {sum(sizes)})", origin, ("sizes",),
                   layer=name)
        out, start = [], 0
        for i, size in enumerate(sizes):
            out.append(g.add(L.ChannelSlice(f"{name}_split_{i + 1}", start=start, stop=start + size, channels=c),
                             (x,), origin))
            start += size
        return out


class _Merge(Block):
    """A merge of two or more named tensors (`Scope`): Keras's Add, Multiply or Concatenate over the channels."""

    main = "inputs"
    inputs: Annotated[list[Name], Field(min_length=2)]
    layer: ClassVar[type]

    def build(self, g, x, name, origin):
        tensors = tuple(resolve(g, t, origin, ("inputs", i)) for i, t in enumerate(self.inputs))
        return g.add(self.layer(name), tensors, origin)


class AddMerge(_Merge):
    kind = "add"
    layer = L.Add


class MultiplyMerge(_Merge):
    kind = "multiply"
    layer = L.Multiply


class ConcatMerge(_Merge):
    kind = "concat"
    layer = L.Concatenate


class Use(Block):
    """A use of a kind of your own (`blocks:` in the spec): the block's body with the use's arguments written in,
    expanded where the spec is loaded (`sepspec.spec.blocks`). Its layers are named `<use name>_<body entry>`, as a
    residual's body; `repeat` repeats the whole body. The arguments stay beside the body (extra keys), so a dump
    reads as the use was written, with the body it expanded to."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, validate_default=True)
    kind = "use"
    body: Annotated[list["LayerEntry"], Field(min_length=1)]

    def children(self):
        return [(("body",), self.body)]

    def build(self, g, x, name, origin):
        return expand_entries(g, self.body, x, f"{name}_", origin.path + (origin.kind, "body"))


# the kinds of your own that the spec being validated defines (`Spec` sets it around its validation)
USER_KINDS: ContextVar[frozenset] = ContextVar("USER_KINDS", default=frozenset())


class UseEntry(RootModel[dict[str, Use]]):
    """A use of a kind of your own: `<kind>: <arguments>` with `<kind>` defined under `blocks:`."""

    model_config = ConfigDict(strict=True, frozen=True)


BLOCKS: dict[str, type[Block]] = {b.kind: b for b in (
    SepConv, Conv, Depthwise, Pointwise, MaxPool, AvgPool, DropoutBlock, BatchNorm, LayerNorm, Scale, Rescale,
    Normalize, ActivationBlock, LeakyReluBlock, PReluBlock, Gap, Gmp,
    ZeroPad, Crop, ReshapeBlock, FlattenBlock, Dense, Shuffle, Residual, MBConv, SE, Parallel, AddMerge, MultiplyMerge,
    ConcatMerge)}
CONVOLUTIONS = ("sepconv", "conv", "depthwise", "pointwise")


def nested_lists(args: dict):
    """(where, value) of every list of layer entries in an entry's raw (unvalidated) arguments: a residual's
    `body` and `shortcut`, each of a parallel block's `branches`."""
    for key in ("body", "shortcut"):
        if key in args:
            yield (key,), args[key]
    if isinstance(args.get("branches"), list):
        for i, branch in enumerate(args["branches"]):
            yield ("branches", i), branch


def is_entry(path: tuple) -> bool:
    """Does `path` name a layer entry: an item of `layers`, of a residual's `body`/`shortcut`, or of a parallel
    block's branch (`(..., "parallel", "branches", 1, 0)`)?"""
    if len(path) < 2 or not isinstance(path[-1], int):
        return False
    if path[-2] == "layers":
        return len(path) == 2
    if path[-2] in ("body", "shortcut"):  # a built-in block's, a use's (of a kind of your own) or a block's own body
        return len(path) >= 3 and isinstance(path[-3], str)
    return isinstance(path[-2], int) and len(path) >= 4 and path[-3] == "branches" and path[-4] == "parallel"


def shorthand(kind: str, value):
    """`sepconv: 32` -> `{filters: 32}`; `gap:` (empty) -> `{}`; a mapping is taken as written."""
    block = BLOCKS.get(kind)
    if value is None:
        return {}
    if isinstance(value, dict) or block is None or block.main is None:
        return value
    return {block.main: value}


def _entry_model(block: type[Block]):
    arg = Annotated[block, BeforeValidator(lambda v, k=block.kind: shorthand(k, v),
                                           json_schema_input_type=_shorthand_type(block))]
    return create_model(f"{block.__name__}Entry", __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
                        __doc__=f"A `{block.kind}` layer: `{block.kind}: <{block.main or 'mapping'}>` or a mapping "
                                "of arguments.",
                        **{block.kind: (arg, ...)})


def _shorthand_type(block):
    if block.main is None:
        return Union[block, None]
    main = block.model_fields[block.main].annotation
    meta = block.model_fields[block.main].metadata
    return Union[Annotated[main, *meta] if meta else main, block]


def _entry_kind(v):
    if isinstance(v, dict) and len(v) == 1:
        kind = next(iter(v))
        return "use" if kind in USER_KINDS.get() and kind not in BLOCKS else kind
    if isinstance(v, UseEntry):
        return "use"
    if isinstance(v, BaseModel):
        return next(iter(type(v).model_fields))
    return None


ENTRY_MODELS = {k: _entry_model(b) for k, b in BLOCKS.items()}
LayerEntry = Annotated[Union[tuple(Annotated[m, Tag(k)] for k, m in ENTRY_MODELS.items())
                             + (Annotated[UseEntry, Tag("use")],)],
                       Discriminator(_entry_kind, custom_error_type="layer_entry",
                                     custom_error_message="expected a one-key mapping `kind: value` with a known kind")]
Residual.model_rebuild()
Parallel.model_rebuild()
Use.model_rebuild()
UseEntry.model_rebuild()
for _m in ENTRY_MODELS.values():
    _m.model_rebuild()


def entry(e) -> tuple[str, Block]:
    """(kind, arguments) of a validated layer entry."""
    if isinstance(e, UseEntry):
        return next(iter(e.root.items()))
    kind = next(iter(type(e).model_fields))
    return kind, getattr(e, kind)


class Scope:
    """The names an entry may read (`from:`, a merge's inputs) where it stands: the entries written before it in its
    own list and in every enclosing list (each by its name as written: `name:` or the generated `<kind>_<n>`; a
    repeated entry by its name for its last copy and `<name>_<r>` for copy r), and `input`, the list's input (the
    model's input at the top, a block's input inside its body). Any earlier Keras layer is also readable by its full
    name (`Builder.has`)."""

    def __init__(self, parent: "Scope | None", list_input: str):
        self.parent, self.names = parent, {"input": list_input}

    def find(self, name: str) -> str | None:
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def visible(self) -> list[str]:
        out, scope = [], self
        while scope is not None:
            out += [n for n in scope.names if n not in out]
            scope = scope.parent
        return out


def resolve(g: Builder, name: str, origin: Origin, at: tuple) -> str:
    """The tensor `name` reads where the graph is being built; SEP220 at `at` if none."""
    found = g.scope.find(name) if g.scope is not None else None
    if found is not None:
        return found
    if g.has(name):
        return name
    import difflib

    close = difflib.get_close_matches(name, g.scope.visible() if g.scope else [], n=1)
    g.fail("SEP220", f"{dotted(origin.path)}: no tensor named {name!r} before this entry"
           + (f"; did you mean {close[0]!r}?" if close else ""), origin, at)


def expand_entries(g: Builder, entries: list, x: str, prefix: str, path: tuple) -> str:
    """Expand a list of layer entries after tensor `x` (names prefixed by `prefix`); the output tensor. The list's
    names are visible to its later entries and to the lists nested in them (`Scope`)."""
    counts: dict[str, int] = {}
    outer = g.scope
    scope = g.scope = Scope(outer, x)
    try:
        for i, e in enumerate(entries):
            kind, block = entry(e)
            counts[kind] = counts.get(kind, 0) + 1
            own = block.name or f"{kind}_{counts[kind]}"
            base = prefix + own
            origin = Origin(path + (i,), kind, block)
            if block.source is not None:
                x = resolve(g, block.source, origin, ("from",))
            for r in range(1, block.repeat + 1):
                x = block.build(g, x, base if r == 1 else f"{base}_{r}", origin)
                if r > 1:
                    scope.names[f"{own}_{r}"] = x
            scope.names[own] = x
        return x
    finally:
        g.scope = outer


def walk(entries: list, path: tuple = ("layers",)):
    """Every entry, nested ones included, as an `Origin`, in the order they are written."""
    for i, e in enumerate(entries):
        kind, block = entry(e)
        yield Origin(path + (i,), kind, block)
        for where, children in block.children():
            yield from walk(children, path + (i, kind, *where))


def _partial(block: type[Block]):
    """The same arguments, all optional: what `defaults.<kind>` may set."""
    fields = {}
    for fname, fi in block.model_fields.items():
        if fname in block.not_defaults:
            continue
        t = Annotated[fi.annotation, *fi.metadata] if fi.metadata else fi.annotation
        fields[fname] = (Optional[t], None)
    return create_model(f"{block.__name__}Defaults", __config__=STRICT, **fields)


Defaults = create_model("Defaults", __config__=STRICT,
                        __doc__="Arguments that fill in what a layer of that kind leaves out.",
                        **{k: (Optional[_partial(b)], None) for k, b in BLOCKS.items()})
