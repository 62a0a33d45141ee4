import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, "specs", "base.yaml")

# Keras builds are ~10-50 ms each: the default profile keeps the suite short for CI; `thorough` searches longer:
#   pytest tests/test_properties.py --hypothesis-profile=thorough
settings.register_profile("default", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Every JAX run of the session (the workers' subprocesses too) shares one compilation cache in the clone, not the
# user's ~/.cache: most JAX tests train the same few networks, and half a small run's start-up is compiling them.
os.environ.setdefault("SEPSPEC_JAX_CACHE", os.path.join(ROOT, ".pytest_cache", "jax"))


def pytest_collection_modifyitems(config, items):
    """The long tests first (those marked slow: trainings, conversions, subprocesses), so that the workers of
    `-n auto` end on short ones instead of one of them finishing a long test alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def write(tmp_path):
    """write('x.yaml', text) -> path of a file holding the dedented text."""
    def _write(name, text):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
        return str(p)
    return _write


OFFLINE = {"SEPSPEC_OFFLINE": "1", "KERAS_HOME": "/nonexistent"}  # no download, no Keras cache: only --data


def trained_run(tmp_path_factory, text: str, data: str, *args) -> str:
    """Train a spec given as text on `data` with the real CLI; returns the run directory."""
    d = tmp_path_factory.mktemp("run")
    spec = d / "spec.yaml"
    spec.write_text(textwrap.dedent(text).lstrip())
    out = str(d / "run")
    r = run_cli("train", str(spec), "--data", data, "--out", out, *args, env=OFFLINE)
    assert r.returncode == 0, r.stderr
    return out


def run_cli(*args, cwd=None, env=None, timeout=300):
    """Run the real `sepspec` command in a subprocess."""
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "sepspec", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=e, timeout=timeout)


MINIMAL = """
name: tiny
input: [16, 16, 3]
classes: 4
layers:
  - sepconv: {filters: 8, norm: batch, activation: relu}
  - maxpool: 2
  - sepconv: 4
  - gap: {}
  - activation: softmax
"""


# the network the command-line training tests train: small, separable, batch norm, augmented
SMALL = """
# yaml-language-server: $schema=sepspec.schema.json
name: small
input: [32, 32, 3]
classes: 10
defaults:
  sepconv: {bias: false, norm: batch, activation: relu}
layers:
  - sepconv: 8
  - maxpool: 2
  - sepconv: 12
  - maxpool: 2
  - sepconv: {filters: 10, norm: none, activation: none}
  - gap: {}
  - activation: softmax
train:
  epochs: 3
  batch_size: 32
  augment: {flip: true, crop: 2, cutout: 4}
"""


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="session")
def images():
    """240 training and 60 test images (32x32x3 uint8) with CIFAR-10's ten class names, made here: smooth colour
    fields with a little noise, so that PNG, JPEG, GIF and BMP encode them as they encode photographs. The data
    readers' tests write them in every format; only the tests of the real CIFAR-10 need ../shared."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 300
    coarse = rng.uniform(0, 255, (n, 4, 4, 3))
    smooth = np.kron(coarse, np.ones((1, 8, 8, 1)))  # 4x4 blocks of colour, 8 pixels each
    x = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    y = np.arange(n) % 10  # every class in both splits
    rng.shuffle(y)
    return x[:240], y[:240], x[240:], y[240:], list(CIFAR10_NAMES)


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> str:
    """The small CIFAR-10 archive every training test reads (`cifar_like`, seed 1): written once per worker."""
    return cifar_like(tmp_path_factory, 1)


def cifar_like(tmp_path_factory, seed: int) -> str:
    """320 training and 64 test images of random pixels and labels, written in the real CIFAR-10 format (an
    archive), so that the loader's real code path runs. Returns the archive's path."""
    import numpy as np

    from sepspec.data.read import write_batches

    rng = np.random.default_rng(seed)
    d = tmp_path_factory.mktemp("cifar")
    return write_batches(str(d), rng.integers(0, 256, (320, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 320),
                         rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 64),
                         archive=str(d / "cifar-10-python.tar.gz"))
