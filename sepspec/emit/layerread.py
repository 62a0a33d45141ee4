"""Which spec entry a Keras layer is, or a group of Keras layers (the first half of `sepspec import`, one layer or
pattern at a time): a layer's arguments as the entry writes them, the tail a weighted layer takes (dropout, batch
norm, activation), and the groups one entry stands for: a squeeze-and-excitation, a channel shuffle, an `mbconv`
under its own names, and the hard sigmoid MobileNetV3 writes on tensors. `importer` walks the graph with these."""

from __future__ import annotations

import re

from ..spec.fields import ACTIVATIONS
from .layeroptions import Unkept, alpha, check_kept, gamma, kernel_args, number
from .recipe import crop_resizes

TAILED = {"Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Dense"}
# Keras's second spelling of an activation: ReLU(max_value=6) is Activation("relu6")
RELU = {None: "relu", 6.0: "relu6"}
# the layers that apply one of the spec's activation functions (`activation`: which, where it does)
ACTIVATION_LAYERS = ("Activation", "ReLU", "Softmax", "ELU")


def _pair(v):
    v = tuple(int(a) for a in v)
    return v[0] if len(set(v)) == 1 else list(v)


def activation(layer) -> str | None:
    """The activation a layer applies (by name), or None if it is not one sepspec writes."""
    kind = type(layer).__name__
    if kind == "Activation":
        fn = layer.activation
        name = getattr(fn, "__name__", str(fn))
        return name if name in ACTIVATIONS else None
    if kind == "ReLU":
        cfg = layer.get_config()
        if cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
            return None
        mv = cfg.get("max_value")
        return RELU.get(None if mv is None else float(mv))
    if kind == "Softmax" and layer.get_config().get("axis", -1) in (-1, [-1]):
        return "softmax"
    if kind == "ELU" and float(layer.get_config().get("alpha", 1.0)) == 1.0:  # the function's own alpha
        return "elu"
    return None


def inner_activation(layer) -> str:
    fn = getattr(layer, "activation", None)
    return getattr(fn, "__name__", "linear") if fn is not None else "linear"


def _conv_args(layer, kind: str) -> dict:
    c = layer.get_config()
    args = {}
    if kind in ("conv", "sepconv"):
        args["filters"] = int(c["filters"])
    args["kernel"] = _pair(c["kernel_size"])
    if _pair(c["strides"]) != 1:
        args["stride"] = _pair(c["strides"])
    args["padding"] = c["padding"]
    if _pair(c["dilation_rate"]) != 1:
        args["dilation"] = _pair(c["dilation_rate"])
    if kind in ("sepconv", "depthwise") and int(c.get("depth_multiplier", 1)) != 1:
        args["depth_multiplier"] = int(c["depth_multiplier"])
    if kind == "conv" and int(c.get("groups", 1)) != 1:
        args["groups"] = int(c["groups"])
    if not c["use_bias"]:
        args["bias"] = False
    return args


def _last_axis(layer) -> bool:
    """A normalisation over the channels (the last axis), as the spec's batch and layer norms are."""
    axis, rank = layer.get_config().get("axis", -1), len(layer.input.shape)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    return axis in (-1, rank - 1)


def _bn_args(layer, prefix: str = "") -> dict:
    c = layer.get_config()
    out = {}
    if abs(float(c["momentum"]) - 0.99) > 1e-12:
        out[prefix + "momentum"] = float(c["momentum"])
    if abs(float(c["epsilon"]) - 0.001) > 1e-12:
        out[prefix + "epsilon"] = float(c["epsilon"])
    if not c.get("scale", True):
        out[prefix + "scale"] = False
    if not c.get("center", True):
        out[prefix + "center"] = False
    if gamma(layer) == "zeros":
        out[prefix + "gamma"] = "zeros"
    return out


def _floats(v):
    """A Rescaling's or Normalization's constant as a spec writes it: a number, or one per channel; None for a shape
    the format does not take (a constant over other axes)."""
    import numpy as np

    a = np.asarray(v, dtype="float64")
    if a.size == 1:
        return float(a.reshape(()))
    if a.ndim >= 1 and a.size == a.shape[-1]:
        return [float(x) for x in a.reshape(-1)]
    return None


