"""`sepspec train / evaluate / runs / bench` for real, in subprocesses, on small data written by the tests
in the standard CIFAR-10 format (so the loader's real code path is what runs)."""
import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sepspec import analyse, load
from sepspec.data.read import write_batches

from conftest import OFFLINE, ROOT, SMALL, run_cli

pytestmark = pytest.mark.slow  # trains, converts or starts the CLI with TensorFlow: not in the inner loop

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data", "cifar-10-python.tar.gz")


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "small.yaml"
    p.write_text(SMALL.lstrip())
    return str(p)


ENV = OFFLINE


def trained(spec, data, run, **options) -> str:
    """A run made in this process (`sepspec.fit`, the trainer `sepspec train` runs), for a test whose subject is
    what a command does with it afterwards: the command runs in a subprocess, the set-up saves one's start-up."""
    import sepspec

    result = sepspec.fit(spec, data=data, out=run, **options)
    assert result.status == "finished", result
    return result.run


def history(run):
    with open(os.path.join(run, "history.csv")) as f:
        return list(csv.DictReader(f))


def test_train_writes_a_complete_run_and_evaluate_and_runs_read_it(tmp_path, spec, data):
    run = str(tmp_path / "run")
    r = run_cli("train", spec, "--data", data, "--out", run, "--seed", "3", env=ENV)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x.startswith("Epoch ")]
    assert len(lines) == 3 and "val_accuracy" in lines[0] and "lr: 0.01" in lines[0]
    assert "\r" not in r.stdout  # not a terminal: plain lines
    assert {"spec.yaml", "run.json", "history.csv", "metrics.json", "best.keras", "curves.png", "state.json"} <= set(os.listdir(run))
    rows = history(run)
    assert [int(x["epoch"]) for x in rows] == [1, 2, 3]
    assert float(rows[1]["lr"]) == pytest.approx(0.01 / 1.319)
    m = json.load(open(os.path.join(run, "metrics.json")))
    assert m["status"] == "finished"
    assert m["params"] == analyse(load(spec)).params == 527
    assert m["jit_compile"] is False and m["precision"] == "float32"  # the CPU defaults, set explicitly
    for k in ("best_val_accuracy", "best_epoch", "final_val_accuracy", "final_epoch", "seconds_per_epoch",
              "images_per_second", "device", "backend", "versions"):
        assert m[k] is not None, k
    # validation on 10% held out of the training split (the default), the test split scored once at the end
    assert m["train_images"] == 288 and m["val_images"] == 32 and m["backend"] == "tensorflow"
    assert m["validation"] == 0.1 and m["validation_split"] == "32 images held out of the training split"
    assert all("(held-out)" in line for line in lines)
    test = m["test"]
    assert test["images"] == 64 and test["final_epoch"] == 3 and test["best_epoch"] == m["best_epoch"]
    assert "test accuracy (the test split, 64 images): final epoch" in r.stdout
    assert not [f for f in os.listdir(run) if f.startswith("best-")]  # a run keeps its best model once
    # the resolved spec is a valid spec on its own
    assert run_cli("check", os.path.join(run, "spec.yaml")).returncode == 0
    r = run_cli("evaluate", os.path.join(run, "checkpoint-0003.keras"), env=ENV)  # the run's recorded data
    assert r.returncode == 0, r.stderr
    ev = json.load(open(os.path.join(run, "evaluation.json")))
    assert ev["test_accuracy"] == test["final_accuracy"] and ev["model"] == "checkpoint-0003.keras"
    r = run_cli("evaluate", run, "--data", data, env=ENV)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and "airplane" in r.stdout
    assert os.path.exists(os.path.join(run, "confusion.png"))
    ev = json.load(open(os.path.join(run, "evaluation.json")))
    assert np.array(ev["confusion"]).sum() == 64 and ev["test_accuracy"] == test["best_accuracy"]
    r = run_cli("runs", str(tmp_path))
    assert r.returncode == 0 and "small" in r.stdout and "finished" in r.stdout
    line = r.stdout.splitlines()[1]
    assert line.rstrip().endswith("seed=3")  # the settings column tells runs apart
    assert " held-out " in line and f"{100 * test['final_accuracy']:.2f}%" in line


