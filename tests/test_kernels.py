"""How a spec's kernels start and what they add to the loss (`kernel_init`, `l1`, `l2`): the format and its errors,
the compiled model (a saved file loaded in safe mode, the script), the trainer's loss, `diff`, and `sepspec import`
of a notebook model that sets them (kept), and of options no spec writes (refused, by name and option)."""
import os

import numpy as np
import pytest

import sepspec
from sepspec.emit import model as emit
from sepspec.emit.importer import ImportError_, checked, from_keras
from sepspec.lazy import import_keras

from conftest import ROOT, run_cli

SPEC = """\
name: kernels
input: [8, 8, 3]
classes: 4
defaults:
  conv: {kernel_init: he_normal, l2: 1.0e-4, norm: batch, activation: relu}
layers:
  - conv: 8
  - sepconv: {filters: 8, kernel_init: {name: variance_scaling, scale: 2.0, mode: fan_out}, l1: 1.0e-5, l2: 1.0e-4}
  - mbconv: {filters: 8, expand: 2, se: 0.25, kernel_init: zeros, l2: 0.01}
  - depthwise: {kernel: 3, kernel_init: {name: truncated_normal, stddev: 0.02}}
  - gap: {}
  - dense: {units: 4, kernel_init: orthogonal, l1: 0.001}
"""


def config(model, name, key):
    v = model.get_layer(name).get_config()[key]
    return (v["class_name"], {k: x for k, x in v["config"].items() if k not in ("seed", "input_axes", "output_axes")}
            ) if v else None


