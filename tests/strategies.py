"""Hypothesis strategies: random valid specs over the whole vocabulary, and ways to break them.

The generator tracks the spatial size itself (with the same textbook formulas) only to steer towards
valid specs; the property tests then hold the analysis against what Keras actually builds.
"""
import yaml
from hypothesis import strategies as st

ACTS = ["relu", "elu", "gelu", "sigmoid", "tanh", "swish", "hard_swish", "hard_tanh", "tanh_shrink", "squareplus",
        "linear", "none"]


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
        args["norm"] = draw(st.sampled_from(["batch", "layer", "none"]))
        if args["norm"] == "batch" and draw(st.booleans()):
            args.update(_bn_options(draw, "bn_"))
    if draw(st.booleans()):
        args["activation"] = draw(st.sampled_from(ACTS))


def _kernels(draw, args):
    """Now and then how the entry's kernels start (by name, or a mapping of a name and arguments) and their L1 / L2
    penalty."""
    if draw(st.integers(0, 3)) == 0:
        args["kernel_init"] = draw(st.sampled_from([
            "he_normal", "lecun_uniform", "orthogonal", "zeros", {"name": "truncated_normal", "stddev": 0.02},
            {"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"}, {"name": "random_uniform", "maxval": 0.1},
            {"name": "he_uniform"}]))
    if draw(st.integers(0, 3)) == 0:
        args.update(draw(st.sampled_from([{"l2": 1e-4}, {"l1": 1e-5}, {"l1": 1e-5, "l2": 5e-4}])))


def _bn_options(draw, prefix=""):
    """A batch norm without a learned scale or shift (Inception's), with another epsilon, or starting at a scale of
    zeros."""
    out = {}
    for key, values in (("scale", st.booleans()), ("center", st.booleans()), ("epsilon", st.sampled_from([1e-3, 1e-5])),
                        ("gamma", st.sampled_from(["ones", "zeros"]))):
        if draw(st.booleans()):
            out[prefix + key] = draw(values)
    return out


def _edges(draw, lo_size):
    """Keras's three forms of a padding or cropping (an int, [h, w], [[top, bottom], [left, right]]) and the
    [[top, bottom], [left, right]] it means; at most `lo_size` - 1 rows or columns in all (a crop leaves a pixel)."""
    form = draw(st.integers(0, 2))
    if form == 0:
        v = draw(st.integers(0, 2))
        arg, edges = v, [[v, v], [v, v]]
    elif form == 1:
        a, b = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        arg, edges = [a, b], [[a, a], [b, b]]
    else:
        arg = edges = [[draw(st.integers(0, 2)), draw(st.integers(0, 2))] for _ in range(2)]
    return arg, edges


