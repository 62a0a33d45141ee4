"""Files written whole or not at all: to a temporary name in the same folder, then renamed over the target.
A failure or a kill at any moment leaves the previous version (or nothing), never a half-written file, and
no temporary file behind (except after SIGKILL, as `.tmp-*` in that folder). The one home of this rule."""

from __future__ import annotations

import os
import tempfile


def _temp(path: str, suffix: str = "") -> str:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    return tmp


def _commit(tmp: str, path: str) -> None:
    try:
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def writable_folder(path: str) -> str:
    """The folder a file `path` goes into; a one-line UserError, before any work is done, when it is missing or
    cannot be written in."""
    from .diagnostics import UserError

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"{path}: its folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{path}: cannot write in {parent}")
    return parent


def write(path: str, data: bytes | str) -> None:
    tmp = _temp(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    _commit(tmp, path)


def save_weights(model, path: str) -> None:
    """`model.save_weights`, atomically (a `.weights.h5` suffix on the temporary name too)."""
    tmp = _temp(path, suffix=".weights.h5")
    try:
        model.save_weights(tmp, overwrite=True)
    except BaseException:
        os.unlink(tmp)
        raise
    _commit(tmp, path)


def save_model(model, path: str) -> None:
    """`model.save`, atomically (Keras wants the .keras suffix on the temporary name too)."""
    tmp = _temp(path, suffix=".keras")
    try:
        model.save(tmp)
    except BaseException:
        os.unlink(tmp)
        raise
    _commit(tmp, path)
