"""The GPU device check's dry run (`bash benchmarks/gpu_check.sh --cpu`): the prepared command that a lent GPU
runs must work before one is lent, so a change to `sepspec bench`, `sepspec train` or their records that breaks it
fails here, not on the device. And the packing that carries the whole of CIFAR-10 there in parts."""
import importlib.util
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from conftest import ROOT

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="the check runs on JAX (dev extra)")


def _check(part, data, out):
    r = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), "--cpu", "--part", part, "--data",
                        data], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OUT": str(out), "PYTHON": sys.executable})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = (out / "gpu_check.md").read_text()
    return [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| what")], table


@pytest.mark.slow
@needs_jax
def test_the_device_checks_dry_run_measures_every_kind_of_run(data, tmp_path):
    rows, table = _check("measure", data, tmp_path / "m")
    assert len(rows) == 3 and not any("failed" in line for line in rows), table
    assert rows[0].startswith("| bench --jit-compile --stacked 2 | jax |")  # `sepspec bench` takes the flags
    figures, stacked = rows[0].split("|")[6].split("; 2 seeds stacked: ")
    assert all(int(v.replace(",", "")) > 0 for v in figures.split("/"))  # trainer, its step, plain fit: images/s
    assert int(stacked.split()[0].replace(",", "")) > 0 and stacked.strip().endswith("x)")
    assert "nan-check" in rows[1] and "residual.yaml" in rows[1] and "mixed_bfloat16" in rows[1]
    assert "first NaN" in rows[1]  # under JAX_DEBUG_NANS: the operation named, or none
    assert "seeds" in rows[2] and "(sum of 2;" in rows[2] and rows[2].count("%") == 4  # two seeds' val and test
    with tarfile.open(tmp_path / "m" / "runs.tar.gz") as tar:  # the run folders come back as one file
        names = tar.getnames()
    assert any(n.endswith("seed1/metrics.json") for n in names) and any(n.startswith("logs/") for n in names)


@pytest.mark.slow
@needs_jax
def test_the_device_checks_accuracy_part_dry_run(data, tmp_path):
    rows, table = _check("accuracy", data, tmp_path / "a")
    assert len(rows) == 1 and "recipe50" in rows[0] and "frontier.yaml" in rows[0] and "failed" not in rows[0], table


def test_cifar10_travels_in_parts_losslessly(tmp_path):
    """`gpu_data.py pack` splits CIFAR-10 into parts of lossless WebP mosaics; `unpack` gives back the very images
    (the fingerprint a run records), refuses a set with a part missing or an image changed, and `--partial`
    writes what one part holds."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import gpu_data

    from sepspec.data.cifar import write_batches
    from sepspec.data.read import fingerprint, load_data

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2000, 32, 32, 3), dtype=np.uint8)
    x[:, 8:24] //= 3  # some structure, as photographs have
    y = rng.integers(0, 10, 2000)
    src = write_batches(str(tmp_path / "src"), x[:1700], y[:1700], x[1700:], y[1700:])
    gpu_data.pack(src, str(tmp_path / "packed"), parts=2, workers=1, method=0)
    parts = sorted(str(p) for p in (tmp_path / "packed").iterdir())
    assert [os.path.basename(p) for p in parts] == ["part1", "part2"]
    folder = gpu_data.unpack(parts[::-1], str(tmp_path / "whole"))
    assert fingerprint(load_data(folder, download=False)) == fingerprint(load_data(src, download=False))
    with pytest.raises(SystemExit, match="parts missing"):
        gpu_data.unpack(parts[:1], str(tmp_path / "one"))
    sub = load_data(gpu_data.unpack(parts[:1], str(tmp_path / "sub"), partial=True), download=False)
    assert 0 < len(sub.x_train) < 1700 and len(sub.x_test) > 0
    labels = sorted((tmp_path / "packed" / "part2").glob("*.labels.npy"))[0]
    y2 = np.load(labels)
    y2[0] = (y2[0] + 1) % 10
    np.save(labels, y2)
    with pytest.raises(SystemExit, match="not the packed set"):
        gpu_data.unpack(parts, str(tmp_path / "bad"))


def test_every_run_of_the_device_plans_reads_the_data_given():
    """On the device the data set is wherever it was unpacked: a run that fell back to a default path failed
    there (all three benches of one check did, once)."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import gpu_check

    for part in ("measure", "accuracy"):
        for cpu in (True, False):
            runs = gpu_check.plan(part, cpu, "/where/it/is")
            assert runs and all(r["args"][r["args"].index("--data") + 1] == "/where/it/is" for r in runs), (part, cpu)
