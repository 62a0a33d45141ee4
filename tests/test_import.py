"""`sepspec import`: a Keras model -> a spec that compiles back to the same network; refusals by name; the seed's
network back to `specs/base.yaml`; real `keras.applications` networks; a Hypothesis round trip."""
import os
import re

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import sepspec
from sepspec.emit import model as emit
from sepspec.emit.importer import ImportError_, checked, from_keras
from sepspec.lazy import import_keras

from conftest import ROOT, run_cli
from strategies import dump, valid_specs
from weights import layer_options, randomise


def rows(rep):
    """What a network is, whatever its layers are called: each layer's class, output shape and parameters."""
    return sorted((r.layer.keras, tuple(r.output), r.trainable, r.non_trainable) for r in rep.rows)


def options(model):
    """What `rows` leaves out: each layer's `layer_options` (of those that have any), by class and shape."""
    return sorted(((type(layer).__name__, tuple(layer.output.shape[1:]), layer_options(layer))
                   for layer in model.layers[1:] if layer_options(layer)), key=repr)


def imported(model, keep_names=True):
    text = from_keras(model, keep_names=keep_names)
    c = checked(text)
    assert c.ok, [d.text() for d in c.diagnostics]
    return text, c.report


def test_the_seeds_network_imports_back_to_base_yaml_row_for_row(tmp_path):
    base = os.path.join(ROOT, "specs", "base.yaml")
    keras_file, spec = str(tmp_path / "base.keras"), str(tmp_path / "base-imported.yaml")
    assert run_cli("compile", base, "-o", keras_file).returncode == 0
    r = run_cli("import", keras_file, "-o", spec)
    assert r.returncode == 0 and f"wrote {spec}" in r.stdout, r.stderr
    text = open(spec).read()
    assert text.startswith(f"# imported from {keras_file}") and "defaults:\n  sepconv: {bias: false, dropout: 0.07" \
        in text and "  - sepconv: 32\n" in text
    ours, theirs = run_cli("show", spec).stdout.splitlines(), run_cli("show", base).stdout.splitlines()
    assert ours[1:] == theirs[1:]  # every row, name, shape, parameter, receptive field and MAC; and the totals


def test_a_compiled_mbconv_network_imports_as_its_mbconv_entries():
    """specs/mbconv.yaml's compiled model: each inverted residual (expand, depthwise, squeeze-excite, project, add)
    comes back as one `mbconv` entry with its arguments (expansion, kernel, stride, SE ratio, skip, momentum), the
    shared ones in `defaults:`, the two identical blocks as `repeat: 2`; every layer keeps its name, and with the
    weights carried over the model computes the same outputs."""
    import numpy as np

    from sepspec.emit.importer import transfer_weights

    c = sepspec.check(os.path.join(ROOT, "specs", "mbconv.yaml"))
    model = emit.keras_model(c.report)
    randomise(model, np.random.default_rng(0))
    names = {}
    text = from_keras(model, names=names)
    assert "defaults:\n  mbconv: {bn_momentum: 0.9, expand: 3, se: 0.25}\n" in text, text
    assert "  - mbconv: {filters: 24, expand: 2, se: 0.0}\n" in text and "  - mbconv: {filters: 32, repeat: 2}\n" \
        in text and "  - mbconv: {filters: 48, expand: 2, kernel: 5}\n" in text, text
    assert text.count("- mbconv:") == 6 and "residual" not in text and "depthwise" not in text
    assert sepspec.from_keras(model) == text and sepspec.from_keras(model, keep_names=False) == text  # the API
    rep = checked(text).report
    table = [(r.name, r.layer.keras, tuple(r.output), r.trainable, r.non_trainable) for r in rep.rows]
    assert table == [(r.name, r.layer.keras, tuple(r.output), r.trainable, r.non_trainable) for r in c.report.rows]
    assert set(names) == {layer.name for layer in model.layers[1:]} and all(k == v for k, v in names.items())
    again = emit.keras_model(rep)
    assert transfer_weights(model, again, names) == sum(1 for layer in model.layers if layer.weights)
    x = np.random.default_rng(1).normal(size=(4, 32, 32, 3)).astype("float32")
    a, b = np.asarray(model(x, training=False)), np.asarray(again(x, training=False))
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


SPLIT = """
name: split
input: [16, 16, 12]
classes: 4
layers:
  - pointwise: 12
  - parallel:
      split: channels
      branches:
        - [{sepconv: 4}]
        - []
        - [{conv: {filters: 4, kernel: 3}}, {depthwise: {}}]
  - parallel: {split: channels, sizes: [4, 8], branches: [[{sepconv: 6}], [{sepconv: 6}]], repeat: 2}
  - parallel: {split: channels, merge: add, activation: relu, branches: [[{sepconv: 6}], [{sepconv: 6}]]}
  - gap: {}
  - dense: {units: 4, activation: softmax}
"""


