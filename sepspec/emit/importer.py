"""`sepspec import`: a Keras model -> a spec that compiles back to the same network (the other way of `emit`).

Each Keras layer becomes the entry that compiles to it; a weighted layer (Conv2D, SeparableConv2D,
DepthwiseConv2D, Dense) takes the Dropout, BatchNormalization and Activation after it into its tail when they
follow in the seed's order and nothing else reads between them; an entry that does not read the previous entry's
output says `from:`; Add, Multiply and Concatenate become merges over names. Names are kept where they are valid
spec names and not what the spec would generate anyway. The spec is then checked, and its parameters (total,
trainable, non-trainable) and every layer's output shape compared with the model's: an import that would not be
exact is an error, never a file. A layer that the format cannot express is refused by name and class.

Here: reading the graph, and the checks; which entry a layer or a group of layers is: `layerread`; the YAML: `writer`.
"""

from __future__ import annotations

from ..diagnostics import cause
from ..spec.fields import ACTIVATIONS
from . import recipe
from .layeroptions import Unkept
from .layerread import (
    TAILED,
    Merge,
    ScaledAdd,
    entry,
    fold_tail,
    inner_activation,
    mbconv,
    shuffle,
    squeeze_excite,
    stand_ins,
    unkept,
)
from .writer import Entry, ImportError_, document


def _functional(model):
    """A Sequential model as the functional graph of the same layers (Keras 3 leaves its input out of `layers`)."""
    if any(type(layer).__name__ == "InputLayer" for layer in model.layers):
        return model
    from ..lazy import import_keras

    try:
        return import_keras().Model(model.inputs, model.outputs, name=model.name)
    except Exception:  # noqa: BLE001 - Keras says it in many ways: no input shape yet
        raise ImportError_(f"{model.name}: it has no input shape yet; build it (start it with keras.Input) "
                           f"before importing") from None


def _nested(op) -> bool:
    """Is `op` a functional or Sequential model used as a layer (ConvNeXt's stem)? Its layers are imported in its
    place."""
    return any(c.__name__ in ("Functional", "Sequential") for c in type(op).__mro__)


def _flat(model) -> tuple[list, dict, dict, list]:
    """(the operations of a functional model in the graph's order, each model used in it as a layer replaced by its
    own operations; {name: the name it stands for}: a nested model's input layer for what the model reads, the
    model for the operation that writes its output, an augmentation layer for what it reads; {name: the
    operation's nodes in its graph} (a loaded model's nested Sequential holds a node of each of its builds; one is
    its graph's); the augmentation layers, which are the trainer's, not the network's (`recipe`))."""
    ops, alias, seen, nodes_of, augmentations = [], {}, set(), {}, []

    def walk(m, feed: str | None) -> None:
        fn = _functional(m)
        ours = {id(n) for level in fn._nodes_by_depth.values() for n in level}
        for op in fn.operations:
            nodes_of[op.name] = [n for n in op._inbound_nodes if id(n) in ours]
            if feed is not None and type(op).__name__ == "InputLayer":
                alias[op.name] = feed
                continue
            if op.name in seen:
                raise ImportError_(f"{model.name}: two layers named {op.name} (one inside a model used as a layer); "
                                   f"a spec's names are unique")
            seen.add(op.name)
            nodes = nodes_of[op.name]
            if recipe.is_augmentation(op) and len(nodes) == 1 and len(nodes[0].input_tensors) == 1:
                alias[op.name] = nodes[0].input_tensors[0]._keras_history.operation.name
                augmentations.append(op)
                continue
            if not _nested(op):
                ops.append(op)
                continue
            if len(nodes) != 1 or len(nodes[0].input_tensors) != 1 or len(op.outputs) != 1:
                raise ImportError_(f"{op.name} ({type(op).__name__}): a model used as a layer is imported where it is "
                                   f"used once, on one input, with one output")
            walk(op, nodes[0].input_tensors[0]._keras_history.operation.name)
            alias[op.name] = op.outputs[0]._keras_history.operation.name

    walk(model, None)
    return ops, alias, nodes_of, augmentations