@pytest.mark.slow  # Keras in subprocesses
def test_kernel_options_reach_every_kernel_and_load_in_safe_mode(write, tmp_path):
    spec = write("k.yaml", SPEC)
    out = tmp_path / "k.keras"
    r = run_cli("compile", spec, "-o", str(out))
    assert r.returncode == 0, r.stderr
    m = import_keras().saving.load_model(str(out))  # safe mode: only Keras's own initializers and regularizers
    assert config(m, "conv_1", "kernel_initializer") == ("HeNormal", {})
    assert config(m, "conv_1", "kernel_regularizer") == ("L2", {"l2": pytest.approx(1e-4)})
    assert config(m, "conv_1", "bias_regularizer") is None  # the kernels only
    for half in ("depthwise", "pointwise"):  # a separable convolution's two kernels
        assert config(m, "sepconv_1", f"{half}_initializer") == (
            "VarianceScaling", {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"})
        assert config(m, "sepconv_1", f"{half}_regularizer") == (
            "L1L2", {"l1": pytest.approx(1e-5), "l2": pytest.approx(1e-4)})
    for layer, key in (("mbconv_1_expand", "kernel"), ("mbconv_1_dw", "depthwise"), ("mbconv_1_se_squeeze", "kernel"),
                       ("mbconv_1_se_excite", "kernel"), ("mbconv_1_project", "kernel")):  # every kernel of a block
        assert config(m, layer, f"{key}_initializer") == ("Zeros", {}), layer
        assert config(m, layer, f"{key}_regularizer") == ("L2", {"l2": pytest.approx(0.01)}), layer
        assert not np.any(m.get_layer(layer).get_weights()[0]), layer  # they really start at zero
    assert config(m, "depthwise_1", "depthwise_initializer") == ("TruncatedNormal", {"mean": 0.0, "stddev": 0.02})
    assert np.abs(m.get_layer("depthwise_1").get_weights()[0]).max() <= 0.04 + 1e-6  # truncated at 2 stddev
    assert config(m, "dense_1", "kernel_initializer") == ("Orthogonal", {"gain": 1.0})
    w = m.get_layer("dense_1").get_weights()[0]
    assert np.allclose(w.T @ w, np.eye(4), atol=1e-5)  # orthogonal columns
    # one penalty per penalised kernel: conv_1, the separable's two, the mbconv's five, the dense layer
    assert len(m.losses) == 1 + 2 + 5 + 1
    # the script builds the same configuration
    script = tmp_path / "k.py"
    assert run_cli("compile", spec, "--to", "python", "-o", str(script)).returncode == 0
    import runpy
    built = runpy.run_path(str(script))["model"]
    for layer in m.layers[1:]:
        assert built.get_layer(layer.name).get_config() == {**layer.get_config(), "name": layer.name}, layer.name


def test_the_trainers_loss_adds_each_penalty(write):
    """The trainer's compiled loss (`compile_model`, what `sepspec train` steps) is the cross-entropy plus every
    kernel's penalty: with l2 0.5 on every kernel it exceeds the same weights' loss without, by exactly
    0.5 * the sum of the squared kernels."""
    from sepspec.train.compiled import compile_model

    keras = import_keras()
    text = SPEC.replace("l2: 1.0e-4", "l2: 0.5", 1).replace("mbconv: {filters: 8, expand: 2, se: 0.25, "
                                                           "kernel_init: zeros, l2: 0.01}", "conv: 8")
    plain = text.replace(", l2: 0.5", "").replace(", l1: 1.0e-5, l2: 1.0e-4", "").replace(", l1: 0.001", "")
    models = []
    for t in (text, plain):
        c = sepspec.check(write("s.yaml", t))
        assert c.ok
        keras.utils.set_random_seed(0)
        models.append(compile_model(keras, c.report, c.spec.train, mixed=False, jit_compile=False))
    penalised, bare = models
    bare.set_weights(penalised.get_weights())
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")
    y = np.eye(4, dtype="float32")[np.arange(16) % 4]
    want = sum(0.5 * float(np.sum(np.square(layer.get_weights()[0]))) for layer in penalised.layers
               if layer.name in ("conv_1", "conv_2"))  # the default's penalty
    sep = penalised.get_layer("sepconv_1")
    want += sum(1e-5 * float(np.sum(np.abs(k))) + 1e-4 * float(np.sum(np.square(k))) for k in sep.get_weights()[:2])
    want += 0.001 * float(np.sum(np.abs(penalised.get_layer("dense_1").get_weights()[0])))
    got = penalised.evaluate(x, y, verbose=0)[0] - bare.evaluate(x, y, verbose=0)[0]
    assert want > 0.1 and got == pytest.approx(want, rel=1e-4)


def test_format_errors_are_at_their_lines_with_the_closest_choice(write):
    bad = write("bad.yaml", """\
name: bad
input: 32
classes: 10
layers:
  - conv: {filters: 16, kernel_init: he_nromal}
  - conv: {filters: 16, kernel_init: {name: variance_scaling, scael: 2.0}}
  - conv: {filters: 16, kernel_init: {name: variance_scaling, mode: fan_ot}}
  - conv: {filters: 16, l2: -1}
  - conv: {filters: 16, kernel_init: {name: glorot}}
  - gap: {}
""")
    r = run_cli("check", bad)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[:5] == [
        f"{bad}:5:38: error SEP103: layers[0].conv.kernel_init: input should be 'glorot_uniform', 'glorot_normal', "
        "'he_normal', 'he_uniform', 'lecun_normal', 'lecun_uniform', 'zeros', 'ones', 'variance_scaling', "
        "'random_normal', 'truncated_normal', 'random_uniform', 'orthogonal' or 'constant', got 'he_nromal' "
        "(hint: did you mean 'he_normal'?)",
        f"{bad}:6:63: error SEP101: layers[1].conv.kernel_init.scael: unknown key 'scael' (hint: did you mean "
        "'scale'?)",
        f"{bad}:7:69: error SEP103: layers[2].conv.kernel_init.mode: input should be 'fan_in', 'fan_out' or "
        "'fan_avg', got 'fan_ot' (hint: did you mean 'fan_out'?)",
        f"{bad}:8:29: error SEP103: layers[3].conv.l2: input should be greater than or equal to 0, got -1",
        f"{bad}:9:45: error SEP103: layers[4].conv.kernel_init: unknown name 'glorot' (expected one of "
        "'glorot_uniform', 'glorot_normal', 'he_normal', 'he_uniform', 'lecun_normal', 'lecun_uniform', 'zeros', "
        "'ones', 'variance_scaling', 'random_normal', 'truncated_normal', 'random_uniform', 'orthogonal', "
        "'constant') (hint: did you mean 'glorot_normal'?)",
    ], r.stderr


def test_a_name_and_its_mapping_are_one_initializer_and_diff_shows_a_change(write):
    """`orthogonal` and `{name: orthogonal}` and `{name: orthogonal, gain: 1.0}` compile alike; `diff` names a
    changed initializer or penalty; none of it moves a parameter, a MAC or a byte of the int8 estimate."""
    base = SPEC.replace("kernel_init: orthogonal", "kernel_init: {name: orthogonal, gain: 1.0}")
    a, b = write("a.yaml", SPEC), write("b.yaml", base)
    ra, rb = sepspec.check(a).report, sepspec.check(b).report
    assert [r.layer for r in ra.rows] == [r.layer for r in rb.rows]
    c = write("c.yaml", SPEC.replace("kernel_init: orthogonal, l1: 0.001", "kernel_init: he_uniform"))
    r = run_cli("diff", a, c)
    assert r.returncode == 0 and "dense_1" in r.stdout and "kernel_initializer" in r.stdout \
        and "kernel_regularizer" in r.stdout, r.stdout
    plain = write("p.yaml", SPEC.replace("kernel_init: he_normal, l2: 1.0e-4, ", ""))
    totals = [[line for line in run_cli("show", p, "--memory").stdout.splitlines() if line.startswith("macc=")]
              for p in (a, plain)]
    assert totals[0] == totals[1] and len(totals[0]) == 1, totals
    rp = sepspec.check(plain).report
    assert (ra.params, ra.macs) == (rp.params, rp.macs)


def _notebook(keras, **extra):
    """A ResNet-style notebook model: every convolution He-initialised and L2-penalised, the residual's last batch
    norm starting at zero (Goyal et al.), `extra` options on the classifier."""
    from keras import layers
    wd = keras.regularizers.l2(5e-4)
    x = keras.Input((16, 16, 3))
    y = layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_initializer="he_normal", kernel_regularizer=wd,
                      name="stem")(x)
    y = layers.BatchNormalization(name="stem_bn")(y)
    y = layers.ReLU(name="stem_relu")(y)
    z = layers.SeparableConv2D(16, 3, padding="same", use_bias=False, depthwise_initializer="he_normal",
                               pointwise_initializer="he_normal", depthwise_regularizer=wd, pointwise_regularizer=wd,
                               name="res_conv")(y)
    z = layers.BatchNormalization(gamma_initializer="zeros", name="res_conv_bn")(z)
    y = layers.ReLU(name="res_relu")(layers.Add(name="res_add")([z, y]))
    y = layers.GlobalAveragePooling2D(name="pool")(y)
    y = layers.Dense(10, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=7), name="fc",
                     **extra)(y)
    return keras.Model(x, y)


