"""The run directory: every file is written whole or not at all (temporary file + rename), so a kill at
any moment leaves the previous complete version of each file, never a half-written one."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time

HISTORY_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "train_seconds"]


def atomic_write(path: str, data: bytes | str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