def _graph(model):
    """(layers in order, {layer name: [input layer names]}, the output's name, the augmentation layers) of a
    one-input functional model: a model used in it as a layer stands as its layers; a hard sigmoid written on
    tensors as one Activation layer, a sum or product of two tensors as an Add or Multiply layer; an augmentation
    layer as what it reads, where it reads the image (through Rescaling and Normalization only)."""
    keras_inputs = getattr(model, "inputs", None) or []
    if len(keras_inputs) != 1 or len(model.outputs) != 1:
        raise ImportError_(f"{model.name}: {len(keras_inputs)} inputs and {len(model.outputs)} outputs; sepspec "
                           f"imports a model of one image input and one output")
    ops, alias, nodes_of, augmentations = _flat(model)

    def source(t) -> str:
        name = t._keras_history.operation.name
        while name in alias:
            name = alias[name]
        return name

    by_name = {op.name: op for op in ops}
    for aug in augmentations:  # it reads the image: only per-pixel preprocessing between them
        src = source(nodes_of[aug.name][0].input_tensors[0])
        while src in by_name and type(by_name[src]).__name__ in recipe.PREPROCESSING:
            src = source(nodes_of[src][0].input_tensors[0])
        if type(by_name[src]).__name__ != "InputLayer":
            raise ImportError_(f"{aug.name} ({type(aug).__name__}) after {src} ({type(by_name[src]).__name__}): an "
                               f"augmentation layer is imported where it reads the image (the trainer augments the "
                               f"images; Rescaling and Normalization may come before it)")

    readers: dict[str, list] = {}
    for op in ops:
        for n in nodes_of[op.name]:
            for t in n.input_tensors:
                readers.setdefault(source(t), []).append(op)
    fused = stand_ins(ops, readers)
    from ..lazy import import_keras

    names = {op.name for op in ops if isinstance(op, import_keras().layers.Layer)}
    known = names | set(fused)
    other = [f"{op.name} ({type(op).__name__})" for op in ops if op.name not in known]
    if other:
        raise ImportError_(f"{model.name}: no spec entry for the operations written on tensors (not Keras layers): "
                           f"{', '.join(other[:8])}{' ...' if len(other) > 8 else ''}")
    layers, inputs = [], {}
    for layer in ops:  # in the graph's order, operations written on tensors included
        if layer.name in fused:  # its stand-in: a merge where it is; a hard sigmoid at its ReLU, the one layer of it
            if layer.name not in names and not isinstance(fused[layer.name], Merge):
                continue
            layer = fused[layer.name]
        nodes = layer._inbound_nodes if layer.name in fused else nodes_of[layer.name]
        if len(nodes) > 1:
            raise ImportError_(f"{layer.name} ({type(layer).__name__}): used {len(nodes)} times (shared weights); a "
                               f"spec's layers are used once each")
        srcs = [source(t) for t in (nodes[0].input_tensors if nodes else [])]
        srcs = [fused[n].name if n in fused else n for n in srcs]
        if isinstance(layer, ScaledAdd):  # x + up * scale: up's Rescaling first, then the Add of x and it
            inputs[layer.scaled.name] = [srcs[1]]
            layers.append(layer.scaled)
            srcs = [srcs[0], layer.scaled.name]
        inputs[layer.name] = srcs
        layers.append(layer)
    output = source(model.outputs[0])
    return layers, inputs, (fused[output].name if output in fused else output), augmentations


