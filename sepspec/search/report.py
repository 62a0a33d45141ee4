"""`sepspec sweep SWEEP.yaml --report`: the table of trials, the best trial's spec as a standalone file, the
best trials' test accuracy (measured apart: trials select on held-out training images), and `sweep.png`, as a
`SweepReport` (the command line prints it)."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass, field

from ..atomic import write
from ..spec.load import to_yaml
from ..train import rundir
from ..train.scoring import accuracy_on_test_split
from .sweep import default_out, import_optuna, open_study
from .sweepfile import load_sweep


def _state(t, S) -> str:
    if t.state == S.PRUNED:
        if "rule" in t.user_attrs:
            return f"pruned by rule {t.user_attrs['rule']}"
        return f"pruned by the pruner after epoch {t.last_step}"
    if t.state == S.FAIL:
        return "failed (worker lost; retried)"
    return {S.COMPLETE: "trained", S.RUNNING: "running", S.WAITING: "queued"}.get(t.state, str(t.state))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _short(path: str, names: list[str]) -> str:
    """The shortest dotted tail of a space path that no other path shares (`kernel` is ambiguous:
    `body[0].sepconv.kernel`)."""
    parts = path.split(".")
    for n in range(1, len(parts) + 1):
        tail = ".".join(parts[-n:])
        if sum(1 for other in names if other.endswith(tail)) == 1:
            return tail
    return path


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@dataclass
class TrialRow:
    number: int
    sampled: str  # the values drawn, by the shortest unambiguous path
    params: int | str
    macs: int | str
    receptive_field: int | str
    best_val_accuracy: float | None
    state: str


@dataclass
class SweepReport:
    """What `sepspec sweep --report` says of a study: a row per trial, the counts, the best trial and its spec file,
    the best trials' test accuracy (measured apart), and the picture."""

    rows: list[TrialRow]
    trained: int
    asked: int
    by_pruner: int
    ruled: int
    check_ms: float
    median_seconds: float | None  # of a trained trial
    rules: dict[str, int]  # rule code -> candidates it rejected
    best: tuple[int, float, str] | None = None  # (trial, validation accuracy, its spec file)
    tests: list[tuple[int, float, float]] = field(default_factory=list)  # (trial, validation, test accuracy)
    picture: str | None = None

    @property
    def saved(self) -> str | None:
        """What training the rejected candidates would have cost, at the median trained trial's time."""
        if not (self.median_seconds and self.ruled):
            return None
        return _duration(self.ruled * self.median_seconds)


def report(sweep_path: str, out: str | None, storage: str | None, test: int = 3) -> SweepReport:
    optuna = import_optuna()
    S = optuna.trial.TrialState
    file = load_sweep(sweep_path)
    sweep = file.sweep
    out = out or default_out(sweep_path)
    study, _ = open_study(sweep_path, out, storage, sweep, create=False)
    trials = study.get_trials(deepcopy=False)
    names = list(sweep.space)
    rows = []
    for t in trials:
        acc = t.value if t.state == S.COMPLETE else (max(t.intermediate_values.values())
                                                     if t.intermediate_values else None)
        rows.append((t, acc))
    short = {k: _short(k, names) for k in names}
    table = [TrialRow(t.number, ", ".join(f"{short[k]}={_fmt(t.params[k])}" for k in names if k in t.params),
                      t.user_attrs.get("params_count", ""), t.user_attrs.get("macs", ""),
                      t.user_attrs.get("receptive_field", ""), acc, _state(t, S)) for t, acc in rows]
    trained = [(t, a) for t, a in rows if t.user_attrs.get("trained") and t.state in (S.COMPLETE, S.PRUNED)]
    ruled = [t for t, _ in rows if t.state == S.PRUNED and "rule" in t.user_attrs]
    secs = [(t.datetime_complete - t.datetime_start).total_seconds() for t, _ in trained
            if t.datetime_complete and t.state == S.COMPLETE]
    codes: dict[str, int] = {}
    for t in ruled:
        codes[t.user_attrs["rule"]] = codes.get(t.user_attrs["rule"], 0) + 1
    result = SweepReport(table, len(trained), sweep.trials, sum(1 for t, _ in trained if t.state == S.PRUNED),
                         len(ruled), sum(t.user_attrs.get("check_seconds", 0) for t in ruled) * 1000,
                         statistics.median(secs) if secs else None, dict(sorted(codes.items())))
    done = sorted([(a, t) for t, a in trained if t.state == S.COMPLETE and a is not None], key=lambda x: -x[0])
    if not done:
        return result
    best_t = done[0][1]
    spec = file.candidate(best_t.params)
    best_file = os.path.join(out, "best.yaml")
    write(best_file, to_yaml(spec, f"the best trial ({best_t.number}) of {os.path.basename(sweep_path)}: "
                              f"{json.dumps(best_t.params)}; validation accuracy {done[0][0]:.4f}"))
    result.best = (best_t.number, done[0][0], best_file)
    for acc, t in done[:test]:
        measured = _test_accuracy(t.user_attrs.get("run"))
        if measured is not None:
            result.tests.append((t.number, acc, measured))
    result.picture = os.path.join(out, "sweep.png")
    _plot(result.picture, rows, S, os.path.basename(sweep_path))
    return result


def _test_accuracy(run: str | None) -> float | None:
    if not run or not os.path.isfile(os.path.join(run, rundir.BEST)):
        return None
    return accuracy_on_test_split(run)


def _plot(path, rows, S, title) -> None:
    from ..figures import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    done = [(t.user_attrs["params_count"], a) for t, a in rows
            if t.state == S.COMPLETE and a is not None and "params_count" in t.user_attrs]
    early = [(t.user_attrs["params_count"], a) for t, a in rows
             if t.state == S.PRUNED and "rule" not in t.user_attrs and a is not None and "params_count" in t.user_attrs]
    ruled = [t.user_attrs["params_count"] for t, _ in rows if "rule" in t.user_attrs and "params_count" in t.user_attrs]
    if done:
        ax.scatter(*zip(*done), label="trained (best validation accuracy)", color="tab:blue")
    if early:
        ax.scatter(*zip(*early), label="stopped by the pruner", color="tab:orange", marker="s")
    if ruled:
        ax.scatter(ruled, [0] * len(ruled), label="rejected by a rule (never trained)", color="tab:red", marker="x")
    ax.set_xlabel("parameters")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"sweep {title}")
    ax.legend(fontsize=8)
    save_figure(fig, path)
