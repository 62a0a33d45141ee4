"""The device check's runs and table (started by benchmarks/gpu_check.sh, which sets up the environment).

Each figure comes from sepspec's own commands in subprocesses (`python -m sepspec bench|train`), so what is
measured is what users run; the bench is read from its `--format json` record and a training from its run
folder's records, never from text meant for people. A run that fails or overruns is reported as such and the rest
goes on; the table is rewritten after every run, so that an interrupted check still leaves what it measured.
`--cpu` is the dry run (a bench and one training, tiny limits: under a minute on 2 cores; a test runs it, so the
check cannot rot).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

DATA = ".gpu/cifar10-subset.tar.gz"


def _bench(data, spec, precision, batch, steps, spe, repeats=3):
    return {"kind": "bench", "spec": spec, "precision": precision, "batch": batch, "spe": spe, "args": [
        "bench", spec, "--data", data, "--precision", precision, "--batch-size", str(batch), "--steps", str(steps),
        "--steps-per-execution", str(spe), "--repeats", str(repeats), "--format", "json"]}


def _train(data, spec, precision, epochs, limits):
    return {"kind": "train", "spec": spec, "precision": precision, "args": [
        "train", spec, "--data", data, "--precision", precision, "--epochs", str(epochs), *limits]}


def plan(cpu: bool, data: str = DATA) -> list[dict]:
    """The runs, most wanted first (a deadline may cut the tail)."""
    base, residual, f32, bf16 = "specs/base.yaml", "specs/residual.yaml", "float32", "mixed_bfloat16"
    if cpu:  # does every kind of run work (tiny limits: under a minute on 2 cores)
        limits = ["--train-limit", "64", "--val-limit", "64", "--batch-size", "32"]
        return [_bench(data, base, f32, 32, 2, 1, repeats=1), _train(data, residual, bf16, 1, limits)]
    return [_bench(data, base, f32, 256, 60, 1), _bench(data, base, bf16, 256, 60, 1),
            _bench(data, base, bf16, 1024, 48, 8), _train(data, residual, bf16, 3, []), _train(data, base, bf16, 3, []),
            _train(data, residual, f32, 3, []), _bench(data, base, f32, 1024, 48, 8),
            _bench(data, base, "mixed_float16", 1024, 48, 8), _train(data, base, f32, 3, [])]


def run(r: dict, out: str, i: int, timeout: float) -> dict:
    log = os.path.join(out, "logs", f"{i:02d}-{r['kind']}.log")
    if r["kind"] == "train":
        r["args"] += ["--out", os.path.join(out, "runs", f"{i:02d}")]
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "sepspec", *r["args"]], capture_output=True, text=True,
                           timeout=timeout)
        text, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        p, rc = None, "timeout"
        text = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    r["wall"] = time.perf_counter() - t0
    r["batch"] = r.get("batch") or (int(r["args"][r["args"].index("--batch-size") + 1]) if "--batch-size" in r["args"]
                                    else 256)
    with open(log, "w") as f:
        f.write(" ".join(r["args"]) + "\n" + text)
    r["rc"] = rc
    if rc != 0:
        r["error"] = (text.strip().splitlines() or ["(no output)"])[-1][:160]
        return r
    if r["kind"] == "bench":
        record = json.loads(p.stdout.strip().splitlines()[-1])  # `sepspec bench --format json`
        r["trainer"], r["plain"] = round(record["medians"]["trainer"]), round(record["medians"]["plain"])
        r["device"] = record["device"]
    else:
        m = json.load(open(os.path.join(out, "runs", f"{i:02d}", "metrics.json")))
        hist = open(os.path.join(out, "runs", f"{i:02d}", "history.csv")).read().splitlines()
        first = float(hist[1].split(",")[hist[0].split(",").index("seconds")])
        r.update(device=m["device"], images_per_second=m["images_per_second"], seconds=m["seconds_per_epoch"],
                 first_epoch=first, accuracy=m["final_val_accuracy"], train_images=m["train_images"],
                 epochs=m["epochs_completed"], params=m["params"])
    return r


def table(runs: list[dict]) -> str:
    lines = ["| what | spec | precision | batch | images/s (trainer) | images/s (plain fit) | s/epoch (first) "
             "| val. accuracy |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if "rc" not in r:
            continue
        name = os.path.basename(r["spec"])
        if r["rc"] != 0:
            lines.append(f"| {r['kind']} | {name} | {r['precision']} | {r['batch'] or ''} | failed ({r['rc']}): "
                         f"{r.get('error', '')} | | | |")
        elif r["kind"] == "bench":
            lines.append(f"| bench, {r['spe']} step(s)/call | {name} | {r['precision']} | {r['batch']} | "
                         f"{r['trainer']:,} | {r['plain']:,} | | |")
        else:
            lines.append(f"| train {r['epochs']} epochs, {r['train_images']:,} images | {name} | {r['precision']} | {r['batch']} | "
                         f"{r['images_per_second']:,.0f} | | {r['seconds']:.1f} ({r['first_epoch']:.1f}) | "
                         f"{100 * r['accuracy']:.2f}% |")
    device = next((r["device"] for r in runs if r.get("device")), "?")
    return f"device: {device}\n\n" + "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--data", default=DATA, help=f"the CIFAR-10 archive the runs read (default {DATA})")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per run (default 150 on a GPU, 600 --cpu)")
    ap.add_argument("--deadline", type=float, default=None, help="start no run after this many seconds "
                    "(default 330 on a GPU: the check must end inside 8 minutes)")
    a = ap.parse_args()
    os.makedirs(os.path.join(a.out, "logs"), exist_ok=True)
    if not os.path.exists(a.data):
        print(f"gpu_check: {a.data} is missing: run benchmarks/gpu_bundle.py first")
        return 1
    runs = plan(a.cpu, a.data)
    t0 = time.perf_counter()
    deadline = a.deadline or (1e9 if a.cpu else 330)
    for i, r in enumerate(runs):
        left = deadline - (time.perf_counter() - t0)
        if left < 20:
            print(f"deadline: {len(runs) - i} run(s) not started", flush=True)
            break
        run(r, a.out, i, min(a.timeout or (600 if a.cpu else 150), left + 60))
        status = "ok" if r["rc"] == 0 else f"FAILED: {r.get('error')}"
        print(f"[{time.perf_counter() - t0:5.0f}s] {' '.join(r['args'][:2])} {r['precision']} "
              f"batch {r['batch'] or 'spec'}: {status}", flush=True)
        with open(os.path.join(a.out, "gpu_check.md"), "w") as f:
            f.write(table(runs))
    print(table(runs))
    print(f"total {time.perf_counter() - t0:.0f} s; table in {os.path.join(a.out, 'gpu_check.md')}")
    return 0 if all(r.get("rc", 0) == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
