"""What a run's start costs on TensorFlow, and what building the compiled metrics before the first trace saves:
`sepspec train` of a spec in a fresh process, alternately as it is and with `compiled.build_state` switched off
(Keras's TensorFlow trainer then makes the metrics' variables inside the first trace of the training step, and
TensorFlow traces the step a second time). Prints each round's first-epoch seconds (history.csv), later epochs'
median and the process's wall time, then the medians of both and their ratio.

    python benchmarks/first_epoch.py SPEC --data PATH [--rounds 3] [-- TRAIN OPTIONS ...]
    python benchmarks/first_epoch.py specs/mbconv.yaml --data ../shared/data/cifar-10-python.tar.gz -- \\
        --epochs 3 --batch-size 64 --train-limit 2000 --val-limit 500
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the baseline: the same command with the pre-build a no-op (patched before the trainer imports it)
WITHOUT = ("import sys; import sepspec.train.compiled as c; c.build_state = lambda *a, **k: None; "
           "from sepspec.cli import main; sys.exit(main(sys.argv[1:]))")


def one(spec: str, data: str, extra: list[str], built: bool) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        args = ["train", spec, "--data", data, "--out", out, *extra]
        cmd = [sys.executable, "-m", "sepspec", *args] if built else [sys.executable, "-c", WITHOUT, *args]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd[:3])} ...: exit {r.returncode}: {r.stderr.strip()[-300:]}")
        with open(os.path.join(out, "history.csv")) as f:
            rows = list(csv.DictReader(f))
    later = [float(x["seconds"]) for x in rows[1:]]
    return float(rows[0]["seconds"]), statistics.median(later) if later else float("nan"), wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec")
    p.add_argument("--data", required=True)
    p.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = p.parse_args(argv[:cut])
    a.extra = argv[cut + 1:]  # after --: options for sepspec train
    spec, data = os.path.abspath(a.spec), os.path.abspath(a.data)
    got = {True: [], False: []}
    for r in range(a.rounds):
        for built in ((True, False) if r % 2 == 0 else (False, True)):  # interleaved, the order alternating
            first, later, wall = one(spec, data, a.extra, built)
            got[built].append((first, later, wall))
            print(f"round {r + 1} {'built first' if built else 'baseline   '}: first epoch {first:6.2f} s, later "
                  f"epochs {later:6.2f} s, process {wall:6.2f} s", flush=True)
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in got.items()}
    for k, name in ((True, "metrics built before the first trace"), (False, "baseline (built inside the trace)")):
        print(f"{name:<38} medians: first epoch {med[k][0]:6.2f} s, later {med[k][1]:6.2f} s, "
              f"process {med[k][2]:6.2f} s")
    print(f"ratio built / baseline: first epoch {med[True][0] / med[False][0]:.2f}, process "
          f"{med[True][2] / med[False][2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