def test_a_channel_split_comes_back_as_its_parallel_block_and_a_stray_group_is_refused(write):
    """A `parallel` block's `split: channels` (its groups are Cropping2D layers told the tensor is channels-first):
    the same block, its sizes where unequal, an empty branch its group itself, a repeated one `repeat:` again; with
    the weights carried over the same outputs. A channel group that no merge of groups closes has no entry: refused by name."""
    import numpy as np

    from sepspec.emit.importer import transfer_weights

    c = sepspec.check(write("split.yaml", SPLIT))
    model = emit.keras_model(c.report)
    randomise(model, np.random.default_rng(0))
    names = {}
    text = from_keras(model, names=names)
    assert text.count("split: channels") == 3 and text.count("sizes: [4, 8]") == 1 and "- []" in text, text
    assert "      repeat: 2\n" in text and "name:" not in text.split("layers:")[1], text  # the copy's layers named as repeat names them
    assert "- [{conv: 4}, {depthwise: {}}]" in text and "from:" not in text, text
    rep = checked(text).report
    table = [(r.name, r.layer.keras, tuple(r.output), r.trainable, r.non_trainable) for r in rep.rows]
    assert table == [(r.name, r.layer.keras, tuple(r.output), r.trainable, r.non_trainable) for r in c.report.rows]
    again = emit.keras_model(rep)
    transfer_weights(model, again, names)
    x = np.random.default_rng(1).normal(size=(4, 16, 16, 12)).astype("float32")
    a, b = np.asarray(model(x, training=False)), np.asarray(again(x, training=False))
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()
    keras = import_keras()
    i = keras.Input((8, 8, 6))
    half = keras.layers.Cropping2D(((0, 0), (0, 3)), data_format="channels_first", name="half")(i)
    y = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(half))
    with pytest.raises(ImportError_, match=r"half \(Cropping2D of the channels\): a channel group that is not one"):
        from_keras(keras.Model(i, y))


def test_an_inverted_residual_named_otherwise_or_changed_stays_layers():
    """Only the layers an `mbconv` compiles to, under its names, become one: MobileNetV2's blocks keep their names
    as residual blocks of their layers, and a compiled mbconv whose depthwise padding was changed is not one."""
    keras = import_keras()
    x = keras.Input((16, 16, 8))
    y = keras.layers.Conv2D(48, 1, use_bias=False, name="b_expand")(x)
    y = keras.layers.BatchNormalization(name="b_expand_bn")(y)
    y = keras.layers.Activation("relu6", name="b_expand_relu6")(y)
    y = keras.layers.DepthwiseConv2D(3, padding="valid", use_bias=False, name="b_dw")(y)  # mbconv pads: "same"
    y = keras.layers.BatchNormalization(name="b_dw_bn")(y)
    y = keras.layers.Activation("relu6", name="b_dw_relu6")(y)
    y = keras.layers.Conv2D(8, 1, use_bias=False, name="b_project")(y)
    y = keras.layers.BatchNormalization(name="b_project_bn")(y)
    y = keras.layers.GlobalAveragePooling2D(name="g")(y)
    text, _ = imported(keras.Model(x, keras.layers.Dense(10, activation="softmax", name="out")(y)))
    assert "mbconv" not in text and "- depthwise: {padding: valid, bias: false, norm: batch, " \
        "activation: relu6, name: b_dw}" in text, text


def test_what_the_format_cannot_say_is_refused_by_name(tmp_path):
    keras = import_keras()
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, name="c")(x)
    lam = keras.Model(x, keras.layers.GlobalAveragePooling2D()(keras.layers.Lambda(lambda t: t * 2, name="double")(y)))
    with pytest.raises(ImportError_, match=r"no spec entry for double \(Lambda\)"):
        from_keras(lam)
    op = keras.Model(x, keras.layers.GlobalAveragePooling2D()(y + 3.0))
    with pytest.raises(ImportError_, match=r"operations written on tensors \(not Keras layers\): add"):
        from_keras(op)
    x2 = keras.Input((8, 8, 3))
    two = keras.Model([x, x2], keras.layers.Add()([x, x2]))
    with pytest.raises(ImportError_, match="2 inputs and 1 outputs"):
        from_keras(two)
    lam.save(tmp_path / "lam.keras")
    out = tmp_path / "lam.yaml"
    r = run_cli("import", str(tmp_path / "lam.keras"), "-o", str(out))  # safe mode: the lambda never runs
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()
    r = run_cli("import", "keras.applications.MobileNetV2", "--args", "[1, 2]")
    assert r.returncode == 2 and "--args: expected a mapping" in r.stderr


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(valid_specs(), st.booleans())
def test_round_trip_through_keras_keeps_the_network(tmp_path_factory, spec, keep):
    """A drawn spec (every kind, blocks, named tensors, padding, kernel initializers and penalties) compiled and
    imported again, its names kept or not (`--no-names`): the same layers, shapes and parameters, every weight
    starting and penalised as it did, and never longer than one entry per layer."""
    p = tmp_path_factory.mktemp("spec") / "s.yaml"
    p.write_text(dump(spec))
    c = sepspec.check(str(p))
    assert c.ok
    model = emit.keras_model(c.report)
    text, rep = imported(model, keep)
    if "split: channels" in text:
        event("a parallel block's split: channels")
    assert rows(rep) == rows(c.report)
    if "kernel_init" in text or "l2:" in text or "l1:" in text:
        event("kernel options")
    assert options(emit.keras_model(rep)) == options(model)
    assert len([line for line in text.splitlines() if line.startswith("  - ")]) <= len(c.report.rows)
    merges = [layer for layer in model.layers if type(layer).__name__ in ("Add", "Multiply", "Concatenate")]
    if merges:  # the same network with its merges written on tensors, its first layers a model used as a layer
        event("merges written on tensors")
        _, again = imported(_written_on_tensors(model), keep)
        assert rows(again) == rows(c.report)
    import_keras().backend.clear_session()


