"""The device check's runs and table (started by benchmarks/gpu_check.sh, which sets up the environment).

Two parts, each one call of the device tool (at most 10 minutes, 64 MiB carried):

- `measure`: `sepspec bench` (the trainer's step against a plain `fit`) of `frontier.yaml`, `base.yaml` and
  `residual.yaml` on JAX and PyTorch at float32, bfloat16 and float16; the start-up of a run with and without
  JAX's persistent compilation cache; one seed against three at once (`sepspec train --seeds`, a process each,
  and `--stacked`, one compiled step for all); and a bfloat16
  run of `residual.yaml` under `JAX_DEBUG_NANS` and `JAX_DEBUG_INFS`, which name the operation that first makes a
  NaN or an infinity; PyTorch's step with `torch.compile` (`--jit-compile`). On a subset.
- `accuracy`: `frontier.yaml`'s 50-epoch recipe (the 91.23% one) and its 10-epoch recipe on the whole of
  CIFAR-10, three seeds at once each (the 10-epoch recipe also stacked), with their wall times: time to accuracy.

Each figure comes from sepspec's own commands in subprocesses (`python -m sepspec bench|train`), so what is
measured is what users run; a bench is read from its `--format json` record and a training from its run folder's
records, never from text meant for people. A run that fails or overruns is reported as such and the rest goes
on; the table is rewritten after every run, so that an interrupted check still leaves what it measured; the run
folders are packed into `runs.tar.gz` (the device tool brings back at most 8 files). `--cpu` is the dry run of
both parts (tiny limits and, where the spec does not matter, `benchmarks/dry-run.yaml`: 42 s and 24 s on 2
cores; a test runs it, so the check cannot rot).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

DATA = ".gpu/cifar10-subset.tar.gz"
CACHE = os.path.join(tempfile.gettempdir(), "sepspec-jax-cache")  # JAX's compilation cache, shared by the runs
F32, BF16, F16 = "float32", "mixed_bfloat16", "mixed_float16"
# the nan-check: JAX re-runs a step whose result holds a NaN or an infinity op by op and names the first operation
# that made one (the H200's residual.yaml stop made no NaN: most likely an infinity)
DEBUG = {"JAX_DEBUG_NANS": "True", "JAX_DEBUG_INFS": "True"}
FRONTIER, BASE, RESIDUAL = "specs/frontier.yaml", "specs/base.yaml", "specs/residual.yaml"
TINY = "benchmarks/dry-run.yaml"  # the dry run's bench and seeds: its plumbing, at the least compile time
# the 50-epoch recipe behind the README's 91.23% (results/frontier50-crop4-cutout8-adamw02-seed*)
RECIPE50 = ["--epochs", "50", "--set", "train.augment.crop=4", "--set", "train.augment.cutout=8", "--set",
            "train.optimizer={name: adamw, learning_rate: 0.01, weight_decay: 0.02, no_decay: [depthwise, norm, bias]}"]


def _bench(backend, spec, precision, batch=256, steps=60, repeats=3, spe=1, *, data, jit=False, stacked=0):
    what = ("bench" + (" --jit-compile" if jit else "") + (f" --stacked {stacked}" if stacked else "")
            + (f" --steps-per-execution {spe}" if spe != 1 else ""))
    return {"kind": "bench", "backend": backend, "spec": spec, "precision": precision, "batch": batch,
            **({"what": what} if what != "bench" else {}), "args": [
        "bench", spec, "--data", data, "--precision", precision, "--batch-size", str(batch), "--steps", str(steps),
        "--steps-per-execution", str(spe), "--repeats", str(repeats), "--format", "json",
        *(["--jit-compile"] if jit else []), *(["--stacked", str(stacked)] if stacked else [])]}


def _train(backend, spec, precision, extra, data, seeds=None, env=None, what="train", stacked=False):
    args = ["train", spec, "--data", data, "--precision", precision, *extra]
    if seeds:
        args += ["--seeds", ",".join(map(str, seeds)), *(["--stacked"] if stacked else [])]
    return {"kind": "train", "what": what, "backend": backend, "spec": spec, "precision": precision,
            "seeds": seeds, "args": args, "env": env or {}}


def plan(part: str, cpu: bool, data: str) -> list[dict]:
    """The runs of a part, most wanted first (a deadline may cut the tail)."""
    if cpu:  # every kind of run, tiny limits
        tiny = ["--train-limit", "64", "--val-limit", "64", "--batch-size", "32", "--epochs", "1"]
        if part == "measure":
            return [_bench("jax", TINY, F32, 32, 2, 1, data=data, jit=True, stacked=2),  # the flags' plumbing
                    _train("jax", RESIDUAL, BF16, tiny, data, env=DEBUG, what="nan-check"),
                    # stacked: the one kind of several seeds whose plumbing differs (`--seeds` alone: the CLI tests)
                    _train("jax", TINY, F32, tiny, data, seeds=[0, 1], what="seeds stacked", stacked=True)]
        # frontier.yaml holds out 1,000 validation images: more than a tiny set has
        return [_train("jax", FRONTIER, F32, [*RECIPE50[2:], *tiny, "--set", "train.validation=0.2"], data,
                       seeds=[0], what="recipe50")]
    if part == "measure":
        sub = ["--train-limit", "20000", "--val-limit", "1000", "--epochs", "3"]
        # the trainer's step against a plain fit, and three seeds stacked in one step against one (which pays);
        # a deadline stops starting runs (--deadline): the most wanted come first
        return [_bench("jax", FRONTIER, F32, data=data, stacked=3),
                _bench("torch", FRONTIER, F32, steps=30, data=data),
                _bench("jax", FRONTIER, BF16, data=data),
                _train("jax", FRONTIER, F32, sub, data, what="cold cache", env={"SEPSPEC_JAX_CACHE": CACHE}),
                _train("jax", FRONTIER, F32, sub, data, what="warm cache", env={"SEPSPEC_JAX_CACHE": CACHE}),
                # what XLA's convolution autotuning costs of a cold start, and whether its kernels are slower
                _train("jax", FRONTIER, F32, sub, data, what="no cache, no autotuning",
                       env={"SEPSPEC_JAX_CACHE": "off", "XLA_FLAGS": "--xla_gpu_autotune_level=0"}),
                _train("jax", FRONTIER, F32, sub, data, seeds=[0, 1, 2], what="3 seeds at once",
                       env={"SEPSPEC_JAX_CACHE": CACHE}),
                # the same three seeds in one process and one compiled step: which pays (docs/gpu.md)
                _train("jax", FRONTIER, F32, sub, data, seeds=[0, 1, 2], what="3 seeds stacked",
                       env={"SEPSPEC_JAX_CACHE": CACHE}, stacked=True),
                _bench("torch", FRONTIER, BF16, steps=30, data=data),
                _train("jax", RESIDUAL, BF16, ["--train-limit", "5120", "--val-limit", "512", "--epochs", "1"], data,
                       env=DEBUG, what="nan-check"),
                _bench("torch", FRONTIER, F16, steps=30, data=data),
                _bench("torch", FRONTIER, F32, steps=30, data=data, jit=True),  # 0.80x eager on CPU (docs/gpu.md)
                *(_bench("jax", spec, p, data=data) for spec in (BASE, RESIDUAL) for p in (F32, BF16)),
                _bench("torch", BASE, F32, steps=30, data=data),
                # several steps per compiled call: what the host's share of a step is (the trainer runs one per call)
                _bench("jax", FRONTIER, F32, steps=64, spe=8, data=data)]
    cache = {"SEPSPEC_JAX_CACHE": CACHE}
    return [_train("jax", FRONTIER, F32, RECIPE50, data, seeds=[0, 1, 2], what="recipe50", env=cache),
            _train("jax", FRONTIER, F32, [], data, seeds=[0, 1, 2], what="recipe10", env=cache),
            _train("jax", FRONTIER, F32, [], data, seeds=[0, 1, 2], what="recipe10 stacked", env=cache, stacked=True)]


def _records(folder: str) -> dict:
    m = json.load(open(os.path.join(folder, "metrics.json")))
    hist = open(os.path.join(folder, "history.csv")).read().splitlines()
    col = hist[0].split(",")
    seconds = [float(line.split(",")[col.index("seconds")]) for line in hist[1:]]
    test = m.get("test") or {}
    return {"device": m["device"], "images_per_second": m["images_per_second"], "seconds": m["seconds_per_epoch"],
            "first_epoch": seconds[0], "epoch_seconds": sum(seconds), "accuracy": m["final_val_accuracy"],
            "test": test.get("final_accuracy"), "train_images": m["train_images"], "epochs": m["epochs_completed"],
            "params": m["params"], "status": m["status"]}


def run(r: dict, out: str, i: int, timeout: float) -> dict:
    log = os.path.join(out, "logs", f"{i:02d}-{r['kind']}.log")
    folder = os.path.join(out, "runs", f"{i:02d}")
    args = list(r["args"]) + (["--out", folder] if r["kind"] == "train" else [])
    env = {**os.environ, "KERAS_BACKEND": r["backend"], **r.get("env", {})}
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "sepspec", *args], capture_output=True, text=True,
                           timeout=timeout, env=env)
        text, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        p, rc = None, "timeout"
        text = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    r["wall"] = time.perf_counter() - t0
    with open(log, "w") as f:
        f.write(" ".join(args) + "\n" + text)
    r["rc"] = rc
    if r["kind"] == "train" and r.get("what") == "nan-check":  # the first NaN's or infinity's operation, if named
        named = [line.strip() for line in text.splitlines() if "FloatingPointError" in line or "nan" in line.lower()
                 and "invalid value" in line.lower()]
        r["nan"] = named[-1][:200] if named else None
    if rc != 0 and not (r.get("what") == "nan-check" and r.get("nan")):
        r["error"] = (text.strip().splitlines() or ["(no output)"])[-1][:160]
        return r
    if r["kind"] == "bench":
        record = json.loads(p.stdout.strip().splitlines()[-1])  # `sepspec bench --format json`
        r["trainer"], r["plain"] = round(record["medians"]["trainer"]), round(record["medians"]["plain"])
        r["step"] = round(record["medians"]["step"])
        if "stacked" in record["medians"]:  # all the stacked seeds' images per second
            r["stacked"] = round(record["medians"]["stacked"])
        r["device"] = record["device"]
    elif r.get("seeds"):
        r["per_seed"] = {k: _records(os.path.join(folder, f"seed{k}")) for k in r["seeds"]}
        r["device"] = next(iter(r["per_seed"].values()))["device"]
    elif rc == 0:
        r.update(_records(folder))
    return r


def _pct(v):
    return "" if v is None else f"{100 * v:.2f}%"


def table(runs: list[dict]) -> str:
    lines = ["| what | backend | spec | precision | batch | images/s: trainer / its step / plain fit | "
             "s/epoch (first) | wall s | val. accuracy | test accuracy |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if "rc" not in r:
            continue
        head = (f"| {r.get('what', r['kind'])} | {r['backend']} | {os.path.basename(r['spec'])} | {r['precision']} "
                f"| {r.get('batch') or 'spec'} |")
        if r.get("nan") is not None or r.get("what") == "nan-check" and r["rc"] == 0:
            lines.append(f"{head} first NaN or infinity: {r.get('nan') or 'none (the run stayed finite)'} | | "
                         f"{r['wall']:.0f} | | |")
        elif r.get("error"):
            lines.append(f"{head} failed ({r['rc']}): {r['error']} | | {r['wall']:.0f} | | |")
        elif r["kind"] == "bench":
            stacked = (f"; {r['what'].split()[-1]} seeds stacked: {r['stacked']:,} ({r['stacked'] / r['trainer']:.2f}x)"
                       if r.get("stacked") else "")
            lines.append(f"{head} {r['trainer']:,} / {r['step']:,} / {r['plain']:,}{stacked} | | {r['wall']:.0f} | | |")
        elif r.get("seeds"):
            s = r["per_seed"]
            total = sum(v["train_images"] * v["epochs"] for v in s.values())
            lines.append(f"{head} {sum(v['images_per_second'] for v in s.values()):,.0f} (sum of {len(s)}; "
                         f"{total / r['wall']:,.0f} over the wall time) | "
                         + ", ".join(f"{v['seconds']:.1f} ({v['first_epoch']:.1f})" for v in s.values())
                         + f" | {r['wall']:.0f} | " + ", ".join(_pct(v["accuracy"]) for v in s.values())
                         + " | " + ", ".join(_pct(v["test"]) for v in s.values()) + " |")
        else:
            lines.append(f"{head} {r['images_per_second']:,.0f} | {r['seconds']:.1f} ({r['first_epoch']:.1f}) | "
                         f"{r['wall']:.0f} | {_pct(r['accuracy'])} | {_pct(r['test'])} |")
    device = next((r["device"] for r in runs if r.get("device")), "?")
    return f"device: {device}\n\n" + "\n".join(lines) + "\n"


def pack_runs(out: str) -> None:
    """The run folders in one archive (the device tool brings back at most 8 files, 2 folders deep)."""
    with tarfile.open(os.path.join(out, "runs.tar.gz"), "w:gz") as tar:
        if os.path.isdir(os.path.join(out, "runs")):
            tar.add(os.path.join(out, "runs"), arcname="runs")
        tar.add(os.path.join(out, "logs"), arcname="logs")
    shutil.rmtree(os.path.join(out, "runs"), ignore_errors=True)
    shutil.rmtree(os.path.join(out, "logs"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--part", choices=("measure", "accuracy"), default="measure")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--data", default=DATA, help=f"the CIFAR-10 archive or folder the runs read (default {DATA})")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per run (default 200 on a GPU, 600 --cpu)")
    ap.add_argument("--deadline", type=float, default=None, help="start no run after this many seconds "
                    "(default 300 on a GPU)")
    a = ap.parse_args()
    os.makedirs(os.path.join(a.out, "logs"), exist_ok=True)
    if not os.path.exists(a.data):
        print(f"gpu_check: {a.data} is missing: run benchmarks/gpu_bundle.py (or gpu_data.py unpack) first")
        return 1
    runs = plan(a.part, a.cpu, a.data)
    t0 = time.perf_counter()
    deadline = a.deadline or (1e9 if a.cpu else 300)
    for i, r in enumerate(runs):
        left = deadline - (time.perf_counter() - t0)
        if left < 20:
            print(f"deadline: {len(runs) - i} run(s) not started", flush=True)
            break
        run(r, a.out, i, min(a.timeout or (600 if a.cpu else 200), left + 90))
        status = "ok" if not r.get("error") else f"FAILED: {r.get('error')}"
        print(f"[{time.perf_counter() - t0:5.0f}s] {r['backend']} {' '.join(r['args'][:2])} {r['precision']} "
              f"{r.get('what', '')}: {status} ({r['wall']:.0f} s)", flush=True)
        with open(os.path.join(a.out, "gpu_check.md"), "w") as f:
            f.write(table(runs))
        with open(os.path.join(a.out, "gpu_check.json"), "w") as f:
            json.dump([{k: v for k, v in r.items()} for r in runs if "rc" in r], f, indent=1, default=str)
    pack_runs(a.out)
    print(table(runs))
    print(f"total {time.perf_counter() - t0:.0f} s; table in {os.path.join(a.out, 'gpu_check.md')}")
    return 0 if all(not r.get("error") for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
