"""Build `.gpu/`, what benchmarks/gpu_check.sh needs on a machine without TensorFlow or a package registry
(the borrowed GPU machines: Python 3.12 with JAX, NumPy, PyYAML; docs/gpu.md):

- `.gpu/wheels/`: the wheels it lacks, for CPython 3.12 on x86-64 Linux, at the versions installed here:
  Keras with `namex` and `optree`; pydantic with `pydantic-core`, `annotated-types`, `typing-inspection`
  and `typing-extensions`;
- `.gpu/cifar10-subset.tar.gz`: the first N training and M test images of the real CIFAR-10, in its standard
  layout (so the trainer reads it with its own loader), written by sepspec's `write_batches`.

Run: `python benchmarks/gpu_bundle.py [--data PATH] [--train 10000] [--test 2000]`. Needs pip's network access
(the package registries). `.gpu/` is git-ignored; name it in the device tool's `carry`.
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WHEELS = ["keras", "namex", "optree", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
          "typing-extensions"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]


def wheels(dest: str) -> None:
    os.makedirs(dest, exist_ok=True)
    for old in glob.glob(os.path.join(dest, "*.whl")):
        os.remove(old)
    pins = [f"{name}=={md.version(name)}" for name in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d", dest, *pins]
    subprocess.run(cmd, check=True)
    print("wheels:", ", ".join(sorted(os.path.basename(w) for w in glob.glob(os.path.join(dest, "*.whl")))))


def subset(dest: str, data: str | None, n_train: int, n_test: int) -> None:
    from sepspec.data.read import load_data, write_batches

    d = load_data(data, download=False)
    with tempfile.TemporaryDirectory() as tmp:
        write_batches(tmp, d.x_train[:n_train], d.y_train[:n_train], d.x_test[:n_test], d.y_test[:n_test],
                      archive=os.path.join(tmp, "subset.tar.gz"))
        shutil.move(os.path.join(tmp, "subset.tar.gz"), dest)
    print(f"{dest}: {n_train:,} training and {n_test:,} test images of {d.source}, "
          f"{os.path.getsize(dest) / 2**20:.1f} MiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="CIFAR-10 (as `sepspec train --data`; default: ../shared/data, $SEPSPEC_DATA)")
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--test", type=int, default=2_000)
    ap.add_argument("--out", default=os.path.join(ROOT, ".gpu"))
    a = ap.parse_args()
    shared = os.path.join(os.path.dirname(ROOT), "shared", "data", "cifar-10-python.tar.gz")
    data = a.data or os.environ.get("SEPSPEC_DATA") or (shared if os.path.exists(shared) else None)
    wheels(os.path.join(a.out, "wheels"))
    subset(os.path.join(a.out, "cifar10-subset.tar.gz"), data, a.train, a.test)
    total = sum(os.path.getsize(f) for f in glob.glob(os.path.join(a.out, "**"), recursive=True) if os.path.isfile(f))
    print(f"{a.out}: {total / 2**20:.1f} MiB in all (the device tool carries at most 64 MiB with the working tree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
