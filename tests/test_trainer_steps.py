"""The trainer's steps in process, on tiny data, without the command line: set-up, one epoch, its commit, and the
finish with the test figures. (The command-line tests in test_train_cli.py kill and resume the real process.)"""
import json
import os

import numpy as np
import pytest

from sepspec.checked import check_spec
from sepspec.spec.edit import with_overrides
from sepspec.spec.load import load_source
from sepspec.spec.source import parse
from sepspec.train import rundir
from sepspec.train.options import Options
from sepspec.train.scoring import accuracy_on_test_split
from sepspec.train.trainer import Training

from conftest import MINIMAL

pytestmark = pytest.mark.slow  # trains, converts or starts the CLI with TensorFlow: not in the inner loop


class Data:
    """In-memory images in the loader's shape (what `load_data` returns)."""

    def __init__(self, n=96, classes=4, seed=0):
        rng = np.random.default_rng(seed)
        self.x_train = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
        self.y_train = rng.integers(0, classes, n)
        self.x_test = rng.integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
        self.y_test = rng.integers(0, classes, 32)
        self.class_names = [f"c{i}" for i in range(classes)]
        self.source = "memory"
        self.streamed = False


@pytest.fixture
def report():
    src = with_overrides(parse(MINIMAL, "tiny.yaml"), ["train.epochs=2", "train.batch_size=16",
                                                       "train.validation=16", "train.tta=flip"])
    return check_spec(load_source(src), "tiny.yaml").raise_errors().report


def test_an_epoch_its_commit_and_the_finish(tmp_path, report):
    run = str(tmp_path)
    data = Data()
    t = Training(run, report, Options(seed=1), None, data)
    assert (len(t.x), len(t.xv), t.steps) == (80, 16, 5) and t.split == "16 images held out of the training split"
    row, improved = t.epoch(0)
    assert row["epoch"] == 1 and 0 <= row["val_accuracy"] <= 1 and "val_accuracy_no_tta" in row
    assert improved and os.path.isfile(os.path.join(run, rundir.best_file(1)))
    t.commit(row, improved)
    state = rundir.read_state(run)
    assert state["epoch"] == 1 and state["best"]["epoch"] == 1
    assert json.load(open(os.path.join(run, rundir.METRICS)))["status"] == "running"
    assert t.epochs() == "finished" and [r["epoch"] for r in t.rows] == [1, 2]
    t.finish("finished")
    m = rundir.read_metrics(run)
    assert m["status"] == "finished" and m["val_images"] == 16 and m["validation"] == 16
    test = m["test"]
    assert test["images"] == 32 and test["tta"] == "flip" and test["final_epoch"] == 2
    # the best model's figure is what `evaluate` gets from best.keras on the same test split
    assert test["best_accuracy"] == accuracy_on_test_split(run, tta="flip", data=data)


def test_a_stop_on_the_pruners_word_and_an_interrupted_finish_scores_nothing(tmp_path, report):
    run = str(tmp_path)
    t = Training(run, report, Options(seed=1), None, Data())
    seen = []
    assert t.epochs(on_epoch=lambda e, row: seen.append(e) or True) == "pruned" and seen == [1]
    t.finish("pruned")
    assert rundir.read_metrics(run)["test"] is None  # only a finished run is scored on the test split


def test_tensorboard_logs_each_committed_epoch_and_is_off_with_one_key(tmp_path, report):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = str(tmp_path / "on")
    os.makedirs(run)
    t = Training(run, report, Options(seed=1), None, Data())
    assert t.epochs() == "finished"
    t.finish("finished")
    ea = EventAccumulator(os.path.join(run, "tensorboard"))
    ea.Reload()
    tags = set(ea.Tags()["tensors"])
    assert {"train/loss", "validation/accuracy", "validation/accuracy_without_tta", "train/learning_rate",
            "time/images_per_second", "test/accuracy_final_epoch", "test/accuracy_best_keras"} <= tags
    assert [e.step for e in ea.Tensors("validation/accuracy")] == [1, 2]
    assert [float(e.tensor_proto.float_val[0]) for e in ea.Tensors("train/loss")] == pytest.approx(
        [r["loss"] for r in t.rows])
    assert ea.Graph() is not None  # the model's graph, on the TensorFlow backend
    off = str(tmp_path / "off")
    os.makedirs(off)
    quiet = check_spec(load_source(with_overrides(report.spec.source, ["train.tensorboard=false"])), "t").report
    t = Training(off, quiet, Options(seed=1), None, Data())
    t.epochs()
    assert not os.path.exists(os.path.join(off, "tensorboard"))


def test_the_training_and_validation_steps_are_traced_once_fresh_and_resumed(tmp_path, report, monkeypatch):
    """Keras's TensorFlow trainer, without a strategy, makes the metrics' variables in the first trace of the step,
    and TensorFlow then traces it again (`compiled.build_state` builds them first); validation, every view of it,
    runs one predict step. A trace calls the Python step; the compiled one does not."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    traced = []
    for step in ("train_step", "test_step", "predict_step"):
        original = getattr(TensorFlowTrainer, step)
        monkeypatch.setattr(TensorFlowTrainer, step,
                            lambda self, data, _f=original, _s=step: traced.append(_s) or _f(self, data))
    spec = check_spec(load_source(with_overrides(report.spec.source, ["train.epochs=3"])), "t").report
    run = str(tmp_path)
    t = Training(run, spec, Options(seed=1), None, Data())
    for e in range(2):
        t.commit(*t.epoch(e))
    assert traced == ["train_step", "predict_step"]  # two epochs of 5 steps (80 images, batch 16), validated twice
    traced.clear()
    t = Training(run, spec, Options(seed=1), rundir.read_state(run), Data())  # resumed from its checkpoint
    t.commit(*t.epoch(2))
    assert traced == ["train_step", "predict_step"]


def test_the_epochs_callbacks_let_keras_dispatch_them_asynchronously_unless_a_weight_average_needs_each_step(
        tmp_path, report, monkeypatch):
    """On JAX and PyTorch Keras runs batch-end callbacks in a thread of their own (the next step dispatched while
    the last one computes) only when every callback allows it; else it waits for each step's loss. Keras's own rule
    (its `CallbackList`, with the thread-safe backend's flag) decides here, on a terminal's progress line too."""
    from keras.src import backend as keras_backend

    from sepspec.lazy import import_keras
    from sepspec.train import terminal

    keras = import_keras()
    monkeypatch.setattr(keras_backend, "IS_THREAD_SAFE", True)  # JAX's and PyTorch's value; TensorFlow's is False
    monkeypatch.setattr(terminal.sys.stdout, "isatty", lambda: True)
    t = Training(str(tmp_path / "plain"), report, Options(seed=1), None, Data())
    progress = terminal.Progress(keras, 1, 2, t.steps)
    assert progress.cb is not None
    assert keras.callbacks.CallbackList(t.callbacks([], progress), model=t.model)._async_train
    averaged = check_spec(load_source(with_overrides(report.spec.source, ["train.ema=0.9"])), "t").report
    t = Training(str(tmp_path / "ema"), averaged, Options(seed=1), None, Data())
    assert not keras.callbacks.CallbackList(t.callbacks([], progress), model=t.model)._async_train
