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
        import keras as k
        if k.backend.backend() == "tensorflow":
            import tensorflow  # noqa: F401  (its import is the noisy part)
        return k

    return _silently(load)


def tensorflow_if_installed() -> None:
    """Import TensorFlow quietly where it is installed: on the other backends Keras still imports it, noisily,
    to seed its generator (`keras.utils.set_random_seed`)."""
    if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is not None:
        _silently(lambda: __import__("tensorflow"))
