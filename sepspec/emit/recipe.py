"""How a Keras model was trained, as a spec's `train:` section writes it (the part of `sepspec import` beside the
layers): the model's own preprocessing (then the trainer hands it the pixels as they are), its augmentation layers
(Keras's random image layers: the identity outside training, so not network) and the optimizer and loss it was
compiled with. What the trainer cannot do as the model did is a note, one line each, which the import writes at the
top of the spec and says on the command line; the network itself is exact or refused (`importer`)."""

from __future__ import annotations

import json

from ..spec.trainconf import SGD, Adam, AdamW
from .layeroptions import float32_decimal, number

# Keras's random image layers, each the identity outside training (tested on every one); RandomCrop only where it
# keeps the image's size (else it resizes the image outside training: network, refused)
AUGMENTATIONS = frozenset({
    "AugMix", "CutMix", "MixUp", "RandAugment", "RandomBrightness", "RandomColorDegeneration", "RandomColorJitter",
    "RandomContrast", "RandomElasticTransform", "RandomErasing", "RandomFlip", "RandomGaussianBlur",
    "RandomGrayscale", "RandomHue", "RandomInvert", "RandomPerspective", "RandomPosterization", "RandomRotation",
    "RandomSaturation", "RandomSharpness", "RandomShear", "RandomTranslation", "RandomZoom", "Solarization"})
# what may stand between the image and an augmentation (per pixel: a flip before or after it is the same)
PREPROCESSING = frozenset({"Rescaling", "Normalization"})
# the optimizers `train.optimizer` has, by Keras's class name, with the options it keeps
OPTIMIZERS = {"Adam": ("adam", ("learning_rate", "weight_decay")),
              "AdamW": ("adamw", ("learning_rate", "weight_decay")),
              "SGD": ("sgd", ("learning_rate", "momentum", "nesterov", "weight_decay"))}
# an optimizer's other options, at Keras's defaults (the trainer's optimizers are Keras's, built with these)
OPTIMIZER_DEFAULTS = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False, "clipnorm": None,
                      "global_clipnorm": None, "clipvalue": None, "use_ema": False, "loss_scale_factor": None,
                      "gradient_accumulation_steps": None, "decay": 0.0}
TRAIN_OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "sgd": SGD}
# train.schedule's choices besides `constant`, as a note names them
SCHEDULES = ("inverse_time", "step", "cosine", "one_cycle", "linear", "reduce_on_plateau")
LOSSES = {"CategoricalCrossentropy", "SparseCategoricalCrossentropy", "categorical_crossentropy",
          "sparse_categorical_crossentropy"}


def _keras(op) -> bool:
    return type(op).__module__.split(".")[0] == "keras"


def is_augmentation(op) -> bool:
    """Is `op` one of Keras's random image layers that leaves the image as it is outside training?"""
    name = type(op).__name__
    if not _keras(op):
        return False
    if name == "RandomCrop":
        return tuple(op.input.shape[1:3]) == (op.height, op.width)
    return name in AUGMENTATIONS


def crop_resizes(op) -> str | None:
    """Why a RandomCrop is network (it resizes the image outside training), or None."""
    if type(op).__name__ != "RandomCrop" or not _keras(op) or is_augmentation(op):
        return None
    h, w = op.input.shape[1:3]
    return (f"a {h}x{w} input, which it resizes to {op.height}x{op.width} outside training; to pad and crop each "
            f"image in training only, leave it and its padding out: the trainer's `augment: {{crop: N}}`")


def augment(ops: list) -> tuple[dict, list[str]]:
    """(`train.augment`'s keys, notes) for a model's augmentation layers: a horizontal RandomFlip is `flip: true`
    (both flip each image with probability 1/2); the others have no equal in the trainer."""
    out, notes = {}, []
    for op in ops:
        name = type(op).__name__
        if name == "RandomFlip" and op.get_config().get("mode") == "horizontal":
            out["flip"] = True
        elif name != "RandomCrop":  # a crop to the image's own size does nothing
            notes.append(f"{op.name} ({name}{_mode(op)}): train.augment has flip (horizontal), crop, cutout and "
                         f"mixup")
    return out, notes


def _mode(op) -> str:
    mode = op.get_config().get("mode")
    return f" {mode}" if isinstance(mode, str) else ""


