"""The training loop: one epoch at a time, with a checkpoint after each, so that any run can be resumed.

Per epoch: set the schedule's rate, fit one pass over a freshly seeded dataset, evaluate, then write (each
file atomically) the checkpoint, `state.json` (the commit point naming that checkpoint), `history.csv`,
`metrics.json`, `curves.png` and, on a new best validation accuracy, `best.keras`. A kill at any moment
leaves the last committed epoch intact; `--resume` continues from it with the same settings, schedule,
optimizer state and data order.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import __version__, analyse
from .. import layers as L
from ..layers import dims
from ..diagnostics import UserError
from ..rules import violations
from ..spec import Spec, load_source, resolve, to_yaml
from ..yamlsrc import Source, SpecError, parse
from . import PRECISIONS, STRATEGIES, rundir
from .average import weight_average
from .data import fingerprint, fingerprint_difference, load_cifar
from .devices import backend, check_strategy, device_name, make_strategy, set_precision, split_cpu, tensorflow, versions
from .pipeline import channel_stats, dataset, normalize
from .predict import by_view, scores
from .schedule import lr_at, plateau_update


@dataclass
class Options:
    """What the command line sets; recorded in run.json so that --resume continues with the same."""

    spec: str
    epochs: int | None = None
    batch_size: int | None = None
    data: str | None = None
    out: str | None = None
    train_limit: int | None = None
    val_limit: int | None = None
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)
    strategy: str = "default"
    jit_compile: bool = False
    precision: str = "auto"  # auto: float32 on CPU; on a GPU as measured per backend

    def __post_init__(self):
        """Refuse a bad choice at once (API callers and tampered run.json files), before any data is loaded."""
        for name, value, choices in (("strategy", self.strategy, STRATEGIES), ("precision", self.precision, PRECISIONS)):
            if value not in choices:
                raise TrainError(f"unknown {name} {value!r} ({', '.join(choices)})")
        if self.seed is not None and not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
            raise TrainError(f"--seed {self.seed}: expected an integer from 0 to {2**32 - 1}")


class TrainError(UserError):
    """A clear, one-line problem (bad option, bad TF_CONFIG, missing run); the CLI prints it."""


# ------------------------------------------------------------------------------------- the spec
def _set_path(src: Source, dotted: str, value, origin: str) -> None:
    from ..diagnostics import Pos

    keys = dotted.split(".")
    node = src.data
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[keys[-1]] = value
    path = tuple(keys)
    for table in (src.values, src.keys):
        for p in [p for p in table if p[:len(path)] == path]:
            del table[p]
    src.values[path] = src.keys[path] = Pos(origin, 1, 1)


def resolve_spec(opts: Options) -> tuple[Spec, Source]:
    """The spec with --set/--epochs/--batch-size applied, validated and checked against every rule."""
    src = resolve(opts.spec)
    sets = list(opts.overrides)
    if opts.epochs is not None:
        sets.append(f"train.epochs={opts.epochs}")
    if opts.batch_size is not None:
        sets.append(f"train.batch_size={opts.batch_size}")
    for item in sets:
        key, eq, text = item.partition("=")
        if not eq or not key.startswith("train.") or not key[6:]:
            raise TrainError(f"--set {item!r}: expected train.KEY=VALUE (e.g. train.optimizer.learning_rate=0.02)")
        value = parse(text, f"--set {key}").data  # a YAML value, read as safely as a spec
        _set_path(src, key, value, f"--set {key}")
    spec = load_source(src)
    diags = violations(analyse(spec), src)
    if diags:
        raise SpecError(diags)
    return spec, src


def _optimizer(keras, train):
    o = train.optimizer
    if o.name == "sgd":
        return keras.optimizers.SGD(o.learning_rate, momentum=o.momentum, nesterov=o.nesterov,
                                    weight_decay=o.weight_decay or None)
    if o.name == "adamw":
        return keras.optimizers.AdamW(o.learning_rate, weight_decay=o.weight_decay)
    return keras.optimizers.Adam(o.learning_rate, weight_decay=o.weight_decay or None)


def compile_model(keras, report, train, *, mixed: bool, jit_compile: bool, steps_per_execution: int = 1):
    """The spec's model, compiled with the spec's optimizer and loss."""
    from ..emit import keras_model

    model = keras_model(report)
    last = report.rows[-1].layer
    probabilities = last.keras == "Activation" and last.function == "softmax"
    if mixed:  # class scores in float32 whatever the compute dtype
        out = keras.layers.Activation("linear", dtype="float32", name="output_float32")(model.output)
        model = keras.Model(model.input, out, name=model.name)
    loss = keras.losses.CategoricalCrossentropy(from_logits=not probabilities, label_smoothing=train.label_smoothing)
    model.compile(optimizer=_optimizer(keras, train), loss=loss, metrics=["accuracy"], jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    return model


# -------------------------------------------------------------------------------------- the data
def split(data, train, opts: Options):
    x, y = data.x_train, data.y_train
    if train.validation == "test":
        xv, yv = data.x_test, data.y_test
    else:
        k = int(round(len(x) * train.validation))
        if k < 1 or k >= len(x):
            raise TrainError(f"validation fraction {train.validation} leaves no training or no validation images")
        x, y, xv, yv = x[:-k], y[:-k], x[-k:], y[-k:]
    if opts.train_limit:
        x, y = x[:opts.train_limit], y[:opts.train_limit]
    if opts.val_limit:
        xv, yv = xv[:opts.val_limit], yv[:opts.val_limit]
    return x, y, xv, yv


# -------------------------------------------------------------------------------------- progress
class _Progress:
    """A one-line progress bar on a terminal; nothing when output goes to a file (no carriage returns)."""

    def __init__(self, keras, epoch, epochs, steps):
        self.cb = keras.callbacks.LambdaCallback(on_train_batch_end=self._step)
        self.tty = sys.stdout.isatty()
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.t0 = time.perf_counter()

    def _step(self, batch, logs):
        if not self.tty:
            return
        done = batch + 1
        bar = "#" * int(30 * done / self.steps)
        sys.stdout.write(f"\rEpoch {self.epoch}/{self.epochs} [{bar:<30}] {done}/{self.steps} "
                         f"loss {logs.get('loss', float('nan')):.4f} acc {logs.get('accuracy', float('nan')):.4f} "
                         f"{time.perf_counter() - self.t0:.0f}s")
        sys.stdout.flush()

    def clear(self):
        if self.tty:
            sys.stdout.write("\r" + " " * 100 + "\r")


# ------------------------------------------------------------------------------------- the loop
def train(opts: Options, on_epoch=None) -> tuple[int, str]:
    """Start a run. Returns (exit status, run directory). `on_epoch(epoch, row)` is called after each committed
    epoch (a sweep reports to its pruner there); when it returns True the run stops, with status "pruned"."""
    spec, _ = resolve_spec(opts)
    if opts.seed is None:
        opts.seed = spec.train.seed if spec.train.seed is not None else 0
    from .._quiet import keras

    check_strategy(keras(), opts.strategy)
    data = load_cifar(opts.data)
    check_fits(spec, data)  # before anything is written: a refused run leaves no folder behind
    # recorded absolute, so that --resume works from any working directory
    opts.spec = os.path.abspath(opts.spec)
    opts.data = os.path.abspath(opts.data) if opts.data else None
    run = rundir.new_run_dir(opts.out, spec.name)
    with rundir.hold(run):
        rundir.atomic_write(os.path.join(run, "spec.yaml"), to_yaml(spec, 'the fully resolved spec of this run (written by sepspec train)'))
        rundir.write_json(os.path.join(run, "run.json"), {"options": asdict(opts), "sepspec": __version__,
                                                          "backend": backend(keras()),
                                                          "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                          "data": _data_record(data)})
        return _loop(run, spec, opts, None, data, on_epoch), run


def _data_record(data) -> dict:
    return {"source": os.path.abspath(data.source), "fingerprint": fingerprint(data)}


def check_fits(spec: Spec, data) -> None:
    """The spec's input and classes must be the data's: CIFAR-10 is 32x32x3 with 10 classes."""
    shape = tuple(data.x_train.shape[1:])
    if tuple(spec.input) != shape:
        raise TrainError(f"the spec's input is {dims(spec.input)}, the data's images are "
                         f"{dims(shape)}")
    if spec.classes != len(data.class_names):
        raise TrainError(f"the spec has classes: {spec.classes}, the data has {len(data.class_names)} classes "
                         f"({', '.join(data.class_names)})")


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def resume(run: str, epochs: int | None = None, *, data: str | None = None,
           spec_path: str | None = None) -> tuple[int, str]:
    """Continue an interrupted run from its last completed epoch, with the settings recorded in it.

    `epochs` changes the run's length (e.g. to train a finished run further); only for schedules that do not
    depend on the total, so that the epochs already trained keep the rates they had. `data` says where the
    data set is now (a moved run or data set); it must be the data set the run started with. `spec_path`, if
    given, must be the run's own spec file.
    """
    for name in ("run.json", "spec.yaml"):
        if not os.path.isfile(os.path.join(run, name)):
            raise TrainError(f"{run}: not a run directory (no {name})")
    with rundir.hold(run):  # before anything in the run is read or settled
        return _resume(run, epochs, data, spec_path)


def _resume(run: str, epochs: int | None, data: str | None, spec_path: str | None) -> tuple[int, str]:
    try:
        recorded = rundir.read_json(os.path.join(run, "run.json"))
        opts = Options(**recorded["options"])
    except (ValueError, TypeError, KeyError) as e:  # JSONDecodeError is a ValueError
        raise TrainError(f"{os.path.join(run, 'run.json')}: damaged, cannot resume ({type(e).__name__}: {e})") from None
    if spec_path is not None and not _same_file(spec_path, opts.spec):
        raise TrainError(f"{spec_path} is not the spec of {run} (it was started from {opts.spec}); give only "
                         f"--resume {run}, or train {spec_path} as a new run")
    from .._quiet import keras

    trained_on = recorded.get("backend", "tensorflow")
    here = backend(keras())
    if trained_on != here:
        raise TrainError(f"{run} was trained on the {trained_on} backend and Keras runs on {here} here; resume "
                         f"it with KERAS_BACKEND={trained_on} (each backend draws its own augmentation, so a run "
                         f"keeps one)")
    src = resolve(os.path.join(run, "spec.yaml"))
    spec = load_source(src)
    state = _read_state(run)
    done = state["epoch"] if state else 0
    changed = False
    if epochs is not None and epochs != spec.train.epochs:
        if spec.train.schedule.name in ("cosine", "one_cycle"):
            raise TrainError(f"{run}: --epochs cannot change the length of a run with the {spec.train.schedule.name} "
                             f"schedule (its rates depend on the total number of epochs)")
        if epochs < max(done, 1):
            raise TrainError(f"{run}: --epochs {epochs} is fewer than the {done} epochs already trained")
        _set_path(src, "train.epochs", epochs, "--epochs")
        spec = load_source(src)
        opts.epochs = epochs
        changed = True
    if done >= spec.train.epochs:
        raise TrainError(f"{run}: already finished ({done} of {spec.train.epochs} epochs; "
                         f"--resume {run} --epochs N trains it further)")
    if data is not None:
        cifar = load_cifar(data)
    else:
        cifar = load_cifar(opts.data, origin=f"recorded in {os.path.join(run, 'run.json')}; give --data PATH "
                                            f"where the data set is now")
    now = fingerprint(cifar)
    before = (recorded.get("data") or {}).get("fingerprint")
    if before is None:
        print(f"warning: {run} was recorded without a fingerprint of its data set (before sepspec 0.2); "
              f"the data at {cifar.source} could not be checked against it", file=sys.stderr, flush=True)
    else:
        diff = fingerprint_difference(before, now)
        if diff:
            raise TrainError(f"{cifar.source} is not the data set {run} was trained on: {diff}")
    if data is not None and opts.data != os.path.abspath(data):
        opts.data = os.path.abspath(data)
        changed = True
    if changed:
        rundir.atomic_write(os.path.join(run, "spec.yaml"), to_yaml(spec, 'the fully resolved spec of this run (written by sepspec train)'))
        rundir.write_json(os.path.join(run, "run.json"), {**recorded, "options": asdict(opts),
                                                          "data": _data_record(cifar)})
    return _loop(run, spec, opts, state, cifar), run


def _read_state(run: str) -> dict | None:
    """The run's commit point, checked, and the run directory settled to it; None before the first epoch."""
    path = os.path.join(run, "state.json")
    if not os.path.exists(path):
        return None
    try:
        state = rundir.read_json(path)
        if not (isinstance(state["epoch"], int) and state["epoch"] >= 1 and isinstance(state["checkpoint"], str)
                and "/" not in state["checkpoint"] and isinstance(state.get("best", {}), dict)):
            raise ValueError("epoch, checkpoint or best has the wrong type")
        rng = state.get("rng") or {}
        if not (isinstance(rng, dict) and all(isinstance(v, list) and len(v) == 2 and all(
                isinstance(i, int) and 0 <= i < 2**32 for i in v) for v in rng.values())):
            raise ValueError("rng must map layer names to two 32-bit integers")
    except (ValueError, KeyError, TypeError) as e:
        raise TrainError(f"{path}: damaged, cannot resume ({type(e).__name__}: {e})") from None
    if not os.path.isfile(os.path.join(run, state["checkpoint"])):
        raise TrainError(f"{path} names the checkpoint {state['checkpoint']}, which is missing: the run cannot be "
                         f"resumed (its best model so far is {os.path.join(run, 'best.keras')})")
    rundir.settle(run, state)
    return state


