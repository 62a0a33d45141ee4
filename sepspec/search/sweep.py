"""`sepspec sweep`: a search over specs on Optuna, pruned statically before any training.

Every trial's spec is resolved and checked by the static checker first: one that breaks a rule is recorded as
pruned (with the rule's code, in milliseconds, no run directory) and does not count toward `trials:`; the
others train with the shared trainer (each a normal run directory) on a held-out part of the training set and
report every epoch to the pruner. The study lives in a journal file in the sweep's folder, or, with
`--storage URL`, in a database any number of machines share.

Dead workers: each trial records its worker (host and pid) and a heartbeat; a running trial whose worker is gone
(same host: the pid is not alive; any host: no heartbeat for `STALE` seconds) is marked failed and its
parameters are queued again, so it is retried once and counted once. The same mechanism serves both storages
(Optuna's journal storage has no heartbeat of its own).
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from ..checked import check_spec
from ..diagnostics import UserError
from ..graph.memory import estimate
from ..spec.source import SpecError
from ..status import INVALID
from ..train import rundir
from .sweepfile import Choice, IntRange, LogUniform, Sweep, Uniform, load_sweep

HEARTBEAT = 10.0  # seconds between a running trial's heartbeats
STALE = 120.0  # a running trial without a heartbeat for this long has lost its worker
HOST = socket.gethostname()


class SweepError(UserError):
    pass


def import_optuna():
    """Optuna, quiet (a missing install is the CLI's one-line install hint)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def default_out(sweep_path: str) -> str:
    return os.path.join("sweeps", os.path.splitext(os.path.basename(sweep_path))[0])


def open_study(sweep_path: str, out: str, storage: str | None, sweep: Sweep, worker: int = 0, create: bool = True):
    optuna = import_optuna()
    name = os.path.splitext(os.path.basename(sweep_path))[0]
    if storage:
        for attempt in range(6):
            try:
                store = optuna.storages.RDBStorage(storage)
                break
            except Exception as e:  # SQLAlchemy raises many kinds for a bad URL or an unreachable server
                if _lost_schema_race(e) and attempt < 5:
                    time.sleep(0.5 + random.random())
                    continue
                first = (str(e).strip().splitlines() or [""])[0]
                raise SweepError(f"--storage {storage}: cannot open it ({type(e).__name__}: {first[:200]})") from None
    else:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        os.makedirs(out, exist_ok=True)
        store = JournalStorage(JournalFileBackend(os.path.join(out, "study.journal")))
    if sweep.pruner.name == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=sweep.pruner.warmup_epochs)
    elif sweep.pruner.name == "successive_halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=sweep.pruner.min_epochs)
    else:
        pruner = optuna.pruners.NopPruner()
    sampler = optuna.samplers.TPESampler(seed=sweep.seed + worker, n_startup_trials=max(4, sweep.trials // 4))
    if not create:
        try:
            return optuna.load_study(study_name=name, storage=store, sampler=sampler, pruner=pruner), store
        except KeyError:
            raise SweepError(f"no study {name!r} in {storage or os.path.join(out, 'study.journal')}: run "
                             f"sepspec sweep {sweep_path} first") from None
    return optuna.create_study(study_name=name, storage=store, direction="maximize", load_if_exists=True,
                               sampler=sampler, pruner=pruner), store


def _lost_schema_race(e: Exception) -> bool:
    """Workers starting together on a new database race to create Optuna's tables: the loser sees an
    IntegrityError (a row) or, on PostgreSQL, a ProgrammingError "relation ... already exists" (a table); once
    the winner has committed, opening the storage again finds them made."""
    kind = type(e).__name__
    return kind == "IntegrityError" or (kind == "ProgrammingError" and "already exists" in str(e))


def sample(trial, space: dict) -> dict:
    out = {}
    for name, d in space.items():
        if isinstance(d, Choice):
            out[name] = trial.suggest_categorical(name, d.choice)
        elif isinstance(d, Uniform):
            out[name] = trial.suggest_float(name, float(d.uniform[0]), float(d.uniform[1]))
        elif isinstance(d, LogUniform):
            out[name] = trial.suggest_float(name, float(d.loguniform[0]), float(d.loguniform[1]), log=True)
        elif isinstance(d, IntRange):
            out[name] = trial.suggest_int(name, d.int_[0], d.high, step=d.step)
    return out


# ---- dead workers --------------------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def reap(study, store) -> int:
    """Fail the running trials whose worker is gone and queue their parameters again. Returns how many."""
    optuna = import_optuna()
    now = time.time()
    n = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker", "")
        host, _, pid = worker.rpartition(":")
        beat = t.user_attrs.get("heartbeat", t.datetime_start.timestamp() if t.datetime_start else now)
        gone = (host == HOST and pid.isdigit() and not _alive(int(pid))) or now - beat > STALE
        if not gone:
            continue
        try:
            store.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        except Exception:  # another worker reaped it first
            continue
        if t.user_attrs.get("trained"):
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        n += 1
    return n


class _Heartbeat:
    def __init__(self, trial):
        self.trial, self.stop = trial, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(HEARTBEAT):
            try:
                self.trial.set_user_attr("heartbeat", time.time())
            except Exception:
                return

    def __enter__(self):
        self.trial.set_user_attr("heartbeat", time.time())
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def trained_count(study) -> int:
    """Trials that train or trained (rule-pruned and failed ones do not count)."""
    optuna = import_optuna()
    S = optuna.trial.TrialState
    return sum(1 for t in study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED, S.RUNNING))
               if t.user_attrs.get("trained"))