def _written_on_tensors(model):
    """`model` rebuilt from fresh copies of its layers, every Add and Multiply of two tensors and every Concatenate
    written on tensors (`a + b`, `a * b`, `keras.ops.concatenate`), its first layers (a chain from the input, none
    read from outside it) a Sequential used as a layer."""
    keras = import_keras()
    ops, layers = keras.ops, model.layers[1:]
    readers: dict[str, int] = {}
    for layer in layers:
        for t in layer._inbound_nodes[0].input_tensors:
            readers[t._keras_history.operation.name] = readers.get(t._keras_history.operation.name, 0) + 1
    head, prev = [], model.layers[0]
    for layer in layers[:-1]:
        ins = layer._inbound_nodes[0].input_tensors
        if len(ins) != 1 or ins[0]._keras_history.operation is not prev or (head and readers[prev.name] != 1) \
                or type(layer).__name__ in ("Add", "Multiply", "Concatenate"):
            break
        head.append(layer)
        prev = layer
    x = keras.Input(model.input.shape[1:])
    out = {model.layers[0].name: x}
    if head:
        event("a Sequential used as a layer")
        stem = keras.Sequential([keras.Input(model.input.shape[1:])] +
                                [type(h).from_config(h.get_config()) for h in head], name="stem")
        out[head[-1].name] = stem(x)
        for h, fresh in zip(head, stem.layers):
            fresh.set_weights(h.get_weights())
        layers = layers[len(head):]
    for layer in layers:
        args = [out[t._keras_history.operation.name] for t in layer._inbound_nodes[0].input_tensors]
        kind = type(layer).__name__
        if kind == "Add" and len(args) == 2:  # (three or more stay a layer: `a + b + c` is two)
            y = args[0] + args[1]
        elif kind == "Multiply" and len(args) == 2:
            y = args[0] * args[1]
        elif kind == "Concatenate":
            y = ops.concatenate(args, axis=-1)
        else:  # (a layer named as Keras names an operation, `add_1`, renamed: Keras wants names unique)
            config = layer.get_config()
            if re.fullmatch(r"(add|multiply|concatenate)(_\d+)?", config["name"]):
                config["name"] += "_layer"
            fresh = type(layer).from_config(config)
            y = fresh(args[0] if len(args) == 1 else args)
            fresh.set_weights(layer.get_weights())
        out[layer.name] = y
    return keras.Model(x, out[model.layers[-1].name])


