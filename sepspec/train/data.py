"""CIFAR-10 in its standard "python version" layout, read safely from wherever a user has it.

Where: `--data PATH`, `$SEPSPEC_DATA`, Keras's cache (`~/.keras/datasets`, in the Keras 2 layout
`cifar-10-batches-py/` and the Keras 3 layout `cifar-10-batches-py-target` + `..._extracted/`), and finally
Keras's own download. Each place may be the `.tar.gz` archive, the `cifar-10-batches-py/` folder, or a folder
holding either.

The batches are pickles, and a pickle can run code: they are read with an unpickler that allows only what
the format needs (numpy array reconstruction), so a malicious `--data` file runs nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass

import numpy as np

from ..diagnostics import UserError

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class DataError(UserError):
    """A clear, one-line problem with the data (the CLI prints it; exit status 2)."""


@dataclass
class Cifar:
    x_train: np.ndarray  # uint8 (n, 32, 32, 3)
    y_train: np.ndarray  # int32 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    class_names: list


class _SafeUnpickler(pickle.Unpickler):
    """Only numpy array reconstruction is allowed: anything else (os.system, eval, ...) is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: not part of the CIFAR-10 format")


def _unpickle(raw: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise DataError(f"{what}: {e}") from None
    except Exception as e:  # truncated or garbage pickles raise many kinds of errors
        raise DataError(f"{what}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise DataError(f"{what}: not a CIFAR-10 batch (expected a dict with b'data' and b'labels')")
    data, labels = d[b"data"], d[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{what}: b'data' must be a uint8 array of shape (n, 3072)")
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer) \
            or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DataError(f"{what}: b'labels' must be {data.shape[0]} integers in 0..9")
    # rows are the red plane, then green, then blue, each 32x32 row-major -> (n, 32, 32, 3)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels.astype(np.int32)


def _read_archive(path: str) -> dict[str, bytes]:
    try:
        with tarfile.open(path, "r:*") as tar:
            out = {}
            for m in tar:
                base = os.path.basename(m.name)
                if m.isfile() and (base in TRAIN_FILES or base == TEST_FILE):
                    out[base] = tar.extractfile(m).read()
            return out
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{path}: cannot read the archive ({type(e).__name__}: {e}); it may be truncated "
                        f"or corrupted") from None


def _batches_dir(path: str) -> str | None:
    for d in (path, os.path.join(path, "cifar-10-batches-py")):
        if os.path.isfile(os.path.join(d, TEST_FILE)):
            return d
    return None


def _read_place(path: str) -> dict[str, bytes] | None:
    """The batch files at `path` (archive or folder), or None when nothing CIFAR-like is there."""
    if os.path.isfile(path):
        return _read_archive(path)
    if os.path.isdir(path):
        d = _batches_dir(path)
        if d:
            out = {}
            for name in TRAIN_FILES + [TEST_FILE]:
                p = os.path.join(d, name)
                if os.path.isfile(p):
                    with open(p, "rb") as f:
                        out[name] = f.read()
            return out
        for name in ("cifar-10-python.tar.gz", "cifar-10-batches-py-target"):
            if os.path.isfile(os.path.join(path, name)):
                return _read_archive(os.path.join(path, name))
    return None


def candidates(data_arg: str | None, origin: str = "--data") -> list[tuple[str, str]]:
    """(place, why) in the order they are tried."""
    cache = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "datasets")
    out = []
    if data_arg:
        out.append((data_arg, origin))
    if os.environ.get("SEPSPEC_DATA"):
        out.append((os.environ["SEPSPEC_DATA"], "$SEPSPEC_DATA"))
    out += [(os.path.join(cache, "cifar-10-batches-py"), "Keras 2 cache"),
            (os.path.join(cache, "cifar-10-batches-py-target_extracted"), "Keras 3 cache"),
            (os.path.join(cache, "cifar-10-batches-py-target"), "Keras 3 cache (archive)")]
    return out


def _download() -> str:
    """Keras's own download of the archive (needs the network); returns the extracted folder."""
    from ..lazy import import_keras

    path = import_keras().utils.get_file(fname="cifar-10-batches-py-target",
                                  origin="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", extract=True)
    return path


