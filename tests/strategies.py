"""Hypothesis strategies: random valid specs over the whole vocabulary, and ways to break them.

The generator tracks the spatial size itself (with the same textbook formulas) only to steer towards
valid specs; the property tests then hold the analysis against what Keras actually builds.
"""
import yaml
from hypothesis import strategies as st

ACTS = ["relu", "elu", "gelu", "sigmoid", "tanh", "swish", "linear", "none"]


def _out(n, k, s, d, padding):
    k_eff = d * (k - 1) + 1
    return -(-n // s) if padding == "same" else (n - k_eff) // s + 1


def _pair(draw, lo, hi):
    """An int, or a non-square [h, w] now and then."""
    if draw(st.integers(0, 3)) == 0:
        return [draw(st.integers(lo, hi)), draw(st.integers(lo, hi))]
    return draw(st.integers(lo, hi))


def _hw(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _tail(draw, args):
    if draw(st.booleans()):
        args["dropout"] = draw(st.sampled_from([0, 0.1, 0.25]))
    if draw(st.booleans()):
        args["norm"] = draw(st.sampled_from(["batch", "none"]))
    if draw(st.booleans()):
        args["activation"] = draw(st.sampled_from(ACTS))


@st.composite
def valid_specs(draw):
    """(spec as a dict, ready for yaml.safe_dump)."""
    h, w, c = draw(st.integers(8, 64)), draw(st.integers(8, 64)), draw(st.integers(1, 4))
    classes = draw(st.integers(1, 20))
    size = [h, w]
    layers = []
    names = set()
    for i in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["sepconv", "conv", "depthwise", "pointwise", "maxpool", "avgpool",
                                     "dropout", "batchnorm", "activation"]))
        repeat = draw(st.sampled_from([1, 1, 1, 2, 3]))
        args = {}
        if kind in ("sepconv", "conv", "depthwise"):
            if kind != "depthwise":
                args["filters"] = draw(st.integers(1, 24))
            args["kernel"] = _pair(draw, 1, 7)
            args["stride"] = _pair(draw, 1, 3)
            args["dilation"] = _pair(draw, 1, 3)
            if kind == "conv" and max(_hw(args["stride"])) > 1:
                args["dilation"] = 1  # Keras's Conv2D refuses both (rule SEP210)
            args["padding"] = draw(st.sampled_from(["same", "valid"]))
            if kind != "conv":
                args["depth_multiplier"] = draw(st.integers(1, 4))
            args["bias"] = draw(st.booleans())
            _tail(draw, args)
            ks, ss, ds = _hw(args["kernel"]), _hw(args["stride"]), _hw(args["dilation"])
            for _ in range(repeat):
                new = [_out(n, k, s, d, args["padding"]) for n, k, s, d in zip(size, ks, ss, ds)]
                if min(new) < 1:
                    args["padding"] = "same"
                    new = [_out(n, k, s, d, "same") for n, k, s, d in zip(size, ks, ss, ds)]
                size = new
        elif kind == "pointwise":
            args["filters"] = draw(st.integers(1, 24))
            args["bias"] = draw(st.booleans())
            _tail(draw, args)
        elif kind in ("maxpool", "avgpool"):
            args["size"] = _pair(draw, 2, 3)
            if draw(st.booleans()):
                args["stride"] = _pair(draw, 1, 3)
            args["padding"] = draw(st.sampled_from(["same", "valid"]))
            ks = _hw(args["size"])
            ss = _hw(args.get("stride", args["size"]))
            for _ in range(repeat):
                new = [_out(n, k, s, 1, args["padding"]) for n, k, s in zip(size, ks, ss)]
                if min(new) < 1:
                    args["padding"] = "same"
                    new = [_out(n, k, s, 1, "same") for n, k, s in zip(size, ks, ss)]
                size = new
        elif kind == "dropout":
            args["rate"] = draw(st.sampled_from([0.0, 0.1, 0.5]))
        elif kind == "batchnorm":
            if draw(st.booleans()):
                args["momentum"] = 0.9
        else:
            args["function"] = draw(st.sampled_from([a for a in ACTS if a != "none"]))
        if repeat > 1:
            args["repeat"] = repeat
        if draw(st.integers(0, 4)) == 0:
            name = f"layer{i}"
            names.add(name)
            args["name"] = name
        layers.append({kind: args})
    head = draw(st.sampled_from(["gap", "dense_gap", "dense_flatten"]))
    if head == "gap":
        layers.append({"sepconv": {"filters": classes, "kernel": draw(st.integers(1, 3)), "padding": "same"}})
        layers.append({"gap": {}})
    else:
        layers.append({"gap" if head == "dense_gap" else "flatten": {}})
        layers.append({"dense": {"units": classes, "bias": draw(st.booleans())}})
    if draw(st.booleans()):
        layers.append({"activation": "softmax"})
    return {"name": "random", "input": [h, w, c], "classes": classes, "layers": layers}


def dump(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False)


_JUNK = st.one_of(st.booleans(), st.text(max_size=6), st.floats(allow_nan=False, allow_infinity=False),
                  st.integers(-5, 10**12), st.none(), st.lists(st.integers(-2, 3), max_size=4))


@st.composite
def invalid_specs(draw):
    """(yaml text, what was broken) for a spec that must be rejected."""
    spec = draw(valid_specs())
    how = draw(st.sampled_from(["shrink", "classifier", "unknown_key", "wrong_type", "unknown_kind"]))
    layers = spec["layers"]
    if how == "shrink":  # a valid-padding window larger than the image
        h, w, _ = spec["input"]
        layers.insert(0, {"maxpool": {"size": max(h, w) + draw(st.integers(1, 8)), "padding": "valid"}})
    elif how == "classifier":
        spec["classes"] += draw(st.integers(1, 5))
    elif how == "unknown_key":
        target = draw(st.sampled_from(["top", "layer", "train"]))
        key = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10))
        if target == "top":
            spec.setdefault("x_" + key, 1)
        elif target == "layer":
            entry = layers[draw(st.integers(0, len(layers) - 1))]
            kind = next(iter(entry))
            args = entry[kind] if isinstance(entry[kind], dict) else {}
            args["x_" + key] = 1
            entry[kind] = args
        else:
            spec["train"] = {"x_" + key: 1}
    elif how == "wrong_type":
        field = draw(st.sampled_from(["classes", "input", "filters"]))
        bad = draw(st.sampled_from([True, "ten", 2.5, None, [1, 2, 3, 4], {"a": 1}]))
        if field == "filters":
            layers[-2 if "gap" in layers[-1] or "activation" in layers[-1] else -1] = {"sepconv": {"filters": bad}}
        else:
            spec[field] = bad
    else:
        layers.insert(draw(st.integers(0, len(layers))), {draw(st.sampled_from(["sepcov", "pool", "Conv2D", "relu"])): 3})
    return dump(spec), how


def yaml_values():
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**12), st.floats(allow_nan=True),
                       st.text(max_size=8))
    keys = st.sampled_from(["name", "input", "classes", "layers", "rules", "defaults", "train", "sepconv",
                            "maxpool", "filters", "kernel", "gap", "extends", "epochs", "x"])
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(keys, inner, max_size=5)), max_leaves=20)