def board_scalars(run):
    """{tag: [(step, value)]} as TensorBoard itself reads the run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(os.path.join(run, "tensorboard"))
    ea.Reload()
    return {tag: [(e.step, float(e.tensor_proto.float_val[0])) for e in ea.Tensors(tag)] for tag in ea.Tags()["tensors"]}


def _wait_for_epoch(run, epoch, proc, timeout=240, poll=0.05):
    t0 = time.time()
    while time.time() - t0 < timeout:
        state = os.path.join(run, "state.json")
        if os.path.exists(state) and json.load(open(state))["epoch"] >= epoch:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(poll)
    raise AssertionError("no epoch finished in time")


def _start(args, env):
    return subprocess.Popen([sys.executable, "-m", "sepspec", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, **env})


def test_public_api_fit_trains_in_process(tmp_path, spec, data):
    import signal

    import sepspec

    def mine(*_):
        pass

    before = signal.signal(signal.SIGTERM, mine)
    handlers = signal.getsignal(signal.SIGINT), mine
    try:
        result = sepspec.fit(spec, data=data, out=str(tmp_path / "api"), epochs=1, seed=3,
                             overrides=["train.augment={flip: false}"], precision="mixed_float16")
        after = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, before)
    run = result.run
    assert result.status == "finished" and run == str(tmp_path / "api")
    assert [int(x["epoch"]) for x in history(run)] == [1]
    assert json.load(open(os.path.join(run, "run.json")))["options"]["overrides"] == ["train.augment={flip: false}"]
    assert "augment:\n    flip: false" in open(os.path.join(run, "spec.yaml")).read()
    assert after == handlers  # the caller's signal handlers are restored
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # and Keras's global dtype policy


def test_progress_bar_on_a_terminal(tmp_path, spec, data):
    """On a terminal (a pseudo-terminal here) each epoch shows a bar updated in place, then its plain line."""
    import pty

    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "sepspec", "train", spec, "--data", data, "--out", str(tmp_path / "run"),
                          "--epochs", "1", "--batch-size", "32"], stdout=slave, stderr=subprocess.PIPE, cwd=ROOT,
                         env={**os.environ, **ENV})
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(timeout=120) == 0, p.stderr.read()
    text = out.decode()
    assert "\rEpoch 1/1 [" in text and "] 9/9 loss" in text  # 288 training images (32 held out) / 32 = 9 steps
    assert "#" * 30 in text
    assert "Epoch 1/1 - " in text and "val_accuracy" in text


def test_sigkill_mid_epoch_then_resume_has_every_epoch_once(tmp_path, spec, data):
    run = str(tmp_path / "run")
    p = _start(["train", spec, "--data", data, "--out", run, "--epochs", "4", "--batch-size", "8"], ENV)
    _wait_for_epoch(run, 1, p, poll=0.005)
    p.send_signal(signal.SIGKILL)  # at once: epoch 2 (40 steps and a validation) takes seconds, not milliseconds
    p.wait()
    state = json.load(open(os.path.join(run, "state.json")))
    assert state["epoch"] == 1
    assert json.load(open(os.path.join(run, "metrics.json")))["status"] == "running"  # whole, not half-written
    r = run_cli("runs", str(tmp_path))
    assert r.returncode == 0 and " stopped " in r.stdout, r.stdout  # nobody holds it: killed, not running
    r = run_cli("train", "--resume", run, env=ENV)  # the dead trainer's lock went with it
    assert r.returncode == 0, r.stderr
    assert f"resuming after epoch {state['epoch']}" in r.stdout
    rows = history(run)
    assert [int(x["epoch"]) for x in rows] == [1, 2, 3, 4]
    assert [float(x["lr"]) for x in rows] == pytest.approx([0.01 / (1 + 0.319 * e) for e in range(4)])
    assert json.load(open(os.path.join(run, "metrics.json")))["status"] == "finished"
    r = run_cli("train", "--resume", run, env=ENV)
    assert r.returncode == 2 and "already finished" in r.stderr and "--epochs N" in r.stderr
    r = run_cli("train", "--resume", run, "--epochs", "3", env=ENV)
    assert r.returncode == 2 and "fewer than the 4 epochs" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "--resume", run, "--epochs", "5", env=ENV)  # train the finished run further
    assert r.returncode == 0, r.stderr
    assert "resuming after epoch 4" in r.stdout and "Epoch 5/5" in r.stdout
    rows = history(run)
    assert [int(x["epoch"]) for x in rows] == [1, 2, 3, 4, 5]
    assert [float(x["lr"]) for x in rows] == pytest.approx([0.01 / (1 + 0.319 * e) for e in range(5)])
    assert json.load(open(os.path.join(run, "run.json")))["options"]["epochs"] == 5
    assert "epochs: 5" in open(os.path.join(run, "spec.yaml")).read()


def test_resume_cannot_change_the_length_of_a_cosine_run(tmp_path, spec, data):
    run = trained(spec, data, str(tmp_path / "run"), epochs=1, train_limit=32, overrides=["train.schedule={name: cosine}"])
    spec_before = open(os.path.join(run, "spec.yaml")).read()
    r = run_cli("train", "--resume", run, "--epochs", "2", env=ENV)
    assert r.returncode == 2 and "cosine schedule" in r.stderr and "Traceback" not in r.stderr
    assert open(os.path.join(run, "spec.yaml")).read() == spec_before  # nothing changed


def test_ctrl_c_saves_and_prints_the_resume_command_and_a_run_has_one_trainer(tmp_path, spec, data):
    """While a run trains, a second `--resume` of it is refused before it touches anything, and `runs` says
    running; after Ctrl-C it says interrupted (the SIGKILL test checks `stopped` and that death frees the run)."""
    run = str(tmp_path / "run")
    p = _start(["train", spec, "--data", data, "--out", run, "--epochs", "200", "--batch-size", "8"], ENV)
    _wait_for_epoch(run, 1, p)
    r = run_cli("train", "--resume", run, env=ENV)
    assert r.returncode == 2 and f"another process (pid {p.pid}) is training this run" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("runs", str(tmp_path))
    assert r.returncode == 0 and " running " in r.stdout, r.stdout
    assert p.poll() is None, "the first trainer was disturbed"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert f"sepspec train --resume {run}" in err and "Traceback" not in err
    assert json.load(open(os.path.join(run, "metrics.json")))["status"] == "interrupted"
    rows = history(run)
    assert [int(x["epoch"]) for x in rows] == list(range(1, len(rows) + 1))  # every epoch once: one writer
    assert " interrupted " in run_cli("runs", str(tmp_path)).stdout


def test_nan_loss_stops_with_a_clear_message(tmp_path, spec, data):
    run = str(tmp_path / "run")
    r = run_cli("train", spec, "--data", data, "--out", run, "--set", "train.optimizer.learning_rate=1e30",
                "--set", "train.schedule.name=constant", env=ENV)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "NaN" in r.stderr and "Traceback" not in r.stderr
    assert json.load(open(os.path.join(run, "metrics.json")))["status"] == "nan"


def test_bad_options_and_overrides(tmp_path, spec, data):
    r = run_cli("train", spec, "--data", data, "--set", "train.epochs=yes", env=ENV)
    assert r.returncode == 1 and "--set train.epochs:1:1: error SEP102" in r.stderr
    r = run_cli("train", spec, "--data", data, "--set", "model.x=1", env=ENV)
    assert r.returncode == 2 and "expected train.KEY=VALUE" in r.stderr
    r = run_cli("train", spec, "--data", str(tmp_path / "none"), env=ENV)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", spec, env={**ENV, "HOME": str(tmp_path)})
    assert r.returncode == 2 and "CIFAR-10 not found" in r.stderr
    r = run_cli("train", spec, "--strategy", "multiworker", "--data", data, env={**ENV, "TF_CONFIG": "{"})
    assert r.returncode == 2 and "TF_CONFIG is not valid JSON" in r.stderr
    r = run_cli("train", "--resume", str(tmp_path), env=ENV)
    assert r.returncode == 2 and "not a run directory" in r.stderr


def test_mirrored_strategy_on_two_cpu_devices(tmp_path, spec, data):
    run = str(tmp_path / "run")
    r = run_cli("train", spec, "--data", data, "--out", run, "--epochs", "1", "--strategy", "mirrored",
                env={**ENV, "SEPSPEC_CPU_DEVICES": "2"})
    assert r.returncode == 0, r.stderr
    m = json.load(open(os.path.join(run, "metrics.json")))
    assert m["strategy"] == "mirrored" and m["replicas"] == 2 and m["status"] == "finished"


def test_mixed_precision_path_runs_on_cpu(tmp_path, spec, data):
    """The GPU's precision (float16 compute, float32 class scores, loss scaling), forced on CPU so that it runs
    here: trains, resumes from its checkpoint, and evaluates."""
    run = str(tmp_path / "run")
    r = run_cli("train", spec, "--data", data, "--out", run, "--epochs", "1", "--precision", "mixed_float16", env=ENV)
    assert r.returncode == 0, r.stderr
    m = json.load(open(os.path.join(run, "metrics.json")))
    assert m["precision"] == "mixed_float16" and m["status"] == "finished"
    r = run_cli("train", "--resume", run, "--epochs", "2", env=ENV)
    assert r.returncode == 0, r.stderr
    assert [int(x["epoch"]) for x in history(run)] == [1, 2]
    assert json.load(open(os.path.join(run, "metrics.json")))["precision"] == "mixed_float16"  # recorded, kept
    r = run_cli("evaluate", run, "--data", data, env=ENV)
    assert r.returncode == 0 and "test accuracy" in r.stdout, r.stderr
    from sepspec.lazy import import_keras

    m = import_keras().saving.load_model(os.path.join(run, "best.keras"), compile=False)  # weights and dtypes
    assert (m.layers[1].dtype_policy.name, m.output.dtype) == ("mixed_float16", "float32")


def test_jit_compile_is_explicit_and_warned_on_cpu(tmp_path, spec, data):
    run = str(tmp_path / "run")
    r = run_cli("train", spec, "--data", data, "--out", run, "--epochs", "1", "--train-limit", "64", "--jit-compile",
                env=ENV)
    assert r.returncode == 0, r.stderr
    assert "warning: --jit-compile on CPU" in r.stderr
    assert json.load(open(os.path.join(run, "metrics.json")))["jit_compile"] is True


def test_bench_prints_the_four_figures_and_ratios(spec, data):
    import re

    # compiled as asked (XLA here; the device check's PyTorch bench asks for torch.compile the same way)
    r = run_cli("bench", spec, "--steps", "3", "--repeats", "2", "--data", data, "--jit-compile", env=ENV)
    assert r.returncode == 0, r.stderr
    assert f"data: CIFAR-10 {data}" in r.stdout  # the data asked for, not a substitute
    assert "fused batch norms: 2, dropouts with integer masks: 0" in r.stdout and "compiled: yes," in r.stdout
    figures = {}
    for key, pattern in (("trainer", r"trainer \(tf\.data.*"), ("step", r"trainer's step alone.*"),
                         ("plain", r"plain model\.fit of the emitted model on a cached tf\.data dataset.*"),
                         ("tuned", r"the same plain fit, its dataset autotuned.*")):
        m = re.search(pattern + r"median\s+([\d,]+) images/s  \[([\d,]+)-([\d,]+)\]", r.stdout)
        assert m, (key, r.stdout)
        figures[key] = [int(g.replace(",", "")) for g in m.groups()]
        assert 0 < figures[key][1] <= figures[key][0] <= figures[key][2]  # the median lies in the spread
    ratio = re.search(r"ratio trainer / plain fit: (\d+\.\d+) \(target >= 1\.5\); step alone / plain: (\d+\.\d+); "
                      r"best runs: (\d+\.\d+) and (\d+\.\d+)", r.stdout)
    assert ratio, r.stdout
    assert float(ratio[1]) == pytest.approx(figures["trainer"][0] / figures["plain"][0], abs=0.01)
    assert float(ratio[2]) == pytest.approx(figures["step"][0] / figures["plain"][0], abs=0.01)
    assert float(ratio[3]) == pytest.approx(figures["trainer"][2] / figures["plain"][2], abs=0.01)
    tuned = re.search(r"ratio trainer / the autotuned plain fit: (\d+\.\d+)", r.stdout)
    assert tuned and float(tuned[1]) == pytest.approx(figures["trainer"][0] / figures["tuned"][0], abs=0.01)


@pytest.mark.skipif(not os.path.exists(SHARED), reason=f"real CIFAR-10 not found at {SHARED}")
def test_real_cifar10_smoke_run_of_a_branchy_spec_learns(tmp_path):
    """Real TensorFlow training on real data: specs/mbconv.yaml (residual Adds, squeeze-excite Multiplies) with its
    own recipe (flip TTA), 3 epochs on 2,000 real images. The training loss falls every epoch, training accuracy
    is far above chance (10%), and so is the accuracy on the real test split (all 10,000 images, scored once at
    the end; one early epoch's figure swings by points, so the bar is low)."""
    run = str(tmp_path / "run")
    r = run_cli("train", os.path.join(ROOT, "specs", "mbconv.yaml"), "--data", SHARED, "--out", run, "--epochs", "3",
                "--batch-size", "64", "--train-limit", "2000", "--val-limit", "500", env=ENV, timeout=900)
    assert r.returncode == 0, r.stderr
    rows = history(run)
    loss = [float(x["loss"]) for x in rows]
    m = json.load(open(os.path.join(run, "metrics.json")))
    print(f"real-data smoke run: loss {loss}, train accuracy {[x['accuracy'] for x in rows]}, test {m['test']}")
    assert loss[0] > loss[1] > loss[2]
    assert float(rows[-1]["accuracy"]) > 0.3
    assert m["params"] == 78_249 and m["val_images"] == 500 and m["validation"] == 0.1
    assert m["test"]["images"] == 10_000 and m["test"]["final_accuracy"] > 0.2


def test_a_moved_run_resumes_with_data_and_evaluates_with_its_recorded_data(tmp_path, spec, data):
    """run.json records the spec and the data relative to the run folder, with a fingerprint; --resume --data accepts the same data set moved
    (here: its extracted folder elsewhere), refuses another, and `evaluate RUN` finds the recorded data."""
    import shutil

    run = str(tmp_path / "run")
    r = run_cli("train", spec, "--data", os.path.relpath(data, ROOT), "--out", run, "--epochs", "1",
                "--train-limit", "32", env=ENV)
    assert r.returncode == 0, r.stderr
    rec = json.load(open(os.path.join(run, "run.json")))
    assert rec["options"]["data"] == os.path.relpath(data, run) == rec["data"]["source"]  # no machine's paths
    assert rec["options"]["spec"] == os.path.relpath(spec, run)
    assert json.load(open(os.path.join(run, "metrics.json")))["data"] == os.path.relpath(data, run)
    assert rec["data"]["fingerprint"]["train"]["images"] == 320 and len(rec["data"]["fingerprint"]["test"]["sha256"]) == 64
    # evaluate from another working directory, without --data: the run's own data, and its own figure
    r = run_cli("evaluate", run, cwd=str(tmp_path), env=ENV)
    assert r.returncode == 0, r.stderr
    acc = json.load(open(os.path.join(run, "evaluation.json")))["test_accuracy"]
    assert acc == json.load(open(os.path.join(run, "metrics.json")))["test"]["best_accuracy"]
    # the same data set, moved (the extracted folder instead of the archive)
    moved = tmp_path / "moved"
    shutil.copytree(os.path.join(os.path.dirname(data), "cifar-10-batches-py"), moved / "cifar-10-batches-py")
    r = run_cli("train", "--resume", run, "--epochs", "2", "--data", "moved", cwd=str(tmp_path), env=ENV)
    assert r.returncode == 0, r.stderr
    assert "resuming after epoch 1" in r.stdout and "warning" not in r.stderr
    assert json.load(open(os.path.join(run, "run.json")))["options"]["data"] == os.path.join("..", "moved")
    # another data set is refused, saying what differs; nothing is trained
    rng = np.random.default_rng(2)
    other = write_batches(str(tmp_path / "other"), rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8),
                          rng.integers(0, 10, 100), rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8),
                          rng.integers(0, 10, 64))
    r = run_cli("train", "--resume", run, "--epochs", "3", "--data", other, env=ENV)
    assert r.returncode == 2 and "is not the data set" in r.stderr and "training set has 100 images" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(history(run)) == 2
    # the run's own spec may be named; another file may not; settings other than --epochs/--data are refused
    copy = tmp_path / "copy.yaml"
    shutil.copy(spec, copy)
    r = run_cli("train", str(copy), "--resume", run, "--epochs", "3", env=ENV)
    assert r.returncode == 2 and "is not the spec of" in r.stderr, r.stderr
    r = run_cli("train", "--resume", run, "--epochs", "3", "--precision", "float32", env=ENV)
    assert r.returncode == 2 and "--precision cannot be given" in r.stderr, r.stderr
    # ... and a run recorded before fingerprints existed resumes with a warning (both in one resume)
    rec = json.load(open(os.path.join(run, "run.json")))
    del rec["data"]
    json.dump(rec, open(os.path.join(run, "run.json"), "w"))
    r = run_cli("train", spec, "--resume", run, "--epochs", "3", env=ENV)
    assert r.returncode == 0 and "resuming after epoch 2" in r.stdout, r.stderr
    assert "could not be checked" in r.stderr and [int(x["epoch"]) for x in history(run)] == [1, 2, 3]