@pytest.mark.slow
@pytest.mark.parametrize("name, args, keep", [
    ("MobileNetV2", {"input_shape": (32, 32, 3), "alpha": 0.35, "classes": 10}, True),  # ReLU(6), ZeroPadding2D, Add
    ("DenseNet121", {"input_shape": (32, 32, 3), "classes": 10}, True),  # 429 layers, concatenations over names
    ("ResNet50", {"input_shape": (32, 32, 3), "classes": 10}, True),  # residual blocks, with written shortcuts
    # Rescaling and Normalization with its statistics, squeeze-excite, swish, dropout
    ("EfficientNetB0", {"input_shape": (32, 32, 3), "classes": 10}, True),
    # hard_swish, and a hard sigmoid written on tensors (ReLU(6)(x + 3) * (1 / 6)) as the squeeze-excite's gate;
    # with names, that hard sigmoid the tail of the convolution before it
    ("MobileNetV3Small", {"input_shape": (32, 32, 3), "classes": 10}, False),
    ("MobileNetV3Small", {"input_shape": (32, 32, 3), "classes": 10}, True),
    # --no-names: every dense layer a parallel block, every run of them one entry with repeat:; residuals likewise
    ("DenseNet121", {"input_shape": (32, 32, 3), "classes": 10}, False),
    ("ResNet50", {"input_shape": (32, 32, 3), "classes": 10}, False),
    ("EfficientNetB0", {"input_shape": (32, 32, 3), "classes": 10}, False),  # its squeeze-excites as `se` entries
    # models used as layers (its stem and downsampling: Sequential), LayerScale, Dense on images, `inputs + x`
    ("ConvNeXtTiny", {"input_shape": (32, 32, 3), "classes": 10}, True),
    # its CustomScaleLayer, x + up * scale: a `rescale` and an Add; without names each block a residual
    ("InceptionResNetV2", {"input_shape": (75, 75, 3), "classes": 10}, False),
])
def test_keras_applications_import_exactly_and_compute_the_same_function(name, args, keep):
    """Real networks nobody here wrote: the imported spec checks, has the model's parameters in fewer entries than
    Keras has layers, and with the model's weights copied in under the names the import gives computes the same
    thing layer by layer on random images (every weight and statistic drawn, so that every layer matters)."""
    import numpy as np

    from sepspec.emit.importer import transfer_weights

    keras = import_keras()
    model = getattr(keras.applications, name)(weights=None, **args)
    rng = np.random.default_rng(0)
    randomise(model, rng)  # every weight and statistic at unit scale, so that every layer matters
    names = {}
    text = from_keras(model, names=names, keep_names=keep)
    rep = checked(text).report
    assert rep.params == model.count_params() and len(text.splitlines()) < len(model.layers)
    if not keep:
        assert not any(o in text for o in names if "_block" in o), text  # conv2_block1_1_conv: none kept
        if name in ("EfficientNetB0", "MobileNetV3Small"):  # each squeeze-excite (EfficientNet's pooling and
            # reshape, MobileNetV3's ReLU and hard sigmoid as layers of their own) one `se` entry
            assert "- se: {filters: " in text and "reshape" not in text and "multiply" not in text, text
        elif name == "InceptionResNetV2":  # each run of its blocks one residual repeated, its scale a `rescale`
            assert [int(n) for n in re.findall(r"^      repeat: (\d+)$", text, re.M)] == [10, 20, 9], text
            assert "- rescale: 0.17\n" in text and "- add:" not in text and len(text.splitlines()) <= 80, text
        elif name == "DenseNet121":  # four dense blocks, each one parallel block repeated
            assert [int(n) for n in re.findall(r"^      repeat: (\d+)$", text, re.M)] == [6, 12, 24, 16], text
            assert text.count("- parallel:") == 4 and len(text.splitlines()) <= 50, text
        else:  # each stage a block of its own with a shortcut, then one of the identity blocks repeated
            assert [int(n) for n in re.findall(r"- residual_a: \{.*repeat: (\d+)\}", text)] == [2, 3, 5, 2], text
            assert text.count("- residual_b: ") == 3 and len(text.splitlines()) <= 48, text
    elif name == "EfficientNetB0":  # its squeeze-excites' layers keep their names: not `se` entries
        assert "- se:" not in text and "name: block2a_se_reduce}" in text, text
    elif name == "ConvNeXtTiny":  # each block `inputs + x` a use of one block of its own, its stem flattened
        assert text.count("- residual_a: {filters: ") == 18 and "- add:" not in text.split("\nlayers:\n")[1], text
        assert "- scale: {init: 1.0e-06, name: layer_scale}" in text and "name: convnext_tiny_stem_conv}" in text
    elif name in ("ResNet50", "MobileNetV2"):
        # each of its Add layers is a residual block's, the alike ones a block of their own with their widths
        adds = sum(1 for layer in model.layers if isinstance(layer, keras.layers.Add))
        layers = text.split("\nlayers:\n")[1]
        assert len(re.findall(r"^ *- residual(_[a-z])?:", layers, re.M)) == adds and "- add:" not in layers, text
        assert "blocks:\n  residual_a:\n" in text and len(text.splitlines()) < 60, text
    compiled = emit.keras_model(rep)
    for layer in model.layers:  # EfficientNet's stochastic depth drops whole images: so does what it became
        if isinstance(layer, keras.layers.Dropout):
            assert compiled.get_layer(names[layer.name]).noise_shape == layer.noise_shape, layer.name
    # and every layer's weights start as they did (EfficientNet's kernels: VarianceScaling(2.0, fan_out))
    alike = [(layer, compiled.get_layer(names[layer.name])) for layer in model.layers[1:]
             if layer.name in names and names[layer.name] in {c.name for c in compiled.layers}]
    alike = [(a, b) for a, b in alike if type(a) is type(b) and a.weights]
    assert len(alike) > 20 and all(layer_options(a) == layer_options(b) for a, b in alike), name

    def weighted(m):  # layers with weights, those of a model used as a layer (ConvNeXt's stem) each counted
        return sum(weighted(layer) if isinstance(layer, keras.Model) else 1 for layer in m.layers if layer.weights)

    assert transfer_weights(model, compiled, names) == weighted(model)
    x = rng.normal(0, 1, (8, *args["input_shape"])).astype("float32")
    if isinstance(model.layers[1], keras.layers.Rescaling):  # a model that takes raw pixels
        x = rng.uniform(0, 255, x.shape).astype("float32")
    # layer by layer: every layer the import named, against the layer it became (a random network's last layers
    # can be constant over images, so the final output alone would prove little)
    def output_of(o, n):  # a layer's own activation (Dense(activation=softmax)) is its own layer in the spec
        act = getattr(getattr(ops[o], "activation", None), "__name__", "linear")  # (not inside an `se` entry)
        split = act != "linear" and hasattr(ops[o], "kernel") and f"{n}_{act}" in compiled_names
        return f"{n}_{act}" if split else n

    # a model layer and the activation after it can be one spec layer (MobileNetV3's squeeze-excite, its gate an
    # operation on tensors): that layer computes what the last of them does
    ops = {op.name: op for op in model.operations}
    compiled_names = {layer.name for layer in compiled.layers}
    last = {n: o for o in ops if o in names for n in [names[o]]}
    # (the layers inside a model used as a layer are not the outer graph's: what they compute reaches the next)
    pairs = [(o, output_of(o, n)) for n, o in last.items() if o != model.layers[0].name and o in ops]
    theirs = keras.Model(model.input, [ops[o].output for o, _ in pairs])
    ours = keras.Model(compiled.input, [compiled.get_layer(n).output for _, n in pairs])
    # inference (the moving statistics) and training mode (each batch norm on the batch's own statistics, which
    # keeps a random network's activations alive to its last layer)
    for m in (model, compiled):  # training mode must not draw: no dropout in either
        for layer in m.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
    for training in (False, True):
        varying = 0
        for (o, n), want, got in zip(pairs, theirs(x, training=training), ours(x, training=training)):
            want, got = np.asarray(want), np.asarray(got)
            assert np.abs(got - want).max() <= 1e-5 * max(np.abs(want).max(), 1e-6), (o, n, training)
            varying += bool(np.ptp(want, axis=0).max() > 1e-3)
    assert varying > len(pairs) * 0.8, (varying, len(pairs))  # in training mode nearly every layer varies
    keras.backend.clear_session()


