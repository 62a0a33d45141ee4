"""How fast `tools/validate` checks specs: 200 generated valid specs, wall time with start-up included.

Prints the median of several runs, and beside it (same run, same machine) the median for one spec, so the
start-up cost and the per-spec cost can be told apart. Target: all 200 in under 2 s on 2 cores.
    python benchmarks/validate_speed.py [--specs 200] [--runs 5]
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spec_text(rng: random.Random, i: int) -> str:
    widths = [rng.choice([16, 24, 32, 48]) * k for k in (1, 1, 2, 2, 3, 3)]
    return f"""name: gen{i}
input: [32, 32, 3]
classes: 10
rules: {{separable_only: true, max_params: 500000, min_receptive_field: 32}}
defaults:
  sepconv: {{kernel: 3, bias: false, dropout: 0.05, norm: batch, activation: relu}}
layers:
  - sepconv: {widths[0]}
  - sepconv: {{filters: {widths[1]}, repeat: {rng.randint(1, 2)}}}
  - maxpool: 2
  - sepconv: {widths[2]}
  - sepconv: {widths[3]}
  - maxpool: 2
  - sepconv: {{filters: {widths[4]}, padding: valid}}
  - sepconv: {{filters: 10, padding: valid, dropout: 0, norm: none, activation: none}}
  - gap: {{}}
  - activation: softmax
train: {{epochs: {rng.randint(1, 50)}, optimizer: {{name: adam, learning_rate: 1e-3}}}}
"""


def timed(args) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "validate"), *args], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"validate failed: {r.stderr[-2000:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--specs", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i in range(a.specs):
            p = os.path.join(d, f"gen{i}.yaml")
            with open(p, "w") as f:
                f.write(spec_text(rng, i))
            paths.append(p)
        timed(paths[:1])  # warm the file cache
        one = statistics.median(timed(paths[:1]) for _ in range(a.runs))
        many = statistics.median(timed(paths) for _ in range(a.runs))
    print(f"tools/validate, {a.specs} specs: median {many:.3f} s wall ({a.specs / many:.0f} specs/s, start-up included)")
    print(f"tools/validate, 1 spec (start-up baseline): median {one:.3f} s wall")
    print(f"per spec after start-up: {(many - one) / (a.specs - 1) * 1000:.2f} ms; ratio {a.specs} specs / 1 spec = {many / one:.2f}")
    print(f"target (200 specs < 2 s): {'met' if many < 2.0 else 'MISSED'}")


if __name__ == "__main__":
    main()