def test_a_spec_or_seed_that_does_not_fit_is_refused_before_a_run_folder_exists(tmp_path, spec, data):
    for args, message in ((["--seed", "-1"], "--seed -1: expected an integer from 0 to 4294967295"),
                          (["--seed", str(2**32)], "expected an integer from 0")):
        run = tmp_path / "run"
        r = run_cli("train", spec, "--data", data, "--out", str(run), *args, env=ENV)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not run.exists()
    five = tmp_path / "five.yaml"
    five.write_text(open(spec).read().replace("classes: 10", "classes: 5").replace("filters: 10", "filters: 5"))
    r = run_cli("train", str(five), "--data", data, "--out", str(tmp_path / "run5"), env=ENV)
    assert r.returncode == 2 and "five.yaml: classes: 5, but the data has 10 classes" in r.stderr, r.stderr
    assert not (tmp_path / "run5").exists()
    big = tmp_path / "seed.yaml"
    big.write_text(open(spec).read() + "  seed: 5000000000\n")
    r = run_cli("check", str(big))
    assert r.returncode == 1 and "train.seed" in r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("where", ["before-commit", "after-commit"])
def test_a_kill_at_the_commit_point_loses_no_epoch(tmp_path, spec, data, where):
    """Killed (as by SIGKILL) just before state.json is written for epoch 2, when history, metrics and the models
    of epoch 2 are already on disk, or just after it, before best.keras is settled: --resume gives every epoch
    exactly once, a finished metrics.json, and the best model that state.json names."""
    run = str(tmp_path / "run")
    r = run_cli("train", spec, "--data", data, "--out", run, "--epochs", "3", "--train-limit", "64",
                "--set", "train.optimizer.learning_rate=0.001", env={**ENV, "SEPSPEC_CRASH_AT": f"{where}:2"})
    assert r.returncode == 137, r.stderr
    state = json.load(open(os.path.join(run, "state.json")))
    assert state["epoch"] == (1 if where == "before-commit" else 2)
    if where == "before-commit":  # the uncommitted epoch is on disk, but not committed
        assert [int(x["epoch"]) for x in history(run)] == [1, 2]
    r = run_cli("train", "--resume", run, env=ENV)
    assert r.returncode == 0, r.stderr
    assert f"resuming after epoch {state['epoch']}" in r.stdout
    assert [int(x["epoch"]) for x in history(run)] == [1, 2, 3]
    m = json.load(open(os.path.join(run, "metrics.json")))
    assert m["status"] == "finished" and m["epochs_completed"] == 3
    final = json.load(open(os.path.join(run, "state.json")))
    best = final["best"]
    assert best["val_accuracy"] == max(float(x["val_accuracy"]) for x in history(run))
    files = sorted(f for f in os.listdir(run) if f.endswith(".keras"))
    assert files == sorted({"best.keras", final["checkpoint"]})  # the best epoch's file became best.keras
    # TensorBoard holds every committed epoch once, the one the kill interrupted included, with the history's figures
    board = board_scalars(run)
    assert [step for step, _ in board["train/loss"]] == [1, 2, 3]
    assert [v for _, v in board["train/loss"]] == pytest.approx([float(x["loss"]) for x in history(run)])
    assert "test/accuracy_final_epoch" in board and "time/images_per_second" in board