def _scale_init(c: dict) -> float | None:
    """The initial scale of a DepthwiseConv2D that is a `scale` entry (1x1, no bias, no activation, its kernel
    starting at a constant: what `scale` compiles to); else None."""
    init = c.get("depthwise_initializer")
    if not isinstance(init, dict) or init.get("class_name") != "Constant" or c["use_bias"] or \
            c.get("activation") not in (None, "linear") or int(c.get("depth_multiplier", 1)) != 1 or \
            any(_pair(c[k]) != 1 for k in ("kernel_size", "strides", "dilation_rate")):
        return None
    value = init.get("config", {}).get("value")
    return float(value) if number(value) else None


def unkept(layer) -> str | None:
    """What of `layer`'s options no spec entry writes (`layeroptions`), or None."""
    resizes = crop_resizes(layer)
    if resizes:
        return resizes
    scale = type(layer).__name__ == "DepthwiseConv2D" and _scale_init(layer.get_config()) is not None
    try:
        check_kept(layer, "scale" if scale else None)
    except Unkept as e:
        return str(e)
    return None


def entry(layer, shape_in) -> tuple[str, dict] | None:
    """(kind, arguments) of the entry a single Keras layer becomes, or None where the format has none (`unkept`
    has passed it)."""
    kind, c = layer.keras_class if isinstance(layer, Merge) else type(layer).__name__, layer.get_config()
    if kind == "Conv2D":
        if c.get("data_format", "channels_last") != "channels_last":
            return None
        k = tuple(c["kernel_size"])
        args = _conv_args(layer, "conv")
        if k == (1, 1) and "stride" not in args and "dilation" not in args and args["padding"] in ("same", "valid"):
            out = {"filters": args["filters"], **({"groups": args["groups"]} if "groups" in args else {}),
                   **({"bias": False} if "bias" in args else {})}
            return "pointwise", {**out, **kernel_args(layer)}
        return "conv", {**args, **kernel_args(layer)}
    if kind == "SeparableConv2D":
        return "sepconv", {**_conv_args(layer, "sepconv"), **kernel_args(layer)}
    if kind == "DepthwiseConv2D":
        init = _scale_init(c)
        if init is not None:
            return "scale", ({"init": init} if init != 1.0 else {})
        return "depthwise", {**_conv_args(layer, "depthwise"), **kernel_args(layer)}
    if kind == "LayerScale" and type(layer).__module__ == "keras.src.applications.convnext" and len(shape_in) == 3:
        return "scale", {"init": float(c["init_values"])}  # keras.applications' ConvNeXt's: x * gamma
    if kind == "Dense":  # on the last axis: of an image, each pixel's channels (ConvNeXt's pointwise layers)
        return "dense", {"units": int(c["units"]), **({"bias": False} if not c["use_bias"] else {}),
                         **kernel_args(layer)}
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        args = {"size": _pair(c["pool_size"])}
        if c["strides"] is not None and _pair(c["strides"]) != args["size"]:
            args["stride"] = _pair(c["strides"])
        if c["padding"] != "valid":
            args["padding"] = c["padding"]
        return ("maxpool" if kind == "MaxPooling2D" else "avgpool"), args
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return ("gap" if kind == "GlobalAveragePooling2D" else "gmp"), ({"keepdims": True} if c.get("keepdims") else {})
    if kind == "Flatten":
        return "flatten", {}
    if kind == "Dropout":
        noise = c.get("noise_shape")
        if noise is None:
            return "dropout", {"rate": float(c["rate"])}
        noise = list(noise)
        if len(noise) != len(shape_in) + 1 or any(not isinstance(n, int) for n in noise[1:]):
            return None  # one draw per image is the batch axis's None
        return "dropout", {"rate": float(c["rate"]), "noise_shape": [int(n) for n in noise[1:]]}
    if kind == "SpatialDropout2D" and len(shape_in) == 3:  # whole channels: Keras's noise shape (1, 1, channels)
        return "dropout", {"rate": float(c["rate"]), "noise_shape": [1, 1, int(shape_in[-1])]}
    if kind == "BatchNormalization":
        return ("batchnorm", _bn_args(layer)) if _last_axis(layer) else None
    if kind == "LayerNormalization":
        if not _last_axis(layer) or not c.get("scale", True) or not c.get("center", True):
            return None
        return "layernorm", ({"epsilon": float(c["epsilon"])} if abs(c["epsilon"] - 0.001) > 1e-12 else {})
    if kind in ACTIVATION_LAYERS:
        fn = activation(layer)
        return ("activation", {"function": fn}) if fn else None
    if kind == "LeakyReLU":  # Keras 2 wrote its slope as `alpha`
        slope = c.get("negative_slope", c.get("alpha", 0.3))
        return "leaky_relu", ({"negative_slope": float(slope)} if float(slope) != 0.3 else {})
    if kind == "PReLU":
        axes, init = sorted(int(a) for a in (c.get("shared_axes") or [])), alpha(layer)
        return "prelu", {**({"init": init} if init != 0.0 else {}), **({"shared_axes": axes} if axes else {})}
    if kind == "ZeroPadding2D":
        (t, b), (left, right) = c["padding"]
        return "zeropad", {"padding": [[t, b], [left, right]]}
    if kind == "Cropping2D":
        (t, b), (left, right) = c["cropping"]
        if c.get("data_format", "channels_last") != "channels_last":  # channels [left, c - right): a channel group
            if (t, b) != (0, 0) or len(shape_in) != 3:  # of a `parallel` block's `split: channels` (the writer's)
                return None
            return "channels", {"start": int(left), "stop": int(shape_in[-1] - right)}
        return "crop", {"cropping": [[t, b], [left, right]]}
    if kind == "Rescaling":
        scale, offset = _floats(c["scale"]), _floats(c["offset"])
        return None if scale is None or offset is None else ("rescale", {"scale": scale, **(
            {"offset": offset} if offset != 0 else {})})
    if kind == "Normalization":
        axis = c.get("axis")
        if list(axis if isinstance(axis, (list, tuple)) else [axis]) not in ([-1], [len(shape_in)]) or c.get("invert"):
            return None  # over the channels only, and not the inverse
        if c.get("mean") is None:  # its statistics are weights (they come with --weights)
            return "normalize", {}
        mean, variance = _floats(c["mean"]), _floats(c["variance"])
        return None if mean is None or variance is None else ("normalize", {"mean": mean, "variance": variance})
    if kind == "Reshape":
        return "reshape", {"target": [int(v) for v in c["target_shape"]]}
    if kind in ("Add", "Multiply"):
        return kind.lower(), {}
    if kind == "Concatenate":
        return ("concat", {}) if c.get("axis", -1) in (-1, len(shape_in)) else None
    return None


