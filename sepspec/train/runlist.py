"""`sepspec runs`: what the run folders under a folder say about themselves, one record per run, read from their
records alone (metrics.json, run.json, the lock): no model is loaded."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..diagnostics import UserError
from . import rundir
from .lock import is_held


@dataclass
class RunSummary:
    path: str
    spec: str = "?"
    params: int = 0
    status: str = "?"  # finished, running, stopped (its process died: `train --resume` continues it), nan, ...
    epochs_completed: int = 0
    epochs_planned: int = 0
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    validation: str = "?"  # test | held-out
    test_accuracy: float | None = None  # the final epoch's, on the test split
    seconds_per_epoch: float | None = None
    settings: str = "?"  # what the command line changed (seed, --set)
    damaged: bool = False


def runs(folder: str) -> list[RunSummary]:
    """Every run under `folder` (a folder holding metrics.json), in path order."""
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: no such folder")
    found = []
    for d, _, files in os.walk(folder):
        if rundir.METRICS in files:
            try:
                found.append(_summary(d, rundir.read_json(os.path.join(d, rundir.METRICS))))
            except (OSError, json.JSONDecodeError):
                continue
    return sorted(found, key=lambda r: r.path)


def _summary(d: str, m: dict) -> RunSummary:
    try:
        status = m.get("status", "?")
        if status == "running" and is_held(d) is False:
            status = "stopped"  # its process died without a word (killed, crashed)
        return RunSummary(d, str(m.get("spec", "?")), int(m.get("params", 0)), status,
                          int(m.get("epochs_completed", 0)), int(m.get("epochs_planned", 0)),
                          m.get("best_val_accuracy"), m.get("best_epoch"), rundir.split_name(m.get("validation")),
                          (m.get("test") or {}).get("final_accuracy"), m.get("seconds_per_epoch") or None,
                          _settings(d))
    except (TypeError, ValueError, AttributeError, KeyError):
        return RunSummary(d, damaged=True)


def _settings(run: str) -> str:
    """What the command line changed (seed, --set), so that runs of one spec can be told apart."""
    try:
        opts = rundir.read_json(os.path.join(run, rundir.RECORD))["options"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return "?"
    return " ".join([f"seed={opts.get('seed')}"] + [f"--set {o!r}" if " " in o else f"--set {o}"
                                                    for o in opts.get("overrides") or []])