def test_import_and_compile_carry_the_weights(tmp_path):
    """`import --weights` and `compile --weights`: a saved model with a merge and a squeeze-and-excitation, back
    as a .keras file that gives the same outputs."""
    import numpy as np

    keras = import_keras()
    x = keras.Input((16, 16, 3), name="image")
    a = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(x)
    a = keras.layers.BatchNormalization(name="stem_norm")(a)
    a = keras.layers.ReLU(name="stem_act")(a)
    b = keras.layers.SeparableConv2D(8, 3, padding="same", activation="relu", name="side")(a)
    s = keras.layers.Add(name="join")([a, b])
    p = keras.layers.GlobalAveragePooling2D(keepdims=True, name="sq_pool")(s)
    p = keras.layers.Conv2D(2, 1, activation="relu", name="sq_squeeze")(p)
    p = keras.layers.Conv2D(8, 1, activation="sigmoid", name="sq_excite")(p)
    s = keras.layers.Multiply(name="sq_scale")([s, p])
    y = keras.layers.Dense(3, activation="softmax", name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(s))
    model = keras.Model(x, y)
    model.get_layer("stem_norm").set_weights([np.full(8, 1.3, "float32"), np.full(8, 0.1, "float32"),
                                              np.linspace(-0.5, 0.5, 8).astype("float32"), np.full(8, 2.0, "float32")])
    model.save(tmp_path / "m.keras")
    spec, weights, again = tmp_path / "m.yaml", tmp_path / "m.weights.h5", tmp_path / "again.keras"
    r = run_cli("import", str(tmp_path / "m.keras"), "-o", str(spec), "--weights", str(weights))
    assert r.returncode == 0, r.stderr
    text = spec.read_text()
    assert "  - se: {filters: 2, name: sq}" in text and "  - add: {inputs: [stem, side], name: join}" in text, text
    r = run_cli("compile", str(spec), "-o", str(again), "--weights", str(weights))
    assert r.returncode == 0 and "weights from" in r.stdout, r.stderr
    images = np.random.default_rng(1).normal(0, 1, (4, 16, 16, 3)).astype("float32")
    want = np.asarray(model(images, training=False))
    got = np.asarray(keras.saving.load_model(again, compile=False)(images, training=False))
    assert np.abs(got - want).max() <= 1e-6
    r = run_cli("compile", os.path.join(ROOT, "specs", "base.yaml"), "-o", str(tmp_path / "b.keras"), "--weights",
                str(weights))
    assert r.returncode == 2 and "not this spec's weights" in r.stderr and not (tmp_path / "b.keras").exists()
    # --no-names: the join of the stem and its side branch is a residual block; the weights follow the new names
    spec2, weights2 = tmp_path / "n.yaml", tmp_path / "n.weights.h5"
    r = run_cli("import", str(tmp_path / "m.keras"), "-o", str(spec2), "--weights", str(weights2), "--no-names")
    assert r.returncode == 0, r.stderr
    text = spec2.read_text()
    assert "- residual:" in text and not any(n in text for n in ("stem", "side", "join", "sq")), text
    unnamed = emit.keras_model(checked(text).report)
    unnamed.load_weights(str(weights2))
    assert np.abs(np.asarray(unnamed(images, training=False)) - want).max() <= 1e-6


