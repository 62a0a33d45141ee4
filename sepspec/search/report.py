"""`sepspec sweep SWEEP.yaml --report`: the table of trials, the best trial's spec as a standalone file, the
best trials' test accuracy (measured apart: trials select on held-out training images), and `sweep.png`."""

from __future__ import annotations

import json
import os
import statistics

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


def report(sweep_path: str, out: str | None, storage: str | None, test: int = 3) -> int:
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
    sampled = {t.number: ", ".join(f"{short[k]}={_fmt(t.params[k])}" for k in names if k in t.params) for t, _ in rows}
    w = max([7] + [len(v) for v in sampled.values()])
    head = (f"{'trial':>5}  {'sampled':<{w}} {'params':>8} {'MACs':>11} {'rf':>4} {'best val':>9}  state")
    print(head)
    print("-" * len(head))
    for t, acc in rows:
        u = t.user_attrs
        print(f"{t.number:>5}  {sampled[t.number]:<{w}} {u.get('params_count', ''):>8} {u.get('macs', ''):>11} "
              f"{u.get('receptive_field', ''):>4} {('' if acc is None else f'{100 * acc:.2f}%'):>9}  {_state(t, S)}")
    trained = [(t, a) for t, a in rows if t.user_attrs.get("trained") and t.state in (S.COMPLETE, S.PRUNED)]
    ruled = [t for t, _ in rows if t.state == S.PRUNED and "rule" in t.user_attrs]
    by_pruner = [t for t, _ in trained if t.state == S.PRUNED]
    secs = [(t.datetime_complete - t.datetime_start).total_seconds() for t, _ in trained
            if t.datetime_complete and t.state == S.COMPLETE]
    check_ms = sum(t.user_attrs.get("check_seconds", 0) for t in ruled) * 1000
    print("-" * len(head))
    print(f"{len(trained)} trained (asked for {sweep.trials}; {len(by_pruner)} stopped early by the pruner), "
          f"{len(ruled)} rejected by the static checker in {check_ms:.0f} ms in all"
          + (f" (training them would have cost about {_duration(len(ruled) * statistics.median(secs))} at the "
             f"median {statistics.median(secs):.0f} s per trained trial)" if secs and ruled else ""))
    codes = {}
    for t in ruled:
        codes[t.user_attrs["rule"]] = codes.get(t.user_attrs["rule"], 0) + 1
    if codes:
        print("rules that rejected candidates: " + ", ".join(f"{c} x{n}" for c, n in sorted(codes.items())))
    done = sorted([(a, t) for t, a in trained if t.state == S.COMPLETE and a is not None], key=lambda x: -x[0])
    if not done:
        print("no trial has finished yet")
        return 0
    best_t = done[0][1]
    spec = file.candidate(best_t.params)
    best_file = os.path.join(out, "best.yaml")
    write(best_file, to_yaml(spec, f"the best trial ({best_t.number}) of {os.path.basename(sweep_path)}: "
                              f"{json.dumps(best_t.params)}; validation accuracy {done[0][0]:.4f}"))
    print(f"best: trial {best_t.number}, validation accuracy {100 * done[0][0]:.2f}%; its spec: {best_file}")
    tests = {}
    for acc, t in done[:test]:
        tests[t.number] = _test_accuracy(t.user_attrs.get("run"))
        if tests[t.number] is not None:
            print(f"  trial {t.number}: validation {100 * acc:.2f}%, test {100 * tests[t.number]:.2f}% "
                  f"(CIFAR-10 test set, measured after the search)")
    _plot(os.path.join(out, "sweep.png"), rows, S, os.path.basename(sweep_path))
    print(f"wrote {os.path.join(out, 'sweep.png')}")
    return 0


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