def from_keras(model, source: str = "", names: dict | None = None, keep_names: bool = True,
               training: dict | None = None, notes: list | None = None) -> str:
    """The spec (YAML text) of a Keras model; an error (ImportError_) where it cannot be exact. `names`, if given,
    is filled with each model layer's name -> the name of the layer the spec compiles it to (`transfer_weights`).
    `keep_names=False`: the spec names its layers itself, so that every block is recognised (a chosen name is
    never in the way) and alike blocks fold into `repeat:`. `training`: the optimizer and loss the model was
    compiled with (`recipe.compile_config` of its file; a compiled model's own by default); `notes`, if given, is
    filled with what of its training the spec does not keep (`recipe`)."""
    training = recipe.of_model(model) if training is None else training
    model = _functional(model)
    layers, inputs, output, augmentations = _graph(model)
    followers: dict[str, list] = {}  # layer name -> the layers that read it
    for layer in layers:
        for src in inputs[layer.name]:
            followers.setdefault(src, []).append(layer)
    first = layers[0]
    if type(first).__name__ != "InputLayer":
        raise ImportError_(f"{model.name}: its first layer is {type(first).__name__}, not an input")
    shape = tuple(None if v is None else int(v) for v in model.inputs[0].shape[1:])
    if len(shape) != 3 or any(v is None for v in shape):
        raise ImportError_(f"{model.name}: input shape {shape}; sepspec imports an image input of fixed (h, w, c) "
                           f"(give one: --input HxW)")
    shapes = {first.name: shape}
    entries: list[tuple] = []  # (kind, args, keras name of its output, its own keras name, keras names it reads)
    out_of: dict[str, str] = {first.name: "input"}  # keras layer -> the keras layer whose name its entry carries
    unwritable = {layer.name: f"{type(layer).__name__} with {why}" for layer in layers[1:]
                  if (why := unkept(layer)) is not None}
    refused = [f"{name} ({what})" for name, what in unwritable.items()]
    members: set[str] = set(unwritable)  # layers taken (into a block or a tail) or refused
    for layer in layers[1:]:
        shapes[layer.name] = tuple(int(v) for v in layer.output.shape[1:])
        if layer.name in members:
            continue
        srcs = inputs[layer.name]
        shape_in = shapes.get(srcs[0], ()) if srcs else ()
        try:
            block = (mbconv(layer, followers, inputs) or squeeze_excite(layer, followers, inputs, keep_names)
                     or shuffle(layer, followers, inputs))
        except Unkept:  # a layer of it has an option no entry writes: refused above
            block = None
        if block is not None:  # (layer, suffix): the block's layer <name><suffix> computes what that layer does
            kind, args, parts = block
            for t, _ in parts:
                members.add(t.name)
                shapes[t.name] = tuple(int(v) for v in t.output.shape[1:])
            last = parts[-1][0].name
            entries.append((kind, args, last, layer.name, srcs, [(t.name, sfx) for t, sfx in parts]))
            out_of[last] = layer.name
            continue
        made = entry(layer, shape_in)
        if made is None:
            refused.append(f"{layer.name} ({type(layer).__name__})")
            continue
        kind, args = made
        tailed = type(layer).__name__ in TAILED and kind != "scale"  # a weighted layer whose entry has a tail
        inner = inner_activation(layer) if tailed else "linear"
        if inner != "linear":
            if inner not in ACTIVATIONS:
                refused.append(f"{layer.name} ({type(layer).__name__} with activation {inner})")
                continue
            args["activation"] = inner
        last, parts = layer.name, [(layer.name, "")]
        if tailed and inner == "linear":
            last = fold_tail(layer, followers, inputs, args, members, parts)
        entries.append((kind, args, last, layer.name, srcs, parts))
        out_of[last] = layer.name
    if refused:
        raise ImportError_(f"{model.name}: no spec entry for {', '.join(refused)}")
    if entries[-1][2] != output:
        raise ImportError_(f"{model.name}: its output is not its last layer; sepspec writes the output last")
    classes = {layer.name: getattr(layer, "keras_class", type(layer).__name__) for layer in layers}
    unnamed = {layer.name for layer in layers if getattr(layer, "unnamed", False)}  # a name made up here
    listed = [Entry(kind, args, last, own, list(srcs), list(parts), classes[own],
                    named=keep_names and own not in unnamed) for kind, args, last, own, srcs, parts in entries]
    train, kept_not = recipe.compiled(training)
    augment, more = recipe.augment(augmentations)
    train.update({"augment": augment} if augment else {})
    if followers.get(first.name) and all(type(f).__name__ in recipe.PREPROCESSING for f in followers[first.name]):
        train["normalize"] = "pixels"  # the model rescales the pixels itself
    if notes is not None:
        notes.extend(kept_not + more)

    def written(rules=None):
        return document(listed, out_of, {} if names is None else names, name=model.name, source=source,
                        shape=shape, classes=int(model.outputs[0].shape[-1]), params=int(model.count_params()),
                        train=train, notes=kept_not + more, rules=rules)

    doc = written()
    c = checked(doc)
    if any(d.code == "SEP209" for d in c.diagnostics):  # a network that activates its class scores before its gap
        doc = written({"classifier_head": False})       # means it (SqueezeNet)
        c = checked(doc)
    _check_exact(model, c)
    return doc


def checked(text: str, name: str = "<imported>"):
    """The imported YAML text, checked (`Checked`): what `_check_exact` compares and `import --weights` compiles."""
    from ..checked import check_spec
    from ..spec.load import load_source
    from ..spec.source import parse

    return check_spec(load_source(parse(text, name)), name)


def _check_exact(model, c) -> None:
    """The imported spec (`checked`) checks and compiles to the model's parameters and output shapes; else an
    error, no file."""
    import numpy as np

    errors = [d for d in c.diagnostics if d.severity == "error"]
    if errors:
        raise ImportError_(f"{model.name}: the imported spec does not check ({errors[0].code}: {errors[0].message})")
    rep = c.report
    t = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    n = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    if (rep.trainable, rep.non_trainable) != (t, n):
        raise ImportError_(f"{model.name}: the imported spec has {rep.trainable:,} + {rep.non_trainable:,} parameters, "
                           f"the model {t:,} + {n:,}; please report it")
    if tuple(rep.output) != tuple(int(v) for v in model.outputs[0].shape[1:]):
        raise ImportError_(f"{model.name}: the imported spec's output is {rep.output}, the model's "
                           f"{tuple(model.outputs[0].shape[1:])}; please report it")


