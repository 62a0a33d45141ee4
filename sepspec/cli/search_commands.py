"""`sepspec scale | sweep`: searches over specs (the static checker first, then, for a sweep, the trainer)."""

from __future__ import annotations

import argparse
import os
import sys

from ..status import INTERRUPTED, INVALID, OK, USAGE
from .spec_commands import valid_or_status


def add_commands(sub) -> None:
    s = sub.add_parser("scale", help="the widest variant of a spec under a parameter (and MAC) budget: one "
                       "width multiplier on every filters but the classifier's")
    s.add_argument("file", metavar="SPEC")
    s.add_argument("--max-params", type=int, required=True, metavar="N")
    s.add_argument("--max-macs", type=int, metavar="M")
    s.add_argument("-o", "--output", metavar="OUT.yaml", help="default: SPEC-xM.yaml beside SPEC")
    s.set_defaults(fn=cmd_scale)

    s = sub.add_parser("sweep", help="search over specs on Optuna; candidates that break a rule are pruned "
                       "before any training")
    s.add_argument("file", metavar="SWEEP.yaml")
    s.add_argument("--out", metavar="DIR", help="the sweep's folder (default sweeps/<sweep name>)")
    s.add_argument("--storage", metavar="URL", help="a database URL (e.g. postgresql+psycopg://...) that many "
                   "machines share; default a journal file in the sweep's folder")
    s.add_argument("--data", metavar="PATH", help="where CIFAR-10 is, as for train")
    s.add_argument("--workers", type=int, default=1, metavar="N", help="N trial processes on this machine")
    s.add_argument("--report", action="store_true", help="print the table, write best.yaml and sweep.png")
    s.add_argument("--check", action="store_true", help="validate the sweep file (and every path of its space "
                   "against its spec) and exit, without Optuna or training")
    s.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    s.set_defaults(fn=cmd_sweep)


def _schema_line(source: str, out: str) -> str:
    """The source's `# yaml-language-server: $schema=...` first line, for an output in the same folder (where its
    relative schema path still holds); else nothing."""
    if os.path.dirname(os.path.abspath(out)) != os.path.dirname(os.path.abspath(source)):
        return ""
    with open(source, encoding="utf-8") as f:
        first = f.readline()
    return first if first.startswith("# yaml-language-server:") else ""


def cmd_scale(a) -> int:
    from ..atomic import write
    from ..search.scale import widest
    from ..spec.load import to_yaml

    if a.max_params < 1 or (a.max_macs is not None and a.max_macs < 1):
        print("sepspec scale: --max-params and --max-macs must be positive", file=sys.stderr)
        return USAGE
    c, status = valid_or_status(a.file)
    if c is None:
        return status
    found = widest(c.spec, a.max_params, a.max_macs)
    if found is None:
        print(f"sepspec scale: no width multiplier from 4.00 down to 0.01 fits {a.max_params:,} parameters"
              + (f" and {a.max_macs:,} MACs" if a.max_macs else "") + " and passes every rule", file=sys.stderr)
        return INVALID
    m = found.multiplier
    out = a.output or f"{os.path.splitext(a.file)[0]}-x{m:.2f}.yaml"
    spec = found.spec.model_copy(update={"name": f"{found.spec.name}-x{m:.2f}"})
    text = to_yaml(spec, f"{os.path.basename(a.file)} with every width but the classifier's times {m:.2f} "
                         f"(sepspec scale --max-params {a.max_params})")
    write(out, _schema_line(a.file, out) + text)
    rep = c.report
    print(f"width x{m:.2f}: params {found.params:,} (was {rep.params:,}), MACs {found.macs:,} (was {rep.macs:,}); "
          f"wrote {out}")
    return OK


def cmd_sweep(a) -> int:
    if a.check:
        from ..search.sweepfile import load_sweep

        sweep = load_sweep(a.file).sweep
        print(f"{a.file}: valid sweep of {sweep.spec}: {len(sweep.space)} paths, {sweep.trials} trials of "
              f"{sweep.budget.epochs} epochs")
        return OK
    if a.report:
        from ..search.report import report

        _print_report(report(a.file, a.out, a.storage))
        return OK
    from ..search.sweep import default_out, start_workers, work

    if a.workers < 1:
        print("sepspec sweep: --workers must be at least 1", file=sys.stderr)
        return USAGE
    if a.worker is None and a.workers > 1:
        return max(start_workers(a.file, a.out, a.storage, a.data, a.workers), key=abs)
    worked = work(a.file, a.out or default_out(a.file), a.storage, a.data, a.worker or 0)
    if worked.interrupted:
        return INTERRUPTED
    print(f"sweep {worked.sweep}: {worked.trained} trained trials (asked for {worked.asked})", flush=True)
    return OK


def _print_report(r) -> None:
    w = max([7] + [len(row.sampled) for row in r.rows])
    head = f"{'trial':>5}  {'sampled':<{w}} {'params':>8} {'MACs':>11} {'rf':>4} {'best val':>9}  state"
    print(head)
    print("-" * len(head))
    for row in r.rows:
        val = "" if row.best_val_accuracy is None else f"{100 * row.best_val_accuracy:.2f}%"
        print(f"{row.number:>5}  {row.sampled:<{w}} {row.params:>8} {row.macs:>11} {row.receptive_field:>4} "
              f"{val:>9}  {row.state}")
    print("-" * len(head))
    print(f"{r.trained} trained (asked for {r.asked}; {r.by_pruner} stopped early by the pruner), {r.ruled} rejected "
          f"by the static checker in {r.check_ms:.0f} ms in all"
          + (f" (training them would have cost about {r.saved} at the median {r.median_seconds:.0f} s per trained "
             "trial)" if r.saved else ""))
    if r.rules:
        print("rules that rejected candidates: " + ", ".join(f"{c} x{n}" for c, n in r.rules.items()))
    if r.best is None:
        print("no trial has finished yet")
        return
    number, val, path = r.best
    print(f"best: trial {number}, validation accuracy {100 * val:.2f}%; its spec: {path}")
    for number, val, test in r.tests:
        print(f"  trial {number}: validation {100 * val:.2f}%, test {100 * test:.2f}% (CIFAR-10 test set, measured "
              "after the search)")
    print(f"wrote {r.picture}")