def test_damaged_runs_and_models_are_one_line_errors(tmp_path, spec, data):
    run = trained(spec, data, str(tmp_path / "run"), epochs=1, train_limit=32)
    state = open(os.path.join(run, "state.json")).read()
    ckpt = json.loads(state)["checkpoint"]

    def expect(args, message, status=2):
        r = run_cli(*args, env=ENV)
        assert r.returncode == status and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    resume = ("train", "--resume", run, "--epochs", "2")
    # every damaged file of a run is tested at the run directory's seam (tests/test_rundir.py); here, that the
    # command's boundary makes one line of them
    open(os.path.join(run, "state.json"), "w").write("{not json")
    expect(resume, "state.json: damaged, cannot resume")
    open(os.path.join(run, "state.json"), "w").write(state)
    open(os.path.join(run, ckpt), "wb").write(b"PK\x03\x04 not a keras file")
    expect(resume, f"{ckpt}: cannot load the model")
    rec = open(os.path.join(run, "run.json")).read()
    open(os.path.join(run, "run.json"), "w").write(rec.replace('"seed"', '"sede"'))
    expect(resume, "run.json: damaged, cannot resume (TypeError")
    metrics = open(os.path.join(run, "metrics.json")).read()
    open(os.path.join(run, "metrics.json"), "w").write('{"normalization": {"mean": [0.5]}}')
    expect(("evaluate", run, "--data", data), "metrics.json: damaged, no usable normalisation")
    open(os.path.join(run, "metrics.json"), "w").write('["not", "a", "run"]')
    r = run_cli("runs", str(tmp_path))
    assert r.returncode == 0 and "(damaged metrics.json)" in r.stdout and "Traceback" not in r.stderr, r.stderr
    open(os.path.join(run, "metrics.json"), "w").write(metrics)
    # a model that does not fit CIFAR-10
    other = tmp_path / "five.yaml"
    other.write_text(open(spec).read().replace("classes: 10", "classes: 5").replace("filters: 10", "filters: 5"))
    assert run_cli("compile", str(other), "-o", str(tmp_path / "five.keras")).returncode == 0
    expect(("evaluate", str(tmp_path / "five.keras"), "--data", data), "gives 5 classes; the data is 32x32x3 with 10")
    expect(("bench", spec, "--steps", "1", "--data", str(tmp_path / "nowhere")), "no such file or folder")


