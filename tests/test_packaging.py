"""A normal install (`pip install .`, or the wheel it builds) carries every module, not only the top level."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # builds a wheel: not in the inner loop


def test_wheel_contains_every_module_and_the_trainer_imports_from_it(tmp_path):
    # a clean copy: setuptools reuses build/ in the tree, which would hide a package missing from the list
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "runs",
                                                             "results", "__pycache__"))
    out = tmp_path / "wheel"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(tree), "-w", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    [wheel] = [f for f in os.listdir(out) if f.endswith(".whl")]
    names = set(zipfile.ZipFile(out / wheel).namelist())
    src = os.path.join(ROOT, "sepspec")
    modules = {os.path.relpath(os.path.join(d, f), ROOT).replace(os.sep, "/")
               for d, _, files in os.walk(src) for f in files if f.endswith(".py")}
    assert "sepspec/train/trainer.py" in modules
    assert modules <= names, sorted(modules - names)
    unpacked = tmp_path / "site"
    zipfile.ZipFile(out / wheel).extractall(unpacked)
    code = "import sepspec.train.trainer as t, sepspec.data.read, sepspec.cli; print(t.__file__)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path),
                       env={**os.environ, "PYTHONPATH": str(unpacked)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(unpacked)), r.stdout  # from the wheel, not the source tree