@pytest.mark.slow  # Keras in subprocesses
def test_a_notebook_model_imports_with_its_initializers_penalties_and_zero_gamma(tmp_path):
    from test_import import options

    keras = import_keras()
    model = _notebook(keras)
    text = from_keras(model)
    assert "conv: {filters: 16, bias: false, kernel_init: he_normal, l2: 0.0005, norm: batch, activation: relu, " \
           "name: stem}" in text, text
    assert "kernel_init: he_normal, l2: 0.0005, norm: batch, bn_gamma: zeros, name: conv}" in text, text
    assert "dense: {units: 10, kernel_init: {name: random_normal, stddev: 0.01}, name: fc}" in text, text
    rep = checked(text).report
    assert options(emit.keras_model(rep)) == options(model)
    # saved and imported from the file through the command line, the same
    model.save(tmp_path / "nb.keras")
    r = run_cli("import", str(tmp_path / "nb.keras"), "-o", str(tmp_path / "nb.yaml"))
    assert r.returncode == 0, r.stderr
    assert "bn_gamma: zeros" in (tmp_path / "nb.yaml").read_text()


@pytest.mark.parametrize("extra, why", [
    ({"bias_regularizer": "l2"}, r"fc \(Dense with bias_regularizer=L2\(l2=0\.01"),
    ({"kernel_constraint": "max_norm"}, r"fc \(Dense with kernel_constraint=MaxNorm\(max_value=2"),
    ({"activity_regularizer": "l1"}, r"fc \(Dense with activity_regularizer=L1"),
    ({"bias_initializer": "ones"}, r"fc \(Dense with bias_initializer=Ones\(\)\)"),
    ({"kernel_regularizer": {"class_name": "OrthogonalRegularizer", "config": {"factor": 0.01}}},
     r"fc \(Dense with kernel_regularizer=OrthogonalRegularizer\(factor=0\.0099"),
])
def test_options_no_spec_writes_are_refused_by_layer_and_option(extra, why):
    keras = import_keras()
    with pytest.raises(ImportError_, match=f"no spec entry for {why}"):
        from_keras(_notebook(keras, **extra))


