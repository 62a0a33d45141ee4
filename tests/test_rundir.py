"""The run directory's owner (`sepspec.train.rundir`) at its seams, without training: the commit protocol and
settling (a kill at any instant), the one normalisation rule, the held-out split, and the listing."""
import json
import os

import numpy as np
import pytest

from sepspec.diagnostics import UserError
from sepspec.spec.trainconf import Train
from sepspec.train import rundir
from sepspec.train.options import Options
from sepspec.train.split import split


@pytest.fixture(scope="module")
def model():
    from sepspec.lazy import import_keras

    keras = import_keras()
    x = keras.Input((4, 4, 3))
    return keras.Model(x, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


def commit(run, epoch, model, best, improved):
    if improved:
        rundir.save_model(model, os.path.join(run, rundir.best_file(epoch)))
    return rundir.commit(run, epoch, model, rows=[{"epoch": e, "loss": 1.0, "accuracy": 0.5,
                         "val_loss": 1.0, "val_accuracy": 0.5} for e in range(1, epoch + 1)],
                         metrics={"status": "running"}, title="t", best=best, rng={})


def test_commit_names_the_epoch_and_settling_keeps_one_of_each(tmp_path, model):
    run = str(tmp_path)
    commit(run, 1, model, {"val_accuracy": 0.5, "epoch": 1, "file": rundir.best_file(1)}, True)
    assert sorted(os.listdir(run)) == ["best.keras", "checkpoint-0001.keras", "curves.png", "history.csv",
                                       "metrics.json", "state.json"]
    state = commit(run, 2, model, {"val_accuracy": 0.5, "epoch": 1, "file": rundir.best_file(1)}, False)
    assert state["checkpoint"] == "checkpoint-0002.keras" and rundir.read_state(run) == state
    assert sorted(f for f in os.listdir(run) if f.endswith(".keras")) == ["best.keras", "checkpoint-0002.keras"]
    # killed after an epoch's files but before its commit point: the next start settles back to the last commit
    rundir.save_model(model, os.path.join(run, "checkpoint-0003.keras"))
    rundir.save_model(model, os.path.join(run, rundir.best_file(3)))
    assert rundir.read_state(run)["epoch"] == 2
    assert sorted(f for f in os.listdir(run) if f.endswith(".keras")) == ["best.keras", "checkpoint-0002.keras"]
    # killed after the commit point, before settling: the named best file becomes best.keras
    state3 = {**state, "epoch": 3, "checkpoint": "checkpoint-0003.keras",
              "best": {"val_accuracy": 0.9, "epoch": 3, "file": rundir.best_file(3)}}
    rundir.save_model(model, os.path.join(run, "checkpoint-0003.keras"))
    rundir.save_model(model, os.path.join(run, rundir.best_file(3)))
    mark = os.path.getmtime(os.path.join(run, rundir.best_file(3)))
    rundir.write_json(os.path.join(run, rundir.STATE), state3)
    rundir.read_state(run)
    assert sorted(f for f in os.listdir(run) if f.endswith(".keras")) == ["best.keras", "checkpoint-0003.keras"]
    assert os.path.getmtime(os.path.join(run, "best.keras")) == mark  # the file itself, renamed
    rundir.read_state(run)  # settling again changes nothing
    assert sorted(f for f in os.listdir(run) if f.endswith(".keras")) == ["best.keras", "checkpoint-0003.keras"]


def test_the_curves_are_redrawn_at_most_every_few_seconds_while_running_and_always_at_the_end(tmp_path, model):
    run, rows = str(tmp_path), [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5}]
    commit(run, 1, model, {"epoch": 0}, False)
    path = tmp_path / rundir.CURVES
    first = path.stat().st_mtime_ns
    commit(run, 2, model, {"epoch": 0}, False)  # a running run, within CURVES_EVERY of the drawing: not redrawn
    assert path.stat().st_mtime_ns == first
    assert not rundir.curves(run, rows, "t", final=False)
    old = first / 1e9 - rundir.CURVES_EVERY - 1
    os.utime(path, (old, old))  # drawn longer ago: redrawn
    assert rundir.curves(run, rows, "t", final=False) and path.stat().st_mtime_ns > first
    assert rundir.curves(run, rows, "t")  # at the end of a run (final, the default): whatever its age


def test_a_damaged_commit_point_is_one_line(tmp_path, model):
    run = str(tmp_path)
    for text, says in (("{", "damaged"), ('{"epoch": 0, "checkpoint": "c.keras"}', "wrong type"),
                       ('{"epoch": 1, "checkpoint": "c.keras"}', "missing")):
        (tmp_path / rundir.STATE).write_text(text)
        with pytest.raises(UserError) as e:
            rundir.read_state(run)
        assert says in str(e.value) and "\n" not in str(e.value)


