"""The run directory: one module knows its files and their formats, writes and reads them, and settles a run to
its commit point. Beside it: `lock` (one trainer per run), `curves` (the picture of the history), `scoring` (a
run's models on the test split) and `runlist` (`sepspec runs`).

Every file is written whole or not at all (temporary file + rename), so a kill at any moment leaves the
previous complete version of each file, never a half-written one. The files:

- `spec.yaml`: the fully resolved spec; `run.json`: the options, versions, backend and data it started with;
- `checkpoint-NNNN.keras` (the live weights and optimizer state after epoch NNNN), `ema-NNNN.npz` (the weight
  average), and `state.json`, the commit point that names them, written last in every epoch;
- `best.keras`: the model of the epoch with the best validation accuracy (saved as `best-NNNN.keras`, renamed
  once the commit point names it, so a run keeps it once);
- `history.csv` (a row per epoch), `metrics.json` (status, figures, normalisation), `curves.png`;
- `evaluation.json` and `confusion.png` from `sepspec evaluate`;
- `final.keras`: the final epoch's model without the optimizer state, kept instead of the checkpoints by a run
  committed to a repository for its figures (`keep_final`); a committed run without it keeps its records only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time

from .. import atomic
from ..diagnostics import UserError, cause
from .curves import plot_curves

SPEC, RECORD, STATE, METRICS, HISTORY, CURVES, BEST, FINAL = (
    "spec.yaml", "run.json", "state.json", "metrics.json", "history.csv", "curves.png", "best.keras", "final.keras")
RECORDS_ONLY = ("keeps its records only (spec, run.json, history, metrics): its model files were not kept; "
                "train it again from its spec.yaml and run.json's options")

HISTORY_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "train_seconds",
                  # filled only where the recipe's `ema`/`tta` change the validation figure: the same epoch's
                  # accuracy without the average, without the test-time views, and without either, and with the
                  # mirror alone where `tta: flip_shift` (an ablation per run)
                  "val_accuracy_no_ema", "val_accuracy_no_tta", "val_accuracy_plain", "val_accuracy_flip_only"]


atomic_write = atomic.write
save_model = atomic.save_model


def write_json(path: str, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def is_run(path: str) -> bool:
    return all(os.path.isfile(os.path.join(path, name)) for name in (RECORD, SPEC))


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
        return [{"epoch": int(r["epoch"]),
                 **{k: float(v) for k, v in r.items() if k != "epoch" and v not in ("", None)}}
                for r in csv.DictReader(f)]


def load_model(path: str, *, optimizer: bool = False):
    """A .keras file as a model; a file that is not one (missing, truncated, foreign) is a one-line error. Only a
    resumed training needs the `optimizer` (compiled, its state restored); scoring and exporting read the weights."""
    from ..lazy import import_keras

    if not os.path.isfile(path):
        raise UserError(f"{path}: no such model file")
    keras = import_keras()
    if optimizer:  # registers the in-step rate that a JAX or PyTorch run's optimizer names
        from . import steprate  # noqa: F401
    try:
        return keras.saving.load_model(path, compile=optimizer)
    except Exception as e:  # Keras raises many kinds for a damaged file
        raise UserError(f"{path}: cannot load the model ({cause(e)})") from None


def crash_point(where: str, epoch: int) -> None:
    """For the tests of the commit protocol: SEPSPEC_CRASH_AT=before-commit:2 dies there, as a SIGKILL would."""
    if os.environ.get("SEPSPEC_CRASH_AT") == f"{where}:{epoch}":
        os._exit(137)


def settle(run: str, state: dict) -> None:
    """Make the run directory what its commit point (`state.json`) says: the best model it names becomes
    `best.keras` (a rename: one copy), and only the files it names are kept. Idempotent; `--resume` runs it
    first, so a kill between the commit and this step loses nothing."""
    best = (state.get("best") or {}).get("file")
    if best and os.path.isfile(os.path.join(run, best)):
        os.replace(os.path.join(run, best), os.path.join(run, BEST))
    keep = {state["checkpoint"], state.get("ema")}
    for old in os.listdir(run):
        if old.startswith(("checkpoint-", "best-", "ema-")) and old.endswith((".keras", ".npz")) and old not in keep:
            os.unlink(os.path.join(run, old))


# ---------------------------------------------------------------------------------------------- the record
def write_spec(run: str, spec) -> None:
    from ..spec.load import to_yaml

    atomic_write(os.path.join(run, SPEC),
                 to_yaml(spec, "the fully resolved spec of this run (written by sepspec train)"))


def read_spec(run: str):
    """The run's own spec (validated as any spec is)."""
    from ..spec.load import load

    return load(os.path.join(run, SPEC))


