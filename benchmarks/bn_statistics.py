"""Why do the first epochs validate low? Re-estimate BatchNormalization's moving statistics of a run's best.keras
on 10,000 training images and evaluate again on the test split. A large jump means the weights were fine and the
moving statistics (momentum 0.99) had not caught up with them.

    python benchmarks/bn_statistics.py RUN_DIR... [--data PATH]   (default: each run's recorded data set)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sepspec.data.read import load_data  # noqa: E402
from sepspec.lazy import import_keras  # noqa: E402
from sepspec.train import rundir  # noqa: E402
from sepspec.train.pipeline import normalize  # noqa: E402
from sepspec.train.scoring import accuracy_on_test_split, predictions_on_test_split  # noqa: E402


def reestimated_accuracy(run: str, data_arg: str | None) -> tuple[float, float]:
    keras = import_keras()
    data = load_data(data_arg) if data_arg else load_data(rundir.recorded_data(run), origin=rundir.data_origin(run))
    mean, std = rundir.normalization(run)
    model = rundir.load_model(os.path.join(run, rundir.BEST))
    before = accuracy_on_test_split(run, data=data)
    # cumulative average of the batch statistics over 10,000 training images
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    xs = normalize(data.x_train[:10000], mean, std)
    for layer in bns:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, "float32"))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, "float32"))
    for i, b in enumerate(range(0, len(xs), 250)):
        for layer in bns:
            layer.momentum = i / (i + 1)
        model(xs[b:b + 250], training=True)
    after = float((predictions_on_test_split(model, data, (mean, std)).argmax(-1) == data.y_test).mean())
    return before, after


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR")
    ap.add_argument("--data", metavar="PATH")
    a = ap.parse_args()
    for run in a.runs:
        before, after = reestimated_accuracy(run, a.data)
        print(f"{run}: test accuracy with the trained moving statistics {100 * before:.1f}%, "
              f"with re-estimated statistics {100 * after:.1f}%")
