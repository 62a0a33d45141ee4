"""CIFAR-10 and CIFAR-100 in their standard "python version" layouts, read safely.

CIFAR-10: `cifar-10-python.tar.gz` or its `cifar-10-batches-py/` folder (`data_batch_1..5`, `test_batch`,
`batches.meta`). CIFAR-100: `cifar-100-python.tar.gz` or its `cifar-100-python/` folder (`train`, `test`, `meta`),
with its 100 fine labels by default and its 20 coarse ones on request (`train.labels: coarse`).

The batches are pickles, and a pickle can run code: they are read with an unpickler that allows only what the
format needs (numpy array reconstruction), so a malicious file runs nothing.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib

import numpy as np

from ..diagnostics import UserError

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
C100_FILES = ("train", "test", "meta")


class DataError(UserError):
    """A clear, one-line problem with the data (the CLI prints it; exit status 2)."""


class _SafeUnpickler(pickle.Unpickler):
    """Only numpy array reconstruction is allowed: anything else (os.system, eval, ...) is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: not part of the CIFAR format")


def _load(raw: bytes, what: str) -> dict:
    try:
        d = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise DataError(f"{what}: {e}") from None
    except Exception as e:  # truncated or garbage pickles raise many kinds of errors
        raise DataError(f"{what}: not a CIFAR batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise DataError(f"{what}: not a CIFAR batch (expected a dict)")
    return d


def _unpickle(raw: bytes, what: str, label_key: bytes = b"labels", classes: int = 10):
    d = _load(raw, what)
    if b"data" not in d or label_key not in d:
        raise DataError(f"{what}: not a CIFAR batch (expected a dict with b'data' and {label_key!r})")
    data, labels = d[b"data"], d[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{what}: b'data' must be a uint8 array of shape (n, 3072)")
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer) \
            or labels.min(initial=0) < 0 or labels.max(initial=0) > classes - 1:
        raise DataError(f"{what}: {label_key!r} must be {data.shape[0]} integers in 0..{classes - 1}")
    # rows are the red plane, then green, then blue, each 32x32 row-major -> (n, 32, 32, 3)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels.astype(np.int32)


_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


def _damaged(path: str, e: Exception) -> DataError:
    return DataError(f"{path}: cannot read the archive ({type(e).__name__}: {e}); it may be truncated or corrupted")


def _files(how: str, where: str, names) -> dict[str, bytes]:
    """The named batch files of an archive (by base name) or of a folder; those that are missing are absent."""
    out = {}
    if how == "archive":
        try:
            with tarfile.open(where, "r:*") as tar:
                for m in tar:
                    base = os.path.basename(m.name)
                    if m.isfile() and base in names:
                        out[base] = tar.extractfile(m).read()
        except _ARCHIVE_ERRORS as e:
            raise _damaged(where, e) from None
        return out
    for name in names:
        p = os.path.join(where, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                out[name] = f.read()
    return out


def kind_of_archive(path: str) -> str | None:
    """"cifar10" or "cifar100" for a CIFAR archive (by its members' names), else None."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                parts = m.name.strip("/").split("/")
                if parts[0] == "cifar-100-python" or (m.isfile() and parts[-1] in ("fine_label_names", "meta")
                                                      and "cifar-100" in m.name):
                    return "cifar100"
                if parts[0] == "cifar-10-batches-py" or parts[-1] in TRAIN_FILES:
                    return "cifar10"
    except _ARCHIVE_ERRORS as e:
        if path.endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", "-target")):
            raise _damaged(path, e) from None
        return None
    return None


def find(path: str) -> tuple[str, str, str] | None:
    """(kind, "archive" or "folder", where) of CIFAR data at `path` (an archive, its extracted folder, or a folder
    holding either), or None."""
    if os.path.isfile(path):
        kind = kind_of_archive(path)
        return (kind, "archive", path) if kind else None
    if not os.path.isdir(path):
        return None
    for d in (path, os.path.join(path, "cifar-10-batches-py")):
        if os.path.isfile(os.path.join(d, TEST_FILE)):
            return "cifar10", "folder", d
    for d in (path, os.path.join(path, "cifar-100-python")):
        if all(os.path.isfile(os.path.join(d, f)) for f in ("train", "test")):
            return "cifar100", "folder", d
    for name, kind in (("cifar-10-python.tar.gz", "cifar10"), ("cifar-10-batches-py-target", "cifar10"),
                       ("cifar-100-python.tar.gz", "cifar100")):
        if os.path.isfile(os.path.join(path, name)):
            return kind, "archive", os.path.join(path, name)
    return None


def read(kind: str, how: str, where: str, labels: str = "fine"):
    """(x_train, y_train, x_test, y_test, class names) of the CIFAR data found by `find`."""
    if kind == "cifar10":
        files = _files(how, where, TRAIN_FILES + [TEST_FILE])
        missing = [n for n in TRAIN_FILES + [TEST_FILE] if n not in files]
        if TEST_FILE in missing or missing == TRAIN_FILES:
            raise DataError(f"{where}: incomplete CIFAR-10 (missing {', '.join(missing)})")
        xs, ys = zip(*(_unpickle(files[n], f"{where}: {n}") for n in TRAIN_FILES if n in files))
        x_test, y_test = _unpickle(files[TEST_FILE], f"{where}: {TEST_FILE}")
        return np.concatenate(xs), np.concatenate(ys), x_test, y_test, list(CLASS_NAMES)
    files = _files(how, where, C100_FILES)
    missing = [n for n in C100_FILES if n not in files]
    if missing:
        raise DataError(f"{where}: incomplete CIFAR-100 (missing {', '.join(missing)})")
    meta = _load(files["meta"], f"{where}: meta")
    key = b"fine_label_names" if labels == "fine" else b"coarse_label_names"
    names = meta.get(key)
    if not isinstance(names, list) or not all(isinstance(n, bytes) for n in names):
        raise DataError(f"{where}: meta has no {key!r} list")
    label_key = b"fine_labels" if labels == "fine" else b"coarse_labels"
    x_train, y_train = _unpickle(files["train"], f"{where}: train", label_key, len(names))
    x_test, y_test = _unpickle(files["test"], f"{where}: test", label_key, len(names))
    return x_train, y_train, x_test, y_test, [n.decode("utf-8", "replace") for n in names]


def _dump(path: str, x, labels: dict) -> None:
    """One batch file: the images as CIFAR stores them (planes of 32x32, flattened) and their labels."""
    flat = np.asarray(x, np.uint8).transpose(0, 3, 1, 2).reshape(len(x), 3072)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": os.path.basename(path).encode(), b"data": flat,
                     b"filenames": [f"{i}.png".encode() for i in range(len(x))],
                     **{k: [int(v) for v in y] for k, y in labels.items()}}, f, protocol=4)


def _meta(path: str, names: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump({k: [n.encode() for n in v] for k, v in names.items()}, f, protocol=4)


def write_batches(folder: str, x_train, y_train, x_test, y_test, *, archive: str | None = None) -> str:
    """Write images in CIFAR-10's format (for tests and users' own small sets): a cifar-10-batches-py folder
    under `folder`, and optionally a .tar.gz of it. Returns the folder or the archive."""
    d = os.path.join(folder, "cifar-10-batches-py")
    os.makedirs(d, exist_ok=True)
    for name, idx in zip(TRAIN_FILES, np.array_split(np.arange(len(x_train)), 5)):
        _dump(os.path.join(d, name), x_train[idx], {b"labels": y_train[idx]})
    _dump(os.path.join(d, TEST_FILE), x_test, {b"labels": y_test})
    _meta(os.path.join(d, "batches.meta"), {b"label_names": CLASS_NAMES})
    return _tar(d, "cifar-10-batches-py", archive)


def _tar(d: str, arcname: str, archive: str | None) -> str:
    if archive:
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(d, arcname=arcname)
        return archive
    return d