class Activation:
    """A hard sigmoid written on tensors, `ReLU(6)(x + 3) * (1 / 6)` (MobileNetV3's), standing in the graph as the
    Activation layer it computes: named as its last operation, reading what its first reads."""

    keras_class = "Multiply"  # its name is an operation's default name (`multiply_3`), never a chosen one

    def __init__(self, first, last):
        self.name = last.name
        self.input = first._inbound_nodes[0].input_tensors[0]
        self.output = last._inbound_nodes[0].output_tensors[0]
        self._inbound_nodes = first._inbound_nodes
        from ..lazy import import_keras

        self.activation = import_keras().activations.hard_sigmoid

    def get_config(self) -> dict:  # as the Activation layer's
        return {"name": self.name, "activation": "hard_sigmoid"}


def _constant(op, kind: str):
    """The number an operation written on one tensor combines it with (`x + 3.0`), where `op` is the numpy
    operation `kind`; else None."""
    if type(op).__name__ != kind or type(op).__module__ != "keras.src.ops.numpy" or len(op._inbound_nodes) != 1:
        return None
    node = op._inbound_nodes[0]
    args = node.arguments.args
    numbers = [a for a in args if number(a)]
    return float(numbers[0]) if len(args) == 2 and len(numbers) == 1 and len(node.input_tensors) == 1 else None


class Merge:
    """A merge written on tensors (ConvNeXt's `inputs + x`, `x * y`, `keras.ops.concatenate`), standing in the graph
    as the Add, Multiply or Concatenate layer it computes, under the operation's name (`add_3`: a name nobody
    chose)."""

    def __init__(self, op):
        self.name = op.name
        self._inbound_nodes = op._inbound_nodes
        self.input = list(op._inbound_nodes[0].input_tensors)
        self.output = op._inbound_nodes[0].output_tensors[0]

    def get_config(self) -> dict:
        return {}


