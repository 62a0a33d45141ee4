"""A Keras layer's options beyond its shape, read for `sepspec import`: how its weights start and what they add to
the loss. The spec keeps a weighted layer's kernel initializer and L1 / L2 penalty (`kernel_init`, `l1`, `l2`) and
a batch norm's initial scale of ones or zeros; every other option that is not Keras's default (a bias initializer,
a constraint, an activity regularizer, a batch norm's renormalisation, ...) has no place in a spec, so the import
names it and refuses, rather than write a network that computes the same and trains differently. An initializer's
own `seed` is not kept: the trainer seeds every initializer from the run's seed."""

from __future__ import annotations

from ..layers import INIT_CLASSES
from ..spec.fields import init_defaults

# the spec's initializer names by Keras's class names (`spec/fields.py` knows their arguments and defaults); Keras 3
# configures Orthogonal under its class's own name
INITIALIZERS = {cls: name for name, cls in INIT_CLASSES.items()} | {"OrthogonalInitializer": "orthogonal"}
IGNORED = {"seed"}  # an initializer's own seed (the run's seeds them all)
# the kernels of each weighted layer, by the prefix of its Keras options
KERNELS = {"Conv2D": ("kernel",), "Dense": ("kernel",), "DepthwiseConv2D": ("depthwise",),
           "SeparableConv2D": ("depthwise", "pointwise")}
# options no spec entry writes, and the value each must have (Keras's default); an initializer by its spec name
FIXED = {
    **{k: {"data_format": "channels_last", "bias_initializer": "zeros", "bias_regularizer": None,
           "activity_regularizer": None, "bias_constraint": None, "lora_rank": None,
           **{f"{p}_constraint": None for p in KERNELS[k]}} for k in KERNELS},
    "BatchNormalization": {"beta_initializer": "zeros", "moving_mean_initializer": "zeros",
                           "moving_variance_initializer": "ones", "beta_regularizer": None,
                           "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None,
                           "renorm": False, "synchronized": False},
    "LayerNormalization": {"beta_initializer": "zeros", "gamma_initializer": "ones", "beta_regularizer": None,
                           "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None,
                           "rms_scaling": False},
    "PReLU": {"alpha_regularizer": None, "alpha_constraint": None},
    # the spec's images are channels-last (a Cropping2D told otherwise is a channel group: `layerread`)
    **{k: {"data_format": "channels_last"} for k in ("MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                                                     "ZeroPadding2D", "Flatten", "SpatialDropout2D",
                                                     "GlobalMaxPooling2D")},
}


class Unkept(ValueError):
    """An option of a layer that no spec entry writes (its message says which and what it is)."""


def number(v) -> bool:
    """A number in a layer's configuration (not a bool, which Python counts as one)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def initializer(value) -> str | dict | None:
    """A Keras initializer (its serialised form, or a name) as a spec writes it: a name where its arguments are
    Keras's defaults, else a mapping of its name and the arguments that are not; None for Keras's default,
    glorot_uniform. Unkept for one a spec cannot write."""
    if isinstance(value, str):  # a name, as a layer's configuration may hold one
        value = {"class_name": INIT_CLASSES.get(value, value), "config": {}}
    if not isinstance(value, dict) or value.get("class_name") not in INITIALIZERS or \
            value.get("module", "keras.initializers") != "keras.initializers":
        raise Unkept(f"initializer {short(value)}")
    name = INITIALIZERS[value["class_name"]]
    defaults = init_defaults(name)
    config = dict(value.get("config") or {})
    args = {}
    for k, v in config.items():
        if k in IGNORED or (k in ("input_axes", "output_axes") and v is None):
            continue
        if k not in defaults or not (number(v) or isinstance(v, str)):
            raise Unkept(f"initializer {name} with {k}={v!r}")
        if v != defaults[k]:
            args[k] = float(v) if number(v) else v
    if name == "glorot_uniform":
        return None
    if name == "constant" and args.get("value", 0.0) in (0.0, 1.0):  # Constant(0.0) is zeros (EfficientNetV2's bias)
        return "ones" if args else "zeros"
    return {"name": name, **args} if args else name


def regularizer(value) -> dict:
    """A Keras kernel regularizer as the spec's `l1` / `l2` (only those above 0); Unkept for any other kind."""
    if value is None:
        return {}
    if not isinstance(value, dict) or value.get("class_name") not in ("L1", "L2", "L1L2") or \
            value.get("module", "keras.regularizers") != "keras.regularizers":
        raise Unkept(f"regularizer {short(value)}")
    config = value.get("config") or {}
    return {k: float32_decimal(config[k]) for k in ("l1", "l2") if number(config.get(k)) and float(config[k]) > 0}