def compile_config(source: str) -> dict | None:
    """The training configuration saved in a model file ({"optimizer", "loss"}, as Keras 3's `get_compile_config`),
    or None: `config.json`'s `compile_config` in a .keras file, the `training_config` attribute of an .h5 one (Keras
    2's and Keras 3's legacy format); JSON only, nothing is deserialised."""
    import zipfile

    try:
        if source.endswith(".keras"):
            with zipfile.ZipFile(source) as z:
                return json.loads(z.read("config.json")).get("compile_config") or None
        import h5py

        with h5py.File(source, "r") as f:
            raw = f.attrs.get("training_config")
        if raw is None:
            return None
        cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        return {"optimizer": cfg.get("optimizer_config"), "loss": cfg.get("loss")}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # the model loaded: its training configuration is what is missing, not an error


def of_model(model) -> dict | None:
    """A compiled model's training configuration (`sepspec.from_keras` on a model in memory), or None."""
    if not getattr(model, "compiled", False):
        return None
    try:
        return model.get_compile_config()
    except Exception:  # noqa: BLE001 - a custom loss or optimizer Keras cannot serialise: nothing to read
        return None


def _class(obj) -> tuple[str, dict]:
    """(class name, config) of a serialised Keras object, or a name given as a string (`optimizer="adam"`)."""
    if isinstance(obj, str):
        return obj, {}
    if isinstance(obj, dict):
        return str(obj.get("class_name", "")).removeprefix("Custom>"), obj.get("config") or {}
    return "", {}


def compiled(config: dict | None) -> tuple[dict, list[str]]:
    """(`train:` keys, notes) for a model's optimizer and loss."""
    if not config:
        return {}, []
    out, notes = {}, []
    name, opt = _class(config.get("optimizer"))
    name = {k.lower(): k for k in OPTIMIZERS}.get(name, name)  # `compile(optimizer="adam")`
    if name in OPTIMIZERS:
        kind, kept = OPTIMIZERS[name]
        optimizer = {"name": kind}
        rate = opt.get("learning_rate", 0.01 if name == "SGD" else 0.001)
        if isinstance(rate, dict):  # a schedule object counts steps; a spec's schedules are of the epoch
            schedule, cfg = _class(rate)
            rate = cfg.get("initial_learning_rate", (cfg.get("values") or [None])[0])  # PiecewiseConstantDecay's
            first = "its first rate" if number(rate) else "the spec's default rate"
            notes.append(f"the learning rate schedule {schedule}: {first} and `constant` written (train.schedule: "
                         f"{', '.join(SCHEDULES)})")
        if number(rate):
            optimizer["learning_rate"] = float32_decimal(rate)
        for key in kept[1:]:
            value = opt.get(key, {"SGD": {"momentum": 0.0, "nesterov": False}}.get(name, {}).get(key))
            if key == "weight_decay" and value is None:
                value = 0.004 if name == "AdamW" else 0.0
            if value is not None:
                optimizer[key] = float(value) if number(value) else value  # Python floats in Keras (the rate: float32)
        spec_default = TRAIN_OPTIMIZERS[kind]()  # written where the spec's default differs from the model's
        optimizer = {k: v for k, v in optimizer.items() if k == "name" or v != getattr(spec_default, k)}
        for key, default in OPTIMIZER_DEFAULTS.items():
            if key in opt and opt[key] != default and not (number(opt[key]) and number(default)
                                                            and abs(opt[key] - default) <= 1e-9 * abs(default)):
                notes.append(f"{name}'s {key}={opt[key]!r}: the trainer's {name} has Keras's {default!r}")
        out["optimizer"] = optimizer
        out["schedule"] = {"name": "constant"}
    elif name:
        notes.append(f"the optimizer {name}: train.optimizer is adam, adamw or sgd (the spec's default applies)")
    loss, cfg = _class(config.get("loss"))
    if loss in LOSSES:
        if number(cfg.get("label_smoothing")) and cfg["label_smoothing"] > 0:
            out["label_smoothing"] = float(cfg["label_smoothing"])
    elif loss:
        notes.append(f"the loss {loss}: the trainer's is the categorical cross-entropy")
    return out, notes

