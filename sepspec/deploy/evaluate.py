"""`sepspec evaluate`: test accuracy, per-class accuracy and the confusion matrix of any model form: a run (its
best.keras), a .keras file, or an exported .tflite/.onnx file run by its own runtime. Returns an `Evaluation`
and writes it beside the model (`evaluation.json` and `confusion.png`, or `FILE.evaluation.json`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..data.read import load_data
from ..diagnostics import UserError
from ..figures import pyplot, save_figure
from ..layers import dims
from ..train import rundir
from ..train.pipeline import channel_stats
from ..train.scoring import predictions_on_test_split


def _data_for(folder: str | None, data_arg: str | None):
    """The data a model is scored on: --data if given, else the run's own recorded data set, else the default."""
    if folder and rundir.is_run(folder):  # read as the run's spec reads it (also for a checkpoint inside the run)
        return rundir.run_data(folder, data_arg)
    return load_data(data_arg)


@dataclass
class Evaluation:
    """A model's figures on the test split, and the files they were written to."""

    model: str  # the file scored
    accuracy: float
    per_class: dict[str, float]
    confusion: list[list[int]]  # rows: true class, columns: predicted
    tta: str = "none"
    reference: str | None = None  # an exported file's float model, and how the two compare
    reference_accuracy: float | None = None
    agreement: float | None = None
    runtime: str = "litert"  # an exported .tflite: litert (LiteRT's kernels) or tflm (TensorFlow Lite Micro's)
    litert_accuracy: float | None = None  # with runtime tflm: the same file on LiteRT, and how often the two agree
    litert_agreement: float | None = None
    arena: dict | None = None  # with runtime tflm: the activation bytes TFLM planned, against the static estimate
    written: list[str] = field(default_factory=list)

    @property
    def images(self) -> int:
        return int(sum(map(sum, self.confusion)))


def evaluate(target: str, data_arg: str | None = None, tta: str = "none", reference: str | None = None,
             runtime: str = "litert") -> Evaluation:
    if runtime == "tflm" and not target.endswith(".tflite"):
        raise UserError(f"{target}: --runtime tflm runs an int8 .tflite file (sepspec export --format litert-int8 "
                        "or tflm)")
    if target.endswith((".tflite", ".onnx")):
        if tta != "none":
            raise UserError(f"{target}: --tta is for Keras models (an exported file is evaluated as it is)")
        return evaluate_exported(target, data_arg, reference, runtime)
    if reference is not None:
        raise UserError("--reference is for an exported .tflite or .onnx file")
    model_path, folder, data, pred = _keras_predictions(target, data_arg, tta)
    result = _scored(model_path, pred, data, tta=tta)
    out, picture = os.path.join(folder, "evaluation.json"), os.path.join(folder, "confusion.png")
    # paths relative to the record's folder, so a committed run folder names its own files wherever it is cloned
    rundir.write_json(out, {"model": rundir.portable(folder, model_path), "tta": tta,
                            "test_accuracy": result.accuracy, "per_class": result.per_class,
                            "confusion": result.confusion})
    _plot_confusion(picture, np.asarray(result.confusion), data.class_names, result.accuracy)
    result.written = [picture, out]
    return result


def _keras_predictions(target: str, data_arg: str | None, tta: str = "none", data=None):
    """(model file, its folder, the data, predicted labels) of a run directory (its best.keras) or a .keras file,
    normalised as its run was (a bare model: with the training set's statistics, as the trainer does)."""
    model_path, folder = rundir.model_of(target)
    try:
        norm = rundir.normalization(folder)
    except UserError as e:
        raise UserError(f"{e}; evaluate the .keras file itself to use the training set's statistics") from None
    data = data if data is not None else _data_for(folder, data_arg)
    if norm is None:
        norm = channel_stats(data.x_train)
    model = rundir.load_model(model_path)
    shape, classes = tuple(model.input_shape[1:]), model.output_shape[-1]
    if shape != data.x_test.shape[1:] or classes != len(data.class_names):
        raise UserError(f"{model_path}: the model takes {dims(shape)} images and gives {classes} "
                        f"classes; the data is {dims(data.x_test.shape[1:])} with "
                        f"{len(data.class_names)} classes")
    return model_path, folder, data, predictions_on_test_split(model, data, norm, tta).argmax(axis=-1)


def _scored(model: str, pred, data, tta: str = "none") -> Evaluation:
    """Accuracy, per-class accuracy and the confusion matrix of predicted labels on the test set."""
    y = data.y_test
    n = len(data.class_names)
    cm = np.zeros((n, n), dtype=int)
    np.add.at(cm, (y, pred), 1)
    per_class = {name: float(cm[i, i] / max(cm[i].sum(), 1)) for i, name in enumerate(data.class_names)}
    return Evaluation(model, float((pred == y).mean()), per_class, cm.tolist(), tta)


def evaluate_exported(path: str, data_arg: str | None = None, reference: str | None = None,
                      runtime: str = "litert") -> Evaluation:
    """Accuracy of an exported .tflite/.onnx file run by its own runtime (a .tflite on TensorFlow Lite Micro's
    kernels with `runtime="tflm"`, beside LiteRT's figure for the same file); with a reference (a run directory: its
    best.keras; or a .keras file, such as a checkpoint of a run), how often it agrees with that float model."""
    from .runtime import scores

    folder = rundir.model_of(reference)[1] if reference else None  # a missing reference: refused before running
    data = _data_for(folder, data_arg)
    pixels = np.asarray(data.x_test)  # a streamed folder's test images, decoded
    litert = scores(path, pixels).argmax(axis=-1)
    if runtime == "tflm":
        from . import tflm

        micro, head = tflm.scores(path, pixels)
        pred = micro.argmax(axis=-1)
    else:
        pred = litert
    result = _scored(path, pred, data)
    result.runtime = runtime
    here = os.path.dirname(os.path.abspath(path))
    record = {"model": rundir.portable(here, path), "runtime": runtime, "test_accuracy": result.accuracy,
              "per_class": result.per_class, "confusion": result.confusion}
    if runtime == "tflm":
        result.litert_accuracy = float((litert == data.y_test).mean())
        result.litert_agreement = float((litert == pred).mean())
        result.arena = {"tflm_activations": head, "estimate": tflm.planned_arena(folder) if folder else None}
        record.update({"litert_accuracy": result.litert_accuracy, "litert_agreement": result.litert_agreement,
                       "arena": result.arena})
    if reference:
        model_path, _, _, ref = _keras_predictions(reference, data_arg, data=data)
        result.reference = model_path
        result.reference_accuracy = float((ref == data.y_test).mean())
        result.agreement = float((ref == pred).mean())
        record.update({"reference": rundir.portable(here, model_path),
                       "reference_accuracy": result.reference_accuracy, "agreement": result.agreement})
    out = path + (".tflm" if runtime == "tflm" else "") + ".evaluation.json"
    rundir.write_json(out, record)
    result.written = [out]
    return result


def _plot_confusion(path, cm, names, acc):
    fig, ax = pyplot().subplots(figsize=(7, 6))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_title(f"test accuracy {100 * acc:.2f}%")
    fig.colorbar(im)
    save_figure(fig, path)