def float32_decimal(v) -> float:
    """Keras keeps a penalty or a learning rate as a float32 (`l2(1e-4)` reads back 9.99999974e-05): its shortest
    decimal, which Keras turns into the very same float32."""
    import numpy as np

    return float(repr(np.float32(v)).removeprefix("np.float32(").removesuffix(")"))


def kernel_args(layer) -> dict:
    """The spec arguments `kernel_init`, `l1`, `l2` of a weighted layer, those that are not Keras's defaults; Unkept
    where its kernels (a separable convolution's two) start or are penalised differently."""
    c = layer.get_config()
    found = []
    for p in KERNELS[type(layer).__name__]:
        init = _named(c, f"{p}_initializer")
        try:
            penalty = regularizer(c.get(f"{p}_regularizer"))
        except Unkept:
            raise Unkept(f"{p}_regularizer={short(c.get(f'{p}_regularizer'))}") from None
        found.append({**({"kernel_init": init} if init != "glorot_uniform" else {}), **penalty})
    if any(f != found[0] for f in found[1:]):
        raise Unkept("depthwise and pointwise kernels that start or are penalised differently (an entry's "
                     "kernel_init, l1 and l2 are both kernels')")
    return found[0]


def check_kept(layer, kind: str | None = None) -> None:
    """Unkept where `layer` has an option no spec entry writes (not Keras's default); `kind` the entry it becomes
    (a `scale`: its kernel starts at its constant, and it takes no penalty)."""
    cls = type(layer).__name__
    if getattr(layer, "weights", None) and not getattr(layer, "trainable", True):
        raise Unkept("trainable=False: frozen, and a spec's layers all train")
    fixed = FIXED.get(cls)
    if fixed is None:
        return
    c = layer.get_config()
    for key, want in fixed.items():
        if (_named(c, key) if key.endswith("_initializer") and key in c else c.get(key, want)) != want:
            raise Unkept(f"{key}={short(c.get(key))}")
    if cls == "BatchNormalization" and gamma(layer) not in ("ones", "zeros"):
        raise Unkept(f"gamma_initializer={short(c.get('gamma_initializer'))}")
    if cls == "PReLU":
        alpha(layer)
    if cls in KERNELS:
        if kind == "scale":
            if c.get("depthwise_regularizer") is not None:
                raise Unkept(f"depthwise_regularizer={short(c['depthwise_regularizer'])}")
        else:
            kernel_args(layer)


def gamma(layer) -> str:
    """A batch norm's initial scale: ones or zeros (`check_kept` refuses any other)."""
    c = layer.get_config()
    return _named(c, "gamma_initializer") if "gamma_initializer" in c else "ones"


def alpha(layer) -> float:
    """A PReLU's initial slope: a constant (Keras's default zeros); Unkept for another initializer."""
    c = layer.get_config()
    init = _named(c, "alpha_initializer") if "alpha_initializer" in c else "zeros"
    if isinstance(init, dict) and init.get("name") == "constant":
        return float(init["value"])
    if init in ("zeros", "ones"):
        return 0.0 if init == "zeros" else 1.0
    raise Unkept(f"alpha_initializer={short(c.get('alpha_initializer'))}")


def _named(config: dict, key: str):
    """The initializer `config[key]` as a spec writes it (a name or a mapping), Keras's glorot_uniform by its name;
    Unkept, naming `key`, for one a spec cannot write."""
    try:
        return initializer(config.get(key, "glorot_uniform")) or "glorot_uniform"
    except Unkept:
        raise Unkept(f"{key}={short(config.get(key))}") from None


def short(value) -> str:
    if isinstance(value, dict) and "class_name" in value:
        config = {k: v for k, v in (value.get("config") or {}).items() if v is not None}
        return f"{value['class_name']}({', '.join(f'{k}={v!r}' for k, v in config.items())})"
    return repr(value)