def test_one_normalisation_rule_for_every_reader(tmp_path):
    run = str(tmp_path)
    assert rundir.normalization(run) is None  # no metrics.json: a bare model
    for norm, ok in (({"mean": [0.5], "std": [0.2]}, True), ({"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}, True),
                     ({"mean": [0.5, 0.4], "std": [0.2]}, False), ({"mean": [0.5], "std": [0.0]}, False),
                     ({"mean": ["a"], "std": [0.2]}, False), ({"mean": [True], "std": [0.2]}, False), ({}, False)):
        rundir.write_metrics(run, {"normalization": norm})
        if ok:
            assert rundir.normalization(run) == (norm["mean"], norm["std"])
        else:
            with pytest.raises(UserError, match="damaged, no usable normalisation"):
                rundir.normalization(run)


class Data:
    def __init__(self, n):
        self.x_train = np.arange(n)[:, None].repeat(3, 1).astype(np.uint8)
        self.y_train = np.arange(n) % 10
        self.x_test, self.y_test = self.x_train[:5], self.y_train[:5]


def test_the_held_out_split_is_seeded_disjoint_and_in_order():
    data = Data(200)
    x, y, xv, yv = split(data, Train(validation=0.1), Options())
    assert len(xv) == 20 and len(x) == 180
    assert not set(x[:, 0]) & set(xv[:, 0]) and set(x[:, 0]) | set(xv[:, 0]) == set(range(200))
    assert list(x[:, 0]) == sorted(x[:, 0]) and list(xv[:, 0]) != list(range(180, 200))  # not the last 20
    again = split(data, Train(validation=20), Options())  # a count, the same images as the fraction
    assert all(np.array_equal(a, b) for a, b in zip(again, (x, y, xv, yv)))
    x, y, xv, yv = split(data, Train(validation="test"), Options(train_limit=50, val_limit=3))
    assert len(x) == 50 and np.array_equal(xv, data.x_test[:3])
    with pytest.raises(UserError, match="leaves no training"):
        split(data, Train(validation=200), Options())


def test_runs_lists_the_split_and_the_test_figure(tmp_path):
    from sepspec.train.runlist import runs

    from conftest import run_cli

    run = tmp_path / "a"
    run.mkdir()
    rundir.write_metrics(str(run), {"spec": "s", "params": 10, "status": "finished", "epochs_completed": 2,
                                    "epochs_planned": 2, "best_val_accuracy": 0.5, "best_epoch": 2,
                                    "validation": 0.1, "test": {"final_accuracy": 0.4567}, "seconds_per_epoch": 3.0})
    rundir.write_record(str(run), {"options": {"seed": 4, "overrides": []}})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / rundir.METRICS).write_text(json.dumps({"params": "many"}))
    a, b = runs(str(tmp_path))  # the records
    assert (a.validation, a.test_accuracy, a.settings, a.damaged) == ("held-out", 0.4567, "seed=4", False)
    assert b.damaged
    r = run_cli("runs", str(tmp_path))  # and the table the command line prints of them
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "val on" in out[0] and "test" in out[0]
    assert " held-out " in out[1] and "45.67%" in out[1] and out[1].endswith("seed=4")
    assert "damaged" in out[2]


def test_a_damaged_record_is_one_line(tmp_path):
    run = str(tmp_path)
    for text in ("[]", "{", '{"options": 3}'):
        (tmp_path / rundir.RECORD).write_text(text)
        with pytest.raises(UserError, match="run.json: damaged, cannot resume"):
            rundir.read_record(run)
    assert rundir.recorded_data(run) is None  # evaluate then falls back to --data or the default places


def test_a_record_keeps_its_paths_relative_to_the_run_and_reads_them_back_usable(tmp_path):
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    spec, data = tmp_path / "specs" / "s.yaml", tmp_path / "data" / "cifar.tar.gz"
    rundir.write_record(str(run), {"options": {"spec": str(spec), "data": str(data)},
                                   "data": {"source": str(data), "layout": "cifar10"}})
    raw = json.load(open(run / rundir.RECORD))
    assert raw["options"] == {"spec": "../../specs/s.yaml", "data": "../../data/cifar.tar.gz"}
    assert raw["data"] == {"source": "../../data/cifar.tar.gz", "layout": "cifar10"}
    back = rundir.read_record(str(run))
    assert back["options"]["spec"] == str(spec) and back["data"]["source"] == str(data)
    assert rundir.recorded_data(str(run)) == str(data)
    # the run and what it names moved together (a clone of a repository): still found
    moved = tmp_path / "elsewhere"
    os.rename(tmp_path / "runs", moved)
    assert rundir.recorded_data(str(moved / "a")) == str(tmp_path / "data" / "cifar.tar.gz")
    # an absolute path recorded by an older sepspec stays as it was
    assert rundir.located(str(run), "/x/y.yaml") == "/x/y.yaml"


def test_a_run_that_keeps_records_only_says_so(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    for name in (rundir.RECORD, rundir.SPEC, rundir.METRICS):
        (run / name).write_text("{}")
    (run / rundir.STATE).write_text(json.dumps({"epoch": 3, "checkpoint": "checkpoint-0003.keras", "best": {}}))
    for call in (lambda: rundir.model_of(str(run)), lambda: rundir.read_state(str(run)),
                 lambda: rundir.final_model(str(run))):
        with pytest.raises(UserError, match="keeps its records only"):
            call()
    (run / rundir.FINAL).write_bytes(b"x")
    assert rundir.model_of(str(run))[0] == str(run / rundir.FINAL) and rundir.final_model(str(run)).endswith("final.keras")


def test_keep_final_saves_the_last_checkpoints_weights_without_optimizer_state(tmp_path, model):
    import numpy as np

    from sepspec.lazy import import_keras

    run = str(tmp_path)
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 4, 4, 3), np.float32), np.zeros((4, 2), np.float32), verbose=0)
    commit(run, 1, model, {"val_accuracy": 0.5, "epoch": 1, "file": rundir.best_file(1)}, True)
    path = rundir.keep_final(run)
    assert path == os.path.join(run, rundir.FINAL) and rundir.final_model(run) == path
    kept = import_keras().saving.load_model(path)
    assert getattr(kept, "optimizer", None) is None  # no optimizer state: about half the size of a checkpoint
    assert os.path.getsize(path) < os.path.getsize(os.path.join(run, "checkpoint-0001.keras"))
    assert all(np.array_equal(a, b) for a, b in zip(kept.get_weights(), model.get_weights()))
