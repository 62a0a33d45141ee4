"""`sepspec train SPEC --seeds 0,1,2`: several seeds of one recipe trained at once, one process per seed on the
same device. An 80k-parameter network leaves most of a GPU idle; each seed's process fills some of the rest.
Every seed is an ordinary run (its own run folder `OUT/seedK`, data order, augmentation, checkpoints), so each
resumes on its own (`sepspec train --resume OUT/seedK`). Each process's lines are printed prefixed with its seed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from .options import TrainError


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


def train_seeds(args: list[str], seeds: list[int], out: str) -> dict[int, int]:
    """Run `sepspec train ARGS --seed K --out OUT/seedK` for every K at once; {seed: exit status}."""
    if os.path.exists(out) and os.listdir(out):
        raise TrainError(f"--out {out}: not empty (the seeds' runs go into {out}/seedK)")
    env = _env(len(seeds))
    procs = {k: subprocess.Popen([sys.executable, "-m", "sepspec", "train", *args, "--seed", str(k), "--out",
                                  os.path.join(out, f"seed{k}")], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, bufsize=1, env=env) for k in seeds}
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
