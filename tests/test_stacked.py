"""`sepspec train SPEC --seeds K,K --stacked` (`sepspec.fit_seeds`): several seeds in one process and one compiled
step, each an ordinary run that is exactly the run the seed makes alone, and that resumes alone or with the
others. Real TensorFlow training (JAX: `test_train_cli.py`, the JAX backend's test) on the small CIFAR-format archive the tests write."""
import csv
import json
import os

import numpy as np
import pytest

from conftest import OFFLINE, SMALL, run_cli

pytestmark = pytest.mark.slow  # trains

# everything that could couple seeds in one step: dropout, batch norm, AdamW with weights spared from its decay,
# a per-step rate, label smoothing, a weight average, cutout and mirrored views, and a short last batch (280 = 8 x 32
# + 24 training images)
RICH = (SMALL.replace("- maxpool: 2\n  - sepconv: 12", "- maxpool: 2\n  - dropout: 0.1\n  - sepconv: 12", 1)
        .replace("  - activation: softmax\n", "").split("train:")[0] + """train:
  epochs: 2
  batch_size: 32
  validation: 40
  optimizer: {name: adamw, learning_rate: 0.01, weight_decay: 0.01, no_decay: [norm, depthwise]}
  schedule: {name: linear, warmup_epochs: 0.5, per: step}
  label_smoothing: 0.1
  ema: 0.9
  augment: {flip: true, crop: 1, cutout: 4}
  tta: flip
""")
TIMES = ("seconds", "train_seconds")


@pytest.fixture
def rich(tmp_path):
    p = tmp_path / "rich.yaml"
    p.write_text(RICH.lstrip())
    return str(p)


def history(run):
    with open(os.path.join(run, "history.csv")) as f:
        return list(csv.DictReader(f))


def figures(run):
    """Every figure of a run's history (not its timings) and its test scores."""
    rows = [{k: v for k, v in r.items() if k not in TIMES} for r in history(run)]
    return rows, json.load(open(os.path.join(run, "metrics.json")))["test"]


def final_state(run):
    from sepspec.train import rundir

    state = json.load(open(os.path.join(run, "state.json")))
    model = rundir.load_model(os.path.join(run, state["checkpoint"]), optimizer=True)
    with np.load(os.path.join(run, state["ema"])) as f:
        average = {k: f[k] for k in f.files}
    return ([w.numpy() for w in model.weights], [np.asarray(v.numpy()) for v in model.optimizer.variables],
            average, state["rng"])


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def test_stacked_seeds_are_each_seeds_own_run_and_resume_alone_or_together(tmp_path, rich, data):
    """Two seeds stacked are, to the last bit, what each seed trains alone: every history figure, the test scores,
    the weights, the optimizer's state, the weight average and the dropout generator. Killed after the first seed's
    commit of epoch 1 (the second has none), the second seed's folder resumes alone as an ordinary run, and
    `--resume OUT` then goes on with the first (the finished one is left be): both end exactly as uninterrupted."""
    import sepspec

    together = str(tmp_path / "together")
    results = sepspec.fit_seeds(rich, [0, 1], together, data=data)
    assert [(r.status, r.run) for r in results] == [("finished", os.path.join(together, f"seed{k}")) for k in (0, 1)]
    assert json.load(open(os.path.join(together, "seeds.json"))) == {"seeds": [0, 1], "stacked": True}
    record = json.load(open(os.path.join(together, "seed1", "run.json")))
    assert record["options"]["seed"] == 1 and record["stacked"] == os.path.abspath(together)
    assert figures(os.path.join(together, "seed0"))[0] != figures(os.path.join(together, "seed1"))[0]

    cut = str(tmp_path / "cut")
    r = run_cli("train", rich, "--data", data, "--seeds", "0,1", "--stacked", "--out", cut,
                env={**OFFLINE, "SEPSPEC_CRASH_AT": "after-commit:1"})
    assert r.returncode == 137, r.stderr[-2000:]
    assert json.load(open(os.path.join(cut, "seed0", "state.json")))["epoch"] == 1
    assert not os.path.exists(os.path.join(cut, "seed1", "state.json"))
    r = run_cli("train", "--resume", os.path.join(cut, "seed1"), env=OFFLINE)  # alone: an ordinary run
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[seed" not in r.stdout and r.stdout.count("Epoch ") == 2
    r = run_cli("train", "--resume", cut, env=OFFLINE)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[seed1] already finished" in r.stdout and "[seed0] resuming after epoch 1" in r.stdout
    assert "[seed0] Epoch 2/2" in r.stdout and "[seed1] Epoch" not in r.stdout
    for k in (0, 1):
        a, b = os.path.join(together, f"seed{k}"), os.path.join(cut, f"seed{k}")
        assert figures(a) == figures(b), k
        assert same(final_state(a), final_state(b)), k
    r = run_cli("train", "--resume", cut, env=OFFLINE)
    assert r.returncode == 2 and "every seed has finished" in r.stderr and "Traceback" not in r.stderr


def test_a_seed_whose_loss_is_not_finite_stops_and_the_others_go_on(tmp_path, rich, data, monkeypatch):
    """A seed whose epoch ends with a NaN loss stops there ("nan", as alone); the others are stepped on without
    it, and still end as they would have."""
    import sepspec
    from sepspec.train.trainer import Training

    scored = Training.scored

    def nan_for_seed1(self, e, lr, loss, accuracy, t_train):
        return scored(self, e, lr, float("nan") if self.opts.seed == 1 else loss, accuracy, t_train)

    monkeypatch.setattr(Training, "scored", nan_for_seed1)
    out = str(tmp_path / "seeds")
    results = sepspec.fit_seeds(rich, [1, 2], out, data=data, train_limit=96)  # then seed 2 stacked alone
    assert [r.status for r in results] == ["nan", "finished"]
    assert not os.path.exists(os.path.join(out, "seed1", "state.json"))  # its epoch was not committed
    monkeypatch.setattr(Training, "scored", scored)
    alone = sepspec.fit(rich, seed=2, data=data, train_limit=96, out=str(tmp_path / "alone"))
    assert figures(os.path.join(out, "seed2")) == figures(alone.run)


@pytest.mark.parametrize("args, message", [
    (["--stacked"], "goes with --seeds"),
    (["--seeds", "0,1", "--stacked", "--set", "train.schedule={name: reduce_on_plateau}"], "reduce_on_plateau"),
    (["--seeds", "0,1", "--stacked", "--precision", "mixed_float16"], "loss scale"),
    (["--seeds", "0,1", "--stacked", "--strategy", "mirrored"], "not supported with stacked seeds"),
])
def test_what_would_couple_stacked_seeds_is_refused_in_one_line(tmp_path, rich, data, args, message):
    out = tmp_path / "out"
    r = run_cli("train", rich, "--data", data, "--out", str(out), *args, env=OFFLINE)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()


def test_a_penalty_a_stacked_seeds_loss_could_not_log_is_refused_in_one_line(tmp_path, data):
    spec = tmp_path / "penalised.yaml"
    spec.write_text(RICH.replace("sepconv: {bias: false,", "sepconv: {l2: 0.001, bias: false,", 1))
    out = tmp_path / "out"
    r = run_cli("train", str(spec), "--data", data, "--out", str(out), "--seeds", "0,1", "--stacked", env=OFFLINE)
    assert r.returncode == 2 and "sepconv_1 has an l1/l2 penalty" in r.stderr and "Traceback" not in r.stderr, \
        r.stderr
    assert not out.exists()