def transfer_weights(model, compiled, names: dict) -> int:
    """Copy each weighted layer's weights of `model` into the layer of `compiled` (the imported spec's model) it
    became; how many layers. The two then compute the same function."""
    by_name = {layer.name: layer for layer in compiled.layers}
    n = 0
    for layer in _flat(model)[0]:
        if getattr(layer, "weights", None):
            target = by_name[names[layer.name]]  # of the same sizes; a LayerScale's (c,) is a scale's (1, 1, c, 1)
            target.set_weights([w.reshape(t.shape) for w, t in zip(layer.get_weights(), target.get_weights())])
            n += 1
    return n


# options Keras 2 writes for DepthwiseConv2D and SeparableConv2D that they inherit from its convolution and never
# use (their kernels have their own: `depthwise_initializer`, ...), and for its random image layers the kind of
# generator it draws with, which Keras 3 refuses when it reads them
KERAS2_UNUSED = ("groups", "kernel_initializer", "kernel_regularizer", "kernel_constraint", "rng_type")


def _keras2_classes(keras) -> dict:
    """Keras 3's DepthwiseConv2D, SeparableConv2D and random image layers, reading a Keras 2 `.h5` file's
    configuration of them: the layers made are Keras 3's own classes; only what Keras 2 wrote and did not use, or
    Keras 3 draws its own way, is left out."""
    out = {}
    augmentations = [getattr(keras.layers, n) for n in sorted(recipe.AUGMENTATIONS | {"RandomCrop"})
                     if hasattr(keras.layers, n)]
    for base in (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, *augmentations):
        def from_config(cls, config, base=base):
            return base.from_config({k: v for k, v in config.items() if k not in KERAS2_UNUSED})

        out[base.__name__] = type(base.__name__, (base,), {"from_config": classmethod(from_config)})
    return out


def at_input(model, shape: tuple):
    """The model rebuilt on an input of `shape` (h, w) or (h, w, c), with its weights: a model built for any image
    size (`keras.Input((None, None, 3))`) or never built (a Sequential without its input) has no shapes to check
    until it is given one. Its layers keep their names and options (`keras.models.clone_model`)."""
    from ..lazy import import_keras

    keras = import_keras()
    given = getattr(model, "inputs", None)
    channels = given[0].shape[-1] if given and len(given[0].shape) == 4 else None
    if len(shape) == 2:
        shape = (*shape, channels or 3)
    if channels is not None and shape[-1] != channels:
        raise ImportError_(f"{model.name}: --input {'x'.join(map(str, shape))}: the model takes {channels} channels")
    if isinstance(model, keras.Sequential) and not given:
        try:
            model.build((None, *shape))
        except Exception as e:  # noqa: BLE001 - a layer that cannot take this shape says so its own way
            raise ImportError_(f"{model.name}: cannot be built on {shape} ({cause(e)})") from None
        return model
    try:
        clone = keras.models.clone_model(model, input_tensors=keras.Input(shape))
    except Exception as e:  # noqa: BLE001
        raise ImportError_(f"{model.name}: cannot be rebuilt on {shape} ({cause(e)})") from None
    clone.set_weights(model.get_weights())
    return clone


def load_keras(source: str, args: dict | None = None):
    """The model `source` names: a .keras file, or a legacy .h5 / .hdf5 one (Keras 2's `model.save`), loaded in safe
    mode (no code from the file runs), `keras.applications.NAME` (built with `args`, weights=None), or
    `module:function` (your function, called with `args`)."""
    import importlib
    import os

    from ..lazy import import_keras

    keras = import_keras()
    args = dict(args or {})
    if source.endswith((".weights.h5", ".weights.json")):
        raise ImportError_(f"{source}: weights alone, not a model (a .keras or .h5 model file names its layers)")
    if source.endswith((".keras", ".h5", ".hdf5")):
        if not os.path.isfile(source):
            raise ImportError_(f"{source}: no such file")
        try:
            return keras.saving.load_model(source, safe_mode=True, compile=False,
                                           custom_objects=_keras2_classes(keras))
        except Exception as e:
            raise ImportError_(f"{source}: cannot load the model ({cause(e)})") from None
    if source.startswith("keras.applications."):
        name = source.rsplit(".", 1)[1]
        fn = getattr(keras.applications, name, None)
        if fn is None or not callable(fn):
            raise ImportError_(f"{source}: keras.applications has no {name}")
        args.setdefault("weights", None)
        try:
            return fn(**args)
        except Exception as e:
            raise ImportError_(f"{source}({args}): {cause(e)}") from None
    if ":" in source:
        module, _, fname = source.partition(":")
        try:
            fn = getattr(importlib.import_module(module), fname)
        except (ImportError, AttributeError) as e:
            raise ImportError_(f"{source}: {type(e).__name__}: {e}") from None
        return fn(**args)
    raise ImportError_(f"{source}: give a .keras or .h5 file, keras.applications.NAME or module:function")