def _loop(run: str, spec: Spec, opts: Options, state: dict | None, data, on_epoch=None) -> int:
    """Train, leaving Keras's global dtype policy as the caller had it."""
    from .._quiet import keras as _k

    precision = _k().mixed_precision
    policy = precision.global_policy()
    try:
        return _train_loop(run, spec, opts, state, data, on_epoch)
    finally:
        precision.set_global_policy(policy)


def _train_loop(run: str, spec: Spec, opts: Options, state: dict | None, data, on_epoch=None) -> int:
    from .._quiet import keras as _k, tensorflow_if_installed

    keras = _k()
    tf = tensorflow(keras)  # None on the JAX and PyTorch backends
    if tf is not None:
        split_cpu(tf)
    else:
        tensorflow_if_installed()
    keras.utils.set_random_seed(opts.seed)
    t = spec.train
    report = analyse(spec)
    x, y, xv, yv = split(data, t, opts)
    mean, std = channel_stats(x) if t.normalize == "per_channel" else ([0.0] * 3, [1.0] * 3)
    policy = set_precision(keras, opts.precision)
    mixed = policy != "float32"
    if opts.jit_compile and tf is not None and not tf.config.list_physical_devices("GPU") and any(isinstance(r.layer, (L.SeparableConv2D, L.DepthwiseConv2D)) for r in report.rows):
        print("warning: --jit-compile on CPU: XLA was measured more than 15x slower for depthwise convolutions "
              "here; leave it off unless you are measuring that", file=sys.stderr, flush=True)
    strategy = make_strategy(keras, opts.strategy)
    with strategy.scope():
        if state:
            model = rundir.load_model(os.path.join(run, state["checkpoint"]))
        else:
            model = compile_model(keras, report, t, mixed=mixed, jit_compile=_jit(keras, opts))
    if keras.backend.backend() == "torch":
        _seed_torch_dropout(model)
    if state and state.get("rng"):  # the dropout masks go on as an uninterrupted run draws them
        _restore_rng(model, state["rng"])
    average = weight_average(keras, model, t.ema) if t.ema else None
    if average is not None and state and state.get("ema"):
        try:
            average.load(os.path.join(run, state["ema"]))
        except (OSError, ValueError, KeyError) as e:
            raise TrainError(f"{run}: the weight average {state['ema']} cannot be read ({e})") from None
    rows = [r for r in rundir.read_history(os.path.join(run, "history.csv")) if state and r["epoch"] <= state["epoch"]]
    start = state["epoch"] if state else 0
    plateau = state.get("plateau", {}) if state else {}
    best = state.get("best", {"val_accuracy": -1.0, "epoch": 0}) if state else {"val_accuracy": -1.0, "epoch": 0}
    info = {"spec": spec.name, "params": report.params, "trainable": report.trainable,
            "non_trainable": report.non_trainable, "train_images": int(len(x)), "val_images": int(len(xv)),
            "validation": t.validation, "data": data.source, "device": device_name(keras),
            "strategy": opts.strategy, "replicas": strategy.num_replicas_in_sync,
            "precision": policy, "jit_compile": _jit(keras, opts),
            "backend": keras.backend.backend(), "mean": mean, "std": std, "seed": opts.seed,
            "versions": {"sepspec": __version__, **versions(keras), "keras": keras.__version__,
                         "python": platform.python_version()}}
    steps = math.ceil(len(x) / t.batch_size)
    xv_normal = normalize(xv, mean, std) if t.tta != "none" or average else None  # once, not every epoch
    val_ds = dataset(xv, yv, batch=t.batch_size, classes=spec.classes, mean=mean, std=std, seed=opts.seed,
                     epoch=0, training=False)
    print(f"{spec.name}: {report.params:,} params, {len(x):,} training / {len(xv):,} validation images "
          f"({t.validation}), batch {t.batch_size}, {t.epochs} epoch{'s' if t.epochs != 1 else ''}, {info['device']}, run {run}", flush=True)
    if start:
        print(f"resuming after epoch {start}", flush=True)
    status = "running"
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    # a background shell (nohup ... &) starts us with SIGINT ignored; `kill -INT` should still stop cleanly
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for e in range(start, t.epochs):
            lr = lr_at(t, e, plateau)
            model.optimizer.learning_rate.assign(lr)
            ds = dataset(x, y, batch=t.batch_size, classes=spec.classes, mean=mean, std=std, seed=opts.seed,
                         epoch=e, training=True, aug=t.augment)
            progress = _Progress(keras, e + 1, t.epochs, steps)
            t0 = time.perf_counter()
            h = model.fit(ds, epochs=e + 1, initial_epoch=e, verbose=0, shuffle=False,
                          callbacks=[progress.cb, keras.callbacks.TerminateOnNaN()]
                          + ([average.callback(keras)] if average else []))
            t_train = time.perf_counter() - t0
            progress.clear()
            best_file = f"best-{e + 1:04d}.keras"
            with average.swapped_in() if average else contextlib.nullcontext():  # validate the average
                val, extra = _validate(model, t, val_ds, xv_normal, yv, "_no_tta")
                improved = val["accuracy"] > best["val_accuracy"]  # False for NaN
                if improved:
                    rundir.save_model(model, os.path.join(run, best_file))
            if average is not None:  # the live weights' figures, for the ablation in the history
                live, live_extra = _validate(model, t, val_ds, xv_normal, yv, "_plain")
                extra.update({"_no_ema": live["accuracy"], **live_extra})
            seconds = time.perf_counter() - t0
            row = {"epoch": e + 1, "loss": float(h.history["loss"][-1]), "accuracy": float(h.history["accuracy"][-1]),
                   "val_loss": float(val["loss"]), "val_accuracy": float(val["accuracy"]), "lr": float(lr),
                   "seconds": round(seconds, 2), "train_seconds": round(t_train, 2),
                   **{f"val_accuracy{k}": v for k, v in extra.items()}}
            if not all(math.isfinite(row[k]) for k in ("loss", "val_loss")) or len(h.history["loss"]) == 0:
                status = "nan"
                print(f"Epoch {e + 1}/{t.epochs}: the loss became NaN/inf; stopping (lr {lr:.6g}). The best "
                      f"model so far is kept in {os.path.join(run, 'best.keras')}" if best["epoch"] else
                      f"Epoch {e + 1}/{t.epochs}: the loss became NaN/inf; stopping (lr {lr:.6g}); no epoch finished "
                      f"well enough to keep a model. Try a lower learning rate.", file=sys.stderr, flush=True)
                break
            rows.append(row)
            print(f"Epoch {e + 1}/{t.epochs} - {seconds:.0f}s - loss: {row['loss']:.4f} - accuracy: {row['accuracy']:.4f}"
                  f" - val_loss: {row['val_loss']:.4f} - val_accuracy: {row['val_accuracy']:.4f} - lr: {lr:.6g}",
                  flush=True)
            plateau = plateau_update(t, plateau, row["val_loss"])
            ckpt = f"checkpoint-{e + 1:04d}.keras"
            rundir.save_model(model, os.path.join(run, ckpt))  # the live weights, with the optimizer's state
            if improved:
                best = {"val_accuracy": row["val_accuracy"], "epoch": e + 1, "file": best_file}
            ema = None
            if average is not None:
                ema = f"ema-{e + 1:04d}.npz"
                rundir.atomic_write(os.path.join(run, ema), average.to_bytes())
            rundir.write_history(os.path.join(run, "history.csv"), rows)
            _write_metrics(run, info, rows, best, "running" if e + 1 < t.epochs else "finished", t.epochs)
            rundir.plot_curves(os.path.join(run, "curves.png"), rows, f"{spec.name} ({run})")
            rundir.crash_point("before-commit", e + 1)
            # the commit point, written last: everything above is either named by it or rebuilt from it
            state = {"epoch": e + 1, "checkpoint": ckpt, "plateau": plateau, "best": best, "ema": ema,
                     "rng": _rng_state(model)}
            rundir.write_json(os.path.join(run, "state.json"), state)
            rundir.crash_point("after-commit", e + 1)
            rundir.settle(run, state)
            if on_epoch is not None and on_epoch(e + 1, row) and e + 1 < t.epochs:
                status = "pruned"
                break
        else:
            status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        print(f"\ninterrupted; the run is saved up to epoch {rows[-1]['epoch'] if rows else 0}. Resume with:\n"
              f"  sepspec train --resume {run}", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
    _write_metrics(run, info, rows, best, status, t.epochs)
    if status == "finished":
        print(f"best val_accuracy {best['val_accuracy']:.4f} at epoch {best['epoch']}; run saved in {run}", flush=True)
    return {"finished": 0, "pruned": 0, "nan": 1, "interrupted": 130}.get(status, 1)


def _validate(model, t, val_ds, xv_normal, yv, untta: str) -> tuple[dict, dict]:
    """The validation loss and accuracy as the recipe defines them (flip TTA if `tta`), and, where TTA is on,
    the accuracy without it under the history suffix `untta`. Through `predict` whenever the recipe has TTA or
    an average (the loss is then plain cross-entropy, without label smoothing), else Keras's `evaluate`."""
    if xv_normal is None:
        return model.evaluate(val_ds, verbose=0, return_dict=True), {}
    p = by_view(model, xv_normal, t.tta, t.batch_size)
    extra = {untta: scores(p["none"], yv)["accuracy"]} if t.tta != "none" else {}
    return scores(p[t.tta], yv), extra


def _jit(keras, opts: Options) -> bool:
    """XLA as asked on TensorFlow (off by default: slower on CPU here) and PyTorch (torch.compile); always on JAX,
    whose steps are compiled or run op by op in Python."""
    return True if keras.backend.backend() == "jax" else opts.jit_compile


def _rng_state(model) -> dict:
    """The state of every layer's random-number generator (dropout): a .keras file does not keep it."""
    return {layer.name: [int(v) for v in np.asarray(layer.seed_generator.state.numpy()).ravel()]
            for layer in model.layers if getattr(layer, "seed_generator", None) is not None}


def _seed_torch_dropout(model) -> None:
    """Keras's PyTorch dropout draws from torch's global generator, which no checkpoint keeps, unless the layer's
    seed generator counts as seeded; then it draws from that generator's state, which `_rng_state` saves. (The
    state itself, not this marker, decides the masks.)"""
    for layer in model.layers:
        g = getattr(layer, "seed_generator", None)
        if g is not None and getattr(g, "_initial_seed", 0) is None:
            g._initial_seed = 0


def _restore_rng(model, saved: dict) -> None:
    for layer in model.layers:
        g = getattr(layer, "seed_generator", None)
        if g is not None and layer.name in saved:
            g.state.assign(np.asarray(saved[layer.name], dtype=g.state.dtype))


def _raise_interrupt(*_):
    raise KeyboardInterrupt


def _write_metrics(run, info, rows, best, status, epochs) -> None:
    secs = [r["seconds"] for r in rows]
    train_secs = [r["train_seconds"] for r in rows]
    last = rows[-1] if rows else {}
    m = {**{k: v for k, v in info.items() if k not in ("mean", "std")}, "status": status,
         "epochs_planned": epochs, "epochs_completed": len(rows),
         "best_val_accuracy": best["val_accuracy"] if best["epoch"] else None, "best_epoch": best["epoch"] or None,
         "final_val_accuracy": last.get("val_accuracy"), "final_epoch": last.get("epoch"),
         "seconds_per_epoch": float(np.median(secs)) if secs else None,
         "images_per_second": round(info["train_images"] / float(np.median(train_secs)), 1) if train_secs else None,
         "normalization": {"mean": info["mean"], "std": info["std"]}}
    rundir.write_json(os.path.join(run, "metrics.json"), m)