def _plain(draw, kind, state, repeat, same_only=False):
    """Arguments of a plain layer kind; updates state (size [h, w], channels c) for `repeat` copies."""
    args = {}
    size = state["size"]
    if kind in ("sepconv", "conv", "depthwise"):
        if kind != "depthwise":
            args["filters"] = draw(st.integers(1, 24))
        args["kernel"] = _pair(draw, 1, 7)
        args["stride"] = _pair(draw, 1, 2 if same_only else 3)
        args["dilation"] = _pair(draw, 1, 3)
        if kind == "conv" and max(_hw(args["stride"])) > 1:
            args["dilation"] = 1  # Keras's Conv2D refuses both (rule SEP210)
        args["padding"] = "same" if same_only else draw(st.sampled_from(["same", "valid"]))
        if kind != "conv":
            args["depth_multiplier"] = draw(st.integers(1, 4 if not same_only else 2))
        elif draw(st.integers(0, 3)) == 0:
            args["groups"], args["filters"] = _groups(draw, state["c"])
        args["bias"] = draw(st.booleans())
        _tail(draw, args)
        _kernels(draw, args)
        ks, ss, ds = _hw(args["kernel"]), _hw(args["stride"]), _hw(args["dilation"])
        for _ in range(repeat):
            new = [_out(n, k, s, d, args["padding"]) for n, k, s, d in zip(size, ks, ss, ds)]
            if min(new) < 1:
                args["padding"] = "same"
                new = [_out(n, k, s, d, "same") for n, k, s, d in zip(size, ks, ss, ds)]
            size = new
            state["jump"] = [j * s for j, s in zip(state["jump"], ss)]
            state["c"] = args["filters"] if kind != "depthwise" else state["c"] * args["depth_multiplier"]
    elif kind == "scale":  # a learned scale per channel; its initial value
        args["init"] = draw(st.sampled_from([1.0, 0.5, 1e-6]))
    elif kind == "dense":  # on an image: each pixel's channels (ConvNeXt's pointwise layers)
        args["units"] = draw(st.integers(1, 24))
        args["bias"] = draw(st.booleans())
        _tail(draw, args)
        _kernels(draw, args)
        state["c"] = args["units"]
    elif kind == "pointwise":
        args["filters"] = draw(st.integers(1, 24))
        if draw(st.integers(0, 2)) == 0:
            args["groups"], args["filters"] = _groups(draw, state["c"])
        args["bias"] = draw(st.booleans())
        _tail(draw, args)
        _kernels(draw, args)
        state["c"] = args["filters"]
    elif kind in ("maxpool", "avgpool"):
        args["size"] = _pair(draw, 2, 3)
        if draw(st.booleans()):
            args["stride"] = _pair(draw, 1, 2 if same_only else 3)
        args["padding"] = "same" if same_only else draw(st.sampled_from(["same", "valid"]))
        ks = _hw(args["size"])
        ss = _hw(args.get("stride", args["size"]))
        for _ in range(repeat):
            new = [_out(n, k, s, 1, args["padding"]) for n, k, s in zip(size, ks, ss)]
            if min(new) < 1:
                args["padding"] = "same"
                new = [_out(n, k, s, 1, "same") for n, k, s in zip(size, ks, ss)]
            size = new
            state["jump"] = [j * s for j, s in zip(state["jump"], ss)]
    elif kind == "dropout":
        args["rate"] = draw(st.sampled_from([0.0, 0.1, 0.5]))
        shared = draw(st.sampled_from([None, None, "image", "channels"]))  # whole images, or whole channels
        if shared:
            args["noise_shape"] = [1, 1, 1] if shared == "image" else [1, 1, state["c"]]
    elif kind == "batchnorm":
        if draw(st.booleans()):
            args["momentum"] = 0.9
        args.update(_bn_options(draw))
    elif kind in ("zeropad", "crop"):
        arg, edges = _edges(draw, min(size))
        sign = 1 if kind == "zeropad" else -1
        new = [n + sign * repeat * sum(e) for n, e in zip(size, edges)]
        if min(new) < 1:  # a crop that would leave nothing: cut nothing
            arg, new = 0, size
        args["padding" if kind == "zeropad" else "cropping"] = arg
        size = new
    elif kind == "layernorm":
        if draw(st.booleans()):
            args["epsilon"] = 1e-5
    elif kind in ("rescale", "normalize"):
        def value(lo, hi):  # one number, or one per channel
            one = st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, 4))
            return draw(st.one_of(one, st.lists(one, min_size=state["c"], max_size=state["c"])))

        if kind == "rescale":
            args["scale"] = value(0.001, 2.0)
            if draw(st.booleans()):
                args["offset"] = value(-1.0, 1.0)
        elif draw(st.booleans()):  # constants; else the layer's statistics
            args["mean"], args["variance"] = value(-1.0, 1.0), value(0.1, 4.0)
    elif kind == "leaky_relu":
        if draw(st.booleans()):
            args["negative_slope"] = draw(st.sampled_from([0.01, 0.1, 0.2]))
    elif kind == "prelu":  # an image here: one alpha per value, or shared along rows, columns or both
        if draw(st.booleans()):
            args["init"] = draw(st.sampled_from([0.1, 0.25]))
        axes = draw(st.sampled_from([[], [1, 2], [1, 2], [2], [1, 2, 3]]))
        if axes:
            args["shared_axes"] = axes
    elif kind == "shuffle":
        divisors = [g for g in range(2, state["c"] + 1) if state["c"] % g == 0]
        args["groups"] = draw(st.sampled_from(divisors)) if divisors else 1  # 1: fixed by the caller
    else:
        args["function"] = draw(st.sampled_from([a for a in ACTS if a != "none"]))
    state["size"] = size
    return args