class Add(Merge):
    keras_class = "Add"


class Multiply(Merge):
    keras_class = "Multiply"


class Concatenate(Merge):
    keras_class = "Concatenate"

    def __init__(self, op):
        super().__init__(op)
        self.axis = op.axis

    def get_config(self) -> dict:
        return {"axis": self.axis}


def _merge(op):
    """The stand-in of `op` where it is an addition or product of two tensors, or a concatenation of tensors
    (`keras.ops.concatenate([a, b], axis=-1)`), and nothing else; else None."""
    kind = type(op).__name__
    if kind not in ("Add", "Multiply", "Concatenate") or type(op).__module__ != "keras.src.ops.numpy" or \
            len(op._inbound_nodes) != 1:
        return None
    node = op._inbound_nodes[0]
    if kind == "Concatenate":
        args = node.arguments.args
        listed = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else []
        ok = len(listed) >= 2 and len(node.input_tensors) == len(listed) and isinstance(op.axis, int)
        return Concatenate(op) if ok else None
    if len(node.input_tensors) != 2 or len(node.arguments.args) != 2 or node.arguments.kwargs:
        return None
    return (Add if kind == "Add" else Multiply)(op)


class Rescaling:
    """The `up * scale` of InceptionResNetV2's CustomScaleLayer: a Rescaling that nobody named."""

    keras_class = "Rescaling"
    unnamed = True  # its name is made up here: never kept

    def __init__(self, name: str, up, scale: float):
        self.name, self.output, self.scale = name, up, scale

    def get_config(self) -> dict:
        return {"scale": self.scale, "offset": 0.0}


class ScaledAdd(Add):
    """InceptionResNetV2's CustomScaleLayer, `x + up * scale` (its residual scaled): a Rescaling of `up`
    (`scaled`), then an Add under the layer's name."""

    def __init__(self, layer):
        super().__init__(layer)
        self.scaled = Rescaling(f"{layer.name}_scale", self.input[1], float(layer.scale))


def _scaled_add(op):
    if type(op).__name__ != "CustomScaleLayer" or \
            type(op).__module__ != "keras.src.applications.inception_resnet_v2" or len(op._inbound_nodes) != 1:
        return None
    node = op._inbound_nodes[0]
    x, up = (list(node.input_tensors) + [None, None])[:2]
    ok = len(node.input_tensors) == 2 and tuple(x.shape) == tuple(up.shape) and isinstance(op.scale, (int, float))
    return ScaledAdd(op) if ok else None


def stand_ins(ops, readers) -> dict:
    """{the name of each operation written on tensors that computes what a layer would: its stand-in}: hard
    sigmoids (three operations, one stand-in), merges of two tensors, and InceptionResNetV2's scaled sums (one
    layer, two stand-ins: `ScaledAdd.scaled` first)."""
    out = hard_sigmoids(ops, readers)
    for op in ops:
        merge = None if op.name in out else (_merge(op) or _scaled_add(op))
        if merge is not None:
            out[op.name] = merge
    return out


def hard_sigmoids(ops, readers) -> dict:
    """{the name of each operation of a hard sigmoid written on tensors: its stand-in `Activation`}."""
    out = {}
    for op in ops:
        if _constant(op, "Add") != 3.0 or len(readers.get(op.name, [])) != 1:
            continue
        relu = readers[op.name][0]
        if type(relu).__name__ != "ReLU" or activation(relu) != "relu6" or len(readers.get(relu.name, [])) != 1:
            continue
        last = readers[relu.name][0]
        scale, divide = _constant(last, "Multiply"), _constant(last, "TrueDivide") or _constant(last, "Divide")
        if (scale is None or abs(scale - 1 / 6) > 1e-7) and divide != 6.0:
            continue
        stand_in = Activation(op, last)
        out.update({op.name: stand_in, relu.name: stand_in, last.name: stand_in})
    return out


