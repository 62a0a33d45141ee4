"""Test-time views ablated on committed runs, with nothing retrained: each run's final-epoch checkpoint scored on
its test split plainly, with flips (`tta: flip`) and with the six flip_shift views, in one pass.

    python benchmarks/tta_views.py [--data CIFAR] results/residual-10ep-heldout-seed0 results/mixgate-10ep-seed0 ...

Prints one row per run and the mean gain of each level over the one below it, and writes the three figures to
each run's `test_views.json` (which `benchmarks/accuracy_plot.py` reads for its plain column). `--more` also
scores views that no `tta` setting has, to see whether more would pay: ten (the image and its mirror, each
unshifted and shifted by one pixel along both diagonals) and eighteen (each unshifted and at its 8 neighbours).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from sepspec.train import rundir
from sepspec.train.pipeline import normalize
from sepspec.train.predict import by_view, probabilities, scores, shifted

DIAGONALS = ((1, 1), (-1, -1), (1, -1), (-1, 1))
NEIGHBOURS = DIAGONALS + ((0, 1), (0, -1), (1, 0), (-1, 0))


def more_views(model, x, y) -> dict[str, float]:
    """Accuracy over ten and eighteen views (probabilities averaged with equal weights; each view predicted once)."""
    p = {}
    for side, v in (("image", x), ("mirror", x[:, :, ::-1, :])):
        p[side, 0, 0] = probabilities(model, v)
        p.update({(side, dy, dx): probabilities(model, shifted(v, dy, dx)) for dy, dx in NEIGHBOURS})
    out = {}
    for name, moves in (("ten", DIAGONALS), ("eighteen", NEIGHBOURS)):
        keys = [(side, dy, dx) for side in ("image", "mirror") for dy, dx in ((0, 0),) + moves]
        out[name] = scores(sum(p[k] for k in keys) / len(keys), y)["accuracy"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data", help="where the runs' data set is now (default: as recorded)")
    ap.add_argument("--more", action="store_true", help="also score ten and eighteen views")
    a = ap.parse_args(argv)
    print(f"{'run':44s} {'epoch':>5s} {'plain':>7s} {'flip':>7s} {'flip_shift':>10s}"
          + (f" {'ten':>7s} {'eighteen':>8s}" if a.more else ""))
    gains = []
    for run in a.runs:
        model_file = rundir.final_model(run)  # a committed run's final.keras, or its last checkpoint
        epoch = rundir.read_json(os.path.join(run, rundir.STATE))["epoch"]
        data = rundir.run_data(run, a.data)
        x = normalize(data.x_test, *rundir.normalization(run))
        model = rundir.load_model(model_file)
        p = by_view(model, x, "flip_shift")
        acc = {k: scores(v, data.y_test)["accuracy"] for k, v in p.items()}
        more = more_views(model, x, data.y_test) if a.more else {}
        rundir.write_json(os.path.join(run, "test_views.json"), {"checkpoint": os.path.basename(model_file),
                                                                  "epoch": epoch, "test_accuracy": acc})
        gains.append((acc["flip"] - acc["none"], acc["flip_shift"] - acc["flip"]))
        print(f"{os.path.basename(run.rstrip('/')):44s} {epoch:5d} {acc['none']:7.2%} {acc['flip']:7.2%} "
              f"{acc['flip_shift']:10.2%}" + (f" {more['ten']:7.2%} {more['eighteen']:8.2%}" if more else ""),
              flush=True)
    g = np.array(gains) * 100
    print(f"mean gain, points: flip over plain {g[:, 0].mean():+.2f} [{g[:, 0].min():+.2f}, {g[:, 0].max():+.2f}], "
          f"flip_shift over flip {g[:, 1].mean():+.2f} [{g[:, 1].min():+.2f}, {g[:, 1].max():+.2f}] ({len(g)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
