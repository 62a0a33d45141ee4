"""How fast `tools/validate` checks specs: 200 generated valid specs, wall time with start-up included.

Three sets: plain chains in the seed's style, branchy specs (residual stages with projected shortcuts,
mbconv blocks with squeeze-and-excitation, a nested residual), and parallel specs (mixer blocks with channel
groups and gates, ShuffleNet units). Prints the median of several runs, and beside
it (same run, same machine) the median for one spec, so the start-up cost and the per-spec cost can be told
apart; and checks that TensorFlow was never imported. Target: all 200 in under 2 s on 2 cores, each set.
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


def branchy_text(rng: random.Random, i: int) -> str:
    w = [rng.choice([16, 24, 32]) * k for k in (1, 2, 3)]
    return f"""name: branchy{i}
input: [32, 32, 3]
classes: 10
rules: {{separable_only: true, max_params: 500000, min_receptive_field: 32}}
defaults:
  sepconv: {{bias: false, norm: batch, activation: relu}}
  residual: {{activation: relu}}
  mbconv: {{expand: {rng.randint(2, 4)}, se: 0.25}}
layers:
  - sepconv: {w[0]}
  - residual: {{body: [sepconv: {w[0]}, sepconv: {{filters: {w[0]}, activation: none}}], repeat: {rng.randint(1, 2)}}}
  - residual: {{body: [sepconv: {{filters: {w[1]}, stride: 2}}, sepconv: {{filters: {w[1]}, activation: none}}]}}
  - mbconv: {{filters: {w[1]}, kernel: {rng.choice([3, 5])}, repeat: {rng.randint(1, 2)}}}
  - mbconv: {{filters: {w[2]}, stride: 2}}
  - residual:
      body:
        - mbconv: {w[2]}
        - residual: {{body: [sepconv: {w[2]}], shortcut: identity}}
      shortcut: [avgpool: {{size: 1}}, pointwise: {w[2]}]
  - se: 0.25
  - sepconv: {{filters: 10, norm: none, activation: none}}
  - gap: {{}}
  - activation: softmax
"""


def parallel_text(rng: random.Random, i: int) -> str:
    """Mixer blocks (four channel groups with mixed and dilated depthwise kernels, layer norm, a gated pair of
    1x1s, a residual around it) and ShuffleNet units (channel split, concatenation, shuffle, grouped 1x1s)."""
    w = [rng.choice([16, 24, 32]) * k for k in (1, 2, 3)]
    mixer = ("{{body: [parallel: {{split: channels, branches: [[], [depthwise: 3], [depthwise: {k}], "
             "[avgpool: {{size: 3, stride: 1, padding: same}}, depthwise: {{kernel: 7, dilation: {d}}}]]}}, "
             "layernorm: {{}}, parallel: {{branches: [[pointwise: {e}], [pointwise: {{filters: {e}, activation: sigmoid}}]], "
             "merge: multiply}}, pointwise: {c}]}}")
    unit = "{{split: channels, branches: [[], [pointwise: {h}, depthwise: 3, pointwise: {h}]]}}"
    return f"""name: parallel{i}
input: [32, 32, 3]
classes: 10
rules: {{separable_only: true, max_params: 500000, min_receptive_field: 32}}
defaults:
  sepconv: {{bias: false, norm: batch, activation: relu}}
  pointwise: {{bias: false}}
layers:
  - sepconv: {w[0]}
  - residual: {mixer.format(k=rng.choice([5, 7]), d=rng.choice([2, 3]), e=2 * w[0], c=w[0])}
  - sepconv: {{filters: {w[1]}, stride: 2}}
  - parallel: {unit.format(h=w[1] // 2)}
  - shuffle: 2
  - parallel: {{repeat: {rng.randint(1, 2)}, split: channels, branches: [[], [pointwise: {{filters: {w[1] // 2}, groups: 2}}, depthwise: 3]]}}
  - shuffle: 4
  - parallel: {{branches: [[depthwise: {{kernel: 3, stride: 2}}, pointwise: {w[2] // 2}], [pointwise: {w[1]}, depthwise: {{kernel: 3, stride: 2}}, pointwise: {w[2] // 2}]]}}
  - residual: {mixer.format(k=rng.choice([5, 7]), d=rng.choice([1, 2]), e=w[2], c=w[2])}
  - sepconv: {{filters: 10, norm: layer, activation: none}}
  - gap: {{}}
  - activation: softmax
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
    for label, make in (("plain", spec_text), ("branchy", branchy_text), ("parallel", parallel_text)):
        rng = random.Random(0)
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for i in range(a.specs):
                p = os.path.join(d, f"gen{i}.yaml")
                with open(p, "w") as f:
                    f.write(make(rng, i))
                paths.append(p)
            timed(paths[:1])  # warm the file cache
            one = statistics.median(timed(paths[:1]) for _ in range(a.runs))
            many = statistics.median(timed(paths) for _ in range(a.runs))
            tf = no_tensorflow(paths)
        print(f"{label}: tools/validate, {a.specs} specs: median {many:.3f} s wall ({a.specs / many:.0f} specs/s, "
              f"start-up included)")
        print(f"{label}: tools/validate, 1 spec (start-up baseline): median {one:.3f} s wall")
        print(f"{label}: per spec after start-up: {(many - one) / (a.specs - 1) * 1000:.2f} ms; ratio {a.specs} specs"
              f" / 1 spec = {many / one:.2f}; TensorFlow imported: {tf}")
        print(f"{label}: target (200 specs < 2 s): {'met' if many < 2.0 else 'MISSED'}")


def no_tensorflow(paths) -> bool:
    """Run the checker in-process on the same files: did anything import TensorFlow or Keras?"""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from sepspec.cli.validate import main; "
            "status = main(['--format', 'json', *sys.argv[2:]]); "
            "print(status, any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code, ROOT, *paths], capture_output=True, text=True)
    status, imported = r.stdout.split()[-2:]
    if status != "0":
        sys.exit(f"validate failed: {r.stdout[-2000:]}")
    return imported == "True"


if __name__ == "__main__":
    main()