# ------------------------------------------------------------------------------- paths in the records
# run.json and metrics.json name the spec and the data set a run started from. They are written relative to the
# run folder (absolute only where no relative path exists, another drive), so that a folder committed to a
# repository, or moved with what it names, names no machine's layout; read back, they are usable paths again.
_PATHS = (("options", "spec"), ("options", "data"), ("data", "source"))


def portable(run: str, path: str | None) -> str | None:
    """`path` as a record in the folder `run` keeps it: relative to that folder (run.json, metrics.json, the
    evaluation files)."""
    if not path:
        return path
    try:
        return os.path.relpath(os.path.abspath(path), os.path.abspath(run))
    except ValueError:  # Windows: another drive
        return os.path.abspath(path)


def located(run: str, path: str | None) -> str | None:
    """A path from a run's records as a path from here (the inverse of `portable`; absolute ones as they are)."""
    if not path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(run, path))


def _with_paths(record: dict, convert) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in record.items()}
    for section, key in _PATHS:
        if isinstance(out.get(section), dict) and isinstance(out[section].get(key), str):
            out[section][key] = convert(out[section][key])
    return out


def write_record(run: str, record: dict) -> None:
    write_json(os.path.join(run, RECORD), _with_paths(record, lambda p: portable(run, p)))


def read_record(run: str) -> dict:
    """run.json; a damaged one is a one-line error."""
    path = os.path.join(run, RECORD)
    try:
        record = read_json(path)
        if not isinstance(record.get("options"), dict):
            raise ValueError("no options")
        return _with_paths(record, lambda p: located(run, p))
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # JSONDecodeError is a ValueError
        raise UserError(f"{path}: damaged, cannot resume ({type(e).__name__}: {e})") from None


def recorded_data(run: str) -> str | None:
    """Where a run's data set was when it trained (run.json), or None."""
    try:
        rec = read_json(os.path.join(run, RECORD))
        return located(run, (rec.get("data") or {}).get("source") or rec["options"].get("data"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def data_origin(run: str) -> str:
    """What a missing recorded data set's message says about where the path came from."""
    return f"recorded in {os.path.join(run, RECORD)}; give --data PATH where the data set is now"


def read_state(run: str) -> dict | None:
    """The run's commit point, checked, and the run directory settled to it; None before the first epoch."""
    path = os.path.join(run, STATE)
    if not os.path.exists(path):
        return None
    try:
        state = read_json(path)
        if not (isinstance(state["epoch"], int) and state["epoch"] >= 1 and isinstance(state["checkpoint"], str)
                and "/" not in state["checkpoint"] and isinstance(state.get("best", {}), dict)):
            raise ValueError("epoch, checkpoint or best has the wrong type")
        rng = state.get("rng") or {}
        if not (isinstance(rng, dict) and all(isinstance(v, list) and len(v) == 2 and all(
                isinstance(i, int) and 0 <= i < 2**32 for i in v) for v in rng.values())):
            raise ValueError("rng must map layer names to two 32-bit integers")
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: damaged, cannot resume ({type(e).__name__}: {e})") from None
    if not os.path.isfile(os.path.join(run, state["checkpoint"])):
        if not os.path.isfile(os.path.join(run, BEST)):
            raise UserError(f"{path} names the checkpoint {state['checkpoint']}, which is missing: the run cannot be "
                            f"resumed; it {RECORDS_ONLY}")
        raise UserError(f"{path} names the checkpoint {state['checkpoint']}, which is missing: the run cannot be "
                        f"resumed (its best model so far is {os.path.join(run, BEST)})")
    settle(run, state)
    return state


def commit(run: str, epoch: int, model, *, rows: list[dict], metrics: dict, title: str, average=None, plateau=None,
           best: dict, rng: dict) -> dict:
    """One epoch's files, then the commit point naming them, then the folder settled to it. A new best model is
    saved as `best_file(epoch)` before, by the caller, and named in `best`. Returns the new state."""
    ckpt = f"checkpoint-{epoch:04d}.keras"
    save_model(model, os.path.join(run, ckpt))  # the live weights, with the optimizer's state
    ema = None
    if average is not None:
        ema = f"ema-{epoch:04d}.npz"
        atomic_write(os.path.join(run, ema), average.to_bytes())
    write_history(os.path.join(run, HISTORY), rows)
    write_metrics(run, metrics)
    curves(run, rows, title, final=metrics.get("status") != "running")
    crash_point("before-commit", epoch)
    # the commit point, written last: everything above is either named by it or rebuilt from it
    state = {"epoch": epoch, "checkpoint": ckpt, "plateau": plateau or {}, "best": best, "ema": ema, "rng": rng}
    write_json(os.path.join(run, STATE), state)
    crash_point("after-commit", epoch)
    settle(run, state)
    return state


CURVES_EVERY = 10.0  # seconds: during a run curves.png is redrawn at most this often (and at its end)


def curves(run: str, rows: list[dict], title: str, *, final: bool = True) -> bool:
    """The run's curves.png from its history rows: at the end of a run, and while it runs when the drawing is
    older than `CURVES_EVERY` (on a CPU every epoch; on a GPU, where an epoch can take a second, not each).
    Whether drawn."""
    return plot_curves(os.path.join(run, CURVES), rows, title, unless_newer_than=0.0 if final else CURVES_EVERY)


def best_file(epoch: int) -> str:
    return f"best-{epoch:04d}.keras"


def write_metrics(run: str, metrics: dict) -> None:
    if isinstance(metrics.get("data"), str):  # where the data set was, as run.json keeps it
        metrics = {**metrics, "data": portable(run, metrics["data"])}
    write_json(os.path.join(run, METRICS), metrics)


def read_metrics(run: str) -> dict:
    return read_json(os.path.join(run, METRICS))


# ----------------------------------------------------------------------------------- a run's models, scored
def normalization(where: str) -> tuple[list, list] | None:
    """(mean, std) per channel that a run's models take their input with; None when `where` has no metrics.json.
    The one rule for every reader (evaluate, export): as many means as deviations, all numbers, std > 0."""
    path = os.path.join(where, METRICS)
    if not os.path.isfile(path):
        return None
    try:
        stats = read_json(path)["normalization"]
        mean, std = stats["mean"], stats["std"]
        if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) >= 1
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mean + std)
                and all(v > 0 for v in std)):
            raise ValueError("mean and std must be lists of as many numbers, std > 0")
    except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise UserError(f"{path}: damaged, no usable normalisation ({type(e).__name__}: {e})") from None
    return mean, std


