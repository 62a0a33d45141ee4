"""Print the README's reproduction table: validation (and training) accuracy per epoch of runs, beside the
seed's log and the hand-written Keras reference of issue 4.
    python benchmarks/curve_table.py results/base-noaug results/base-flip-crop6 ...
"""
import csv
import os
import sys

# the seed's 50-epoch log (../shared/seed/EIP_Session3.md): (train accuracy, validation accuracy) per epoch
SEED = [(44.21, 22.39), (59.18, 47.78), (65.81, 59.31), (69.37, 68.57), (72.03, 69.21), (73.67, 70.54),
        (74.87, 74.25), (76.18, 74.10), (76.86, 75.83), (77.54, 75.85)]
# the seed's network and recipe hand-written in Keras, trained on 2 cores without augmentation (issue 4)
HAND = {1: 40.7, 2: 63.3, 3: 70.9, 4: 74.0, 5: 79.9, 6: 72.4}
HAND_TRAIN = {4: 79.3}


def load(run):
    with open(os.path.join(run, "history.csv")) as f:
        return {int(r["epoch"]): r for r in csv.DictReader(f)}


def main(runs):
    hist = {os.path.basename(r.rstrip("/")): load(r) for r in runs}
    head = "| epoch | seed val (train) | hand-written val (train) | " + " | ".join(
        f"{n} val (train), s/epoch" for n in hist) + " |"
    print(head)
    print("|" + "---|" * (3 + len(hist)))
    for e in range(1, 11):
        sv, st = SEED[e - 1][1], SEED[e - 1][0]
        hw = f"{HAND[e]:.1f}" + (f" ({HAND_TRAIN[e]:.1f})" if e in HAND_TRAIN else "") if e in HAND else "-"
        cells = []
        for h in hist.values():
            r = h.get(e)
            cells.append(f"{100 * float(r['val_accuracy']):.1f} ({100 * float(r['accuracy']):.1f}), {float(r['seconds']):.0f}"
                         if r else "-")
        print(f"| {e} | {sv:.1f} ({st:.1f}) | {hw} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
