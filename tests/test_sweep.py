"""`sepspec sweep` and `sepspec scale` for real: Optuna studies on a journal file and on a real PostgreSQL
server, worker processes (one killed with SIGKILL mid-trial), tiny trials on small data in the CIFAR-10 format."""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import OFFLINE, ROOT, run_cli

pytestmark = pytest.mark.slow  # trains, converts or starts the CLI with TensorFlow: not in the inner loop

optuna = pytest.importorskip("optuna")

TINY = """
name: tiny
input: [32, 32, 3]
classes: 10
rules: {max_params: 3000}
defaults:
  sepconv: {bias: false, norm: batch, activation: relu, bn_momentum: 0.9}
layers:
  - sepconv: 8
  - maxpool: 2
  - sepconv: 16
  - maxpool: 2
  - sepconv: {filters: 10, norm: none, activation: none}
  - gap: {}
  - activation: softmax
train: {batch_size: 32}
"""
# width 4 breaks max_params (about 4,000 parameters): those candidates must never train
SWEEP = """
spec: tiny.yaml
trials: {trials}
budget: {{epochs: {epochs}, train_limit: {limit}, val_limit: 32}}
pruner: {{name: median, warmup_epochs: 1}}
space:
  width: {{choice: [1.0, 4.0]}}
  train.optimizer.learning_rate: {{loguniform: [0.001, 0.1]}}
  layers[2].sepconv.kernel: {{choice: [3, 5]}}
"""
ENV = OFFLINE
S = optuna.trial.TrialState


def make(tmp_path, trials=3, epochs=1, limit=64):
    (tmp_path / "tiny.yaml").write_text(TINY.lstrip())
    p = tmp_path / "sw.yaml"
    p.write_text(SWEEP.format(trials=trials, epochs=epochs, limit=limit).lstrip())
    return str(p), str(tmp_path / "out")


def study_trials(sweep, out, storage=None):
    from sepspec.search.sweep import open_study
    from sepspec.search.sweepfile import load_sweep

    study, _ = open_study(sweep, out, storage, load_sweep(sweep).sweep, create=False)
    return study.get_trials(deepcopy=False)


def test_rule_pruned_candidates_never_train_and_the_report_finds_the_best(tmp_path, data):
    sweep, out = make(tmp_path, trials=3)
    r = run_cli("sweep", sweep, "--out", out, "--data", data, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr
    trials = study_trials(sweep, out)
    trained = [t for t in trials if t.user_attrs.get("trained")]
    ruled = [t for t in trials if "rule" in t.user_attrs]
    assert len(trained) == 3 and all(t.state == S.COMPLETE for t in trained)
    assert ruled, "with these seeds width 4 is sampled (its rule-pruned trials are the point of the test)"
    for t in ruled:
        assert t.state == S.PRUNED and t.user_attrs["rule"] == "SEP203" and t.params["width"] == 4.0
        assert t.user_attrs["check_seconds"] > 0  # recorded; how fast checking is: benchmarks/validate_speed.py
        assert not os.path.exists(os.path.join(out, "trials", f"trial-{t.number:04d}"))  # no run directory
    for t in trained:
        m = json.load(open(os.path.join(t.user_attrs["run"], "metrics.json")))
        assert m["validation"] == 0.1 and m["status"] == "finished"  # held-out training images, not the test set
        assert t.value == m["best_val_accuracy"]
    r = run_cli("sweep", sweep, "--out", out, "--report", env=ENV)
    assert r.returncode == 0, r.stderr
    assert "pruned by rule SEP203" in r.stdout and "3 trained (asked for 3" in r.stdout
    assert "rejected by the static checker" in r.stdout and "test" in r.stdout
    assert run_cli("check", os.path.join(out, "best.yaml")).returncode == 0
    assert os.path.getsize(os.path.join(out, "sweep.png")) > 1000
    # every trial carries its static figures, as the checker computes them from the trial's own spec
    import sepspec
    from sepspec.graph.memory import estimate

    for t in trained:
        rep = sepspec.analyse(sepspec.load(os.path.join(t.user_attrs["run"], "spec.yaml")))
        assert (t.user_attrs["params_count"], t.user_attrs["flash_bytes"], t.user_attrs["arena_bytes"]) == (
            rep.params, estimate(rep).flash_bytes, estimate(rep).arena_bytes)
    assert all("flash_bytes" in t.user_attrs for t in ruled)  # rejected ones too: cost is known without training
    dashboard_shows(os.path.join(out, "study.journal"), "sw", trials)


def dashboard_shows(journal, name, trials):
    """A real optuna-dashboard server on the sweep's journal file lists the study with the sweep's trials and
    their figures."""
    import socket
    import urllib.request

    dashboard = os.path.join(os.path.dirname(sys.executable), "optuna-dashboard")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = subprocess.Popen([dashboard, journal, "--port", str(port), "--quiet"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while True:
            try:
                studies = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5))
                break
            except OSError:
                assert p.poll() is None and time.time() < deadline, p.communicate()
                time.sleep(0.3)
        (summary,) = studies["study_summaries"]
        assert summary["study_name"] == name
        study = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}?after=0",
                                                 timeout=10))
        assert sorted(t["number"] for t in study["trials"]) == sorted(t.number for t in trials)
        shown = {t["number"]: {a["key"]: a["value"] for a in t["user_attrs"]} for t in study["trials"]}
        for t in trials:
            assert shown[t.number]["flash_bytes"] == str(t.user_attrs["flash_bytes"])
    finally:
        p.terminate()
        p.wait(timeout=30)