def model_of(target: str) -> tuple[str, str]:
    """(model file, the folder it belongs to) for a run directory (its best.keras; a committed run's final.keras)
    or a .keras file."""
    if os.path.isdir(target):
        folder = target
        model_path = next((os.path.join(target, f) for f in (BEST, FINAL) if os.path.isfile(os.path.join(target, f))),
                          None)
        if model_path is None:
            raise UserError(f"{target}: no model: the run {RECORDS_ONLY}" if is_run(target) else
                            f"{target}: no model (expected a run directory with {BEST}, or a .keras file)")
        return model_path, folder
    if not os.path.isfile(target):
        raise UserError(f"{target}: no model (expected a run directory with {BEST}, or a .keras file)")
    return target, os.path.dirname(os.path.abspath(target))


def final_model(run: str) -> str:
    """The file of a run's final epoch: the checkpoint its commit point names, or a committed run's final.keras."""
    if os.path.isfile(os.path.join(run, FINAL)):
        return os.path.join(run, FINAL)
    state = read_state(run)
    if state is None:
        raise UserError(f"{run}: no epoch finished yet")
    return os.path.join(run, state["checkpoint"])


def keep_final(run: str) -> str:
    """Save the final epoch's model without the optimizer state as `final.keras` (what a run committed for its
    figures keeps instead of its checkpoints; about half their size)."""
    from ..lazy import import_keras

    state = read_state(run)
    if state is None:
        raise UserError(f"{run}: no epoch finished yet")
    model = import_keras().saving.load_model(os.path.join(run, state["checkpoint"]), compile=False)
    save_model(model, os.path.join(run, FINAL))
    return os.path.join(run, FINAL)


def run_data(run: str, data_arg: str | None = None, stream: str = "auto"):
    """The data a run was trained on (or `data_arg`, where it is now), read as its spec reads it (CIFAR-100's
    labels, resizing); `stream` as `load_data` takes it."""
    from ..data.read import load_data, options_of

    options = {**options_of(read_spec(run)), "stream": stream}
    if data_arg is not None:
        return load_data(data_arg, **options)
    return load_data(recorded_data(run), origin=data_origin(run), **options)


def split_name(validation) -> str:
    """Which images a run's validation figures come from, in a word: `test` (the test set) or `held-out`."""
    return "test" if validation == "test" else ("held-out" if validation is not None else "?")
