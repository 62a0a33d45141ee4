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


def keras():
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

    return _silently(load)


_BACKEND_MODULES = {"tensorflow": ("tensorflow", "pip install 'sepspec[tf]'"),
                    "jax": ("jax", "pip install 'sepspec[jax]'"), "torch": ("torch", "install PyTorch: pytorch.org")}


def _backend_error(e: Exception) -> None:
    """A KERAS_BACKEND that Keras does not know or that is not installed is the user's setting: one line."""
    from .diagnostics import UserError

    chosen = os.environ.get("KERAS_BACKEND")
    if not chosen:
        return
    if isinstance(e, ValueError) and "Unable to import backend" in str(e):
        raise UserError(f"KERAS_BACKEND={chosen}: Keras has no such backend ({', '.join(_BACKEND_MODULES)})") from None
    module, hint = _BACKEND_MODULES.get(chosen, (None, None))
    if module and (getattr(e, "name", None) or "").split(".")[0] in (module, module + "lib"):
        raise UserError(f"KERAS_BACKEND={chosen}: {module} is not installed ({hint})") from None


def tensorflow_if_installed() -> None:
    """Import TensorFlow quietly where it is installed: on the other backends Keras still imports it, noisily,
    to seed its generator (`keras.utils.set_random_seed`)."""
    if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is not None:
        _silently(lambda: __import__("tensorflow"))
