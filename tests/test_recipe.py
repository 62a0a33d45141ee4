"""`sepspec import` of how a model was trained (`sepspec/emit/recipe.py`): a model that rescales its pixels itself
gets `normalize: pixels`, its augmentation layers (Keras's random image layers, the identity outside training)
become `train.augment` where the trainer does the same and a note where it does not, its compile() becomes the
optimizer, schedule and label smoothing; a model saved by Keras 2 alike (`tests/fixtures/keras2_notebook.h5`)."""
import json
import os

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import sepspec
from sepspec.emit import recipe
from sepspec.emit.importer import ImportError_, from_keras
from sepspec.lazy import import_keras

from conftest import ROOT, run_cli


def keras_layers():
    return import_keras().layers


# each augmentation layer with the arguments it needs; every one of Keras's random image layers is in the set
MADE = {"RandomBrightness": (0.2,), "RandomColorDegeneration": (0.5,), "RandomContrast": (0.2,),
        "RandomHue": (0.2,), "RandomPosterization": ((1, 4),), "RandomRotation": (0.1,), "RandomSaturation": (0.5,),
        "RandomSharpness": (0.5,), "RandomShear": (0.2,), "RandomTranslation": (0.1, 0.1), "RandomZoom": (0.2,)}


def test_every_augmentation_layer_is_the_identity_outside_training():
    """What lets the import leave them out of the network: each gives its input back unchanged outside training
    (and RandomCrop does only at its input's own size, which `crop_resizes` checks)."""
    layers = keras_layers()
    assert {n for n in dir(layers) if n.startswith("Random")} - {"RandomCrop"} <= recipe.AUGMENTATIONS
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    changed = 0
    for name in sorted(recipe.AUGMENTATIONS):
        layer = getattr(layers, name)(*MADE.get(name, ()))
        assert np.array_equal(np.asarray(layer(x, training=False)), x), name
        changed += not np.array_equal(np.asarray(layer(x, training=True)), x)
    assert changed >= len(recipe.AUGMENTATIONS) - 3  # and they do augment (a few draw nothing on some inputs)
    crop = layers.RandomCrop(32, 32)
    assert np.array_equal(np.asarray(crop(x, training=True)), x)


def notebook(keras, **compiled):
    """A Keras tutorial's model: augmentation in a Sequential of its own, the pixels rescaled in the model."""
    layers = keras.layers
    augmentation = keras.Sequential([layers.RandomFlip("horizontal", name="random_flip"),
                                     layers.RandomRotation(0.1, name="random_rotation")], name="data_augmentation")
    x = keras.Input((32, 32, 3))
    y = layers.Rescaling(1.0 / 255)(augmentation(x))
    y = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(y)
    y = layers.BatchNormalization(name="stem_bn")(y)
    y = layers.Activation("relu", name="stem_relu")(y)
    y = layers.SeparableConv2D(32, 3, padding="same", activation="relu", name="sep")(y)
    y = layers.GlobalAveragePooling2D(name="pool")(y)
    model = keras.Model(x, layers.Dense(10, activation="softmax", name="fc")(y), name="tutorial")
    if compiled:
        model.compile(**compiled)
    return model


@pytest.mark.slow  # Keras in subprocesses, a training
def test_a_tutorial_model_imports_with_its_recipe_and_trains_on_the_pixels_it_expects(tmp_path, data):
    keras = import_keras()
    rng = np.random.default_rng(0)
    model = notebook(keras, optimizer=keras.optimizers.Adam(learning_rate=1e-3, beta_2=0.98),
                     loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    for layer in model.layers:  # weights that make every layer matter
        layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") if "variance" not in v.name
                           else rng.uniform(0.5, 1.5, w.shape).astype("float32")
                           for v, w in zip(layer.weights, layer.get_weights())])
    model.save(tmp_path / "tutorial.keras")
    spec, weights = str(tmp_path / "net.yaml"), str(tmp_path / "net.weights.h5")
    r = run_cli("import", str(tmp_path / "tutorial.keras"), "-o", spec, "--weights", weights)
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2 and "Adam's beta_2=0.98" in notes[0] and "random_rotation (RandomRotation)" in notes[1], notes
    text = open(spec).read()
    assert text.count("# not kept from its training: ") == 2, text
    doc = yaml.safe_load(text)
    assert doc["train"] == {"optimizer": {"name": "adam", "learning_rate": 0.001}, "schedule": {"name": "constant"},
                            "label_smoothing": 0.1, "augment": {"flip": True}, "normalize": "pixels"}, doc["train"]
    assert [next(iter(e)) for e in doc["layers"]] == ["rescale", "conv", "sepconv", "gap", "dense"], doc["layers"]
    # the network is the model's outside training, on the pixels as they are
    assert run_cli("compile", spec, "--weights", weights, "-o", str(tmp_path / "again.keras")).returncode == 0
    x = rng.integers(0, 256, (4, 32, 32, 3)).astype("float32")
    again = keras.saving.load_model(tmp_path / "again.keras")
    want = np.asarray(model(x, training=False))
    assert np.abs(again.predict(x, verbose=0) - want).max() < 1e-5 and np.ptp(want) > 0.1
    # and the trainer hands it those pixels: the run records them as its input
    result = sepspec.fit(spec, data=data, out=str(tmp_path / "run"), epochs=1, train_limit=64, val_limit=32)
    assert result.status == "finished"
    stats = json.load(open(os.path.join(result.run, "metrics.json")))["normalization"]
    assert stats == {"mean": [0.0] * 3, "std": [1 / 255] * 3}, stats


