"""The layer kinds a spec can write (`sepconv`, `maxpool`, `residual`, `mbconv`, `se`, ...): their arguments
as pydantic models, and their expansion into the primitive Keras layers of `sepspec.layers`.

This is the one place that knows what each kind becomes. A kind expands through a small graph-building
interface (`Builder`: add a layer, ask a tensor's shape or jump, stop with an error), which the analysis
implements; so a block whose form depends on shapes (`residual`'s `auto` shortcut, `mbconv`'s skip) decides
here, from the analysis's own shapes, and nothing downstream re-derives them.

Names: an entry's `name`, else `<kind>_<n>` (n counts the entries of that kind in the same list, from 1);
`repeat` copies are `<name>_2`, `<name>_3`, ...; a tail adds `_dropout`, `_bn`, `_<activation>`; a block's
layers are `<block name>_<part>`, where a body entry's part is its own name and a shortcut entry's is
`shortcut_<its name>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, Optional, Protocol, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, create_model

from .. import layers as L
from .fields import STRICT, Act, ActOrNone, Name, Padding, Pair, PosInt, Rate


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


# ----------------------------------------------------------------------------------- layer kinds
class Block(BaseModel):
    """Arguments every layer entry takes. `main` names the argument a scalar shorthand sets."""

    model_config = STRICT
    kind: ClassVar[str]
    main: ClassVar[Optional[str]] = None
    not_defaults: ClassVar[tuple[str, ...]] = ("name", "repeat")  # what `defaults.<kind>` may not set
    repeat: Annotated[int, Field(ge=1, le=100)] = 1
    name: Optional[Name] = None

    def primitives(self, name: str) -> list[L.Layer]:
        raise NotImplementedError

    def build(self, g: Builder, x: str, name: str, origin: Origin) -> str:
        """Add this entry's layers after tensor `x`; return the output tensor's name."""
        for layer in self.primitives(name):
            x = g.add(layer, (x,), origin)
        return x

    def children(self) -> list[tuple[str, list]]:
        """(argument, entries) of the layer lists this entry holds (a residual's body and shortcut)."""
        return []


Momentum = Annotated[float, Field(ge=0, le=1)]


class Tail(Block):
    """A weighted layer followed, in the seed's order, by optional Dropout, BatchNormalization, Activation."""

    dropout: Rate = 0.0
    norm: Literal["batch", "none"] = "none"
    bn_momentum: Momentum = 0.99  # of that batch norm's moving statistics (Keras's default)
    activation: ActOrNone = "none"

    def tail(self, name: str) -> list[L.Layer]:
        out: list[L.Layer] = []
        if self.dropout > 0:
            out.append(L.Dropout(f"{name}_dropout", rate=self.dropout))
        if self.norm == "batch":
            out.append(L.BatchNormalization(f"{name}_bn", momentum=self.bn_momentum))
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
                                  use_bias=self.bias), *self.tail(name)]


class Conv(Tail):
    kind = "conv"
    main = "filters"
    filters: PosInt
    kernel: Pair = 3
    stride: Pair = 1
    padding: Padding = "same"
    dilation: Pair = 1
    bias: bool = True

    def primitives(self, name):
        return [L.Conv2D(name, kernel=tuple(self.kernel), strides=tuple(self.stride), padding=self.padding,
                         dilation=tuple(self.dilation), filters=self.filters, use_bias=self.bias),
                *self.tail(name)]


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
                                  depth_multiplier=self.depth_multiplier, use_bias=self.bias),
                *self.tail(name)]


class Pointwise(Tail):
    """The 1x1 half of a separable convolution (a Keras Conv2D with kernel 1)."""

    kind = "pointwise"
    main = "filters"
    filters: PosInt
    bias: bool = True

    def primitives(self, name):
        return [L.Conv2D(name, kernel=(1, 1), filters=self.filters, use_bias=self.bias), *self.tail(name)]


class Dense(Tail):
    kind = "dense"
    main = "units"
    units: PosInt
    bias: bool = True

    def primitives(self, name):
        return [L.Dense(name, units=self.units, use_bias=self.bias), *self.tail(name)]


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
    kind = "dropout"
    main = "rate"
    rate: Rate

    def primitives(self, name):
        return [L.Dropout(name, rate=self.rate)]


class BatchNorm(Block):
    kind = "batchnorm"
    momentum: Momentum = 0.99
    epsilon: Annotated[float, Field(gt=0)] = 0.001

    def primitives(self, name):
        return [L.BatchNormalization(name, momentum=self.momentum, epsilon=self.epsilon)]


class ActivationBlock(Block):
    kind = "activation"
    main = "function"
    function: Act

    def primitives(self, name):
        return [L.Activation(name, function=self.function)]


class Gap(Block):
    kind = "gap"

    def primitives(self, name):
        return [L.GlobalAveragePooling2D(name)]


class FlattenBlock(Block):
    kind = "flatten"

    def primitives(self, name):
        return [L.Flatten(name)]


# ------------------------------------------------------------------------------------ blocks
Gate = Literal["sigmoid", "hard_sigmoid"]


def squeeze_excite(g: Builder, x: str, name: str, width: int, activation: str, gate: str, origin: Origin) -> str:
    """GlobalAveragePooling2D(keepdims) -> Conv2D(width, 1, activation) -> Conv2D(C, 1, gate) -> x * gate."""
    c = g.shape(x)[-1]
    p = g.add(L.GlobalAveragePooling2D(f"{name}_pool", keepdims=True), (x,), origin)
    s = g.add(L.Conv2D(f"{name}_squeeze", filters=width, activation=activation), (p,), origin)
    e = g.add(L.Conv2D(f"{name}_excite", filters=c, activation=gate), (s,), origin)
    return g.add(L.Multiply(f"{name}_scale"), (x, e), origin)


