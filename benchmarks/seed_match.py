"""How close runs come to the seed's curve at the points issue 4 names: training accuracy at epoch 4 and
validation accuracy at epochs 5 and 10 (within about 3 points), and, because this network's validation
accuracy swings by several points from one epoch to the next (stale BatchNorm statistics), also the mean
validation accuracy of epochs 4-6 and 8-10. Runs of one setting with different seeds are averaged.

    python benchmarks/seed_match.py LABEL=RUN_DIR[,RUN_DIR...] ...
"""
import sys
from statistics import mean

from curve_table import SEED, load

TOLERANCE = 3.0


def _seed(kind: str, epochs) -> float:
    return mean(SEED[e - 1][0 if kind == "accuracy" else 1] for e in epochs)


def _runs(kind: str, epochs, hists) -> list[float]:
    """One value per run that reached all of `epochs`."""
    return [100 * mean(float(h[e][kind]) for e in epochs) for h in hists if all(e in h for e in epochs)]


POINTS = [("train@4", "accuracy", [4]), ("val@5", "val_accuracy", [5]), ("val@10", "val_accuracy", [10]),
          ("val 4-6", "val_accuracy", [4, 5, 6]), ("val 8-10", "val_accuracy", [8, 9, 10])]


def main(args):
    print("| setting (seeds) | " + " | ".join(p[0] for p in POINTS) + " |")
    print("|---|" + "---|" * len(POINTS))
    print("| seed's log | " + " | ".join(f"{_seed(k, es):.2f}" for _, k, es in POINTS) + " |")
    for arg in args:
        label, _, dirs = arg.partition("=")
        hists = [load(d) for d in dirs.split(",")]
        cells = []
        for _, kind, epochs in POINTS:
            vals = _runs(kind, epochs, hists)
            if not vals:
                cells.append("-")
                continue
            d = mean(vals) - _seed(kind, epochs)
            spread = f" [{min(vals):.1f}-{max(vals):.1f}]" if len(vals) > 1 else ""
            runs = f" n={len(vals)}" if len(vals) != len(hists) else ""
            cells.append(f"{mean(vals):.1f}{spread}{runs} ({d:+.1f} {'ok' if abs(d) <= TOLERANCE else 'no'})")
        print(f"| {label} ({len(hists)}) | " + " | ".join(cells) + " |")
    print(f"\ncells: mean over seeds [min-max] (difference to the seed's log; ok = within {TOLERANCE:g} points); "
          f"n=: runs that reached those epochs")


if __name__ == "__main__":
    main(sys.argv[1:])
