"""The rules: invariants over a `Report`, each with a stable code, reported at its YAML position.

Codes (the README lists them all): SEP0xx YAML, SEP1xx schema, SEP2xx rules over the analysis.
"""

from __future__ import annotations

from typing import Callable, Iterator

from . import layers as L
from .diagnostics import Diagnostic, dotted
from .graph.analysis import INPUT, Report, Row
from .graph.memory import estimate
from .layers import axes, dims
from .spec.kinds import CONVOLUTIONS, Origin, walk
from .spec.source import Source
from .targets import TARGETS

RULES: dict[str, tuple[str, str]] = {}  # code -> (rule, one line of meaning)
_CHECKS: list[Callable[[Report, Source], Iterator[Diagnostic]]] = []


def rule(code: str, name: str, meaning: str):
    def register(fn):
        RULES[code] = (name, meaning)
        _CHECKS.append(fn)
        return fn
    return register


def _entry_pos(src: Source, origin: Origin, *arg):
    """Where an entry (or one of its arguments, `arg`) is written."""
    if arg:
        written = origin.path + (origin.kind,)
        if arg[0] == origin.block.main and written + arg not in src.values and written + arg[1:] in src.values:
            return src.pos(written + arg[1:])  # the main argument in shorthand: `add: [a, b]`'s item b
        return src.pos(written + arg)
    return src.pos(origin.path)


def _rule_pos(src: Source, name: str, fallback_entry: tuple | None = None):
    """A whole-spec rule is reported at its own key; a built-in limit at the place that breaks it."""
    if ("rules", name) in src.keys:
        return src.pos(("rules", name), key=True)
    return src.pos(fallback_entry or ())


@rule("SEP201", "min_receptive_field",
      "the last layer before global pooling sees less than `rules.min_receptive_field` pixels")
def _receptive_field(rep, src):
    need = rep.spec.rules.min_receptive_field
    row = rep.rf_row()
    if need is None or rep.failure or row is None:
        return
    if min(row.rf) < need:
        yield Diagnostic.at(_rule_pos(src, "min_receptive_field"), "SEP201", "min_receptive_field",
                            f"receptive field {axes(row.rf)} < min_receptive_field {need} "
                            f"(at {row.name}, the last layer before global pooling)", layer=row.name,
                            hint="add a layer, a larger kernel, dilation or pooling before it")


@rule("SEP202", "separable_only", "a `conv` or `dense` layer in a spec with `rules.separable_only: true`")
def _separable_only(rep, src):
    if not rep.spec.rules.separable_only:
        return
    for o in walk(rep.spec.layers):
        kind = o.kind
        if kind in ("conv", "dense"):
            yield Diagnostic.at(src.pos(o.path + (kind,), key=True), "SEP202", "separable_only",
                                f"{dotted(o.path)}: `{kind}` is not allowed with separable_only: true",
                                layer=dotted(o.path),
                                hint="use sepconv (or depthwise + pointwise)" if kind == "conv"
                                else "end with sepconv(classes) + gap")


@rule("SEP203", "max_params", "more parameters than `rules.max_params` (100,000,000 when the spec sets none)")
def _max_params(rep, src):
    limit = rep.spec.rules.max_params
    if rep.params > limit:
        biggest = max(rep.rows, key=lambda r: r.params)
        yield Diagnostic.at(_rule_pos(src, "max_params", biggest.origin.path), "SEP203", "max_params",
                            f"{rep.params:,} parameters > max_params {limit:,} (largest: {biggest.name}, "
                            f"{biggest.params:,})", layer=biggest.name)


@rule("SEP204", "max_macs", "more multiply-accumulates per image than `rules.max_macs`")
def _max_macs(rep, src):
    limit = rep.spec.rules.max_macs
    if limit is not None and rep.macs > limit:
        biggest = max(rep.rows, key=lambda r: r.macs)
        yield Diagnostic.at(_rule_pos(src, "max_macs"), "SEP204", "max_macs",
                            f"{rep.macs:,} MACs > max_macs {limit:,} (largest: {biggest.name}, {biggest.macs:,})",
                            layer=biggest.name)