def test_flip_tta_in_validation_and_evaluate(tmp_path, spec, data):
    """With `tta` and `ema` on, the validation figure is the average's with flips; the history also keeps the
    same epoch's figure without flips, without the average and without either, and each is what `evaluate`
    gives for the matching model file and --tta."""
    run = trained(spec, data, str(tmp_path / "run"), epochs=1, train_limit=64,
                  overrides=["train.tta=flip", "train.ema=0.9", "train.validation=test"])
    recorded = json.load(open(os.path.join(run, "metrics.json")))["best_val_accuracy"]
    (row,) = history(run)
    assert float(row["val_accuracy"]) == recorded
    r = run_cli("evaluate", run, "--tta", "flip", env=ENV)  # the command; the other three in process
    assert r.returncode == 0 and "(flip test-time augmentation)" in r.stdout, r.stderr
    figures = {(True, "flip"): json.load(open(os.path.join(run, "evaluation.json")))["test_accuracy"]}
    from sepspec.deploy.evaluate import evaluate

    for target, tta in ((run, "none"), (os.path.join(run, "checkpoint-0001.keras"), "flip"),
                        (os.path.join(run, "checkpoint-0001.keras"), "none")):
        e = evaluate(target, tta=tta)  # the record it returns is what it wrote
        ev = json.load(open(os.path.join(run, "evaluation.json")))
        assert ev["tta"] == e.tta == tta and ev["test_accuracy"] == e.accuracy and ev["confusion"] == e.confusion
        assert e.written == [os.path.join(run, "confusion.png"), os.path.join(run, "evaluation.json")]
        figures[target == run, tta] = ev["test_accuracy"]
    assert figures[True, "flip"] == pytest.approx(recorded, abs=1 / 64)
    assert figures[True, "none"] == pytest.approx(float(row["val_accuracy_no_tta"]), abs=1 / 64)
    assert figures[False, "flip"] == pytest.approx(float(row["val_accuracy_no_ema"]), abs=1 / 64)
    assert figures[False, "none"] == pytest.approx(float(row["val_accuracy_plain"]), abs=1 / 64)
    test = json.load(open(os.path.join(run, "metrics.json")))["test"]  # scored as validation is: average, flips
    assert test["tta"] == "flip" and test["final_accuracy"] == pytest.approx(figures[True, "flip"], abs=1 / 64)


