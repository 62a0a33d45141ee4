"""One trainer per run folder: an advisory lock on `RUN/.train.lock`, which the system releases when its holder
dies, however it dies."""

from __future__ import annotations

import contextlib
import os
import time

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; runs are then not guarded against a second trainer
    fcntl = None

from ..diagnostics import UserError

LOCK = ".train.lock"


@contextlib.contextmanager
def hold(run: str):
    """Held while a process trains in `run`, so that a second `sepspec train --resume` of the same run (from
    another shell, or a second sweep worker) is refused instead of interleaving its epochs with the first's.
    An advisory lock on a file: the system releases it when the holder dies, however it dies, so a killed
    run never stays locked. The file keeps the holder's pid for the message."""
    if fcntl is None:
        yield
        return
    fd = os.open(os.path.join(run, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for _ in range(5):  # `sepspec runs` takes it for an instant to look
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.1)
        else:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(f"{run}: another process (pid {pid}) is training this run; wait for it to "
                            f"finish or stop it (kill -INT {pid}), then resume")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def is_held(run: str) -> bool | None:
    """Whether a process trains in `run` now; None where that cannot be known (a run from before the lock
    existed, or no advisory locks on this system)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(os.path.join(run, LOCK), os.O_RDONLY)
    except OSError:  # no lock file, or an unreadable one: say nothing rather than stop the listing
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