def test_a_frozen_layer_and_channels_first_pooling_are_refused_by_name():
    """A fine-tuning notebook's frozen layer (its weights would train in the spec) and a pooling over the image's
    channels-first axes (the spec's images are channels-last)."""
    keras = import_keras()
    model = _notebook(keras)
    model.get_layer("stem").trainable = False
    with pytest.raises(ImportError_, match=r"no spec entry for stem \(Conv2D with trainable=False: frozen"):
        from_keras(model)
    x = keras.Input((8, 8, 3))
    y = keras.layers.MaxPooling2D(2, data_format="channels_first", name="p")(x)
    with pytest.raises(ImportError_, match=r"no spec entry for p \(MaxPooling2D with data_format='channels_first'\)"):
        from_keras(keras.Model(x, keras.layers.Flatten(name="f")(y)))


@pytest.mark.slow  # Keras in subprocesses
def test_separable_halves_that_differ_and_a_renormalising_batch_norm_are_refused(tmp_path):
    keras = import_keras()
    x = keras.Input((8, 8, 3))
    y = keras.layers.SeparableConv2D(4, 3, pointwise_regularizer=keras.regularizers.l2(1e-4), name="s")(x)
    y = keras.layers.BatchNormalization(renorm=True, name="s_bn")(y)
    m = keras.Model(x, keras.layers.GlobalAveragePooling2D()(y))
    with pytest.raises(ImportError_) as e:
        from_keras(m)
    msg = str(e.value)
    assert "s (SeparableConv2D with depthwise and pointwise kernels that start or are penalised differently" in msg
    assert "s_bn (BatchNormalization with renorm=True)" in msg
    m.save(tmp_path / "m.keras")
    r = run_cli("import", str(tmp_path / "m.keras"), "-o", str(tmp_path / "m.yaml"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "renorm=True" in r.stderr and not (tmp_path / "m.yaml").exists()


def test_a_constant_of_zero_is_keras_default_zeros():
    """EfficientNetV2's classifier writes its bias initializer as Constant(0.0): Keras's default, zeros, so kept;
    a kernel starting at Constant(0.0) is `kernel_init: zeros`."""
    keras = import_keras()
    text = from_keras(_notebook(keras, bias_initializer=keras.initializers.Constant(0.0)))
    assert "dense: {units: 10, kernel_init: {name: random_normal, stddev: 0.01}, name: fc}" in text, text
    x = keras.Input((4, 4, 3))
    y = keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.Constant(0.0), name="c")(x)
    text = from_keras(keras.Model(x, keras.layers.GlobalAveragePooling2D(name="g")(y)))
    assert "- pointwise: {filters: 2, kernel_init: zeros, name: c}" in text, text


@pytest.mark.slow  # Keras in subprocesses
def test_a_keras_2_h5_file_imports_with_its_weights_and_computes_what_keras_2_did(tmp_path):
    """A notebook model saved by Keras 2 (`tests/fixtures/keras2_notebook.py`: its `.h5` and what Keras 2 computed
    with it), through `sepspec import --weights` and `compile --weights`: its He initializers, L2 penalties and zero
    gamma kept, its DepthwiseConv2D and SeparableConv2D read (Keras 3 refuses the options Keras 2 wrote for them and
    never used), and the compiled model gives Keras 2's outputs."""
    fixtures = os.path.join(ROOT, "tests", "fixtures")
    spec, weights, model = (str(tmp_path / n) for n in ("nb.yaml", "nb.weights.h5", "nb.keras"))
    r = run_cli("import", os.path.join(fixtures, "keras2_notebook.h5"), "-o", spec, "--weights", weights)
    assert r.returncode == 0, r.stderr
    text = open(spec).read()
    assert "kernel_init: he_normal, l2: 0.0005" in text and "bn_gamma: zeros" in text and \
        "- depthwise: {stride: 2, dropout: 0.2, name: down}" in text, text
    assert run_cli("compile", spec, "--weights", weights, "-o", model).returncode == 0
    with np.load(os.path.join(fixtures, "keras2_notebook.npz"), allow_pickle=False) as f:
        x, want = f["x"], f["y"]
    got = import_keras().saving.load_model(model).predict(x, verbose=0)
    assert np.abs(got - want).max() < 1e-5 and np.ptp(want) > 0.1, (got, want)
    r = run_cli("import", os.path.join(fixtures, "keras2_notebook.weights.h5"))
    assert r.returncode == 2 and "weights alone, not a model" in r.stderr


def test_an_initializer_most_layers_share_moves_into_defaults_and_the_others_say_theirs():
    """Two of three convolutions He-initialised: `defaults: conv: {kernel_init: he_normal}`, and the third says
    Keras's default, `glorot_uniform` (found by the Hypothesis round trip: it was written as an object YAML cannot
    hold)."""
    keras = import_keras()
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, kernel_initializer="he_normal", name="a")(x)
    y = keras.layers.Conv2D(4, 3, kernel_initializer="he_normal", name="b")(y)
    y = keras.layers.Conv2D(4, 3, name="c")(y)
    model = keras.Model(x, keras.layers.GlobalAveragePooling2D(name="g")(y))
    text = from_keras(model)
    assert "defaults:\n  conv: {padding: valid, kernel_init: he_normal}\n" in text and \
        "- conv: {filters: 4, name: c, kernel_init: glorot_uniform}" in text, text
    from test_import import options
    assert options(emit.keras_model(checked(text).report)) == options(model)