def test_a_run_with_dropout_and_a_per_step_recipe_resumes_exactly(tmp_path, data):
    """The dropout layers' random state is not in a .keras file: state.json keeps it, so a run stopped after
    epoch 1 and resumed draws the same masks as an uninterrupted one and ends with the same weights. The same
    run has the recipe keys that act across the cut: a per-step schedule with warm-up, alternating flips, mixup,
    and a decoupled weight decay sparing depthwise kernels, norms and biases (the exclusions are not in the
    checkpoint either: without their restore the weights differ)."""
    from sepspec.lazy import import_keras

    p = tmp_path / "drop.yaml"
    p.write_text(SMALL.lstrip().replace("activation: relu}", "activation: relu, dropout: 0.3}")
                 .replace("flip: true", "flip: alternate"))
    args = ["--data", data, "--train-limit", "64", "--seed", "3",
            "--set", "train.schedule={name: linear, warmup_epochs: 1, per: step}",
            "--set", "train.optimizer={name: adamw, learning_rate: 0.01, weight_decay: 0.05, "
                     "no_decay: [depthwise, norm, bias]}", "--set", "train.label_smoothing=0.1",
            "--set", "train.augment.mixup=0.4"]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert run_cli("train", str(p), "--out", a, "--epochs", "2", *args, env=ENV).returncode == 0
    cut = run_cli("train", str(p), "--out", b, "--epochs", "2", *args, env={**ENV, "SEPSPEC_CRASH_AT": "after-commit:1"})
    assert cut.returncode == 137, cut.stderr  # killed (as by SIGKILL) once epoch 1 is committed
    assert json.load(open(os.path.join(b, "state.json")))["rng"]  # the masks' state, per dropout layer
    r = run_cli("train", "--resume", b, env=ENV)
    assert r.returncode == 0, r.stderr
    keras = import_keras()
    wa, wb = (keras.saving.load_model(os.path.join(x, "checkpoint-0002.keras")).get_weights() for x in (a, b))
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
    assert [r["loss"] for r in history(a)] == [r["loss"] for r in history(b)]
    # 64 images, batch 32: the first step of epoch 1 is at half the peak, of epoch 2 at the peak
    assert [float(r["lr"]) for r in history(a)] == pytest.approx([0.005, 0.01])


def test_weight_average_is_validated_kept_apart_and_resumed_exactly(tmp_path, spec, data):
    """train.ema: validation and best.keras use the average, the checkpoint keeps the live weights, and a run
    stopped after epoch 1 and resumed ends with the same live weights and the same average as an uninterrupted one."""
    from sepspec.lazy import import_keras

    args = ["--data", data, "--train-limit", "64", "--set", "train.ema=0.9", "--seed", "5",
            "--set", "train.validation=test"]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert run_cli("train", spec, "--out", a, "--epochs", "2", *args, env=ENV).returncode == 0
    assert run_cli("train", spec, "--out", b, "--epochs", "1", *args, env=ENV).returncode == 0
    r = run_cli("train", "--resume", b, "--epochs", "2", env=ENV)
    assert r.returncode == 0, r.stderr
    sa, sb = (json.load(open(os.path.join(x, "state.json"))) for x in (a, b))
    assert sa["ema"] == sb["ema"] == "ema-0002.npz"
    ema_a, ema_b = (np.load(os.path.join(x, "ema-0002.npz")) for x in (a, b))
    assert int(ema_a["steps"]) == int(ema_b["steps"]) == 4  # 64 images, batch 32, 2 epochs
    for k in ema_a.files:
        assert np.allclose(ema_a[k], ema_b[k], atol=1e-5), k
    keras = import_keras()
    live_a, live_b = (keras.saving.load_model(os.path.join(x, "checkpoint-0002.keras")) for x in (a, b))
    for wa, wb in zip(live_a.weights, live_b.weights):
        assert np.allclose(wa.numpy(), wb.numpy(), atol=1e-5), wa.path
    floats = [w for w in live_a.weights if "float" in str(w.dtype)]
    assert any(not np.allclose(w.numpy(), ema_a[f"w{i}"]) for i, w in enumerate(floats))  # live != average
    from sepspec.deploy.evaluate import evaluate

    acc = evaluate(a).accuracy  # best.keras holds the weights that were validated: the average
    assert acc == json.load(open(os.path.join(a, "evaluation.json")))["test_accuracy"]
    rows = history(a)
    best = max(float(x["val_accuracy"]) for x in rows)
    assert acc == pytest.approx(best, abs=1 / 64)
    assert sorted(f for f in os.listdir(a) if f.endswith((".keras", ".npz"))) == \
        sorted({"best.keras", "checkpoint-0002.keras", "ema-0002.npz"})


