"""Several seeds at once, two ways, against one seed alone: `sepspec train SPEC --seeds 0,1,2` (a process per
seed) and `--seeds 0,1,2 --stacked` (one process, one compiled step for all). Each way is the real command in a
subprocess, timed from start to exit; the ways alternate round by round. Prints, per way, the median wall time,
the training images per second of all its seeds together (from the runs' records: the sum over seeds of training
images / the median epoch's training seconds) and the ratio of its wall time to the seeds trained one after
another (N x one seed alone).

    python benchmarks/stacked_seeds.py SPEC --data PATH [--seeds 3] [--rounds 2] [-- train options...]
    python benchmarks/stacked_seeds.py specs/frontier.yaml --data ../shared/data/cifar-10-python.tar.gz \\
        -- --epochs 1 --train-limit 5120 --val-limit 500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def ways(seeds: int) -> dict[str, list[str]]:
    many = ",".join(str(k) for k in range(seeds))
    return {"one seed": ["--seed", "0"], f"{seeds} processes": ["--seeds", many],
            f"{seeds} stacked": ["--seeds", many, "--stacked"]}


def runs_of(out: str) -> list[str]:
    return [os.path.join(out, d) for d in sorted(os.listdir(out)) if d.startswith("seed") and os.path.isdir(
        os.path.join(out, d))] if os.path.isfile(
        os.path.join(out, "seeds.json")) else [out]


def images_per_second(out: str) -> float:
    total = 0.0
    for run in runs_of(out):
        m = json.load(open(os.path.join(run, "metrics.json")))
        if m["status"] != "finished":
            raise SystemExit(f"{run}: {m['status']}")
        total += m["images_per_second"]
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--data", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a, extra = ap.parse_args(argv[:cut]), argv[cut + 1:]  # after --: options for every `sepspec train`
    wall: dict[str, list[float]] = {w: [] for w in ways(a.seeds)}
    rate: dict[str, list[float]] = {w: [] for w in ways(a.seeds)}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for w, args in ways(a.seeds).items():
                out = os.path.join(tmp, f"{r}-{w.replace(' ', '-')}")
                t0 = time.perf_counter()
                p = subprocess.run([sys.executable, "-m", "sepspec", "train", a.spec, "--data", a.data, "--out", out,
                                    *args, *extra], capture_output=True, text=True)
                if p.returncode != 0:
                    raise SystemExit(f"{w}: exit status {p.returncode}\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
                wall[w].append(time.perf_counter() - t0)
                rate[w].append(images_per_second(out))
                print(f"round {r + 1}, {w}: {wall[w][-1]:.1f} s, {rate[w][-1]:,.0f} training images/s", flush=True)
    alone = statistics.median(wall["one seed"]) * a.seeds
    print(f"\n{a.spec}, {a.seeds} seeds, {a.rounds} rounds, backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}:")
    print("| way | wall s (median) | training images/s, all seeds | wall / (seeds x one seed) |")
    print("|---|---|---|---|")
    for w in wall:
        n = 1 if w == "one seed" else a.seeds
        print(f"| {w} | {statistics.median(wall[w]):.1f} | {statistics.median(rate[w]):,.0f} | "
              f"{statistics.median(wall[w]) * a.seeds / n / alone:.2f} |")


if __name__ == "__main__":
    main()