class SE(Block):
    """Squeeze-and-excitation of the current tensor (Hu et al.; as in MobileNetV3 and EfficientNet)."""

    kind = "se"
    main = "ratio"
    ratio: Annotated[float, Field(gt=0, le=1)]
    activation: Act = "relu"
    gate: Gate = "sigmoid"

    def build(self, g, x, name, origin):
        width = max(1, int(g.shape(x)[-1] * self.ratio))
        return squeeze_excite(g, x, name, width, self.activation, self.gate, origin)


class MBConv(Block):
    """Inverted residual (MobileNetV2; Keras's EfficientNet `block`): expand 1x1, depthwise, [SE], project 1x1."""

    kind = "mbconv"
    main = "filters"
    filters: PosInt
    expand: PosInt = 6
    kernel: Pair = 3
    stride: Pair = 1
    se: Annotated[float, Field(ge=0, le=1)] = 0.0
    activation: Act = "relu6"
    skip: bool = True
    bn_momentum: Momentum = 0.99  # of its three batch norms

    def build(self, g, x, name, origin):
        cin = g.shape(x)[-1]
        y = x
        if self.expand != 1:
            for layer in (L.Conv2D(f"{name}_expand", filters=cin * self.expand, use_bias=False),
                          L.BatchNormalization(f"{name}_expand_bn", momentum=self.bn_momentum),
                          L.Activation(f"{name}_expand_{self.activation}", function=self.activation)):
                y = g.add(layer, (y,), origin)
        for layer in (L.DepthwiseConv2D(f"{name}_dw", kernel=tuple(self.kernel), strides=tuple(self.stride),
                                        padding="same", use_bias=False),
                      L.BatchNormalization(f"{name}_dw_bn", momentum=self.bn_momentum),
                      L.Activation(f"{name}_dw_{self.activation}", function=self.activation)):
            y = g.add(layer, (y,), origin)
        if self.se > 0:
            y = squeeze_excite(g, y, f"{name}_se", max(1, int(cin * self.se)), self.activation, "sigmoid", origin)
        for layer in (L.Conv2D(f"{name}_project", filters=self.filters, use_bias=False),
                      L.BatchNormalization(f"{name}_project_bn", momentum=self.bn_momentum)):
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
        out = [("body", self.body)]
        if isinstance(self.shortcut, list):
            out.append(("shortcut", self.shortcut))
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


BLOCKS: dict[str, type[Block]] = {b.kind: b for b in (SepConv, Conv, Depthwise, Pointwise, MaxPool, AvgPool,
                                                     DropoutBlock, BatchNorm, ActivationBlock, Gap,
                                                     FlattenBlock, Dense, Residual, MBConv, SE)}
CONVOLUTIONS = ("sepconv", "conv", "depthwise", "pointwise")
ENTRY_LISTS = ("layers", "body", "shortcut")  # keys whose value is a list of layer entries


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
                        __doc__=f"A `{block.kind}` layer: `{block.kind}: <{block.main or 'mapping'}>` or a mapping of arguments.",
                        **{block.kind: (arg, ...)})


def _shorthand_type(block):
    if block.main is None:
        return Union[block, None]
    main = block.model_fields[block.main].annotation
    meta = block.model_fields[block.main].metadata
    return Union[Annotated[main, *meta] if meta else main, block]


def _entry_kind(v):
    if isinstance(v, dict) and len(v) == 1:
        return next(iter(v))
    if isinstance(v, BaseModel):
        return next(iter(type(v).model_fields))
    return None


ENTRY_MODELS = {k: _entry_model(b) for k, b in BLOCKS.items()}
LayerEntry = Annotated[Union[tuple(Annotated[m, Tag(k)] for k, m in ENTRY_MODELS.items())],
                       Discriminator(_entry_kind, custom_error_type="layer_entry",
                                     custom_error_message="expected a one-key mapping `kind: value` with a known kind")]
Residual.model_rebuild()
for _m in ENTRY_MODELS.values():
    _m.model_rebuild()


def entry(e) -> tuple[str, Block]:
    """(kind, arguments) of a validated layer entry."""
    kind = next(iter(type(e).model_fields))
    return kind, getattr(e, kind)


def expand_entries(g: Builder, entries: list, x: str, prefix: str, path: tuple) -> str:
    """Expand a list of layer entries after tensor `x` (names prefixed by `prefix`); the output tensor."""
    counts: dict[str, int] = {}
    for i, e in enumerate(entries):
        kind, block = entry(e)
        counts[kind] = counts.get(kind, 0) + 1
        base = prefix + (block.name or f"{kind}_{counts[kind]}")
        origin = Origin(path + (i,), kind, block)
        for r in range(1, block.repeat + 1):
            x = block.build(g, x, base if r == 1 else f"{base}_{r}", origin)
    return x


def walk(entries: list, path: tuple = ("layers",)):
    """Every entry, nested ones included, as an `Origin`, in the order they are written."""
    for i, e in enumerate(entries):
        kind, block = entry(e)
        yield Origin(path + (i,), kind, block)
        for arg, children in block.children():
            yield from walk(children, path + (i, kind, arg))


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