def test_a_model_in_memory_brings_its_compile_and_one_never_compiled_no_recipe():
    keras = import_keras()
    notes = []
    text = sepspec.from_keras(notebook(keras, optimizer="sgd", loss="categorical_crossentropy"), notes=notes)
    train = yaml.safe_load(text)["train"]
    assert train["optimizer"] == {"name": "sgd", "momentum": 0.0} and train["schedule"] == {"name": "constant"}
    assert notes == ["random_rotation (RandomRotation): train.augment has flip (horizontal), crop, cutout and mixup"]
    assert yaml.safe_load(sepspec.from_keras(notebook(keras), training={"optimizer": "adamw"}))["train"][
        "optimizer"] == {"name": "adamw"}  # a compile configuration given (a file's)
    plain = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    text = from_keras(plain)
    assert "train" not in yaml.safe_load(text) and "not kept" not in text
    normalized = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Normalization(mean=0.5, variance=0.1),
                                   keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(3, activation="softmax")])
    assert yaml.safe_load(from_keras(normalized))["train"] == {"normalize": "pixels"}


@pytest.mark.parametrize("build, says", [
    (lambda k, x: k.layers.RandomFlip("horizontal", name="flip")(k.layers.Conv2D(4, 3, name="c")(x)),
     "flip (RandomFlip) after c (Conv2D): an augmentation layer is imported where it reads the image"),
    (lambda k, x: k.layers.RandomCrop(8, 8, name="crop")(k.layers.ZeroPadding2D(2)(x)),
     "crop (RandomCrop with a 12x12 input, which it resizes to 8x8 outside training; to pad and crop"),
])
def test_augmentation_that_is_network_is_refused_by_name(build, says):
    keras = import_keras()
    x = keras.Input((8, 8, 3))
    y = build(keras, x)
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(y)))
    with pytest.raises(ImportError_) as e:
        from_keras(model)
    assert says in str(e.value), str(e.value)


def test_a_crop_to_the_images_own_size_and_a_vertical_flip():
    keras = import_keras()
    layers = keras.layers
    x = keras.Input((8, 8, 3))
    y = layers.RandomFlip("vertical", name="vflip")(layers.RandomCrop(8, 8)(x))
    model = keras.Model(x, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(y))))
    notes = []
    text = from_keras(model, notes=notes)
    assert notes == ["vflip (RandomFlip vertical): train.augment has flip (horizontal), crop, cutout and mixup"]
    assert "train" not in yaml.safe_load(text)  # nothing the trainer does