def _next(layer, followers, inputs):
    """The one layer that reads `layer`, when it reads nothing else; else None."""
    f = followers.get(layer.name, [])
    return f[0] if len(f) == 1 and inputs[f[0].name] == [layer.name] else None


def _chain(first, followers, inputs, n):
    """`first` and the n layers after it, each the only reader of the one before and reading nothing else."""
    out = [first]
    while len(out) <= n:
        nxt = _next(out[-1], followers, inputs)
        if nxt is None:
            return None
        out.append(nxt)
    return out


def keras_default_name(name: str, keras_class: str) -> bool:
    """Is `name` the one Keras gives a layer of that class nobody named (`conv2d_3`, `re_lu`)? Keras's
    `to_snake_case` of the class name, then an optional number."""
    snake = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", keras_class))
    snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", snake).lower()
    return re.fullmatch(rf"{snake}(_\d+)?", name) is not None


def _names_kept(parts, name: str | None) -> bool:
    """Would a block entry named `name` keep every chosen name of these (layer, suffix) parts? Each is the layer the
    entry compiles it to (`<name><suffix>`) or has the name Keras gives a layer nobody named."""
    return all(keras_default_name(t.name, getattr(t, "keras_class", type(t).__name__))
               or (name and t.name == name + sfx) for t, sfx in parts)


def squeeze_excite(layer, followers, inputs, keep_names: bool = True):
    """GlobalAveragePooling2D(keepdims) -> 1x1 Conv2D (its activation) -> 1x1 Conv2D (a sigmoid gate) -> Multiply
    with the pooled tensor: the `se` entry (squeeze_excite's own form), with its (layer, suffix) parts. The
    activation and the gate may be layers of their own after the convolutions (MobileNetV3's ReLU and hard
    sigmoid): the entry's convolution computes both, so the activation is that convolution's part; so may the
    pooling be one without keepdims and a Reshape to (1, 1, channels) (EfficientNet's), both the pooling's part."""
    if type(layer).__name__ != "GlobalAveragePooling2D":
        return None
    x = inputs[layer.name][0]
    parts, convs, functions = [(layer, "_pool")], [], []
    if not layer.get_config().get("keepdims"):
        reshape = _next(layer, followers, inputs)
        channels = int(layer.input.shape[-1])
        if reshape is None or type(reshape).__name__ != "Reshape" or \
                tuple(reshape.get_config()["target_shape"]) != (1, 1, channels):
            return None
        parts.append((reshape, "_pool"))
    for suffix in ("_squeeze", "_excite"):
        nxt = _next(parts[-1][0], followers, inputs)
        if nxt is None or type(nxt).__name__ != "Conv2D":
            return None
        c = nxt.get_config()
        if tuple(c["kernel_size"]) != (1, 1) or tuple(c["strides"]) != (1, 1) or not c["use_bias"] \
                or int(c.get("groups", 1)) != 1:
            return None
        parts.append((nxt, suffix))
        convs.append(nxt)
        fn = inner_activation(nxt)
        after = _next(nxt, followers, inputs) if fn == "linear" else None
        if after is not None and type(after).__name__ in ("Activation", "ReLU") and activation(after):
            fn = activation(after)
            parts.append((after, suffix))
        functions.append(fn)
    last = parts[-1][0]
    scale = followers.get(last.name, [])
    act, gate = functions
    if len(scale) != 1 or type(scale[0]).__name__ != "Multiply" or \
            sorted(inputs[scale[0].name]) != sorted([x, last.name]):
        return None
    squeeze, excite = convs
    if act not in ACTIVATIONS or gate not in ("sigmoid", "hard_sigmoid") or \
            int(excite.get_config()["filters"]) != int(layer.input.shape[-1]) or \
            kernel_args(squeeze) != kernel_args(excite):  # the entry's options are both convolutions'
        return None
    parts.append((scale[0], "_scale"))
    args = {"filters": int(squeeze.get_config()["filters"]), **kernel_args(squeeze)}
    if act != "relu":
        args["activation"] = act
    if gate != "sigmoid":
        args["gate"] = gate
    if layer.name.endswith("_pool"):
        args["name"] = layer.name[:-len("_pool")]
    if keep_names and not _names_kept(parts, args.get("name")):  # they stay layers, under their names
        return None
    return "se", args, parts


