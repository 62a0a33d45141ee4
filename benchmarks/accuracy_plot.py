"""Accuracy against parameters and against MACs, from the committed run directories: results/accuracy.png.

Every point is a spec trained for a number of epochs: the mean final-epoch validation accuracy over its seeds
(the headline figure of a run is its final epoch, not its best), with the seeds' range as an error bar. Params
and MACs come from the analysis of each run's own resolved `spec.yaml`. The seed notebook's published figure
(80,203 params, 17.3M MACs, 81.66% after 50 epochs) and MLPerf Tiny's ResNet-8 (about 78.7k params and about
12.5M MACs as published, not measured here; 85-87% after hundreds of epochs, the middle of that range plotted)
are marked for reference.
    python benchmarks/accuracy_plot.py [RESULTS_DIR] [-o results/accuracy.png]
Prints the table it plots.
"""
import argparse
import csv
import json
import os
import statistics
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sepspec import analyse  # noqa: E402
from sepspec import load  # noqa: E402

REFERENCES = [("seed notebook (50 epochs)", 80_203, 17_275_520, 81.66),
              ("ResNet-8, MLPerf Tiny (published)", 78_700, 12_500_000, 86.0)]


def plain_accuracy(row: dict) -> float | None:
    """The epoch's accuracy % without the recipe's weight average and flips; None where it had neither. The
    history fills `_no_ema` / `_no_tta` for what was on, and `_plain` only where both were."""
    no_ema, no_tta = row.get("val_accuracy_no_ema"), row.get("val_accuracy_no_tta")
    plain = row.get("val_accuracy_plain") if no_ema and no_tta else no_ema or no_tta
    return 100 * float(plain) if plain else None


def runs(folder: str):
    """(run, label, epochs completed, params, MACs, final val accuracy %, the same without the recipe's weight
    average and flips or None, seconds per epoch, receptive field) of every run that is not still going.
    Runs of the same resolved spec (same architecture and recipe) differ only by seed: they share a label."""
    for d in sorted(os.listdir(folder)):
        path = os.path.join(folder, d)
        try:
            m = json.load(open(os.path.join(path, "metrics.json")))
            spec = load(os.path.join(path, "spec.yaml"))
        except (OSError, ValueError, KeyError):
            continue
        if m.get("final_val_accuracy") is None or m.get("status") == "running" or m.get("validation") != "test":
            continue
        with open(os.path.join(path, "history.csv")) as f:
            last = list(csv.DictReader(f))[-1]
        plain = plain_accuracy(last)
        rep = analyse(spec)
        label = d.rsplit("-seed", 1)[0] if "-seed" in d else d
        recipe = "".join(line for line in open(os.path.join(path, "spec.yaml")) if not line.strip().startswith("epochs:"))
        yield (d, (label, recipe), m["epochs_completed"], rep.params, rep.macs, 100 * m["final_val_accuracy"], plain,
               m.get("seconds_per_epoch"), min(rep.receptive_field))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default=os.path.join(ROOT, "results"))
    ap.add_argument("-o", "--out", default=os.path.join(ROOT, "results", "accuracy.png"))
    a = ap.parse_args()
    groups = defaultdict(list)
    for run, name, epochs, params, macs, acc, plain, secs, rf in runs(a.folder):
        groups[(name, epochs, params, macs, rf)].append((run, acc, plain, secs))
    print(f"{'runs of':<26} {'epochs':>6} {'params':>8} {'MACs':>12} {'rf':>3} {'final test %':>12} {'[min-max]':>13} "
          f"{'plain %':>8} {'s/epoch':>7}  runs")
    points = []
    for ((name, _), epochs, params, macs, rf), items in sorted(groups.items()):
        accs = [acc for _, acc, _, _ in items]
        plains = [p for _, _, p, _ in items if p is not None]
        secs = [s for _, _, _, s in items if s]
        mean = statistics.mean(accs)
        points.append((name, epochs, params, macs, mean, min(accs), max(accs)))
        plain = f"{statistics.mean(plains):.2f}" if len(plains) == len(accs) else "-"
        print(f"{name:<26} {epochs:>6} {params:>8,} {macs:>12,} {rf:>3} {mean:>12.2f} "
              f"{f'[{min(accs):.1f}-{max(accs):.1f}]':>13} {plain:>8} {statistics.median(secs) if secs else 0:>7.0f}  "
              + ", ".join(run for run, _, _, _ in items))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, index, label in ((axes[0], 2, "parameters"), (axes[1], 3, "multiply-accumulates per image")):
        for p in points:
            ax.errorbar(p[index], p[4], yerr=[[p[4] - p[5]], [p[6] - p[4]]], fmt="o", capsize=3,
                        label=f"{p[0]} ({p[1]} epochs)")
        for ref in REFERENCES:
            ax.scatter(ref[1 if index == 2 else 2], ref[3], marker="*", s=150, label=ref[0])
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("CIFAR-10 test accuracy % (final epoch, mean over seeds)")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle("sepspec specs, measured with sepspec train (CPU), against published points")
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