def load_cifar(data_arg: str | None = None, *, download: bool = True, origin: str = "--data") -> Cifar:
    """Find and read CIFAR-10. Raises DataError with a one-line message.

    `origin` says where `data_arg` came from (`--data`, or the place a run recorded), for the messages.
    """
    tried = []
    for place, why in candidates(data_arg, origin):
        if why in (origin, "$SEPSPEC_DATA") and not os.path.exists(place):
            raise DataError(f"{place} ({why}): no such file or folder")
        files = _read_place(place)
        if files is None:
            if why in (origin, "$SEPSPEC_DATA"):
                raise DataError(f"{place} ({why}): no CIFAR-10 here (expected cifar-10-python.tar.gz or a "
                                f"cifar-10-batches-py folder with data_batch_1..5 and test_batch)")
            tried.append(place)
            continue
        return _decode(files, place)
    if download and os.environ.get("SEPSPEC_OFFLINE") != "1":
        try:
            place = _download()
        except Exception as e:  # offline: Keras raises various network errors
            reason = " ".join(str(e).split()) or type(e).__name__
            raise DataError(f"CIFAR-10 not found and cannot be downloaded ({reason}). Looked in: "
                            + ", ".join(tried) + ". Give --data PATH (the cifar-10-python.tar.gz archive or its "
                            "extracted folder) or set SEPSPEC_DATA.") from None
        files = _read_place(place)
        if files:
            return _decode(files, place)
    raise DataError("CIFAR-10 not found. Looked in: " + ", ".join(tried) + " (no download: SEPSPEC_OFFLINE=1). "
                    "Give --data PATH (the cifar-10-python.tar.gz archive or its extracted folder) or set SEPSPEC_DATA.")


def _decode(files: dict[str, bytes], place: str) -> Cifar:
    missing = [n for n in TRAIN_FILES + [TEST_FILE] if n not in files]
    if TEST_FILE in missing or len(missing) == len(TRAIN_FILES) + 1 or missing == TRAIN_FILES:
        raise DataError(f"{place}: incomplete CIFAR-10 (missing {', '.join(missing)})")
    xs, ys = zip(*(_unpickle(files[n], f"{place}: {n}") for n in TRAIN_FILES if n in files))
    x_test, y_test = _unpickle(files[TEST_FILE], f"{place}: {TEST_FILE}")
    return Cifar(np.concatenate(xs), np.concatenate(ys), x_test, y_test, place, CLASS_NAMES)


def fingerprint(data: Cifar) -> dict:
    """What identifies a data set, whatever holds it (archive, extracted folder, Keras cache): the count and a
    SHA-256 of the decoded images and labels of each split. Recorded when a run starts, checked on resume."""
    out = {}
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(x, np.uint8).tobytes())
        h.update(np.ascontiguousarray(y, np.int32).tobytes())
        out[split] = {"images": int(len(x)), "sha256": h.hexdigest()}
    return out


def fingerprint_difference(recorded: dict, now: dict) -> str | None:
    """None when two fingerprints agree, else one line saying what differs."""
    parts = []
    for split, what in (("train", "training"), ("test", "test")):
        a, b = recorded.get(split) or {}, now.get(split) or {}
        if a != b:
            parts.append(f"its {what} set has {b.get('images', '?'):,} images (sha256 {str(b.get('sha256'))[:12]}), "
                         f"the run's had {a.get('images', '?'):,} (sha256 {str(a.get('sha256'))[:12]})"
                         if isinstance(a.get("images"), int) and isinstance(b.get("images"), int) else
                         f"its {what} set differs")
    return "; ".join(parts) or None


def write_batches(folder: str, x_train, y_train, x_test, y_test, *, archive: str | None = None) -> str:
    """Write images in the standard format (for tests and users' own small sets): a cifar-10-batches-py
    folder under `folder`, and optionally a .tar.gz of it. Returns the folder or the archive."""
    d = os.path.join(folder, "cifar-10-batches-py")
    os.makedirs(d, exist_ok=True)

    def dump(name, x, y):
        flat = np.asarray(x, np.uint8).transpose(0, 3, 1, 2).reshape(len(x), 3072)
        with open(os.path.join(d, name), "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": [int(v) for v in y], b"data": flat,
                         b"filenames": [f"{i}.png".encode() for i in range(len(x))]}, f, protocol=4)

    parts = np.array_split(np.arange(len(x_train)), 5)
    for name, idx in zip(TRAIN_FILES, parts):
        dump(name, x_train[idx], y_train[idx])
    dump(TEST_FILE, x_test, y_test)
    with open(os.path.join(d, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in CLASS_NAMES]}, f, protocol=4)
    if archive:
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(d, arcname="cifar-10-batches-py")
        return archive
    return d
