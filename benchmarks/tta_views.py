"""Test-time views ablated on committed runs, with nothing retrained: each run's final-epoch checkpoint scored on
its test split plainly, with flips (`tta: flip`) and with the six flip_shift views, in one pass.

    python benchmarks/tta_views.py [--data CIFAR] results/residual-10ep-heldout-seed0 results/mixgate-10ep-seed0 ...

Prints one row per run and the mean gain of each level over the one below it, and writes the three figures to
each run's `test_views.json` (which `benchmarks/accuracy_plot.py` reads for its plain column).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from sepspec.train import rundir
from sepspec.train.pipeline import normalize
from sepspec.train.predict import by_view, scores


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data", help="where the runs' data set is now (default: as recorded)")
    a = ap.parse_args(argv)
    print(f"{'run':44s} {'epoch':>5s} {'plain':>7s} {'flip':>7s} {'flip_shift':>10s}")
    gains = []
    for run in a.runs:
        state = rundir.read_state(run)
        data = rundir.run_data(run, a.data)
        x = normalize(data.x_test, *rundir.normalization(run))
        p = by_view(rundir.load_model(os.path.join(run, state["checkpoint"])), x, "flip_shift")
        acc = {k: scores(v, data.y_test)["accuracy"] for k, v in p.items()}
        rundir.write_json(os.path.join(run, "test_views.json"), {"checkpoint": state["checkpoint"],
                                                                  "epoch": state["epoch"], "test_accuracy": acc})
        gains.append((acc["flip"] - acc["none"], acc["flip_shift"] - acc["flip"]))
        print(f"{os.path.basename(run.rstrip('/')):44s} {state['epoch']:5d} {acc['none']:7.2%} {acc['flip']:7.2%} "
              f"{acc['flip_shift']:10.2%}", flush=True)
    g = np.array(gains) * 100
    print(f"mean gain, points: flip over plain {g[:, 0].mean():+.2f} [{g[:, 0].min():+.2f}, {g[:, 0].max():+.2f}], "
          f"flip_shift over flip {g[:, 1].mean():+.2f} [{g[:, 1].min():+.2f}, {g[:, 1].max():+.2f}] ({len(g)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
