"""The start of a sepspec process on TensorFlow: `import keras` (which imports TensorFlow) in a fresh process as
the command line does it (JAX kept out of TensorFlow's import, `lazy._without_jax`) and as a library caller's
process does it (TensorFlow imports JAX where it is installed); interleaved rounds, the medians and their ratio.

    python benchmarks/tf_start.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMED = ("import sys, time; t = time.perf_counter(); {how}; "
         "print(time.perf_counter() - t, 'jax' in sys.modules)")
HOW = {"sepspec": "import sepspec.lazy as l; l.OWN_PROCESS = True; l.import_keras()",
       "plain": "import sepspec.lazy as l; l.import_keras()"}  # as a library caller's process: JAX imported


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    got = {k: [] for k in HOW}
    for r in range(a.rounds):
        for k in (HOW if r % 2 == 0 else reversed(list(HOW))):
            out = subprocess.run([sys.executable, "-c", TIMED.format(how=HOW[k])], capture_output=True, text=True,
                                 cwd=ROOT, env=env, check=True).stdout.split()
            got[k].append(float(out[0]))
            print(f"round {r + 1} {k:<8} {float(out[0]):.2f} s (JAX imported: {out[1]})", flush=True)
    med = {k: statistics.median(v) for k, v in got.items()}
    print(f"medians: the command line's {med['sepspec']:.2f} s, with JAX {med['plain']:.2f} s, ratio "
          f"{med['sepspec'] / med['plain']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
