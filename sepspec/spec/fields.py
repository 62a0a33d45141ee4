"""The value types every part of a spec uses (strict, declared once): positive ints, `[h, w]` pairs, names,
activation functions, the input shape. pydantic reads these; the JSON Schema is generated from them."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, RootModel, Tag
from pydantic_core import PydanticCustomError

# a number is finite: `.nan` and `.inf` are refused wherever a spec, its train: section or a sweep file takes one
STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True, allow_inf_nan=False)

PosInt = Annotated[int, Field(gt=0)]
Bounds = Annotated[list[Union[int, float]], Field(min_length=2, max_length=2)]  # [low, high] of a range
NonNegFloat = Annotated[float, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
Rate = Annotated[float, Field(ge=0, lt=1)]
NAME_RE = r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$"  # valid for Keras (no '/'), readable in a summary
Name = Annotated[str, Field(pattern=NAME_RE)]
Padding = Literal["same", "valid"]
# keras.activations that apply to a tensor alone (not glu, which halves the channels, nor threshold, which takes
# arguments; celu and sparse_sigmoid wait for their int8 lowering to be measured)
ACTIVATIONS = ("relu", "relu6", "elu", "selu", "gelu", "silu", "swish", "sigmoid", "hard_sigmoid",
               "hard_swish", "hard_silu", "hard_tanh", "hard_shrink", "soft_shrink", "tanh_shrink", "tanh",
               "softmax", "log_softmax", "log_sigmoid", "softplus", "softsign", "sparse_plus", "sparsemax",
               "squareplus", "leaky_relu", "mish", "exponential", "linear")
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




NonNegInt = Annotated[int, Field(ge=0)]


def _edges(v):
    """Keras's ZeroPadding2D/Cropping2D forms: `1` means [[1, 1], [1, 1]]; `[h, w]` means [[h, h], [w, w]];
    `[[top, bottom], [left, right]]` is taken as written."""
    if _is_int(v):
        return [[v, v], [v, v]]
    if isinstance(v, list) and len(v) == 2 and all(_is_int(a) for a in v):
        return [[v[0], v[0]], [v[1], v[1]]]
    if isinstance(v, list):
        return v
    raise PydanticCustomError("edges_type", "expected an integer, [h, w] or [[top, bottom], [left, right]]")


Edges = Annotated[list[Annotated[list[NonNegInt], Field(min_length=2, max_length=2)]],
                  Field(min_length=2, max_length=2),
                  BeforeValidator(_edges, json_schema_input_type=Union[NonNegInt, list[NonNegInt],
                                                                       list[list[NonNegInt]]])]


# ------------------------------------------------------------------------------- a weighted layer's kernels
# Keras's initializers that take no argument, by the name `keras.initializers.get` knows them
PLAIN_INITS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
              "zeros", "ones")


class _Init(BaseModel):
    model_config = STRICT


class PlainInit(_Init):
    name: Literal[PLAIN_INITS]  # type: ignore[valid-type]


Penalty = Annotated[float, Field(ge=0)]  # an L1 / L2 factor: 0 for none


class VarianceScalingInit(_Init):
    """Keras's VarianceScaling (EfficientNet's kernels: `{name: variance_scaling, scale: 2.0, mode: fan_out}`)."""

    name: Literal["variance_scaling"]
    scale: PosFloat = 1.0
    mode: Literal["fan_in", "fan_out", "fan_avg"] = "fan_in"
    distribution: Literal["truncated_normal", "untruncated_normal", "uniform"] = "truncated_normal"


class NormalInit(_Init):
    name: Literal["random_normal", "truncated_normal"]
    mean: float = 0.0
    stddev: PosFloat = 0.05


class UniformInit(_Init):
    name: Literal["random_uniform"]
    minval: float = -0.05
    maxval: float = 0.05


class OrthogonalInit(_Init):
    name: Literal["orthogonal"]
    gain: PosFloat = 1.0


class ConstantInit(_Init):
    name: Literal["constant"]
    value: float = 0.0


_WITH_ARGS = (VarianceScalingInit, NormalInit, UniformInit, OrthogonalInit, ConstantInit)
_BY_NAME = {n: cls for cls in _WITH_ARGS for n in cls.model_fields["name"].annotation.__args__}
InitArgs = Annotated[Union[(PlainInit, *_WITH_ARGS)], Field(discriminator="name")]
INIT_NAMES = PLAIN_INITS + tuple(_BY_NAME)


# one error for either form, tagged by what was written
class KernelInit(RootModel):
    """How a kernel starts: an initializer's name (its arguments Keras's defaults), or a mapping of its name and
    arguments."""

    model_config = ConfigDict(strict=True, frozen=True)
    root: Annotated[Union[Annotated[Literal[INIT_NAMES], Tag("name")],  # type: ignore[valid-type]
                          Annotated[InitArgs, Tag("arguments")]],
                    Discriminator(lambda v: "arguments" if isinstance(v, (dict, BaseModel)) else "name")]


DEFAULT_INIT = "glorot_uniform"  # Keras's, for every kernel


def init_defaults(name: str) -> dict:
    """The arguments an initializer takes, with Keras's defaults (none for those without arguments)."""
    cls = _BY_NAME.get(name)
    return {k: f.default for k, f in cls.model_fields.items() if k != "name"} if cls else {}


def init_key(init: KernelInit | str) -> tuple:
    """A kernel initializer as the hashable form the layers keep: `()` for Keras's default, `(name,)` for a named
    one, `(name, (arg, value), ...)` with every argument written out for a mapping."""
    init = init.root if isinstance(init, KernelInit) else init
    if isinstance(init, str):  # a name: its arguments Keras's defaults, written out as a mapping's are
        init = _BY_NAME[init](name=init) if init in _BY_NAME else PlainInit(name=init)
    if init.name == DEFAULT_INIT:
        return ()
    return (init.name, *((k, getattr(init, k)) for k in type(init).model_fields if k != "name"))
