"""Import Keras/TensorFlow without the C++ start-up chatter (oneDNN notices, absl warnings) on stderr.

TensorFlow 2.21 prints those lines from C++ before `TF_CPP_MIN_LOG_LEVEL` is read, so the only reliable
way to keep a CLI's stderr clean is to point file descriptor 2 elsewhere during the import. What was
printed is replayed if the import fails, so no real error is hidden.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile


def _silently(importer):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buf:
        os.dup2(buf.fileno(), 2)
        try:
            return importer()
        except BaseException:
            os.dup2(saved, 2)
            buf.seek(0)
            sys.stderr.write(buf.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


OWN_PROCESS = False  # set by the command line's entry points: the process is sepspec's alone


def import_keras():
    if "keras" in sys.modules:
        return sys.modules["keras"]

    def load():
        try:
            import keras as k
        except (ValueError, ModuleNotFoundError) as e:
            _backend_error(e)
            raise
        if k.backend.backend() == "tensorflow":
            import tensorflow  # noqa: F401  (its import is the noisy part)
        return k

    return _silently(lambda: _without_jax(load))


def _without_jax(importer):
    """Run `importer` with JAX kept out, in a sepspec process on TensorFlow: TensorFlow's LiteRT helpers import
    JAX where it is installed, for a JAX-to-LiteRT path sepspec never takes: 0.4 s of each such process's start
    (`python benchmarks/tf_start.py`: 3.12 s against 3.53 s, medians of six rounds, 2 CPU cores). Afterwards
    `import jax` works as ever. A library caller's process (`import sepspec`) is left as it is."""
    block = (OWN_PROCESS and "jax" not in sys.modules and "tensorflow" not in sys.modules
             and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow")
    if not block:
        return importer()
    sys.modules["jax"] = None  # an ImportError for `import jax`, which TensorFlow catches
    try:
        return importer()
    finally:
        if sys.modules.get("jax", 0) is None:
            del sys.modules["jax"]


# which extra of pyproject.toml brings each optional module (the checker needs none of them)
EXTRAS = {"tensorflow": "tf", "keras": "tf", "numpy": "tf", "matplotlib": "tf", "h5py": "tf", "optuna": "sweep",
          "ai_edge_litert": "export", "onnxruntime": "export", "tf2onnx": "export", "onnx": "export",
          "tflite_micro": "export", "psycopg": "sweep", "sqlalchemy": "sweep", "jax": "jax"}


def install_hint(module: str) -> str | None:
    """How to install an optional module (`pip install 'sepspec[tf]'`), or None for one no extra brings."""
    top = (module or "").split(".")[0]
    if top == "torch":
        return "install PyTorch: pytorch.org"
    extra = EXTRAS.get(top)
    return f"pip install 'sepspec[{extra}]'" if extra else None


_BACKENDS = ("tensorflow", "jax", "torch")


def _backend_error(e: Exception) -> None:
    """A KERAS_BACKEND that Keras does not know or that is not installed is the user's setting: one line."""
    from .diagnostics import UserError

    chosen = os.environ.get("KERAS_BACKEND")
    if not chosen:
        return
    if isinstance(e, ValueError) and "Unable to import backend" in str(e):
        raise UserError(f"KERAS_BACKEND={chosen}: Keras has no such backend ({', '.join(_BACKENDS)})") from None
    if chosen in _BACKENDS and (getattr(e, "name", None) or "").split(".")[0] in (chosen, chosen + "lib"):
        raise UserError(f"KERAS_BACKEND={chosen}: {chosen} is not installed ({install_hint(chosen)})") from None


def import_tensorflow_if_installed() -> None:
    """Import TensorFlow quietly where it is installed: on the other backends Keras still imports it, noisily,
    to seed its generator (`keras.utils.set_random_seed`)."""
    if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is not None:
        _silently(lambda: __import__("tensorflow"))