def test_two_workers_share_one_journal(tmp_path, data):
    sweep, out = make(tmp_path, trials=4)
    r = run_cli("sweep", sweep, "--out", out, "--data", data, "--workers", "2", env=ENV, timeout=900)
    assert r.returncode == 0, r.stderr
    trials = study_trials(sweep, out)
    trained = [t for t in trials if t.user_attrs.get("trained")]
    assert 4 <= len(trained) <= 4 + 1, len(trained)  # each worker may overshoot by one
    assert all(t.state == S.COMPLETE for t in trained)
    runs = [t.user_attrs["run"] for t in trained]
    assert len(set(runs)) == len(runs)  # no trial trained twice


def test_a_worker_killed_mid_trial_is_retried_and_the_study_completes(tmp_path, data):
    sweep, out = make(tmp_path, trials=2, epochs=3, limit=320)
    cmd = [sys.executable, "-m", "sepspec", "sweep", sweep, "--out", out, "--data", data]
    p = subprocess.Popen(cmd, env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill it once its first trial has finished an epoch
        if glob.glob(os.path.join(out, "trials", "*", "state.json")):
            break
        time.sleep(0.2)
    else:
        p.kill()
        pytest.fail("no trial finished an epoch")
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed = [t for t in study_trials(sweep, out) if t.state == S.RUNNING]
    assert len(killed) == 1
    r = run_cli("sweep", sweep, "--out", out, "--data", data, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr
    trials = study_trials(sweep, out)
    dead = next(t for t in trials if t.number == killed[0].number)
    assert dead.state == S.FAIL
    retry = [t for t in trials if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].state == S.COMPLETE and retry[0].params == dead.params
    assert sum(1 for t in trials if t.user_attrs.get("trained") and t.state == S.COMPLETE) == 2


def test_bad_sweep_files_give_positioned_errors(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY.lstrip())
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: tiny.yaml\ntrials: 2\nspace:\n"
                   "  train.optimizer.learning_rat: {loguniform: [0.01, 0.4]}\n"
                   "  layers[2].sepconv.kernel: {choice: [3, 0]}\n"
                   "  layers[20].sepconv.kernel: {choice: [3]}\n"
                   "  train.epochs: {gauss: [1, 2]}\n")
    r = run_cli("sweep", str(bad))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{bad}:7:17: error SEP102: space.train.epochs: expected one of choice" in r.stderr
    bad.write_text(bad.read_text().replace("  train.epochs: {gauss: [1, 2]}\n", ""))
    r = run_cli("sweep", str(bad))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 3, r.stderr
    assert lines[0].startswith(f"{bad}:4:3: error SEP101: space.train.optimizer.learning_rat:") and \
        "did you mean 'learning_rate'" in lines[0]
    assert lines[1].startswith(f"{bad}:5:3: error SEP103: space.layers[2].sepconv.kernel: the value 0")
    assert lines[2] == f"{bad}:6:3: error SEP101: space.layers[20].sepconv.kernel: layers[20]: there are 7 entries"
    assert not (tmp_path / "sweeps").exists()


def test_scale_finds_the_widest_variant_under_the_budget(tmp_path):
    import sepspec
    from sepspec.search.scale import classifier_entry
    from sepspec.spec.edit import with_width
    from sepspec.spec.load import load_source

    out = tmp_path / "r40.yaml"
    r = run_cli("scale", os.path.join(ROOT, "specs", "residual.yaml"), "--max-params", "40000", "-o", str(out))
    assert r.returncode == 0 and r.stdout.startswith("width x0.71: params 38,691 (was 72,539)"), r.stdout + r.stderr
    c = sepspec.check(str(out))
    assert c.ok and c.report.params <= 40000
    assert c.report.output == (10,) and c.report.row("sepconv_2").layer.filters == 10  # the classifier keeps 10
    spec = sepspec.load(os.path.join(ROOT, "specs", "residual.yaml"))
    wider = load_source(with_width(spec.source, 0.72, classifier_entry(sepspec.analyse(spec))))
    assert sepspec.analyse(wider).params > 40000  # the next step up breaks the budget
    # beside its source, the scaled spec keeps the source's schema line (its relative path still holds there)
    src = tmp_path / "residual.yaml"
    src.write_text(open(os.path.join(ROOT, "specs", "residual.yaml")).read())
    r = run_cli("scale", str(src), "--max-params", "40000")
    assert r.returncode == 0, r.stderr
    beside = (tmp_path / "residual-x0.71.yaml").read_text()
    assert beside.startswith("# yaml-language-server: $schema=sepspec.schema.json\n# residual.yaml with every width")
    assert not out.read_text().startswith("# yaml-language-server")  # elsewhere the path would not hold


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture
def postgres():
    """A real PostgreSQL server on a free local port, run as the postgres user (it refuses root)."""
    bin_dir = _pg_bin()
    if bin_dir is None or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("PostgreSQL server binaries (Debian's postgresql package) or runuser/root not available")
    base = tempfile.mkdtemp(prefix="sepspec-pg-", dir="/tmp")
    os.chmod(base, 0o755)
    shutil.chown(base, "postgres", "postgres")
    data = os.path.join(base, "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def pg(*args):
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=120)

    r = pg(f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres")
    assert r.returncode == 0, r.stderr
    r = pg(f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(base, "log"), "-w", "-o",
           f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start")
    assert r.returncode == 0, r.stderr + open(os.path.join(base, "log")).read()
    try:
        r = pg(f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "sweeps")
        assert r.returncode == 0, r.stderr
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/sweeps"
    finally:
        pg(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_on_a_postgresql_server_share_one_study(tmp_path, data, postgres):
    sweep, out = make(tmp_path, trials=3)
    cmd = [sys.executable, "-m", "sepspec", "sweep", sweep, "--data", data, "--storage", postgres]
    # two "machines": separate worker commands with their own folders, one study in the database
    procs = [subprocess.Popen(cmd + ["--out", f"{out}-{i}"], env={**os.environ, **ENV}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    trials = study_trials(sweep, out, postgres)
    trained = [t for t in trials if t.user_attrs.get("trained")]
    assert 3 <= len(trained) <= 3 + 1 and all(t.state == S.COMPLETE for t in trained)
    assert len({t.user_attrs["run"] for t in trained}) == len(trained)
    assert {os.path.dirname(os.path.dirname(t.user_attrs["run"])) for t in trained} <= {f"{out}-0", f"{out}-1"}


def test_a_mostly_infeasible_space_stops_with_a_message(tmp_path, data):
    (tmp_path / "tiny.yaml").write_text(TINY.lstrip())
    p = tmp_path / "sw.yaml"
    p.write_text("spec: tiny.yaml\ntrials: 2\nmax_rule_pruned: 5\nspace:\n  width: {choice: [4.0, 6.0]}\n")
    out = str(tmp_path / "out")
    r = run_cli("sweep", str(p), "--out", out, "--data", data, env=ENV)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "5 candidates in a row broke a rule (most often SEP203, 5 times); the space is mostly infeasible" in r.stderr
    trials = study_trials(str(p), out)
    assert len(trials) == 5 and all(t.user_attrs["rule"] == "SEP203" for t in trials)
    assert os.listdir(os.path.join(out, "trials")) == []


def test_a_worker_that_loses_the_race_to_create_the_schema_opens_it_again(tmp_path, monkeypatch):
    """Two workers starting at once on a new database: the loser's CREATE fails with an IntegrityError or, on
    PostgreSQL, a ProgrammingError "relation ... already exists" (seen in the two-worker test); it opens the storage
    again once the winner has made the tables. Any other error is told at once, in one line."""
    from sepspec.search import sweep as sw
    from sepspec.search.sweepfile import load_sweep

    class ProgrammingError(Exception):  # SQLAlchemy's class name, as the storage raises it
        pass

    calls = []

    class Racing(optuna.storages.RDBStorage):  # Optuna checks isinstance(storage, RDBStorage)
        def __init__(self, url, *a, **k):
            calls.append(url)
            if len(calls) == 1:
                raise ProgrammingError('(psycopg.errors.DuplicateTable) relation "alembic_version" already exists')
            super().__init__(url, *a, **k)

    monkeypatch.setattr(optuna.storages, "RDBStorage", Racing)
    monkeypatch.setattr(sw.time, "sleep", lambda s: None)
    sweep, out = make(tmp_path)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study, _ = sw.open_study(sweep, out, url, load_sweep(sweep).sweep)
    assert len(calls) == 2 and study.study_name == "sw"
    calls.clear()

    def broken(url, *a, **k):
        calls.append(url)
        raise ProgrammingError('relation "trials" does not exist')

    monkeypatch.setattr(optuna.storages, "RDBStorage", broken)
    with pytest.raises(sw.SweepError, match="cannot open it \\(ProgrammingError: relation"):
        sw.open_study(sweep, out, url, load_sweep(sweep).sweep)
    assert len(calls) == 1