@rule("SEP215", "max_flash_bytes", "the int8 model's weight buffers (`show --memory`) exceed `rules.max_flash_bytes`")
def _max_flash(rep, src):
    limit = rep.spec.rules.max_flash_bytes
    if limit is None or rep.failure:
        return
    d = estimate(rep)
    if d.flash_bytes > limit:
        layer, (flash, _) = max(d.by_layer().items(), key=lambda kv: kv[1][0])
        yield Diagnostic.at(_rule_pos(src, "max_flash_bytes"), "SEP215", "max_flash_bytes",
                            f"{d.flash_bytes:,} bytes of int8 weights > max_flash_bytes {limit:,} (largest: {layer}, "
                            f"{flash:,})", layer=layer, hint="fewer or narrower 1x1 convolutions hold most weights")


@rule("SEP216", "max_activation_bytes", "the int8 model's activation arena at batch 1 (`show --memory`) exceeds "
      "`rules.max_activation_bytes`")
def _max_activations(rep, src):
    limit = rep.spec.rules.max_activation_bytes
    if limit is None or rep.failure:
        return
    d = estimate(rep)
    if d.arena_bytes > limit:
        at = d.peak_at
        yield Diagnostic.at(_rule_pos(src, "max_activation_bytes"), "SEP216", "max_activation_bytes",
                            f"{d.arena_bytes:,} bytes of int8 activations > max_activation_bytes {limit:,} (peak while "
                            f"{at.layer or at.name} runs: {d.peak_bytes:,} bytes alive)", layer=at.layer or None,
                            hint="pool earlier or narrow the layers at full resolution")


@rule("SEP219", "target", "the int8 model does not fit `rules.target`'s flash (its weights) or RAM (its activation "
      "arena)")
def _target(rep, src):
    name = rep.spec.rules.target
    if name is None or rep.failure:
        return
    flash, ram, part = TARGETS[name]
    d = estimate(rep)
    over = []
    if d.flash_bytes > flash:
        over.append(f"{d.flash_bytes:,} bytes of int8 weights > its {flash // 1024:,} KB flash")
    if d.arena_bytes > ram:
        over.append(f"{d.arena_bytes:,} bytes of activations > its {ram // 1024:,} KB RAM")
    if over:
        yield Diagnostic.at(_rule_pos(src, "target"), "SEP219", "target", f"does not fit {name}: " + "; ".join(over),
                            hint=f"{part}; `show --memory` says which layers hold the bytes")


def _failure(code: str, rule_name: str, hint: str | None = None):
    def fn(rep, src):
        f = rep.failure
        if f and f.code == code:
            yield Diagnostic.at(_entry_pos(src, f.origin, *f.at), code, rule_name, f.message, layer=f.layer or None,
                                hint=hint)
    return fn


# Found by the analysis as it builds the graph (it stops at the first); reported at the entry or argument.
rule("SEP205", "spatial_size", "a layer's output would be smaller than 1x1")(
    _failure("SEP205", "spatial_size", "use padding: same, a smaller window or crop, or fewer poolings before it"))
rule("SEP206", "input_rank", "a layer that needs an image (h, w, c) comes after flatten/gap, or a dropout's "
     "`noise_shape` does not fit its input")(
    _failure("SEP206", "input_rank"))
rule("SEP107", "names", "two layers would get the same name")(
    _failure("SEP107", "names", "give the layer a different `name:`"))
rule("SEP211", "merge_shape", "a block's branches end in shapes its merge cannot join (add, multiply: equal shapes; "
     "concat: equal height and width)")(
    _failure("SEP211", "merge_shape", "make the branches end in the same size (padding: same, equal strides), or "
             "use shortcut: project in a residual"))
rule("SEP212", "merge_jump",
     "a block's branches have the same size but different jumps (strides), so their pixels do not line up")(
    _failure("SEP212", "merge_jump", "give both branches the same total stride"))
rule("SEP213", "projection", "a `project` shortcut (a strided 1x1 convolution) cannot produce the body's output size")(
    _failure("SEP213", "projection", "use padding: same in the body, or write the shortcut as a list of layers"))
rule("SEP220", "names", "`from:` or a merge names a tensor that is not visible there: not an earlier entry of its "
     "list or of an enclosing one, not an earlier Keras layer, not `input`")(
    _failure("SEP220", "names", "name an entry written before this one (or `input`)"))
