"""The spec format: pydantic models of a spec file, and loading with `extends` and `defaults` resolved.

The models are the single source of the schema (types, defaults, constraints; ``extra="forbid"``,
strict types so ``filters: true`` is not 1). Loading happens in three steps on the positioned data
from `yamlsrc`, so every error can be reported where its value is written:

1. `extends` is resolved by deep-merging this file's mappings over the parent's (lists replace whole);
   each value keeps the position (and file) it was written at;
2. shorthands (``sepconv: 32``) become mappings and ``defaults.<kind>`` fills what a layer leaves out,
   with the default's own position;
3. the whole result is validated once by `Spec`, and pydantic's error locations become YAML positions.

`Spec.expand()` then turns layer entries into the Keras layers of `sepspec.layers`, with their names.
"""

from __future__ import annotations

import difflib
import os
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag,
                      ValidationError, create_model)
from pydantic_core import PydanticCustomError

from . import layers as L
from .diagnostics import Diagnostic, ordered
from .yamlsrc import Source, SpecError, read

STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True)

PosInt = Annotated[int, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
Rate = Annotated[float, Field(ge=0, lt=1)]
NAME_RE = r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$"  # valid for Keras (no '/'), readable in a summary
Name = Annotated[str, Field(pattern=NAME_RE)]
Padding = Literal["same", "valid"]
ACTIVATIONS = ("relu", "relu6", "elu", "selu", "gelu", "silu", "swish", "sigmoid", "hard_sigmoid",
               "tanh", "softmax", "log_softmax", "softplus", "softsign", "leaky_relu", "mish",
               "exponential", "linear")
Act = Literal[ACTIVATIONS]  # type: ignore[valid-type]
ActOrNone = Literal[ACTIVATIONS + ("none",)]  # type: ignore[valid-type]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pair(v):
    """`3` means `[3, 3]`; `[h, w]` is taken as written."""
    if _is_int(v):
        return [v, v]
    if isinstance(v, list):
        return v
    raise PydanticCustomError("pair_type", "expected an integer or a list [h, w]")


Pair = Annotated[list[PosInt], Field(min_length=2, max_length=2),
                 BeforeValidator(_pair, json_schema_input_type=Union[PosInt, list[PosInt]])]


def _input_shape(v):
    """`32` means `[32, 32, 3]`; `[h, w]` means `[h, w, 3]` (RGB)."""
    if _is_int(v):
        return [v, v, 3]
    if isinstance(v, list) and len(v) == 2:
        return [*v, 3]
    return v


InputShape = Annotated[list[Annotated[int, Field(gt=0, le=8192)]], Field(min_length=3, max_length=3),
                       BeforeValidator(_input_shape, json_schema_input_type=Union[PosInt, list[PosInt]])]


# ----------------------------------------------------------------------------------- layer kinds
class Block(BaseModel):
    """Arguments every layer entry takes. `main` names the argument a scalar shorthand sets."""

    model_config = STRICT
    kind: ClassVar[str]
    main: ClassVar[Optional[str]] = None
    repeat: Annotated[int, Field(ge=1, le=100)] = 1
    name: Optional[Name] = None

    def primitives(self, name: str) -> list[L.Layer]:
        raise NotImplementedError


class Tail(Block):
    """A weighted layer followed, in the seed's order, by optional Dropout, BatchNormalization, Activation."""

    dropout: Rate = 0.0
    norm: Literal["batch", "none"] = "none"
    activation: ActOrNone = "none"

    def tail(self, name: str) -> list[L.Layer]:
        out: list[L.Layer] = []
        if self.dropout > 0:
            out.append(L.Dropout(f"{name}_dropout", rate=self.dropout))
        if self.norm == "batch":
            out.append(L.BatchNormalization(f"{name}_bn"))
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
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.99
    epsilon: PosFloat = 0.001

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


BLOCKS: dict[str, type[Block]] = {b.kind: b for b in (SepConv, Conv, Depthwise, Pointwise, MaxPool, AvgPool,
                                                     DropoutBlock, BatchNorm, ActivationBlock, Gap,
                                                     FlattenBlock, Dense)}
CONVOLUTIONS = ("sepconv", "conv", "depthwise", "pointwise")


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


LayerEntry = Annotated[Union[tuple(Annotated[_entry_model(b), Tag(k)] for k, b in BLOCKS.items())],
                       Discriminator(_entry_kind, custom_error_type="layer_entry",
                                     custom_error_message="expected a one-key mapping `kind: value` with a known kind")]


def _partial(block: type[Block]):
    """The same arguments, all optional: what `defaults.<kind>` may set."""
    fields = {}
    for fname, fi in block.model_fields.items():
        if fname in ("name", "repeat"):
            continue
        t = Annotated[fi.annotation, *fi.metadata] if fi.metadata else fi.annotation
        fields[fname] = (Optional[t], None)
    return create_model(f"{block.__name__}Defaults", __config__=STRICT, **fields)


Defaults = create_model("Defaults", __config__=STRICT,
                        __doc__="Arguments that fill in what a layer of that kind leaves out.",
                        **{k: (Optional[_partial(b)], None) for k, b in BLOCKS.items()})


# ------------------------------------------------------------------------------------- the rest
class Rules(BaseModel):
    model_config = STRICT
    separable_only: bool = False
    max_params: PosInt = 100_000_000  # a ceiling even when a spec sets none: nothing absurd gets allocated
    max_macs: Optional[PosInt] = None
    min_receptive_field: Optional[PosInt] = None


def _named(default: str):
    """A tagged union on `name`, where a mapping without `name` means `default`."""
    return lambda v: (v.get("name", default) if isinstance(v, dict) else getattr(v, "name", None))


class Adam(BaseModel):
    model_config = STRICT
    name: Literal["adam"] = "adam"
    learning_rate: PosFloat = 0.01
    weight_decay: NonNegFloat = 0.0


class AdamW(BaseModel):
    model_config = STRICT
    name: Literal["adamw"] = "adamw"
    learning_rate: PosFloat = 0.001
    weight_decay: NonNegFloat = 0.004


class SGD(BaseModel):
    model_config = STRICT
    name: Literal["sgd"] = "sgd"
    learning_rate: PosFloat = 0.01
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = False
    weight_decay: NonNegFloat = 0.0


Optimizer = Annotated[Union[Annotated[Adam, Tag("adam")], Annotated[AdamW, Tag("adamw")],
                            Annotated[SGD, Tag("sgd")]], Discriminator(_named("adam"))]


class Constant(BaseModel):
    model_config = STRICT
    name: Literal["constant"] = "constant"


class InverseTime(BaseModel):
    """lr(e) = lr / (1 + decay_rate * e), e = 0 in the first epoch (the seed's schedule)."""

    model_config = STRICT
    name: Literal["inverse_time"] = "inverse_time"
    decay_rate: NonNegFloat = 0.319


class Step(BaseModel):
    model_config = STRICT
    name: Literal["step"] = "step"
    every: PosInt = 10  # epochs
    factor: Annotated[float, Field(gt=0, le=1)] = 0.1


class Cosine(BaseModel):
    model_config = STRICT
    name: Literal["cosine"] = "cosine"
    min_lr: NonNegFloat = 0.0
    warmup_epochs: Annotated[int, Field(ge=0)] = 0


class OneCycle(BaseModel):
    model_config = STRICT
    name: Literal["one_cycle"] = "one_cycle"
    peak_at: Annotated[float, Field(gt=0, lt=1)] = 0.25  # fraction of training at the peak
    start_factor: Annotated[float, Field(gt=0, le=1)] = 0.04  # lr starts at learning_rate * start_factor
    end_factor: Annotated[float, Field(ge=0, le=1)] = 0.0


class ReduceOnPlateau(BaseModel):
    model_config = STRICT
    name: Literal["reduce_on_plateau"] = "reduce_on_plateau"
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.5
    patience: PosInt = 3
    min_lr: NonNegFloat = 1e-5


Schedule = Annotated[Union[tuple(Annotated[c, Tag(c.model_fields["name"].default)]
                                 for c in (Constant, InverseTime, Step, Cosine, OneCycle, ReduceOnPlateau))],
                     Discriminator(_named("inverse_time"))]


class Augment(BaseModel):
    model_config = STRICT
    flip: bool = False  # random horizontal flip
    crop: Annotated[int, Field(ge=0, le=16)] = 0  # pad by this many pixels, then crop back at random
    cutout: Annotated[int, Field(ge=0, le=32)] = 0  # side of a random square set to zero


class Train(BaseModel):
    model_config = STRICT
    epochs: Annotated[int, Field(gt=0, le=10_000)] = 50
    batch_size: Annotated[int, Field(gt=0, le=65_536)] = 256
    optimizer: Optimizer = Adam()
    schedule: Schedule = InverseTime()
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    normalize: Literal["per_channel", "none"] = "per_channel"
    augment: Augment = Augment()
    validation: Union[Literal["test"], Annotated[float, Field(gt=0, lt=1)]] = "test"  # or a held-out fraction
    seed: Optional[Annotated[int, Field(ge=0, lt=2**32)]] = None  # numpy's and Keras's seeds are 32-bit


class Spec(BaseModel):
    """A whole spec, after `extends` is resolved."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True,
                              title="sepspec spec")
    extends: Optional[str] = Field(None, description="a parent spec, relative to this file")
    name: Name
    description: str = ""
    input: InputShape = Field(description="[height, width, channels]")
    classes: PosInt
    rules: Rules = Rules()
    defaults: Defaults = Defaults()  # type: ignore[valid-type]
    layers: Annotated[list[LayerEntry], Field(min_length=1)]
    train: Train = Train()

    def blocks(self) -> list[tuple[str, Block]]:
        """(kind, arguments) of each layer entry, in order."""
        out = []
        for entry in self.layers:
            kind = next(iter(type(entry).model_fields))
            out.append((kind, getattr(entry, kind)))
        return out

    def expand(self) -> list[tuple[L.Layer, int]]:
        """The Keras layers this spec becomes, each with the index of the entry it comes from.

        Names: an entry's `name`, else `<kind>_<n>` (n counts entries of that kind from 1). Copies
        made by `repeat` are `<name>_2`, `<name>_3`, ...; a block's extra layers add `_dropout`,
        `_bn` and `_<activation>` to the name of the layer they follow.
        """
        counts: dict[str, int] = {}
        out = []
        for i, (kind, block) in enumerate(self.blocks()):
            counts[kind] = counts.get(kind, 0) + 1
            base = block.name or f"{kind}_{counts[kind]}"
            for r in range(1, block.repeat + 1):
                out.extend((p, i) for p in block.primitives(base if r == 1 else f"{base}_{r}"))
        return out


# ------------------------------------------------------------------------------------- loading
def _all_paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _all_paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _all_paths(v, prefix + (i,))


def _deep_merge(parent, child):
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for k, v in child.items():
            out[k] = _deep_merge(parent[k], v) if k in parent else v
        return out
    return child


def _has(data, path) -> bool:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def resolve(path: str, display: str | None = None, _stack: tuple = ()) -> Source:
    """Read `path` and everything it `extends`, merged into one positioned `Source`."""
    src = read(path, display)
    data = src.data
    if not isinstance(data, dict):
        raise SpecError([Diagnostic.at(src.values.get(()), "SEP102", "schema",
                                       "a spec must be a mapping of keys (name, input, layers, ...)",
                                       file=display or path)])
    if "name" not in data:  # the name is not inherited: a variant is named after its own file
        data["name"] = os.path.splitext(os.path.basename(path))[0]
    parent_ref = data.pop("extends", None)
    if parent_ref is None:
        return src
    here = src.values[("extends",)]
    if not isinstance(parent_ref, str):
        raise SpecError([Diagnostic.at(here, "SEP102", "extends", "extends: expected a file name")])
    parent_path = os.path.normpath(os.path.join(os.path.dirname(path), parent_ref))
    parent_display = os.path.normpath(os.path.join(os.path.dirname(display or path), parent_ref))
    key = os.path.realpath(path)
    if os.path.realpath(parent_path) in _stack + (key,):
        raise SpecError([Diagnostic.at(here, "SEP106", "extends", f"extends cycle: {parent_ref} extends this file again")])
    try:
        parent = resolve(parent_path, parent_display, _stack + (key,))
    except OSError as e:
        raise SpecError([Diagnostic.at(here, "SEP105", "extends",
                                       f"cannot read parent spec {parent_ref!r}: {e.strerror or e}")]) from None
    merged = _deep_merge(parent.data, data)
    out = Source(merged)
    for p in _all_paths(merged):
        mine = _has(data, p)
        table_v, table_k = (src.values, src.keys) if mine else (parent.values, parent.keys)
        if p in table_v:
            out.values[p] = table_v[p]
        if p in table_k:
            out.keys[p] = table_k[p]
    return out


def _copy_positions(src: Source, frm: tuple, to: tuple) -> None:
    for table in (src.values, src.keys):
        for p, pos in list(table.items()):
            if p[:len(frm)] == frm:
                table[to + p[len(frm):]] = pos


def _normalise(src: Source) -> None:
    """Shorthands become mappings; `defaults.<kind>` fills what each layer leaves out (in place)."""
    data = src.data
    defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
    entries = data.get("layers")
    if not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        if not (isinstance(entry, dict) and len(entry) == 1):
            continue
        kind, value = next(iter(entry.items()))
        if kind not in BLOCKS:
            continue
        args = shorthand(kind, value)
        if not isinstance(args, dict):
            continue
        here = ("layers", i, kind)
        if args is not value and value is not None:
            src.values[here + (BLOCKS[kind].main,)] = src.values[here]
        fill = defaults.get(kind)
        if isinstance(fill, dict):
            args = dict(args)
            for k, v in fill.items():
                if k not in args and k not in ("name", "repeat"):
                    args[k] = v
                    _copy_positions(src, ("defaults", kind, k), here + (k,))
        entry[kind] = args


_CODES = {"extra_forbidden": "SEP101", "missing": "SEP104", "layer_entry": "SEP108",
          "union_tag_invalid": "SEP103", "literal_error": "SEP103", "string_pattern_mismatch": "SEP103",
          "greater_than": "SEP103", "greater_than_equal": "SEP103", "less_than": "SEP103",
          "less_than_equal": "SEP103", "too_short": "SEP103", "too_long": "SEP103"}
_VOCAB = sorted({f for m in (Spec, Rules, Train, Adam, AdamW, SGD, Augment, *BLOCKS.values(),
                             Constant, InverseTime, Step, Cosine, OneCycle, ReduceOnPlateau)
                 for f in m.model_fields} | set(BLOCKS))


def _data_path(data, loc) -> tuple:
    """Map a pydantic error location onto a path in the data, skipping union tags and member names."""
    path: tuple = ()
    for part in loc:
        if isinstance(data, dict) and part in data:
            data, path = data[part], path + (part,)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data, path = data[part], path + (part,)
    return path


def _did_you_mean(word: str, path: tuple) -> str | None:
    if len(path) == 3 and path[0] == "layers":
        choices = list(BLOCKS)  # an unknown kind
    elif len(path) == 4 and path[0] == "layers" and path[2] in BLOCKS:
        choices = list(BLOCKS[path[2]].model_fields)
    elif len(path) == 3 and path[0] == "defaults" and path[1] in BLOCKS:
        choices = list(BLOCKS[path[1]].model_fields)
    elif len(path) == 1:
        choices = list(Spec.model_fields)
    else:
        choices = _VOCAB
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _dotted(path) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s or "spec"


def _show(v) -> str:
    s = repr(v) if not isinstance(v, bool) else str(v).lower()
    return s if len(s) <= 40 else s[:37] + "..."


def _diagnostics(err: ValidationError, src: Source) -> list[Diagnostic]:
    out = []
    for e in err.errors():
        path = _data_path(src.data, e["loc"])
        etype = e["type"]
        code = _CODES.get(etype, "SEP102")
        hint = None
        layer = f"layers[{path[1]}]" if len(path) >= 2 and path[0] == "layers" else None
        if etype == "extra_forbidden":
            word = path[-1]
            if len(path) == 3 and path[0] == "layers":  # an unknown kind is reported by the entry
                continue
            msg = f"{_dotted(path)}: unknown key {word!r}"
            hint = _did_you_mean(word, path)
            pos = src.pos(path, key=True)
        elif etype == "layer_entry":
            entry = e["input"]
            if isinstance(entry, dict) and len(entry) == 1:
                kind = next(iter(entry))
                msg = f"{_dotted(path)}: unknown layer kind {kind!r}"
                hint = _did_you_mean(kind, path + (kind,)) or f"kinds: {', '.join(BLOCKS)}"
                pos = src.pos(path + (kind,), key=True)
            else:
                msg = f"{_dotted(path)}: {e['msg']}, got {_show(entry)}"
                pos = src.pos(path)
        elif etype == "union_tag_invalid":
            tag, expected = e["ctx"]["tag"], e["ctx"]["expected_tags"]
            msg = f"{_dotted(path)}: unknown name {tag!r} (expected one of {expected})"
            close = difflib.get_close_matches(tag, [t.strip(" '") for t in expected.split(",")], n=1)
            hint = f"did you mean {close[0]!r}?" if close else None
            pos = src.pos(path + ("name",))
        elif etype == "missing":
            missing = e["loc"][-1]
            msg = f"{_dotted(path)}: missing required key {missing!r}"
            pos = src.pos(path)
        else:
            msg = f"{_dotted(path)}: {e['msg'][0].lower() + e['msg'][1:]}"
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg += f", got {_show(e['input'])}"
            if etype == "bool_type" and isinstance(e.get("input"), str):
                hint = "YAML booleans are true/false"
            pos = src.pos(path)
        out.append(Diagnostic.at(pos, code, "schema", msg, layer=layer, hint=hint))
    return out


def load_source(src: Source) -> Spec:
    _normalise(src)
    try:
        spec = Spec.model_validate(src.data)
    except ValidationError as err:
        raise SpecError(ordered(_diagnostics(err, src))) from None
    _check_names(spec, src)
    return spec


def _check_names(spec: Spec, src: Source) -> None:
    seen: dict[str, int] = {}
    diags = []
    blocks = spec.blocks()
    for layer, i in spec.expand():
        if layer.name in seen or layer.name == "input":
            kind, block = blocks[i]
            pos = src.pos(("layers", i, kind, "name")) if block.name else src.pos(("layers", i))
            what = "the model's input" if layer.name == "input" else f"layers[{seen[layer.name]}]"
            diags.append(Diagnostic.at(pos, "SEP107", "names",
                                       f"layers[{i}]: layer name {layer.name!r} is already used by {what}",
                                       layer=layer.name, hint="give the layer a different `name:`"))
        seen.setdefault(layer.name, i)
    if diags:
        raise SpecError(ordered(diags))


def load(path: str, display: str | None = None) -> tuple[Spec, Source]:
    """Load a spec file: (validated Spec, positioned source). Raises SpecError or OSError."""
    src = resolve(path, display)
    return load_source(src), src