def test_a_model_used_as_a_layer_and_sums_written_on_tensors_import_with_their_weights(tmp_path):
    """A functional model whose stem is a Sequential model used as a layer, whose blocks add with `x + y` and scale
    with a Dense on the image and ConvNeXt's LayerScale, gated with `keras.ops.multiply` and joined with
    `keras.ops.concatenate`, saved and imported (`import --weights`), compiled again
    (`compile --weights`): the same outputs. A model used as a layer twice is refused by name."""
    import numpy as np
    from keras.src.applications.convnext import LayerScale

    keras = import_keras()
    x = keras.Input((16, 16, 3), name="image")
    stem = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 2, strides=2, name="stem_conv"),
                             keras.layers.LayerNormalization(epsilon=1e-6, name="stem_ln")], name="stem")
    s = stem(x)
    b = keras.layers.Conv2D(8, 7, padding="same", groups=8, name="blk_dw")(s)
    b = keras.layers.Dense(16, activation="gelu", name="blk_up")(b)
    b = keras.layers.Dense(8, name="blk_down")(b)
    b = LayerScale(0.5, 8, name="blk_gamma")(b)
    s = s + b
    g = keras.layers.Dense(8, activation="sigmoid", name="gate")(s)
    s = keras.ops.concatenate([keras.ops.multiply(s, g), g], axis=-1)
    y = keras.layers.Dense(3, activation="softmax", name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(s))
    model = keras.Model(x, y)
    model.get_layer("blk_gamma").set_weights([np.linspace(0.5, 1.5, 8).astype("float32")])
    model.save(tmp_path / "m.keras")
    spec, weights, again = tmp_path / "m.yaml", tmp_path / "m.weights.h5", tmp_path / "again.keras"
    r = run_cli("import", str(tmp_path / "m.keras"), "-o", str(spec), "--weights", str(weights))
    assert r.returncode == 0, r.stderr
    text = spec.read_text()
    assert "- conv: {filters: 8, kernel: 2, stride: 2, padding: valid, name: stem_conv}" in text, text
    assert "- residual:" in text and "      name: blk\n" in text and "- scale: {init: 0.5, name: gamma}" in text, text
    assert "- dense: {units: 16, activation: gelu, name: up}" in text and "- multiply: [" in text, text
    assert "- concat: [multiply" in text, text
    r = run_cli("compile", str(spec), "-o", str(again), "--weights", str(weights))
    assert r.returncode == 0, r.stderr
    images = np.random.default_rng(1).normal(0, 1, (4, 16, 16, 3)).astype("float32")
    want = np.asarray(model(images, training=False))
    got = np.asarray(keras.saving.load_model(again, compile=False)(images, training=False))
    assert np.abs(got - want).max() <= 1e-6 and np.ptp(want, axis=0).max() > 1e-3
    # the compiled `scale` is read back as one, from its constant initial kernel
    assert "- scale: {init: 0.5, name: gamma}" in from_keras(emit.keras_model(checked(text).report))
    twice = keras.Model(x, keras.layers.Add()([stem(x), stem(x)]))
    with pytest.raises(ImportError_, match=r"stem \(Sequential\): a model used as a layer is imported where it is "
                                           r"used once"):
        from_keras(twice)


@pytest.mark.slow
def test_a_sequential_notebook_model_imports_with_repeats_and_its_weights():
    """A model as the seed's notebook writes it: Sequential, Keras's own layer names (not kept), three identical
    blocks (one entry with `repeat: 3`, named as repeat names its copies); its weights land on the right copies."""
    import numpy as np

    from sepspec.emit.importer import transfer_weights

    keras = import_keras()
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), L.Conv2D(8, 3, padding="same"), L.BatchNormalization(), L.ReLU()]
        + [x for _ in range(3) for x in (L.SeparableConv2D(8, 3, padding="same"), L.BatchNormalization(), L.ReLU())]
        + [L.MaxPooling2D(), L.SeparableConv2D(4, 3), L.GlobalAveragePooling2D(), L.Activation("softmax")])
    names = {}
    text = from_keras(model, names=names)
    assert "  - sepconv: {filters: 8, norm: batch, activation: relu, repeat: 3}\n" in text, text
    assert "name:" not in text.split("layers:")[1]  # conv2d, separable_conv2d_1, ...: Keras's, not chosen
    rng = np.random.default_rng(0)
    randomise(model, rng)
    compiled = emit.keras_model(checked(text).report)
    assert transfer_weights(model, compiled, names) == 9
    assert sorted(set(names.values()) & {"sepconv_1", "sepconv_1_2", "sepconv_1_3_bn"}) == \
        ["sepconv_1", "sepconv_1_2", "sepconv_1_3_bn"]
    x = rng.normal(0, 1, (4, 16, 16, 3)).astype("float32")
    want, got = np.asarray(model(x, training=False)), np.asarray(compiled(x, training=False))
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    unbuilt = keras.Sequential([L.Conv2D(4, 3)])
    with pytest.raises(ImportError_, match="no input shape yet"):
        from_keras(unbuilt)