rule("SEP221", "names", "a tensor that nothing reads: a later `from:` or merge skips an entry's output, so the "
     "Keras model would not contain it")(
    _failure("SEP221", "names", "read it in a merge, or remove the entry"))
rule("SEP222", "reshape", "a `reshape` whose target does not hold the input's values, or that would move pixels "
     "(a spec reshapes one pixel's channels, or flattens)")(
    _failure("SEP222", "reshape", "give a target of the same number of values: [c], [1, 1, c], or one axis"))
rule("SEP223", "per_channel", "a per-channel constant (`rescale`'s scale or offset, `normalize`'s mean or variance) "
     "whose number of values is not the input's channels")(
    _failure("SEP223", "per_channel", "one value for all channels, or one per channel"))
rule("SEP218", "channel_groups", "channel groups that do not fit the channels: `groups` of a convolution or "
     "`shuffle` not dividing them, a parallel block's `sizes` not summing to them (or equal groups not dividing them)")(
    _failure("SEP218", "channel_groups"))
rule("SEP214", "max_layers", "the spec's longest input-to-output path is more than 900 Keras layers deep (Keras fails "
     "on much deeper models), or it expands to more than 5,000 layers in all")(
    _failure("SEP214", "max_layers", "fewer or smaller repeats, or blocks side by side instead of one after another"))


@rule("SEP207", "classifier_output", "the model's final output shape is not `[classes]`")
def _classifier_output(rep, src):
    if rep.failure:
        return
    want = (rep.spec.classes,)
    if rep.output != want:
        last = rep.rows[-1]
        yield Diagnostic.at(_entry_pos(src, last.origin), "SEP207", "classifier_output",
                            f"the model's output is {list(rep.output)}, expected [{rep.spec.classes}] "
                            f"(classes: {rep.spec.classes})", layer=last.name,
                            hint="end with sepconv(classes filters) + gap + softmax"
                            if len(rep.output) == 3 else None)


def _gap_classifier(rep: Report) -> tuple[Row | None, list[Row]]:
    """(the weighted layer feeding the classifier's gap, the layers between them) or (None, []).

    Followed back from the gap through single-input layers; a merge (a block's Add) on the way means the gap
    is not fed by one convolution, and then only SEP207 applies. Not on a report the analysis stopped: its last
    gap may be a squeeze-and-excitation's (EfficientNetV2L stopped at SEP214 drew SEP209)."""
    pool = rep.classifier_pool()
    if rep.failure or pool is None or any(r.layer.weighted for r in rep.rows[rep.rows.index(pool):]):
        return None, []  # no gap, or a dense head after it: not a gap classifier
    between: list[Row] = []
    row = rep.row(pool.inputs[0])
    while row is not None and len(row.inputs) == 1:
        if row.layer.weighted and not isinstance(row.layer, L.ChannelScale):  # a scale keeps the width before it
            return row, between
        between.insert(0, row)
        row = rep.row(row.inputs[0])
    return None, []


@rule("SEP208", "classifier_width", "the convolution feeding the classifier's gap does not have `classes` filters")
def _classifier_width(rep, src):
    conv, _ = _gap_classifier(rep)
    if conv is not None and conv.output[-1] != rep.spec.classes:
        arg = {"sepconv": "filters", "conv": "filters", "pointwise": "filters", "mbconv": "filters",
               "depthwise": "depth_multiplier"}.get(conv.origin.kind)
        yield Diagnostic.at(_entry_pos(src, conv.origin, *([arg] if arg else [])), "SEP208", "classifier_width",
                            f"{conv.name} feeds global pooling with {conv.output[-1]} channels, "
                            f"expected classes = {rep.spec.classes}", layer=conv.name,
                            hint=f"set filters: {rep.spec.classes}")


