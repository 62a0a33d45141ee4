"""`sepspec train SPEC --seeds 0,1,2`: several seeds of one recipe trained at once, one process per seed on the
same device (`--stacked`: in one process and one compiled step, `stacked.py`). An 80k-parameter network leaves
most of a GPU idle; each seed's process fills some of the rest. Every seed is an ordinary run (its own run folder
`OUT/seedK`, data order, augmentation, checkpoints), so each resumes on its own (`sepspec train --resume
OUT/seedK`), and `--resume OUT` resumes them all as they were started (`OUT/seeds.json`). Each process's lines are
printed prefixed with its seed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time

from . import rundir
from .options import TrainError

GROUP = "seeds.json"  # in OUT: the seeds and how they were trained, what `--resume OUT` reads


def is_group(path: str) -> bool:
    return os.path.isfile(os.path.join(path, GROUP)) and not rundir.is_run(path)


def write_group(out: str, seeds: list[int], stacked: bool) -> None:
    os.makedirs(out, exist_ok=True)
    rundir.write_json(os.path.join(out, GROUP), {"seeds": seeds, "stacked": stacked})


def read_group(out: str) -> tuple[list[int], bool]:
    try:
        group = rundir.read_json(os.path.join(out, GROUP))
        return [int(k) for k in group["seeds"]], bool(group["stacked"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TrainError(f"{os.path.join(out, GROUP)}: damaged, cannot resume ({type(e).__name__}: {e})") from None


def finished(run: str, epochs: int | None = None) -> bool:
    """Has a seed's run trained all its epochs (or `epochs`)? From its commit point and spec, as `--resume` tells."""
    state = rundir.read_state(run) if rundir.is_run(run) else None
    return bool(state) and state["epoch"] >= (epochs or rundir.read_spec(run).train.epochs)


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise TrainError(f"--seeds {text!r}: expected seeds separated by commas, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise TrainError(f"--seeds {text!r}: expected distinct seeds separated by commas, e.g. 0,1,2")
    return seeds


def _env(n: int) -> dict:
    """JAX takes 75% of a GPU's memory per process unless told otherwise: each seed gets its share."""
    env = dict(os.environ)
    if "XLA_PYTHON_CLIENT_MEM_FRACTION" not in env and "XLA_PYTHON_CLIENT_PREALLOCATE" not in env:
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 / n:.3f}"
    return env


def check_out(out: str) -> None:
    if os.path.exists(out) and os.listdir(out):
        raise TrainError(f"--out {out}: not empty (the seeds' runs go into {out}/seedK)")


def train_seeds(args: list[str], seeds: list[int], out: str) -> dict[int, int]:
    """Run `sepspec train ARGS --seed K --out OUT/seedK` for every K at once; {seed: exit status}."""
    check_out(out)
    write_group(out, seeds, stacked=False)
    statuses = _run({k: [*args, "--seed", str(k), "--out", os.path.join(out, f"seed{k}")] for k in seeds})
    if not any(rundir.is_run(os.path.join(out, f"seed{k}")) for k in seeds):  # every seed refused: nothing left
        os.unlink(os.path.join(out, GROUP))
        with contextlib.suppress(OSError):
            os.rmdir(out)
    return statuses


def resume_seeds(out: str, args: list[str]) -> dict[int, int]:
    """Run `sepspec train --resume OUT/seedK ARGS` for every seed of OUT at once (those not yet finished)."""
    seeds, _ = read_group(out)
    todo = {}
    for k in seeds:
        run = os.path.join(out, f"seed{k}")
        if not args and finished(run):
            print(f"[seed {k}] already finished; run {run}", flush=True)
            continue
        todo[k] = ["--resume", run, *args]
    if not todo:
        raise TrainError(f"{out}: every seed has finished (--resume {out} --epochs N trains them further)")
    return _run(todo)


def _run(commands: dict[int, list[str]]) -> dict[int, int]:
    """`sepspec train` with each seed's arguments, all at once; {seed: exit status}."""
    env = _env(len(commands))
    procs = {k: subprocess.Popen([sys.executable, "-m", "sepspec", "train", *args], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
             for k, args in commands.items()}
    lock = threading.Lock()

    def relay(k, p):
        for line in p.stdout:
            with lock:
                print(f"[seed {k}] {line}", end="", flush=True)

    threads = [threading.Thread(target=relay, args=(k, p), daemon=True) for k, p in procs.items()]
    for t in threads:
        t.start()
    try:
        statuses = {k: p.wait() for k, p in procs.items()}
    except KeyboardInterrupt:  # Ctrl-C reached every child too: each stops at its commit point
        statuses = {k: p.wait() for k, p in procs.items()}
    for t in threads:
        t.join(timeout=5)
    return statuses


def default_out(spec_name: str) -> str:
    return os.path.join("runs", spec_name, time.strftime("%Y%m%d-%H%M%S") + "-seeds")