@pytest.mark.slow
def test_branches_from_one_tensor_into_a_merge_import_as_a_parallel_block():
    """A concatenation of chains from one tensor (and of the tensor itself: an empty branch), then its activation:
    one `parallel` entry, the same function with the weights copied under the import's names."""
    import numpy as np

    from sepspec.emit.importer import transfer_weights

    keras = import_keras()
    L = keras.layers
    x = keras.Input((16, 16, 3))
    a = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    b2 = L.BatchNormalization()(L.Conv2D(4, 3, padding="same")(a))
    c = L.ReLU()(L.Concatenate()([L.Conv2D(4, 1)(a), b2, L.MaxPooling2D(3, 1, padding="same")(a), a]))
    model = keras.Model(x, L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(c)))
    names = {}
    text = from_keras(model, names=names)
    assert ("  - parallel:\n      branches:\n        - [{pointwise: 4}]\n        - [{conv: {filters: 4, norm: batch}}]\n"
            "        - [{maxpool: {size: 3, stride: 1, padding: same}}]\n        - []\n      activation: relu\n") in text
    rng = np.random.default_rng(0)
    randomise(model, rng)
    compiled = emit.keras_model(checked(text).report)
    assert transfer_weights(model, compiled, names) == 5
    images = rng.normal(0, 1, (4, 16, 16, 3)).astype("float32")
    want, got = np.asarray(model(images, training=False)), np.asarray(compiled(images, training=False))
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_spatial_dropout_imports_as_a_dropout_of_whole_channels():
    """Keras's SpatialDropout2D drops whole channels: a `dropout` with `noise_shape: [1, 1, C]`, the same draw."""
    keras = import_keras()
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(6, 3, name="c")(x)
    y = keras.layers.SpatialDropout2D(0.25, name="sd")(y)
    model = keras.Model(x, keras.layers.GlobalAveragePooling2D(name="g")(y))
    text, rep = imported(model)
    assert "- dropout: {rate: 0.25, noise_shape: [1, 1, 6], name: sd}" in text, text
    compiled = emit.keras_model(rep)
    assert compiled.get_layer("sd").noise_shape == (None, 1, 1, 6)


def test_global_max_pooling_imports_as_gmp():
    keras = import_keras()
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(6, 3, name="c")(x)
    a = keras.layers.GlobalMaxPooling2D(keepdims=True, name="m")(y)
    y = keras.layers.Multiply(name="gate")([y, keras.layers.Activation("sigmoid", name="s")(a)])
    model = keras.Model(x, keras.layers.GlobalMaxPooling2D(name="g")(y))
    text, rep = imported(model)
    assert "- gmp: {keepdims: true, name: m}" in text and "- gmp: {name: g}" in text, text
    compiled = emit.keras_model(rep)
    assert compiled.get_layer("m").keepdims and type(compiled.get_layer("g")).__name__ == "GlobalMaxPooling2D"
    assert rep.rf_row().name == "gate"  # the classifier's pooling is the last gmp (the receptive field's layer)


def computes_as_keras(model, text: str, names: dict, scale: float) -> None:
    """The imported spec compiled, the model's weights (drawn at `scale`) copied in under the import's names: the
    outputs are Keras's, and vary with the image."""
    from sepspec.emit.importer import transfer_weights

    compiled = emit.keras_model(checked(text).report)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, scale, w.shape).astype("float32") for w in model.get_weights()])
    transfer_weights(model, compiled, names)
    images = rng.normal(0, 1, (4, *model.input_shape[1:])).astype("float32")
    want = model.predict(images, verbose=0)
    assert np.abs(compiled.predict(images, verbose=0) - want).max() < 1e-5 and np.ptp(want) > 0.1