JAX = {**ENV, "KERAS_BACKEND": "jax"}


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (the dev extra has it)")
def test_the_jax_backend_trains_resumes_exactly_and_evaluates(tmp_path, data):
    """KERAS_BACKEND=jax, with the same run directory and guarantees: killed (as by SIGKILL) before the commit
    point of epoch 2 and resumed, a run (with mixup, made on the device, and a per-step rate) has every epoch once and ends with exactly
    the weights, dropout state and weight average of an uninterrupted run; evaluate reads it; the TensorFlow
    backend may not resume it; two seeds stacked in one step (`--stacked`) give seed 0's run to the bit; and
    tf.distribute strategies are refused in one line."""
    import keras

    spec = tmp_path / "drop.yaml"
    spec.write_text(SMALL.lstrip().replace("- sepconv: 12", "- sepconv: {filters: 12, dropout: 0.2}"))
    args = [str(spec), "--data", data, "--epochs", "2", "--train-limit", "96", "--val-limit", "64",
            "--set", "train.ema=0.9", "--set", "train.optimizer.learning_rate=0.05", "--set", "train.augment.mixup=0.4",
            # a per-step rate, computed inside JAX's compiled step and kept by the checkpoint (schedule.step_rate)
            "--set", "train.schedule={name: linear, warmup_epochs: 0.5, per: step}"]
    whole, cut = str(tmp_path / "whole"), str(tmp_path / "cut")
    r = run_cli("train", *args, "--out", whole, env=JAX)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no start-up chatter from TensorFlow, which Keras still imports to seed it
    m = json.load(open(os.path.join(whole, "metrics.json")))
    assert m["backend"] == "jax" and "jax" in m["versions"] and m["jit_compile"] is True and m["status"] == "finished"
    assert [step for step, _ in board_scalars(whole)["validation/accuracy"]] == [1, 2]  # TensorBoard without TF
    r = run_cli("train", *args, "--out", cut, env={**JAX, "SEPSPEC_CRASH_AT": "before-commit:2"})
    assert r.returncode == 137, r.stderr
    r = run_cli("train", "--resume", cut, env=ENV)
    assert r.returncode == 2 and "trained on the jax backend" in r.stderr and "KERAS_BACKEND=jax" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("train", "--resume", cut, env=JAX)
    assert r.returncode == 0, r.stderr
    assert "resuming after epoch 1" in r.stdout
    a, b = history(whole), history(cut)
    assert [int(x["epoch"]) for x in b] == [1, 2]
    assert [x["loss"] for x in a] == [x["loss"] for x in b] and [x["val_loss"] for x in a] == [x["val_loss"] for x in b]
    sa, sb = (json.load(open(os.path.join(run, "state.json"))) for run in (whole, cut))
    assert sa["rng"] == sb["rng"] and sa["rng"]  # the dropout generator went on as uninterrupted
    wa = keras.saving.load_model(os.path.join(whole, sa["checkpoint"]), compile=False).get_weights()
    wb = keras.saving.load_model(os.path.join(cut, sb["checkpoint"]), compile=False).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
    with np.load(os.path.join(whole, sa["ema"])) as ea, np.load(os.path.join(cut, sb["ema"])) as eb:
        assert int(ea["steps"]) == 6 and all(np.array_equal(ea[k], eb[k]) for k in ea.files)
    r = run_cli("evaluate", cut, env=JAX)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout
    # stacked seeds, whose compiled step gives up the buffers it is passed: seed 0 is the run alone, to the bit
    stacked = str(tmp_path / "stacked")
    r = run_cli("train", *args, "--seeds", "0,1", "--stacked", "--out", stacked, env=JAX)
    assert r.returncode == 0, r.stderr[-2000:]
    s0 = os.path.join(stacked, "seed0")
    assert [{k: v for k, v in x.items() if "seconds" not in k} for x in history(s0)] == \
        [{k: v for k, v in x.items() if "seconds" not in k} for x in a]
    s = json.load(open(os.path.join(s0, "state.json")))
    assert s["rng"] == sa["rng"]
    w0 = keras.saving.load_model(os.path.join(s0, s["checkpoint"]), compile=False).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(wa, w0))
    r = run_cli("train", *args, "--out", str(tmp_path / "m"), "--strategy", "mirrored", env=JAX)
    assert r.returncode == 2 and "tf.distribute" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(tmp_path / "m")


def test_an_unknown_or_missing_keras_backend_is_one_line(tmp_path, spec, data):
    r = run_cli("train", spec, "--data", data, "--out", str(tmp_path / "run"), env={**ENV, "KERAS_BACKEND": "bogus"})
    assert r.returncode == 2 and "KERAS_BACKEND=bogus: Keras has no such backend" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not os.path.exists(tmp_path / "run")
    if importlib.util.find_spec("torch") is None:
        r = run_cli("train", spec, "--data", data, env={**ENV, "KERAS_BACKEND": "torch"})
        assert r.returncode == 2 and "KERAS_BACKEND=torch: torch is not installed" in r.stderr, r.stderr


