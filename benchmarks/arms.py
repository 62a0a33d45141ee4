"""A recipe ablation read from finished run folders: runs named `<arm>-seed<N>` are grouped by arm; each arm's
final-epoch test accuracy per seed (`metrics.json`'s `test.final_accuracy`, scored with the arm's test-time views),
the mean and range, and the mean difference against a reference arm over the seeds both have (a paired
comparison: the same seed gives the same initial weights, data order and augmentation draws).
    python benchmarks/arms.py --reference recipe10 results/recipe10*-seed*
"""
import argparse
import json
import os
import re
import statistics
import sys
from collections import defaultdict


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--reference", help="the arm the others are compared with")
    a = ap.parse_args(argv)
    arms: dict[str, dict[int, float]] = defaultdict(dict)
    for run in a.runs:
        m = re.fullmatch(r"(.+)-seed(\d+)", os.path.basename(run.rstrip("/")))
        try:
            metrics = json.load(open(os.path.join(run, "metrics.json")))
        except (OSError, ValueError):
            continue
        if not m or metrics.get("status") != "finished" or not metrics.get("test"):
            continue
        arms[m.group(1)][int(m.group(2))] = 100 * metrics["test"]["final_accuracy"]
    ref = arms.get(a.reference, {})
    print(f"{'arm':<22} {'seeds':<28} {'mean':>6} {'[min-max]':>14} {'vs ' + str(a.reference):>18}")
    for arm, by_seed in sorted(arms.items()):
        v = list(by_seed.values())
        seeds = " / ".join(f"{s}: {x:.2f}" for s, x in sorted(by_seed.items()))
        both = sorted(set(by_seed) & set(ref))
        diff = ""
        if arm != a.reference and both:
            d = [by_seed[s] - ref[s] for s in both]
            diff = f"{statistics.mean(d):+.2f} ({', '.join(f'{x:+.2f}' for x in d)})"
        print(f"{arm:<22} {seeds:<28} {statistics.mean(v):>6.2f} {f'[{min(v):.2f}-{max(v):.2f}]':>14} {diff:>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
