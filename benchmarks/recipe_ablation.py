"""The weight-average (EMA) and flip-TTA ablation, read from the runs' own histories.

A run whose recipe has `ema` and `tta: flip` records, every epoch, its validation accuracy four ways: with both
(`val_accuracy`), without the average (`val_accuracy_no_ema`: the live weights, which train identically either
way), without the flips (`val_accuracy_no_tta`) and without either (`val_accuracy_plain`). So each run is a
paired ablation of both features; this prints the final epoch's four figures per run, the mean and the seeds'
spread per arm, and each feature's gain with and without the other.
    python benchmarks/recipe_ablation.py results/residual-10ep-seed*
"""
import csv
import os
import statistics
import sys

ARMS = [("val_accuracy", "EMA + TTA"), ("val_accuracy_no_ema", "TTA only"), ("val_accuracy_no_tta", "EMA only"),
        ("val_accuracy_plain", "neither")]


def final_row(run: str) -> dict:
    with open(os.path.join(run, "history.csv")) as f:
        return list(csv.DictReader(f))[-1]


def main(runs: list[str]) -> int:
    rows = {r: final_row(r) for r in runs}
    usable = {r: x for r, x in rows.items() if all(x.get(k) for k, _ in ARMS)}
    print(f"{'run':<34} {'epoch':>5} " + " ".join(f"{name:>10}" for _, name in ARMS))
    for r, x in usable.items():
        print(f"{os.path.basename(r.rstrip('/')):<34} {x['epoch']:>5} "
              + " ".join(f"{100 * float(x[k]):>10.2f}" for k, _ in ARMS))
    if not usable:
        print("no run records all four figures (its recipe needs ema and tta: flip)")
        return 1
    print(f"{'mean [min-max]':<40} " + " ".join(
        f"{100 * statistics.mean(float(x[k]) for x in usable.values()):>10.2f}" for k, _ in ARMS))
    for k, name in ARMS:
        v = [100 * float(x[k]) for x in usable.values()]
        print(f"  {name:<10} {statistics.mean(v):.2f} [{min(v):.2f}-{max(v):.2f}], spread {max(v) - min(v):.2f}")

    def gain(a, b):
        d = [100 * (float(x[a]) - float(x[b])) for x in usable.values()]
        return f"{statistics.mean(d):+.2f} (per run {', '.join(f'{v:+.2f}' for v in d)})"

    print(f"EMA gain: with TTA {gain('val_accuracy', 'val_accuracy_no_ema')}; "
          f"without {gain('val_accuracy_no_tta', 'val_accuracy_plain')}")
    print(f"TTA gain: with EMA {gain('val_accuracy', 'val_accuracy_no_tta')}; "
          f"without {gain('val_accuracy_no_ema', 'val_accuracy_plain')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