def test_data_parallel_on_two_devices_has_the_losses_of_one_and_resumes_exactly(tmp_path, data):
    """`--strategy data` (keras.distribution.DataParallel) on JAX with two forced host devices: each batch split in
    two, the same losses as one device at the same global batch (float tolerance), a run killed before the commit
    point of epoch 2 resumes to exactly the uninterrupted run's figures and weights; a batch the devices cannot
    share, and the strategy on a backend without keras.distribution, are one-line refusals."""
    two = {**JAX, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    spec = tmp_path / "s.yaml"
    spec.write_text(SMALL.lstrip())
    args = [str(spec), "--data", data, "--epochs", "2", "--train-limit", "96", "--val-limit", "7",
            "--set", "train.batch_size=16"]  # 7 validation images: one batch of 7 alone, padded to 16 shared by 2
    one, dp, cut = (str(tmp_path / n) for n in ("one", "dp", "cut"))
    r = run_cli("train", *args, "--out", one, env=two)
    assert r.returncode == 0, r.stderr
    r = run_cli("train", *args, "--out", dp, "--strategy", "data", env=two)
    assert r.returncode == 0, r.stderr
    m = json.load(open(os.path.join(dp, "metrics.json")))
    assert m["strategy"] == "data" and m["replicas"] == 2
    a, b = history(one), history(dp)
    for x, y in zip(a, b):
        for k in ("loss", "val_loss", "val_accuracy"):
            assert float(x[k]) == pytest.approx(float(y[k]), rel=1e-4, abs=1e-5), (k, x, y)
    r = run_cli("train", *args, "--out", cut, "--strategy", "data", env={**two, "SEPSPEC_CRASH_AT": "before-commit:2"})
    assert r.returncode == 137, r.stderr
    r = run_cli("train", "--resume", cut, env=two)
    assert r.returncode == 0 and "resuming after epoch 1" in r.stdout, r.stderr
    assert [(x["loss"], x["val_loss"]) for x in history(cut)] == [(x["loss"], x["val_loss"]) for x in b]
    r = run_cli("train", *args[:-1], "train.batch_size=15", "--out", str(tmp_path / "odd"), "--strategy", "data",
                env=two)
    assert r.returncode == 2 and "must be a multiple of 2" in r.stderr and "Traceback" not in r.stderr
    odd = [a if a != "96" else "95" for a in args]  # 95 training images: a last batch of 15
    r = run_cli("train", *odd, "--out", str(tmp_path / "odd"), "--strategy", "data", env=two)
    assert r.returncode == 2 and "training images (95 images in batches of 16) end in a batch of 15" in r.stderr
    r = run_cli("train", *args, "--out", str(tmp_path / "tf"), "--strategy", "data", env=ENV)
    assert r.returncode == 2 and "keras.distribution" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(os.path.join(tmp_path, "odd")) and not os.path.exists(os.path.join(tmp_path, "tf"))


@pytest.mark.slow
def test_several_seeds_train_at_once_each_an_ordinary_run(tmp_path, spec, data):
    """`--seeds 0,1`: one process per seed at once, each its own run folder OUT/seedK with its seed recorded,
    every line prefixed with its seed; each run resumes on its own, and `--resume OUT` resumes those not finished
    (`OUT/seeds.json`), in processes again. Contradictory or malformed seeds, and an
    --out that already holds something, are one-line refusals before anything runs."""
    out = tmp_path / "seeds"
    r = run_cli("train", spec, "--data", data, "--epochs", "1", "--train-limit", "64", "--val-limit", "32",
                "--seeds", "0,1", "--out", str(out), env=ENV)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for k in (0, 1):
        run = out / f"seed{k}"
        assert json.load(open(run / "run.json"))["options"]["seed"] == k
        assert json.load(open(run / "metrics.json"))["status"] == "finished"
        assert f"seed {k}: finished; run {run}" in r.stdout
    lines = [line for line in r.stdout.splitlines() if line.startswith("[seed ")]
    assert any(line.startswith("[seed 0] Epoch 1/1") for line in lines)
    assert any(line.startswith("[seed 1] Epoch 1/1") for line in lines)
    a, b = history(str(out / "seed0")), history(str(out / "seed1"))
    assert a[0]["loss"] != b[0]["loss"]  # other weights, order and augmentation
    r = run_cli("train", "--resume", str(out / "seed1"), env=ENV)  # an ordinary run: finished, says so
    assert r.returncode == 2 and "already finished" in r.stderr
    assert json.load(open(out / "seeds.json")) == {"seeds": [0, 1], "stacked": False}
    (out / "seed1" / "state.json").unlink()  # as if killed before its first commit: --resume OUT restarts it alone
    r = run_cli("train", "--resume", str(out), env=ENV)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "[seed 0] already finished" in r.stdout and "[seed 1] Epoch 1/1" in r.stdout
    assert [x["loss"] for x in history(str(out / "seed1"))] == [b[0]["loss"]]  # the same run again
    r = run_cli("train", "--resume", str(out), env=ENV)
    assert r.returncode == 2 and "every seed has finished" in r.stderr
    for args, message in ((["--seeds", "0,1", "--seed", "3"], "not both"), (["--seeds", "0,x"], "expected"),
                          (["--seeds", "1,1"], "distinct"), (["--seeds", "0,1", "--out", str(out)], "not empty")):
        r = run_cli("train", spec, "--data", data, *args, env=ENV)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    refused = tmp_path / "refused"  # every seed's process refuses the spec: no folder is left behind
    r = run_cli("train", spec, "--data", data, "--seeds", "0,1", "--out", str(refused), "--set",
                "train.validation=100000", env=ENV)
    assert r.returncode == 2 and "[seed 1]" in r.stdout and "leaves no training" in r.stdout, r.stdout
    assert not refused.exists()