def test_prelu_layers_import_with_their_alphas_and_compute_what_keras_does():
    """PReLU per channel (`shared_axes=[1, 2]`, starting at a constant), per value (Keras's default) and on a
    vector: `prelu` entries, their learned alphas carried by the import's weights, the outputs Keras's; an alpha
    initializer other than a constant, and a constraint, refused by name."""

    keras = import_keras()
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(6, 3, name="c")(x)
    y = keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.25), name="pc")(y)
    y = keras.layers.SeparableConv2D(6, 3, name="s")(y)
    y = keras.layers.PReLU(name="pv")(y)
    y = keras.layers.Dense(4, name="d")(keras.layers.GlobalAveragePooling2D(name="g")(y))
    model = keras.Model(x, keras.layers.PReLU(shared_axes=[1], name="pd")(y))
    names = {}
    text = from_keras(model, names=names)
    assert "- prelu: {init: 0.25, shared_axes: [1, 2], name: pc}" in text and "- prelu: {name: pv}" in text and \
        "- prelu: {shared_axes: [1], name: pd}" in text, text
    assert checked(text).report.params == model.count_params()
    computes_as_keras(model, text, names, scale=0.5)
    bad = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.PReLU(alpha_initializer="he_normal", name="a"),
                            keras.layers.PReLU(alpha_constraint="non_neg", name="b"),
                            keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ImportError_) as e:
        from_keras(bad)
    assert "a (PReLU with alpha_initializer=HeNormal()), b (PReLU with alpha_constraint=NonNeg())" in str(e.value)


def test_squeezenet_imports_with_its_relu_before_the_classifiers_pooling():
    """SqueezeNet (Iandola et al., 2016; as Keras ports write it): fire modules (a 1x1 squeeze, then 1x1 and 3x3
    expands concatenated), its class scores a 1x1 convolution with a ReLU before global pooling, which SEP209 would
    refuse in a spec written by hand: the import says `rules: {classifier_head: false}`, and with its weights the
    network computes Keras's outputs."""

    keras, layers = import_keras(), import_keras().layers

    def fire(x, name, squeeze, expand):
        s = layers.Conv2D(squeeze, 1, activation="relu", name=f"{name}_squeeze")(x)
        return layers.Concatenate(name=f"{name}_concat")([
            layers.Conv2D(expand, 1, activation="relu", name=f"{name}_expand1")(s),
            layers.Conv2D(expand, 3, padding="same", activation="relu", name=f"{name}_expand3")(s)])

    x = keras.Input((32, 32, 3))
    y = layers.Conv2D(32, 3, strides=2, activation="relu", name="conv1")(x)
    y = layers.MaxPooling2D(3, 2, name="pool1")(y)
    y = fire(fire(y, "fire2", 8, 16), "fire3", 8, 16)
    y = layers.Dropout(0.5, name="drop")(y)
    y = layers.Conv2D(10, 1, activation="relu", name="conv10")(y)
    y = layers.Activation("softmax", name="prob")(layers.GlobalAveragePooling2D(name="pool10")(y))
    model = keras.Model(x, y, name="squeezenet")
    names = {}
    text = from_keras(model, names=names)
    assert "rules: {classifier_head: false}" in text, text
    computes_as_keras(model, text, names, scale=0.3)
    assert "classifier_head" not in from_keras(keras.Model(x, layers.Dense(10, name="fc")(
        layers.GlobalAveragePooling2D()(model.get_layer("conv10").output))))  # a dense head: the rule does not apply


def test_an_elu_layer_is_the_elu_activation_and_one_of_another_alpha_is_refused():
    keras = import_keras()
    x = keras.Input((8, 8, 3))
    y = keras.layers.ELU(name="e")(keras.layers.Conv2D(4, 3, name="c")(x))
    y = keras.layers.Dense(3, name="d")(keras.layers.GlobalAveragePooling2D(name="g")(y))
    text, rep = imported(keras.Model(x, y))
    assert "- conv: {filters: 4, padding: valid, activation: elu, name: c}" in text, text
    y = keras.layers.ELU(alpha=0.5, name="e")(keras.layers.Conv2D(4, 3, name="c")(x))
    with pytest.raises(ImportError_) as e:
        from_keras(keras.Model(x, keras.layers.GlobalAveragePooling2D(name="g")(y)))
    assert "no spec entry for e (ELU)" in str(e.value)


def test_leaky_relu_layers_import_with_their_slope():
    """A LeakyReLU layer at Keras's 0.3 and at a notebook's 0.1 (Keras 2's `alpha`): `leaky_relu` entries of that
    slope, never a tail's `activation: leaky_relu` (whose slope is the function's 0.2)."""
    keras = import_keras()
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(6, 3, name="c")(x)
    y = keras.layers.BatchNormalization(name="c_bn")(y)
    y = keras.layers.LeakyReLU(negative_slope=0.1, name="lr")(y)
    y = keras.layers.Conv2D(6, 3, name="d")(y)
    y = keras.layers.LeakyReLU(name="lr2")(y)
    model = keras.Model(x, keras.layers.GlobalAveragePooling2D(name="g")(y))
    text, rep = imported(model)
    assert "- conv: {filters: 6, padding: valid, norm: batch, name: c}" in text and \
        "- leaky_relu: {negative_slope: 0.1, name: lr}" in text and "- leaky_relu: {name: lr2}" in text, text
    compiled = emit.keras_model(rep)
    assert [compiled.get_layer(n).negative_slope for n in ("lr", "lr2")] == [0.1, 0.3]