def mbconv(layer, followers, inputs):
    """The layers an `mbconv` entry compiles to, under the names it gives them (a spec's compiled model): <n>_expand,
    _expand_bn, _expand_<act> (none for expand 1), <n>_dw, _dw_bn, _dw_<act>, an `se` (<n>_se_pool ...),
    <n>_project, _project_bn and <n>_add where the block adds its input: one `mbconv` entry named <n>. Only under
    those names: an inverted residual named otherwise (Keras's MobileNetV2: `block_1_depthwise`) would lose them,
    so it stays a `residual` of its layers. Its (layer, suffix) parts: each layer's name after <n>."""
    kind = type(layer).__name__
    if kind == "Conv2D" and layer.name.endswith("_expand"):
        n = layer.name[:-len("_expand")]
    elif kind == "DepthwiseConv2D" and layer.name.endswith("_dw"):
        n = layer.name[:-len("_dw")]
    else:
        return None
    if len(inputs[layer.name]) != 1:
        return None
    x, cin = inputs[layer.name][0], int(layer.input.shape[-1])
    taken, moments, gammas = [layer], [], []

    def follow(suffix, classes):
        nxt = _next(taken[-1], followers, inputs)
        if nxt is None or nxt.name != n + suffix or type(nxt).__name__ not in classes:
            return None
        taken.append(nxt)
        return nxt

    def plain_bn(bn):
        c = bn.get_config()
        if not _last_axis(bn) or abs(float(c["epsilon"]) - 0.001) > 1e-12 or not c.get("scale", True) \
                or not c.get("center", True):
            return False
        moments.append(float(c["momentum"]))
        gammas.append(gamma(bn))
        return True

    def one_by_one(conv):
        c = conv.get_config()
        return (tuple(c["kernel_size"]) == (1, 1) and _pair(c["strides"]) == 1 and _pair(c["dilation_rate"]) == 1
                and not c["use_bias"] and int(c.get("groups", 1)) == 1 and inner_activation(conv) == "linear"
                and c.get("data_format", "channels_last") == "channels_last")

    act = None
    if kind == "Conv2D":
        if not one_by_one(layer):
            return None
        bn = follow("_expand_bn", ("BatchNormalization",))
        a = bn is not None and plain_bn(bn) and _next(bn, followers, inputs)
        act = activation(a) if a else None
        if act is None or follow(f"_expand_{act}", ("Activation", "ReLU")) is None:
            return None
        dw = follow("_dw", ("DepthwiseConv2D",))
    else:
        dw = layer
    if dw is None:
        return None
    c = dw.get_config()
    if (c["padding"] != "same" or c["use_bias"] or int(c.get("depth_multiplier", 1)) != 1
            or _pair(c["dilation_rate"]) != 1 or inner_activation(dw) != "linear"):
        return None
    bn = follow("_dw_bn", ("BatchNormalization",))
    a = bn is not None and plain_bn(bn) and _next(bn, followers, inputs)
    dw_act = activation(a) if a else None
    if dw_act is None or (act is not None and dw_act != act) or follow(f"_dw_{dw_act}", ("Activation", "ReLU")) is None:
        return None
    act, mid = dw_act, taken[-1]
    se = None
    pool = followers.get(mid.name, [])
    pool = next((f for f in pool if f.name == f"{n}_se_pool"), None)
    if pool is not None:
        found = squeeze_excite(pool, followers, inputs)
        if found is None or found[1].get("name") != f"{n}_se":
            return None
        se = found[1]
        taken.extend(t for t, _ in found[2])
    proj = follow("_project", ("Conv2D",))
    if proj is None or not one_by_one(proj):
        return None
    bn = follow("_project_bn", ("BatchNormalization",))
    if bn is None or not plain_bn(bn) or len(set(moments)) != 1 or gammas[-1] not in ("ones", "zeros") \
            or set(gammas[:-1]) != {"ones"}:
        return None
    filters, stride = int(proj.get_config()["filters"]), _pair(dw.get_config()["strides"])
    add = followers.get(bn.name, [])
    skippable = stride == 1 and cin == filters
    if len(add) == 1 and type(add[0]).__name__ == "Add" and add[0].name == f"{n}_add" \
            and sorted(inputs[add[0].name]) == sorted([bn.name, x]) and skippable:
        taken.append(add[0])
    args: dict = {"filters": filters}
    if kind == "Conv2D":
        width = int(layer.get_config()["filters"])
        if width % cin == 0 and width // cin != 1:
            args["expand"] = width // cin
        else:
            args["expand_filters"] = width
    else:
        args["expand"] = 1
    if args.get("expand") == 6:
        del args["expand"]
    if _pair(c["kernel_size"]) != 3:
        args["kernel"] = _pair(c["kernel_size"])
    if stride != 1:
        args["stride"] = stride
    if se is not None:
        width, ratio, se_act = se["filters"], se["filters"] / cin, se.get("activation", "relu")
        if se_act == act and "gate" not in se and ratio <= 1 and max(1, int(cin * ratio)) == width:
            args["se"] = round(ratio, 6) if max(1, int(cin * round(ratio, 6))) == width else ratio
        else:  # written out: its width, and its activation where it is not the block's
            args["se"] = {"filters": width, **({"activation": se_act} if se_act != act else {}),
                          **({"gate": se["gate"]} if "gate" in se else {})}
    if act != "relu6":
        args["activation"] = act
    if skippable and taken[-1] is bn:
        args["skip"] = False
    if abs(moments[0] - 0.99) > 1e-12:
        args["bn_momentum"] = moments[0]
    if gammas[-1] == "zeros":
        args["project_gamma"] = "zeros"
    options = [kernel_args(t) for t in (layer if kind == "Conv2D" else None, dw, proj) if t is not None]
    options += [{k: se[k] for k in ("kernel_init", "l1", "l2") if k in se}] if se is not None else []
    if any(o != options[0] for o in options[1:]):  # the entry's options are every convolution's
        return None
    args.update(options[0])
    args["name"] = n
    return "mbconv", args, [(t, t.name[len(n):]) for t in taken]