@rule("SEP209", "classifier_head", "batch norm or an activation between the last convolution and the classifier's gap")
def _classifier_head(rep, src):
    if not rep.spec.rules.classifier_head:
        return
    conv, between = _gap_classifier(rep)
    for r in between:
        if isinstance(r.layer, (L.BatchNormalization, L.Activation)):
            kind = r.origin.kind
            arg = ("norm" if isinstance(r.layer, L.BatchNormalization) else "activation") \
                if r.origin == conv.origin and kind in CONVOLUTIONS + ("dense",) else None
            yield Diagnostic.at(_entry_pos(src, r.origin, *([arg] if arg else [])), "SEP209", "classifier_head",
                                f"{r.name} ({r.layer.keras}) sits between {conv.name} and global pooling; "
                                f"the class scores must reach gap unchanged", layer=r.name,
                                hint=("norm: none, activation: none on the last convolution" if kind in CONVOLUTIONS
                                      else "remove this layer") + ", or rules: {classifier_head: false} where the "
                                "network means it (SqueezeNet's ReLU)")


@rule("SEP210", "keras_args", "an argument combination Keras refuses (Conv2D with both stride > 1 and dilation > 1)")
def _keras_args(rep, src):
    for o in walk(rep.spec.layers):
        block = o.block
        if o.kind == "conv" and max(block.stride) > 1 and max(block.dilation) > 1:
            yield Diagnostic.at(_entry_pos(src, o, "dilation"), "SEP210", "keras_args",
                                f"{dotted(o.path)}: conv with stride {axes(block.stride)} and dilation "
                                f"{axes(block.dilation)}: Keras's Conv2D refuses stride > 1 with dilation > 1",
                                layer=dotted(o.path), hint="use stride 1, or dilation 1, or sepconv")


@rule("SEP217", "unproductive_ratio", "a warning: a layer with a window (k > 1) whose input already sees at least "
      "`rules.unproductive_ratio` (2) times the image's side before global pooling: its window adds only padding")
def _unproductive(rep, src):
    ratio = rep.spec.rules.unproductive_ratio
    pool = rep.classifier_pool()
    if ratio is None or rep.failure:
        return
    image = rep.spec.input[:2]
    end = rep.rows.index(pool) if pool is not None else len(rep.rows)
    seen = set()
    for r in rep.rows[:end]:
        win = r.layer.window()
        if win is None or max(win[0]) <= 1 or r.origin.path in seen:
            continue
        if all(rf >= ratio * side for rf, side in zip(r.rf_in, image)):
            seen.add(r.origin.path)
            times = min(rf / side for rf, side in zip(r.rf_in, image))
            yield Diagnostic.at(_entry_pos(src, r.origin), "SEP217", "unproductive_ratio",
                                f"{dotted(r.origin.path)} ({r.name}): its input already sees {dims(r.rf_in)} "
                                f"pixels of a {dims(image)} image ({times:.1f}x, unproductive_ratio {ratio:g}), so "
                                f"its {dims(win[0])} window adds only padding", layer=r.name, severity="warning",
                                hint="remove it, move it before a pooling layer, or make it a 1x1 (pointwise) layer")


@rule("SEP224", "input_scale", "a warning: the network rescales its own pixels (its image goes first through `rescale` "
      "or `normalize`) while the trainer normalises them too (`train.normalize` other than `pixels`)")
def _input_scale(rep, src):
    norm = rep.spec.train.normalize
    first = [r for r in rep.rows if INPUT in r.inputs]
    if norm == "pixels" or rep.failure or not first or any(r.origin.kind not in ("rescale", "normalize")
                                                              for r in first):
        return
    r = first[0]
    given = "(x / 255 - mean) / std per channel" if norm == "per_channel" else "x / 255"
    pos = src.pos(("train", "normalize")) if ("train", "normalize") in src.values else src.pos(r.origin.path)
    yield Diagnostic.at(pos, "SEP224", "input_scale",
                        f"{r.name} ({r.origin.kind}) rescales the pixels the trainer already normalised "
                        f"(train.normalize: {norm}: the model gets {given})", layer=r.name, severity="warning",
                        hint="train: {normalize: pixels} hands the model the pixel values 0-255, as Keras's "
                             "Rescaling(1/255) expects")


def violations(rep: Report) -> list[Diagnostic]:
    """Every rule's violations, in the order of the codes, at the positions the spec was loaded from."""
    out: list[Diagnostic] = []
    src = rep.spec.source
    for fn in _CHECKS:
        out.extend(fn(rep, src))
    return out
