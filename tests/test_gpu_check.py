"""The GPU device check's dry run (`bash benchmarks/gpu_check.sh --cpu`): the prepared command that a lent GPU
runs must work before one is lent, so a change to `sepspec bench`, `sepspec train` or their records that breaks it
fails here, not on the device."""
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="the check runs on JAX (dev extra)")]


def test_the_device_checks_dry_run_measures_every_kind_of_run(data, tmp_path):
    out = tmp_path / "out"
    r = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), "--cpu", "--data", data],
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OUT": str(out), "PYTHON": sys.executable})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = (out / "gpu_check.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| bench") or line.startswith("| train")]
    assert len(rows) == 2 and not any("failed" in line for line in rows), table
    bench = rows[0].split("|")
    assert int(bench[5].replace(",", "")) > 0 and int(bench[6].replace(",", "")) > 0  # trainer and plain images/s
    assert "residual.yaml" in rows[1] and "mixed_bfloat16" in rows[1] and "%" in rows[1]  # trained in bfloat16
