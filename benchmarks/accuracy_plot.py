"""Accuracy against parameters and against MACs, from the committed run directories: results/accuracy.png, and
the README's accuracy table.

Every point is a spec and recipe trained for a number of epochs: the mean final-epoch test accuracy over its seeds
(the headline figure of a run is its final epoch, not its best; scored as the recipe validates, with its
test-time views), with the seeds' range as an error bar. The test figure is `metrics.json`'s `test.final_accuracy`
(a run validated on the test split has the same figure as its final validation accuracy); the plain one (no
test-time views) comes from `test_views.json` where `benchmarks/tta_views.py` wrote one, else from the history of
a run validated on the test split. Params, MACs, receptive field and the int8 flash and arena come from the
analysis of each run's own resolved `spec.yaml`. Runs of the same resolved spec (architecture and recipe) differ
only by seed and share a row. The seed notebook's published figure (80,203 params, 17.3M MACs, 81.66% after 50
epochs) and MLPerf Tiny's ResNet-8 (78,666 params and 12.5M MACs, as `specs/resnet8.yaml` measures it; the
benchmark's quality target, 85% top-1, reached by its reference recipe of 500 epochs) are marked for reference.
    python benchmarks/accuracy_plot.py [RESULTS_DIR] [-o results/accuracy.png]
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
from sepspec.graph.memory import estimate  # noqa: E402

REFERENCES = [("seed notebook (50 epochs, published)", 80_203, 17_275_520, 81.66),
              ("ResNet-8, MLPerf Tiny (quality target, 500-epoch recipe)", 78_666, 12_501_632, 85.0)]


def plain_accuracy(row: dict) -> float | None:
    """The epoch's validation accuracy % without the recipe's weight average and test-time views; None where it had
    neither. The history fills `_no_ema` / `_no_tta` for what was on, and `_plain` only where both were."""
    no_ema, no_tta = row.get("val_accuracy_no_ema"), row.get("val_accuracy_no_tta")
    plain = row.get("val_accuracy_plain") if no_ema and no_tta else no_ema or no_tta
    return 100 * float(plain) if plain else None


def runs(folder: str):
    """A dict per finished run: its row key (label, resolved recipe), epochs, figures and spec facts."""
    for d in sorted(os.listdir(folder)):
        path = os.path.join(folder, d)
        try:
            m = json.load(open(os.path.join(path, "metrics.json")))
            spec = load(os.path.join(path, "spec.yaml"))
        except (OSError, ValueError, KeyError):
            continue
        if m.get("status") != "finished":
            continue
        test = (m.get("test") or {}).get("final_accuracy")
        with open(os.path.join(path, "history.csv")) as f:
            last = list(csv.DictReader(f))[-1]
        if test is None and m.get("validation") == "test":  # runs from before the test figures were recorded
            test = m["final_val_accuracy"]
        if test is None:
            continue
        views = os.path.join(path, "test_views.json")
        if os.path.exists(views):
            plain = 100 * json.load(open(views))["test_accuracy"]["none"]
        else:
            plain = plain_accuracy(last) if m.get("validation") == "test" else None
        rep = analyse(spec)
        dep = estimate(rep)
        label = d.rsplit("-seed", 1)[0] if "-seed" in d else d
        # the recipe as the current schema reads it (spec.yaml files written by older versions omit new defaults)
        recipe = json.dumps(spec.train.model_dump(exclude={"epochs"}), sort_keys=True)
        yield {"run": d, "key": (label, recipe), "epochs": m["epochs_completed"], "params": rep.params,
               "macs": rep.macs, "rf": min(rep.receptive_field), "flash": dep.flash_bytes, "ram": dep.arena_bytes,
               "acc": 100 * test, "plain": plain, "tta": spec.train.tta, "secs": m.get("seconds_per_epoch"),
               "held_out": m.get("validation") != "test"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default=os.path.join(ROOT, "results"))
    ap.add_argument("-o", "--out", default=os.path.join(ROOT, "results", "accuracy.png"))
    a = ap.parse_args()
    groups = defaultdict(list)
    for r in runs(a.folder):
        groups[(r["key"], r["epochs"])].append(r)
    print("| runs | params | MACs | rf | int8 flash / RAM | epochs | validation | final accuracy, mean [min-max] (seeds) "
          "| plain | s/epoch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    points = []
    for ((label, _), epochs), items in sorted(groups.items(), key=lambda kv: (kv[0][0][0], kv[0][1])):
        r0 = items[0]
        accs = [r["acc"] for r in items]
        plains = [r["plain"] for r in items if r["plain"] is not None]
        secs = [r["secs"] for r in items if r["secs"]]
        mean = statistics.mean(accs)
        points.append((label, epochs, r0["params"], r0["macs"], mean, min(accs), max(accs)))
        spread = f" [{min(accs):.2f}-{max(accs):.2f}]" if len(accs) > 1 else ""
        tta = f", {r0['tta']} TTA" if r0["tta"] != "none" else ""
        plain = f"{statistics.mean(plains):.2f}%" if len(plains) == len(accs) else "-"
        print(f"| {label} ({', '.join(r['run'].rsplit('-seed', 1)[-1] if '-seed' in r['run'] else '-' for r in items)}) "
              f"| {r0['params']:,} | {r0['macs'] / 1e6:.1f} M | {r0['rf']} | {r0['flash'] / 1000:.1f} / "
              f"{r0['ram'] / 1000:.1f} kB | {epochs} | {'held out' if r0['held_out'] else 'test'} "
              f"| {mean:.2f}%{spread} ({len(accs)}){tta} | {plain} | {statistics.median(secs) if secs else 0:.0f} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, index, label in ((axes[0], 2, "parameters"), (axes[1], 3, "multiply-accumulates per image")):
        for i, p in enumerate(points):  # a colour and a marker per row, so that no two rows look alike
            ax.errorbar(p[index], p[4], yerr=[[p[4] - p[5]], [p[6] - p[4]]], fmt="osD^v"[i // 10 % 5], capsize=3,
                        color=plt.cm.tab10(i % 10), label=f"{p[0]} ({p[1]} epochs)")
        for ref in REFERENCES:
            ax.scatter(ref[1 if index == 2 else 2], ref[3], marker="*", s=150, label=ref[0])
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("CIFAR-10 test accuracy % (final epoch, mean over seeds)")
    axes[1].legend(fontsize=6, loc="lower right")
    fig.suptitle("sepspec specs, measured with sepspec train (CPU), against published points")
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
