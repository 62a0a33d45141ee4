"""`sepspec evaluate` (test accuracy, per-class accuracy, confusion matrix) and `sepspec runs` (compare runs)."""

from __future__ import annotations

import io
import json
import os

import numpy as np

from . import rundir
from ..layers import dims
from .data import load_cifar
from .pipeline import channel_stats, normalize
from .predict import probabilities
from .trainer import TrainError


def _recorded_data(run: str) -> str | None:
    """Where a run's data set was when it trained (run.json), or None."""
    try:
        rec = rundir.read_json(os.path.join(run, "run.json"))
        return (rec.get("data") or {}).get("source") or rec["options"].get("data")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _model_and_stats(target: str):
    """(model file, folder for the outputs, normalisation stats or None)."""
    if os.path.isdir(target):
        model_path, out = os.path.join(target, "best.keras"), target
    else:
        model_path, out = target, os.path.dirname(os.path.abspath(target))
    if not os.path.isfile(model_path):
        raise TrainError(f"{target}: no model (expected a run directory with best.keras, or a .keras file)")
    stats = None
    metrics = os.path.join(out, "metrics.json")
    if os.path.isfile(metrics):
        try:
            stats = rundir.read_json(metrics)["normalization"]
            mean, std = stats["mean"], stats["std"]
            if not (len(mean) == len(std) == 3 and all(isinstance(v, (int, float)) and v > 0 for v in std)
                    and all(isinstance(v, (int, float)) for v in mean)):
                raise ValueError("mean and std must be 3 numbers each, std > 0")
        except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError is a ValueError
            raise TrainError(f"{metrics}: damaged, no usable normalisation ({type(e).__name__}: {e}); "
                             f"evaluate the .keras file itself to use the training set's statistics") from None
    return model_path, out, stats


def evaluate(target: str, data_arg: str | None = None, tta: str = "none", reference: str | None = None) -> int:
    if target.endswith((".tflite", ".onnx")):
        if tta != "none":
            raise TrainError(f"{target}: --tta is for Keras models (an exported file is evaluated as it is)")
        return evaluate_exported(target, data_arg, reference)
    if reference is not None:
        raise TrainError("--reference is for an exported .tflite or .onnx file")
    model_path, out, stats = _model_and_stats(target)
    recorded = _recorded_data(out) if data_arg is None else None
    if recorded:  # the run's own data set, as --resume uses it (also for a checkpoint inside the run)
        data = load_cifar(recorded, origin=f"recorded in {os.path.join(out, 'run.json')}; give --data PATH")
    else:
        data = load_cifar(data_arg)
    if stats is None:  # a bare model: standardise as the trainer does, with the training set's statistics
        mean, std = channel_stats(data.x_train)
    else:
        mean, std = stats["mean"], stats["std"]
    model = rundir.load_model(model_path)
    shape, classes = tuple(model.input_shape[1:]), model.output_shape[-1]
    if shape != data.x_test.shape[1:] or classes != len(data.class_names):
        raise TrainError(f"{model_path}: the model takes {dims(shape)} images and gives {classes} "
                         f"classes; CIFAR-10 is {dims(data.x_test.shape[1:])} with "
                         f"{len(data.class_names)} classes")
    pred = probabilities(model, normalize(data.x_test, mean, std), tta).argmax(axis=-1)
    acc, per_class, cm = _report(model_path, pred, data, " (flip test-time augmentation)" if tta == "flip" else "")
    rundir.write_json(os.path.join(out, "evaluation.json"), {"model": model_path, "tta": tta, "test_accuracy": acc,
                                                             "per_class": per_class, "confusion": cm.tolist()})
    _plot_confusion(os.path.join(out, "confusion.png"), cm, data.class_names, acc)
    print(f"wrote {os.path.join(out, 'confusion.png')} and evaluation.json")
    return 0


def _report(what: str, pred, data, note: str = ""):
    """Print and return (accuracy, per-class accuracy, confusion matrix) of predicted labels on the test set."""
    y = data.y_test
    n = len(data.class_names)
    cm = np.zeros((n, n), dtype=int)
    np.add.at(cm, (y, pred), 1)
    acc = float((pred == y).mean())
    per_class = {name: float(cm[i, i] / max(cm[i].sum(), 1)) for i, name in enumerate(data.class_names)}
    print(f"{what}: test accuracy {100 * acc:.2f}% on {len(y):,} images{note}")
    for name, a in per_class.items():
        print(f"  {name:<11} {100 * a:6.2f}%")
    print("confusion matrix (rows: true class, columns: predicted):")
    print("            " + " ".join(f"{c[:5]:>5}" for c in data.class_names))
    for i, name in enumerate(data.class_names):
        print(f"  {name:<10}" + " ".join(f"{v:>5}" for v in cm[i]))
    return acc, per_class, cm