def record_figures(trial, rep) -> None:
    """The static figures of a candidate as user attributes, so that a dashboard plots accuracy against cost."""
    trial.set_user_attr("params_count", rep.params)
    trial.set_user_attr("macs", rep.macs)
    trial.set_user_attr("receptive_field", min(rep.receptive_field))
    if rep.failure is None:
        d = estimate(rep)
        trial.set_user_attr("flash_bytes", d.flash_bytes)
        trial.set_user_attr("arena_bytes", d.arena_bytes)


# ---- one worker ----------------------------------------------------------------------------------------------

@dataclass
class Worked:
    """What one worker's loop ended with: the study's trained trials against those asked for, and whether it was
    interrupted (its trial is left to be reaped and retried)."""

    sweep: str
    trained: int
    asked: int
    interrupted: bool = False


class Infeasible(SweepError):
    """Too many candidates in a row broke a rule: the space is mostly infeasible (exit status 1)."""

    status = INVALID


def work(sweep_path: str, out: str, storage: str | None = None, data: str | None = None, worker: int = 0) -> Worked:
    from ..train.options import Options
    from ..train.trainer import train

    optuna = import_optuna()
    file = load_sweep(sweep_path)
    sweep = file.sweep
    study, store = open_study(sweep_path, out, storage, sweep, worker)
    me = f"{HOST}:{os.getpid()}"
    cap = sweep.max_rule_pruned or 20 * sweep.trials
    in_a_row, codes = 0, {}
    os.makedirs(os.path.join(out, "trials"), exist_ok=True)
    while True:
        reap(study, store)
        if trained_count(study) >= sweep.trials:
            break
        trial = study.ask()
        trial.set_user_attr("worker", me)
        try:
            params = sample(trial, sweep.space)
        except ValueError as e:  # Optuna refuses a parameter whose distribution changed within a study
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise SweepError(f"{storage or os.path.join(out, 'study.journal')}: this study was made by a different "
                             f"version of {sweep_path} ({e}); give another --out (or --storage), or remove the "
                             "old study") from None
        t0 = time.perf_counter()
        name = f"trial-{trial.number:04d}"
        try:  # the trial's own values, and the sweep's budget and held-out validation
            candidate = file.candidate({**params, "train.epochs": sweep.budget.epochs,
                                        "train.validation": sweep.validation})
        except SpecError as e:
            diags, checked = e.diagnostics, None
        else:
            checked = check_spec(candidate.model_copy(update={"name": f"{candidate.name}-{name}"}), sweep_path)
            diags = [d for d in checked.diagnostics if d.severity == "error"]
            record_figures(trial, checked.report)
        if diags:
            trial.set_user_attr("rule", diags[0].code)
            trial.set_user_attr("rule_message", diags[0].message)
            trial.set_user_attr("check_seconds", round(time.perf_counter() - t0, 4))
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            in_a_row += 1
            codes[diags[0].code] = codes.get(diags[0].code, 0) + 1
            if in_a_row >= cap:
                common = max(codes, key=codes.get)
                raise Infeasible(f"stopped: {in_a_row} candidates in a row broke a rule (most often {common}, "
                                 f"{codes[common]} times); the space is mostly infeasible: narrow it or raise the "
                                 "budget")
            continue
        in_a_row = 0
        trial.set_user_attr("trained", True)
        run = os.path.join(out, "trials", name)
        trial.set_user_attr("run", os.path.abspath(run))

        def on_epoch(epoch, row, trial=trial):
            trial.report(row["val_accuracy"], epoch)
            return trial.should_prune()

        opts = Options(spec=None, out=run, train_limit=sweep.budget.train_limit, val_limit=sweep.budget.val_limit,
                       data=data, seed=sweep.seed)
        print(f"trial {trial.number}: {json.dumps(params)}", flush=True)
        try:
            with _Heartbeat(trial):
                result = train(checked.report, opts, on_epoch)
        except UserError:  # the data or an option is wrong: every trial would fail the same way
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        trial.set_user_attr("status", result.status)
        if result.status == "interrupted":  # leave it to be reaped and retried
            return Worked(os.path.basename(sweep_path), trained_count(study), sweep.trials, interrupted=True)
        if result.status == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            best = rundir.read_metrics(run).get("best_val_accuracy")
            study.tell(trial, best if best is not None and math.isfinite(best) else 0.0)
    return Worked(os.path.basename(sweep_path), trained_count(study), sweep.trials)


def start_workers(sweep_path: str, out: str | None, storage: str | None, data: str | None, workers: int) -> list[int]:
    """`workers` worker processes (`sepspec sweep --worker I`) sharing the CPU threads, run to their end; their exit
    statuses."""
    load_sweep(sweep_path)  # positioned errors before anything starts
    out = out or default_out(sweep_path)
    threads = max(1, (os.cpu_count() or 1) // workers)
    procs = []
    for i in range(workers):
        cmd = [sys.executable, "-m", "sepspec", "sweep", sweep_path, "--out", out, "--worker", str(i)]
        cmd += (["--storage", storage] if storage else []) + (["--data", data] if data else [])
        procs.append(subprocess.Popen(cmd, env={**os.environ, "SEPSPEC_THREADS": str(threads)}))
    return [p.wait() for p in procs]
