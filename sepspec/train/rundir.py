"""The run directory: every file is written whole or not at all (temporary file + rename), so a kill at
any moment leaves the previous complete version of each file, never a half-written one."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; runs are then not guarded against a second trainer
    fcntl = None

from .. import atomic
from ..diagnostics import UserError

HISTORY_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "train_seconds",
                  # filled only where the recipe's `ema`/`tta` change the validation figure: the same epoch's
                  # accuracy without the average, without the flips, and without either (an ablation per run)
                  "val_accuracy_no_ema", "val_accuracy_no_tta", "val_accuracy_plain"]


atomic_write = atomic.write
save_model = atomic.save_model


def write_json(path: str, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def new_run_dir(out: str | None, spec_name: str) -> str:
    base = out or os.path.join("runs", spec_name, time.strftime("%Y%m%d-%H%M%S"))
    path, i = base, 1
    while os.path.exists(path) and os.listdir(path):
        i += 1
        path = f"{base}-{i}"
    os.makedirs(path, exist_ok=True)
    return path


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


def write_history(path: str, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k) for k in HISTORY_FIELDS})
    atomic_write(path, buf.getvalue())


def read_history(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [{"epoch": int(r["epoch"]), **{k: float(v) for k, v in r.items() if k != "epoch" and v not in ("", None)}}
                for r in csv.DictReader(f)]


def plot_curves(path: str, rows: list[dict], title: str) -> None:
    """Loss and accuracy per epoch, train and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [r["loss"] for r in rows], "o-", label="train")
    a.plot(ep, [r["val_loss"] for r in rows], "o-", label="validation")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.legend(), a.grid(alpha=0.3)
    b.plot(ep, [100 * r["accuracy"] for r in rows], "o-", label="train")
    b.plot(ep, [100 * r["val_accuracy"] for r in rows], "o-", label="validation")
    b.set_xlabel("epoch"), b.set_ylabel("accuracy %"), b.legend(), b.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def load_model(path: str):
    """A .keras file as a model; a file that is not one (missing, truncated, foreign) is a one-line error."""
    from .._quiet import keras

    if not os.path.isfile(path):
        raise UserError(f"{path}: no such model file")
    try:
        return keras().saving.load_model(path)
    except Exception as e:  # Keras raises many kinds for a damaged file
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"{path}: cannot load the model ({type(e).__name__}: {first})") from None


def crash_point(where: str, epoch: int) -> None:
    """For the tests of the commit protocol: SEPSPEC_CRASH_AT=before-commit:2 dies there, as a SIGKILL would."""
    if os.environ.get("SEPSPEC_CRASH_AT") == f"{where}:{epoch}":
        os._exit(137)


def settle(run: str, state: dict) -> None:
    """Make the run directory what its commit point (`state.json`) says: `best.keras` is the best model it names,
    and only the files it names are kept. Idempotent; `--resume` runs it first, so a kill between the commit
    and this step loses nothing."""
    best = (state.get("best") or {}).get("file")
    if best and os.path.isfile(os.path.join(run, best)):
        with open(os.path.join(run, best), "rb") as f:
            atomic_write(os.path.join(run, "best.keras"), f.read())
    keep = {state["checkpoint"], best, state.get("ema")}
    for old in os.listdir(run):
        if old.startswith(("checkpoint-", "best-", "ema-")) and old.endswith((".keras", ".npz")) and old not in keep:
            os.unlink(os.path.join(run, old))