def evaluate_exported(path: str, data_arg: str | None = None, reference: str | None = None) -> int:
    """Accuracy of an exported .tflite/.onnx file run by its own runtime; with a reference run, how often it
    agrees with the run's float model (best.keras with its normalisation)."""
    from .runtime import scores

    if reference is not None and not os.path.isfile(os.path.join(reference, "best.keras")):
        raise TrainError(f"{reference}: not a run directory (no best.keras)")
    recorded = _recorded_data(reference) if reference and data_arg is None else None
    data = (load_cifar(recorded, origin=f"recorded in {os.path.join(reference, 'run.json')}; give --data PATH")
            if recorded else load_cifar(data_arg))
    pred = scores(path, data.x_test).argmax(axis=-1)
    acc, per_class, cm = _report(path, pred, data)
    result = {"model": os.path.abspath(path), "test_accuracy": acc, "per_class": per_class, "confusion": cm.tolist()}
    if reference:
        model_path, _, stats = _model_and_stats(reference)
        model = rundir.load_model(model_path)
        ref = probabilities(model, normalize(data.x_test, stats["mean"], stats["std"])).argmax(axis=-1)
        result.update({"reference": os.path.abspath(reference), "reference_accuracy": float((ref == data.y_test).mean()),
                       "agreement": float((ref == pred).mean())})
        print(f"reference {model_path}: test accuracy {100 * result['reference_accuracy']:.2f}%; the exported file "
              f"agrees with it on {100 * result['agreement']:.2f}% of the images "
              f"({100 * (acc - result['reference_accuracy']):+.2f} points)")
    out = path + ".evaluation.json"
    rundir.write_json(out, result)
    print(f"wrote {out}")
    return 0


def _plot_confusion(path, cm, names, acc):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
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
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    rundir.atomic_write(path, buf.getvalue())


def list_runs(folder: str) -> int:
    if not os.path.isdir(folder):
        raise TrainError(f"{folder}: no such folder")
    found = []
    for d, _, files in os.walk(folder):
        if "metrics.json" in files:
            try:
                found.append((d, rundir.read_json(os.path.join(d, "metrics.json"))))
            except (OSError, json.JSONDecodeError):
                continue
    if not found:
        print(f"no runs under {folder}")
        return 0
    print(f"{'run':<44} {'spec':<12} {'params':>8} {'status':<11} {'epochs':>7} {'best val':>9} {'at':>4} {'s/epoch':>8}"
          f"  settings")
    for d, m in sorted(found):
        try:
            print(_run_line(d, m))
        except (TypeError, ValueError, AttributeError, KeyError):
            print(f"{d:<44} (damaged metrics.json)")
    return 0


def _run_line(d: str, m: dict) -> str:
    best = f"{100 * m['best_val_accuracy']:.2f}%" if m.get("best_val_accuracy") is not None else "-"
    spe = f"{m['seconds_per_epoch']:.1f}" if m.get("seconds_per_epoch") else "-"
    status = m.get("status", "?")
    if status == "running" and rundir.is_held(d) is False:
        status = "stopped"  # its process died without a word (killed, crashed): `train --resume` continues it
    return (f"{d:<44} {m.get('spec', '?'):<12} {m.get('params', 0):>8,} {status:<11} "
            f"{m.get('epochs_completed', 0):>3}/{m.get('epochs_planned', 0):<3} {best:>9} "
            f"{m.get('best_epoch') or '-':>4} {spe:>8}  {_settings(d)}")


def _settings(run: str) -> str:
    """What the command line changed (seed, --set), so that runs of one spec can be told apart."""
    try:
        opts = rundir.read_json(os.path.join(run, "run.json"))["options"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return "?"
    return " ".join([f"seed={opts.get('seed')}"] + [f"--set {o!r}" if " " in o else f"--set {o}"
                                                    for o in opts.get("overrides") or []])