@pytest.mark.slow  # Keras in subprocesses
def test_a_model_for_any_image_size_imports_at_the_size_given(tmp_path):
    """`Input((None, None, 3))` (a fully convolutional notebook model) and a Sequential never built: refused with
    the way out, then imported at `--input`, with their weights."""
    keras = import_keras()
    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(8, 3, padding="same", kernel_initializer="he_normal", name="c")(x)
    any_size = keras.Model(x, keras.layers.GlobalAveragePooling2D(name="g")(y))
    any_size.save(tmp_path / "any.keras")
    r = run_cli("import", str(tmp_path / "any.keras"))
    assert r.returncode == 2 and "give one: --input HxW" in r.stderr, r.stderr
    spec, weights = str(tmp_path / "any.yaml"), str(tmp_path / "any.weights.h5")
    r = run_cli("import", str(tmp_path / "any.keras"), "--input", "24x20", "-o", spec, "--weights", weights)
    assert r.returncode == 0, r.stderr
    text = open(spec).read()
    assert "input: [24, 20, 3]" in text and "kernel_init: he_normal" in text, text
    assert run_cli("compile", spec, "--weights", weights, "-o", str(tmp_path / "any2.keras")).returncode == 0
    again = keras.saving.load_model(tmp_path / "any2.keras")
    im = np.random.default_rng(0).normal(size=(2, 24, 20, 3)).astype("float32")
    assert np.allclose(again.predict(im, verbose=0), any_size.predict(im, verbose=0), atol=1e-5)
    assert run_cli("import", str(tmp_path / "any.keras"), "--input", "24x20x1").returncode == 2
    assert "expected HxW or HxWxC" in run_cli("import", str(tmp_path / "any.keras"), "--input", "big").stderr
    unbuilt = keras.Sequential([keras.layers.Conv2D(4, 3, name="c"), keras.layers.Flatten(name="f"),
                                keras.layers.Dense(3, name="d")], name="unbuilt")
    with pytest.raises(ImportError_, match="no input shape yet"):
        from_keras(unbuilt)
    from sepspec.emit.importer import at_input
    text = from_keras(at_input(unbuilt, (6, 6, 1)))
    assert "input: [6, 6, 1]" in text and "- dense: {units: 3, name: d}" in text, text