def shuffle(layer, followers, inputs):
    """Reshape to (h, w, g, c/g) -> Permute((1, 2, 4, 3)) -> Reshape back: a `shuffle` of g groups."""
    if type(layer).__name__ != "Reshape":
        return None
    chain = _chain(layer, followers, inputs, 2)
    if chain is None:
        return None
    _, permute, back = chain
    shape_in = tuple(int(v) for v in layer.input.shape[1:])
    target = tuple(layer.get_config()["target_shape"])
    if type(permute).__name__ != "Permute" or type(back).__name__ != "Reshape" or len(shape_in) != 3 or \
            len(target) != 4 or target[:2] != shape_in[:2] or target[2] * target[3] != shape_in[2] or \
            tuple(permute.get_config()["dims"]) != (1, 2, 4, 3) or tuple(back.get_config()["target_shape"]) != shape_in:
        return None
    args = {"groups": int(target[2])}
    if layer.name == f"{back.name}_groups":
        args["name"] = back.name
    return "shuffle", args, list(zip(chain, ["_groups", "_transpose", ""]))


def fold_tail(layer, followers, inputs, args, members, parts) -> str:
    """Dropout, BatchNormalization, Activation after a weighted layer, in that order, each read only by the next:
    into `args` (the entry's tail); the Keras name of the last one taken."""
    last, stage, at = layer.name, 0, layer
    while True:
        nxt = _next(at, followers, inputs)
        if nxt is None:
            break
        kind, c = type(nxt).__name__, nxt.get_config()
        if kind == "Dropout" and stage < 1 and float(c["rate"]) > 0 and c.get("noise_shape") is None:
            args["dropout"], stage = float(c["rate"]), 1  # a tail of rate 0 has none; a tail's drops values
        elif kind == "BatchNormalization" and stage < 2 and _last_axis(nxt):
            args["norm"], stage = "batch", 2
            args.update(_bn_args(nxt, "bn_"))
        elif kind in ACTIVATION_LAYERS and activation(nxt) and activation(nxt) != "linear":
            args["activation"], stage = activation(nxt), 3
        else:
            break
        members.add(nxt.name)
        parts.append((nxt.name, {1: "_dropout", 2: "_bn"}.get(stage, f"_{args.get('activation')}")))
        last, at = nxt.name, nxt
        if stage == 3:
            break
    return last