PLAIN = ["sepconv", "conv", "depthwise", "pointwise", "maxpool", "avgpool", "dropout", "batchnorm", "activation",
         "layernorm", "shuffle", "zeropad", "crop", "rescale", "normalize", "scale", "dense", "leaky_relu", "prelu"]


def _groups(draw, cin):
    """(groups, filters) of a grouped convolution after `cin` channels: groups divide both."""
    g = draw(st.sampled_from([d for d in range(1, cin + 1) if cin % d == 0]))
    return g, g * draw(st.integers(1, max(1, 24 // g)))


def _parallel(draw, state, depth, names):
    """A parallel block that builds: copy or channel split (equal groups or drawn sizes), 2-4 branches of
    `same`-padded entries (empty ones too), nesting while depth allows, each merge. With same padding a
    branch's size follows from its total stride, so a branch whose stride differs from the first's is replaced
    by one strided sepconv; add and multiply get a 1x1 to the first branch's width where needed. Returns
    (arguments, stride, channels)."""
    c = state["c"]
    n = draw(st.integers(2, 4))
    args = {}
    inputs = [c] * n
    if draw(st.booleans()) and c >= n:
        args["split"] = "channels"
        if c % n == 0 and draw(st.booleans()):
            inputs = [c // n] * n
        else:
            cuts = sorted(draw(st.lists(st.integers(1, c - 1), min_size=n - 1, max_size=n - 1, unique=True)))
            inputs = [b - a for a, b in zip([0] + cuts, cuts + [c])]
            args["sizes"] = inputs
    merge = draw(st.sampled_from(["concat", "add", "multiply"]))
    if merge != "concat" or draw(st.booleans()):
        args["merge"] = merge
    branches, ends = [], []
    for cin in inputs:
        inner = {"size": list(state["size"]), "c": cin, "jump": [1, 1]}
        entries = [] if draw(st.integers(0, 3)) == 0 else _entries(draw, inner, depth + 1, names, same_only=True)
        if ends and inner["jump"] != ends[0][0]:
            filters = draw(st.integers(1, 24))
            entries = [{"sepconv": {"filters": filters, "kernel": _pair(draw, 1, 3), "stride": ends[0][0],
                                    "padding": "same"}}]
            inner["c"] = filters
        if merge != "concat" and ends and inner["c"] != ends[0][1]:
            entries = entries + [{"pointwise": ends[0][1]}]
            inner["c"] = ends[0][1]
        branches.append(entries)
        ends.append((inner["jump"] if not ends else ends[0][0], inner["c"]))
    args["branches"] = branches
    if draw(st.booleans()):
        args["activation"] = draw(st.sampled_from(ACTS))
    stride = ends[0][0]
    return args, stride, sum(e[1] for e in ends) if merge == "concat" else ends[0][1]


def _residual(draw, state, depth, names):
    """A residual block that builds, and how it changes the state: every shortcut form, a body of
    `same`-padded entries (so that the projection, or a strided shortcut list, can always match it), nesting
    while depth allows. Returns (arguments, may it repeat)."""
    how = draw(st.sampled_from(["auto", "project", "identity", "list"]))
    inner = {"size": list(state["size"]), "c": state["c"], "jump": [1, 1]}
    body = _entries(draw, inner, depth + 1, names, same_only=True, min_size=1, keep_shape=(how == "identity"))
    stride = inner["jump"]  # the body's total stride per axis
    if how == "auto" and max(stride) > 1 and inner["size"] == state["size"] and inner["c"] == state["c"]:
        how = "project"  # a strided body on a 1-pixel image keeps the shape, not the jump (SEP212 for identity)
    args = {"body": body}
    if how == "list":
        if draw(st.booleans()):
            args["shortcut"] = [{"sepconv": {"filters": inner["c"], "kernel": _pair(draw, 1, 3), "stride": stride,
                                             "padding": "same", "bias": False}}]
        else:
            sc = [{"pointwise": {"filters": inner["c"], "bias": False, "norm": "batch"}}]
            if max(stride) > 1:
                sc.insert(0, {"avgpool": {"size": stride, "stride": stride, "padding": "same"}})
            args["shortcut"] = sc
    elif how != "auto" or draw(st.booleans()):
        args["shortcut"] = how
    if draw(st.booleans()):
        args["activation"] = draw(st.sampled_from(ACTS))
    # a copy of the block takes the block's output: it strides again and keeps the body's channels
    return args, stride, inner["c"]


def _mbconv(draw, state):
    args = {"filters": draw(st.integers(1, 24))}
    for key, values in (("expand", st.integers(1, 4)), ("kernel", st.sampled_from([1, 3, 5, [3, 5]])),
                        ("stride", st.sampled_from([1, 2, [1, 2]])), ("se", st.sampled_from([0, 0.25, 0.5, 1])),
                        ("activation", st.sampled_from(["relu6", "relu", "swish", "hard_sigmoid", "hard_swish"])),
                        ("skip", st.booleans())):
        if draw(st.booleans()):
            args[key] = draw(values)
    if "expand" not in args and draw(st.integers(0, 3)) == 0:
        args["expand_filters"] = draw(st.integers(1, 40))  # the expanded width as written
    if draw(st.integers(0, 3)) == 0:  # the squeeze written out: a width or a rounded ratio, its own activation, gate
        se = {"filters": draw(st.integers(1, 12))} if draw(st.booleans()) else {
            "ratio": draw(st.sampled_from([0.25, 0.5])), "divisor": draw(st.sampled_from([4, 8]))}
        if draw(st.booleans()):
            se["activation"] = draw(st.sampled_from(["relu", "hard_swish"]))
        if draw(st.booleans()):
            se["gate"] = draw(st.sampled_from(["sigmoid", "hard_sigmoid"]))
        args["se"] = se
    _kernels(draw, args)
    if draw(st.integers(0, 2)) == 0:
        args["filters"] = state["c"]  # a skip connection when the stride is 1
    stride = _hw(args.get("stride", 1))
    state["size"] = [_out(n, 1, s, 1, "same") for n, s in zip(state["size"], stride)]
    state["jump"] = [j * s for j, s in zip(state["jump"], stride)]
    state["c"] = args["filters"]
    return args


def _entries(draw, state, depth, names, same_only=False, min_size=0, keep_shape=False):
    """A list of layer entries after a tensor of `state`; blocks nest to depth 2."""
    out = []
    start = dict(state, size=list(state["size"]))
    kinds = PLAIN + (["residual", "parallel", "mbconv", "se"] if depth < 2 else ["se"])
    for _ in range(draw(st.integers(min_size, 4 if depth == 0 else 2))):
        kind = draw(st.sampled_from(kinds))
        repeat = draw(st.sampled_from([1, 1, 1, 2, 3]))
        if keep_shape and kind in ("sepconv", "conv", "depthwise", "pointwise", "dense", "maxpool", "avgpool", "mbconv",
                                   "residual", "parallel", "zeropad", "crop"):
            kind = "batchnorm"  # an identity shortcut needs a body that keeps the shape
        if same_only and kind in ("zeropad", "crop"):
            kind = "dropout"  # a block's branches and bodies match by their strides alone
        if kind == "shuffle" and state["c"] < 2:
            kind = "layernorm"
        if kind in ("residual", "parallel"):
            args, stride, c = (_residual if kind == "residual" else _parallel)(draw, state, depth, names)
            if c != state["c"] or max(stride) > 1:
                repeat = 1  # only a block that maps a shape to itself is repeated (a copy takes its output)
            for _ in range(repeat):
                state["size"] = [_out(n, 1, s, 1, "same") for n, s in zip(state["size"], stride)]
                state["jump"] = [j * s for j, s in zip(state["jump"], stride)]
                state["c"] = c
        elif kind == "mbconv":
            args = _mbconv(draw, state)
            repeat = 1
        elif kind == "se":
            how = draw(st.integers(0, 2))
            args = ({"ratio": draw(st.sampled_from([0.1, 0.25, 0.5, 1.0]))} if how == 0 else
                    {"filters": draw(st.integers(1, 12))} if how == 1 else
                    {"ratio": draw(st.sampled_from([0.25, 0.5])), "divisor": draw(st.sampled_from([4, 8]))})
            if draw(st.booleans()):
                args["gate"] = draw(st.sampled_from(["sigmoid", "hard_sigmoid"]))
            if draw(st.booleans()):
                args["activation"] = draw(st.sampled_from(["relu", "swish"]))
            _kernels(draw, args)
        else:
            args = _plain(draw, kind, state, repeat, same_only=same_only)
        if repeat > 1:
            args["repeat"] = repeat
        if draw(st.integers(0, 4)) == 0:
            name = f"layer{len(names)}"
            names.add(name)
            args["name"] = name
        out.append({kind: args})
    if keep_shape and state["c"] != start["c"]:
        out.append({"pointwise": {"filters": start["c"]}})
        state["c"] = start["c"]
    return out


def _named_merges(draw, layers, state, input_state):
    """Named tensors at the top level: the last entry's output read again by 1-3 1x1 convolutions of its width
    (`from:` its name), then merged with them by a standalone `add`, `multiply` or `concat` (with the model's
    `input` too when it lines up: same size, jump 1). Updates the state (a concat's channels)."""
    last = layers[-1] if layers else None
    args = last[next(iter(last))] if last else None
    if not isinstance(args, dict):
        return layers
    args.setdefault("name", "last")
    c, n = state["c"], draw(st.integers(1, 3))
    extra = [{"pointwise": {"filters": c, "from": args["name"], "name": f"side{j}"}} for j in range(n)]
    merge = draw(st.sampled_from(["add", "multiply", "concat"]))
    names = [args["name"], *[f"side{j}" for j in range(n)]]
    if merge == "concat":
        state["c"] = c * (n + 1)
        if draw(st.booleans()) and state["size"] == input_state["size"] and state["jump"] == [1, 1]:
            names.append("input")
            state["c"] += input_state["c"]
    return layers + extra + [{merge: names}]


@st.composite
def valid_specs(draw, blocks=True):
    """(spec as a dict, ready for yaml.safe_dump); with `blocks`, residual / parallel / mbconv / se entries too."""
    h, w, c = draw(st.integers(8, 64)), draw(st.integers(8, 64)), draw(st.integers(1, 4))
    classes = draw(st.integers(1, 20))
    state = {"size": [h, w], "c": c, "jump": [1, 1]}
    start = dict(state, size=list(state["size"]))
    layers = _entries(draw, state, 0 if blocks else 2, set())
    if not blocks:
        layers = [e for e in layers if next(iter(e)) in PLAIN]
    elif draw(st.integers(0, 2)) == 0:
        layers = _named_merges(draw, layers, state, start)
    user = _user_block(draw, state, layers) if blocks and draw(st.integers(0, 2)) == 0 else None
    head = draw(st.sampled_from(["gap", "dense_gap", "dense_flatten"]))
    pool = draw(st.sampled_from(["gap", "gap", "gmp"]))  # global average or max pooling
    if head == "gap":
        layers.append({"sepconv": {"filters": classes, "kernel": draw(st.integers(1, 3)), "padding": "same"}})
        if draw(st.booleans()):
            layers += [{pool: {"keepdims": True}}, {"flatten": {}} if draw(st.booleans()) else {"reshape": [classes]}]
        else:
            layers.append({pool: {}})
    else:
        layers.append({pool if head == "dense_gap" else "flatten": {}})
        layers.append({"dense": {"units": classes, "bias": draw(st.booleans())}})
    if draw(st.booleans()):
        layers.append({"activation": "softmax"})
    return {"name": "random", "input": [h, w, c], "classes": classes, "layers": layers,
            **({"blocks": user} if user else {})}


def _user_block(draw, state, layers):
    """A kind of your own (`blocks:`) whose body keeps the shape, used 1-3 times in a row (as many uses or one
    `repeat`); its first width is an argument (`$width`), given at the use (as a mapping or the main argument's
    shorthand) or left to its default. Appends the uses to `layers`; returns the `blocks` mapping."""
    body = _entries(draw, state, 1, set(), min_size=1, keep_shape=True)
    args = {}
    for e in body:
        a = e[next(iter(e))]
        if isinstance(a, dict) and type(a.get("filters")) is int:
            args["width"] = a["filters"]
            a["filters"] = "$width"
            break
    times, how = draw(st.integers(1, 3)), draw(st.sampled_from(["uses", "repeat"]))
    for _ in range(1 if how == "repeat" else times):
        use = draw(st.sampled_from(["default", "mapping", "shorthand"])) if args else "default"
        arg = (None if use == "default" else args["width"] if use == "shorthand" else {"width": args["width"]})
        if how == "repeat" and times > 1:
            arg = dict(arg or {}, repeat=times) if not isinstance(arg, int) else {"width": arg, "repeat": times}
        layers.append({"unit": arg})
    return {"unit": {"args": args, "body": body}}


@st.composite
def targeted_specs(draw):
    """A valid spec with `rules.target`: a named part (sepspec/targets.py) whose budget it may or may not fit."""
    from sepspec.targets import TARGETS

    spec = draw(valid_specs())
    return {**spec, "rules": {"target": draw(st.sampled_from(sorted(TARGETS)))}}


def dump(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False)


_JUNK = st.one_of(st.booleans(), st.text(max_size=6), st.floats(allow_nan=False, allow_infinity=False),
                  st.integers(-5, 10**12), st.none(), st.lists(st.integers(-2, 3), max_size=4))


@st.composite
def invalid_specs(draw):
    """(yaml text, what was broken) for a spec that must be rejected."""
    spec = draw(valid_specs())
    how = draw(st.sampled_from(["shrink", "classifier", "unknown_key", "wrong_type", "unknown_kind", "merge_shape",
                                "projection", "nested_key", "groups", "branches_differ", "branch_key"]))
    layers = spec["layers"]
    c = spec["input"][2]
    if how == "groups":  # groups that cannot divide the channels: a grouped 1x1, a shuffle, a channel split
        form = draw(st.sampled_from(["pointwise", "shuffle", "sizes"]))
        if form == "pointwise":
            layers.insert(0, {"pointwise": {"filters": 5, "groups": draw(st.integers(2, 4))}})
        elif form == "shuffle":
            layers.insert(0, {"shuffle": c + draw(st.integers(1, 3))})
        else:
            layers.insert(0, {"parallel": {"split": "channels", "sizes": [c, draw(st.integers(1, 3))],
                                           "branches": [[], []]}})
    elif how == "branches_differ":  # one branch strides, the other does not
        layers.insert(0, {"parallel": {"branches": [[{"sepconv": {"filters": 2, "stride": 2}}], []],
                                       "merge": draw(st.sampled_from(["concat", "add", "multiply"]))}})
        spec["input"][0] = max(spec["input"][0], 2)
    elif how == "branch_key":  # an unknown key inside a branch, maybe inside a residual's body
        inner = {"depthwise": {"x_" + draw(st.text(alphabet="abcxyz", min_size=1, max_size=5)): 1}}
        block = {"parallel": {"branches": [[], [inner]]}}
        if draw(st.booleans()):
            block = {"residual": {"body": [block]}}
        layers.insert(0, block)
    elif how == "merge_shape":  # an identity shortcut around a body that changes the channels
        layers.insert(0, {"residual": {"body": [{"pointwise": spec["input"][2] + draw(st.integers(1, 3))}],
                                       "shortcut": "identity"}})
    elif how == "projection":  # a body with valid padding: a 1x1 projection cannot shrink the image
        layers.insert(0, {"residual": {"body": [{"sepconv": {"filters": 2, "kernel": 3, "padding": "valid"}}],
                                       "shortcut": draw(st.sampled_from(["auto", "project"]))}})
    elif how == "nested_key":  # an unknown key inside a block's body, maybe two blocks deep
        inner = {"sepconv": {"filters": 2, "x_" + draw(st.text(alphabet="abcxyz", min_size=1, max_size=5)): 1}}
        if draw(st.booleans()):
            inner = {"residual": {"body": [inner]}}
        layers.insert(0, {"residual": {"body": [inner]}})
    elif how == "shrink":  # a valid-padding window larger than the image
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
                            "maxpool", "filters", "kernel", "gap", "gmp", "leaky_relu", "kernel_init", "l2", "prelu",
                            "shared_axes", "normalize", "extends", "epochs", "x"])
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(keys, inner, max_size=5)), max_leaves=20)