@pytest.mark.parametrize("config, train, said", [
    ({"optimizer": "adam", "loss": "categorical_crossentropy"},
     {"optimizer": {"name": "adam", "learning_rate": 0.001}, "schedule": {"name": "constant"}}, []),
    ({"optimizer": {"class_name": "AdamW", "config": {"learning_rate": 0.0010000000474974513, "weight_decay": 0.004}}},
     {"optimizer": {"name": "adamw"}, "schedule": {"name": "constant"}}, []),
    ({"optimizer": {"class_name": "Adam", "config": {"learning_rate": {"class_name": "CosineDecay", "config": {
        "initial_learning_rate": 0.004, "decay_steps": 1000}}, "amsgrad": True}}},
     {"optimizer": {"name": "adam", "learning_rate": 0.004}, "schedule": {"name": "constant"}},
     ["the learning rate schedule CosineDecay", "Adam's amsgrad=True"]),
    ({"optimizer": {"class_name": "RMSprop", "config": {"learning_rate": 0.001}}, "loss": {
        "class_name": "SparseCategoricalCrossentropy", "config": {"label_smoothing": 0.05}}},
     {"label_smoothing": 0.05}, ["the optimizer RMSprop"]),
    ({"optimizer": {"class_name": "Custom>SGD", "config": {"learning_rate": 0.1, "decay": 0.01, "momentum": 0.9}},
      "loss": "mse"},
     {"optimizer": {"name": "sgd", "learning_rate": 0.1}, "schedule": {"name": "constant"}},
     ["SGD's decay=0.01", "the loss mse"]),
    ({"optimizer": {"class_name": "SGD", "config": {"learning_rate": {"class_name": "PiecewiseConstantDecay",
                                                                      "config": {"boundaries": [100],
                                                                                 "values": [0.1, 0.01]}}}}},
     {"optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.0}, "schedule": {"name": "constant"}},
     ["the learning rate schedule PiecewiseConstantDecay: its first rate"]),
    ({"optimizer": {"class_name": "Adam", "config": {"learning_rate": {"class_name": "Mine", "config": {}}}}},
     {"optimizer": {"name": "adam"}, "schedule": {"name": "constant"}},
     ["the learning rate schedule Mine: the spec's default rate"]),
    (None, {}, []),
])
def test_the_optimizer_and_loss_a_model_was_compiled_with(config, train, said):
    """Keras 3's compile config and Keras 2's training config (`Custom>SGD`, its `decay`); what is not kept is said."""
    got, notes = recipe.compiled(config)
    assert got == train
    assert len(notes) == len(said) and all(n.startswith(s) for n, s in zip(notes, said)), notes
    if got:  # what is written is a valid recipe
        from sepspec.spec.trainconf import Train

        Train.model_validate(got)


@pytest.mark.slow  # Keras in a subprocess
def test_a_keras_2_file_brings_its_training_configuration():
    """tf_keras's training_config (SGD with Nesterov momentum, label smoothing) and its random layers, whose
    configurations Keras 3 reads without Keras 2's `rng_type`."""
    r = run_cli("import", os.path.join(ROOT, "tests", "fixtures", "keras2_notebook.h5"))
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["train"] == {
        "optimizer": {"name": "sgd", "learning_rate": 0.05, "nesterov": True}, "schedule": {"name": "constant"},
        "label_smoothing": 0.1, "augment": {"flip": True}}
    assert "note: not kept from its training: turn (RandomRotation)" in r.stderr


@given(kind=st.sampled_from(["Adam", "AdamW", "SGD"]),
       rate=st.floats(1e-6, 1.0), decay=st.one_of(st.none(), st.floats(0, 0.1)), momentum=st.floats(0, 0.99),
       nesterov=st.booleans(), smoothing=st.one_of(st.just(0.0), st.floats(0, 0.5)))
def test_what_the_import_writes_of_a_compile_is_what_the_trainer_compiles(kind, rate, decay, momentum, nesterov,
                                                                         smoothing):
    """Any Adam, AdamW or SGD a model was compiled with, with its loss's label smoothing, through the spec's
    `train:` and back to the optimizer and loss the trainer makes: the same learning rate, momentum, Nesterov and
    weight decay as Keras keeps them (the rate a float32, the others Python floats), the same smoothing."""
    from sepspec.spec.trainconf import Train
    from sepspec.train.compiled import optimizer

    keras = import_keras()
    args = {"learning_rate": rate, **({"weight_decay": decay} if decay is not None or kind != "AdamW" else {}),
            **({"momentum": momentum, "nesterov": nesterov} if kind == "SGD" else {})}
    given_opt = getattr(keras.optimizers, kind)(**args)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
    config = {"optimizer": keras.saving.serialize_keras_object(given_opt),
              "loss": keras.saving.serialize_keras_object(loss)}
    written, notes = recipe.compiled(config)
    assert notes == []
    train = Train.model_validate(yaml.safe_load(yaml.safe_dump(written)))  # as the spec file holds it
    made = optimizer(keras, train, None).get_config()
    want = given_opt.get_config()
    assert type(optimizer(keras, train, None)).__name__ == kind
    for key in ("learning_rate", "momentum", "nesterov", "beta_1", "beta_2", "epsilon", "amsgrad"):
        assert made.get(key) == want.get(key), (key, made, want)
    assert (made["weight_decay"] or 0) == (want["weight_decay"] or 0), (made, want)
    assert train.label_smoothing == loss.get_config()["label_smoothing"]
