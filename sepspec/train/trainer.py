"""The training loop: one epoch at a time, each committed to the run directory, so that any run can be resumed.

A run is `train` (a checked spec -> a new run directory) or `resume` (a run directory -> the same run, on), and
then the same steps (`Training`): set up (data split, model, weight average, validation data), then per
epoch `fit` one pass over a freshly seeded dataset, `validate`, and `commit` (`rundir.commit`: checkpoint,
history, metrics, curves, then `state.json`, the commit point). A kill at any moment leaves the last committed
epoch intact; `--resume` continues from it with the same settings, schedule, optimizer state, data order and
dropout draws. A finished run is scored once on the test split (`finish`).
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

from .. import layers as L
from ..checked import check_spec
from ..data.read import fingerprint, fingerprint_difference, load_data, options_of, skipped_note
from ..diagnostics import UserError
from ..graph.analysis import Report
from ..layers import dims
from ..lazy import import_keras, import_tensorflow_if_installed
from ..spec.edit import with_overrides
from ..spec.load import Spec, load_source, resolve, to_yaml
from ..spec.source import parse
from ..version import __version__
from . import PRECISIONS, STRATEGIES, STREAMS, rundir
from .average import weight_average
from .board import Board
from .devices import backend, check_strategy, device_name, make_strategy, set_precision, split_cpu, tensorflow, versions
from .fastpath import fast_training
from .lock import hold
from .pipeline import channel_stats, dataset, normalize
from .predict import by_view, gives_probabilities, scores
from .schedule import BY_LENGTH, lr_at, per_step, plateau_update
from .scoring import test_accuracy, test_predictions

SPLIT_SEED = 0  # the held-out validation images are the same for every run on the same data


@dataclass
class Options:
    """What the command line sets; recorded in run.json so that --resume continues with the same."""

    spec: str | None = None  # the spec file (None for a Spec given in code)
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
    fast_layers: bool = True  # on TensorFlow: the fused batch norm and integer dropout masks (train/fastpath.py)
    stream: str = "auto"  # an image folder read from disk batch by batch: auto (when large), on, off

    def __post_init__(self):
        """Refuse a bad choice at once (API callers and tampered run.json files), before any data is loaded."""
        for name, value, choices in (("strategy", self.strategy, STRATEGIES), ("precision", self.precision, PRECISIONS),
                                     ("stream", self.stream, STREAMS)):
            if value not in choices:
                raise TrainError(f"unknown {name} {value!r} ({', '.join(choices)})")
        if self.seed is not None and not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
            raise TrainError(f"--seed {self.seed}: expected an integer from 0 to {2**32 - 1}")


class TrainError(UserError):
    """A clear, one-line problem (bad option, bad TF_CONFIG, missing run); the CLI prints it."""


@dataclass
class Result:
    """How a run ended (`status`: finished, pruned by a sweep's `on_epoch`, nan, interrupted; the command line's
    exit status is `sepspec.status.of_training(status)`) and its folder."""

    status: str
    run: str


# ------------------------------------------------------------------------------------- the spec
def training_report(opts: Options, spec: Spec | None = None) -> Report:
    """The spec to train (the file `opts.spec`, or `spec`) with --set/--epochs/--batch-size applied, checked
    against every rule (SpecError otherwise): what `train` takes."""
    if spec is None:
        src = resolve(opts.spec)
    else:  # a Spec made in code has no source of its own: its YAML is one
        src = spec.source if spec.source.data else parse(to_yaml(spec), spec.name)
    sets = list(opts.overrides)
    if opts.epochs is not None:
        sets.append(f"train.epochs={opts.epochs}")
    if opts.batch_size is not None:
        sets.append(f"train.batch_size={opts.batch_size}")
    edited = load_source(with_overrides(src, sets)) if sets or spec is None else spec
    return check_spec(edited, opts.spec or edited.name).raise_errors().report


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
    from ..emit.model import keras_model

    model = keras_model(report)
    from_logits = not gives_probabilities(model)
    if mixed:  # class scores in float32 whatever the compute dtype
        out = keras.layers.Activation("linear", dtype="float32", name="output_float32")(model.output)
        model = keras.Model(model.input, out, name=model.name)
    loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=train.label_smoothing)
    model.compile(optimizer=_optimizer(keras, train), loss=loss, metrics=["accuracy"], jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    spare_from_decay(model, train)
    return model


def spare_from_decay(model, train) -> int:
    """Exclude the weights `optimizer.no_decay` names from the optimizer's weight decay; how many. Called when the
    model is compiled and again when a checkpoint is loaded (a .keras file does not keep the exclusions)."""
    keep = set(train.optimizer.no_decay)
    if not keep:
        return 0
    spared = []
    for layer in model.layers:
        kind = type(layer).__name__
        if "norm" in keep and kind in ("BatchNormalization", "LayerNormalization"):
            spared += layer.trainable_weights
            continue
        if "depthwise" in keep:
            spared += [w for w in (getattr(layer, "depthwise_kernel", None),
                                   layer.kernel if kind == "DepthwiseConv2D" else None) if w is not None]
        if "bias" in keep and getattr(layer, "bias", None) is not None:
            spared.append(layer.bias)
    model.optimizer.exclude_from_weight_decay(var_list=spared)
    return len(spared)


def jit(keras, opts: Options) -> bool:
    """XLA as asked on TensorFlow (off by default: slower on CPU here) and PyTorch (torch.compile); always on JAX,
    whose steps are compiled or run op by op in Python."""
    return True if keras.backend.backend() == "jax" else opts.jit_compile


# -------------------------------------------------------------------------------------- the data
def split(data, train, opts: Options):
    """(x, y, x_val, y_val): the training images and the validation images. `validation: test` validates on the
    test split; a fraction or a count holds that many training images out, chosen by a seeded permutation
    (`SPLIT_SEED`), in their original order, so that every run on the same data validates on the same images."""
    x, y = data.x_train, data.y_train
    if train.validation == "test":
        xv, yv = data.x_test, data.y_test
    else:
        k = held_out(train.validation, len(x))
        held = np.zeros(len(x), bool)
        held[np.random.default_rng(SPLIT_SEED).permutation(len(x))[:k]] = True
        x, y, xv, yv = x[~held], y[~held], x[held], y[held]
    if opts.train_limit:
        x, y = x[:opts.train_limit], y[:opts.train_limit]
    if opts.val_limit:
        xv, yv = xv[:opts.val_limit], yv[:opts.val_limit]
    return x, y, xv, yv


def held_out(validation: float | int, images: int) -> int:
    """How many of `images` training images a fraction or count holds out; TrainError when none or all."""
    k = validation if isinstance(validation, int) else int(round(images * validation))
    if k < 1 or k >= images:
        raise TrainError(f"validation {validation} leaves no training or no validation images (of {images:,})")
    return k


def split_words(validation, images: int) -> str:
    """Where the validation figures come from, as the epoch lines and `metrics.json` say it."""
    return ("the test split" if validation == "test" else f"{images:,} images held out of the training split")


def check_fits(spec: Spec, data, where: str | None = None) -> None:
    """The spec's input and classes must be the data's (CIFAR-10: 32x32x3, 10 classes), before anything is
    written. `where` names the spec in the message."""
    shape = tuple(data.x_train.shape[1:])
    name = where or spec.name
    if tuple(spec.input) != shape:
        hint = "" if spec.input[2] != shape[2] or spec.train.resize else \
            "; train.resize: true resizes the images to the input"
        raise TrainError(f"{name}: input {dims(spec.input)}, but the data's images are {dims(shape)} "
                         f"(e.g. {data.example()}){hint}")
    if spec.classes != len(data.class_names):
        names = ", ".join(data.class_names[:12]) + (", ..." if len(data.class_names) > 12 else "")
        raise TrainError(f"{name}: classes: {spec.classes}, but the data has {len(data.class_names)} classes "
                         f"({names})")


def _data_record(data, fingerprint_now: dict | None = None) -> dict:
    return {"source": os.path.abspath(data.source), "fingerprint": fingerprint_now or fingerprint(data),
            "layout": data.layout, "test_split": data.split, "classes": list(data.class_names),
            "resized": data.resized, "streamed": data.streamed}


# ------------------------------------------------------------------------------------ start, resume
def train(report: Report, opts: Options, on_epoch=None) -> Result:
    """Start a run of a checked spec (`training_report`). `on_epoch(epoch, row)` is called after each committed
    epoch (a sweep reports to its pruner there); when it returns True the run stops, with status "pruned"."""
    spec = report.spec
    if opts.seed is None:
        opts.seed = spec.train.seed if spec.train.seed is not None else 0
    data = load_data(opts.data, stream=opts.stream, **options_of(spec))
    check_fits(spec, data, opts.spec)  # before anything is written: a refused run leaves no folder behind
    note = skipped_note(data)
    if note:
        print(note, file=sys.stderr, flush=True)
    if spec.train.validation != "test":  # the same: a split that leaves nothing is refused here
        held_out(spec.train.validation, len(data.x_train))
    keras = import_keras()
    check_strategy(keras, opts.strategy)
    # absolute while it runs; the record keeps them relative to the run folder (rundir.write_record)
    opts.spec = os.path.abspath(opts.spec) if opts.spec else None
    opts.data = os.path.abspath(opts.data) if opts.data else None
    run = rundir.new_run_dir(opts.out, spec.name)
    with hold(run):
        rundir.write_spec(run, spec)
        rundir.write_record(run, {"options": asdict(opts), "sepspec": __version__, "backend": backend(keras),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "data": _data_record(data)})
        return Result(_loop(run, report, opts, None, data, on_epoch), run)


def resume(run: str, epochs: int | None = None, *, data: str | None = None,
           spec_path: str | None = None) -> Result:
    """Continue an interrupted run from its last completed epoch, with the settings recorded in it.

    `epochs` changes the run's length (e.g. to train a finished run further); only for schedules that do not
    depend on the total, so that the epochs already trained keep the rates they had. `data` says where the
    data set is now (a moved run or data set); it must be the data set the run started with. `spec_path`, if
    given, must be the run's own spec file.
    """
    if not rundir.is_run(run):
        raise TrainError(f"{run}: not a run directory (no {rundir.RECORD} or {rundir.SPEC})")
    with hold(run):  # before anything in the run is read or settled
        return _resume(run, epochs, data, spec_path)


def _resume(run: str, epochs: int | None, data: str | None, spec_path: str | None) -> Result:
    recorded = rundir.read_record(run)
    try:
        # a run recorded before the fast layers existed goes on as it started (its dropout masks)
        opts = Options(**{"fast_layers": False, **recorded["options"]})
        opts.spec, opts.data = (os.path.abspath(p) if p else None for p in (opts.spec, opts.data))
    except TypeError as e:
        raise TrainError(f"{os.path.join(run, rundir.RECORD)}: damaged, cannot resume "
                         f"({type(e).__name__}: {e})") from None
    if spec_path is not None and not (opts.spec and os.path.realpath(spec_path) == os.path.realpath(opts.spec)):
        raise TrainError(f"{spec_path} is not the spec of {run} (it was started from {opts.spec}); give only "
                         f"--resume {run}, or train {spec_path} as a new run")
    spec = rundir.read_spec(run)
    state = rundir.read_state(run)
    done = state["epoch"] if state else 0
    changed = False
    if epochs is not None and epochs != spec.train.epochs:
        if spec.train.schedule.name in BY_LENGTH:
            raise TrainError(f"{run}: --epochs cannot change the length of a run with the {spec.train.schedule.name} "
                             f"schedule (its rates depend on the total number of epochs)")
        if epochs < max(done, 1):
            raise TrainError(f"{run}: --epochs {epochs} is fewer than the {done} epochs already trained")
        spec = load_source(with_overrides(spec.source, [f"train.epochs={epochs}"]))
        opts.epochs, changed = epochs, True
    if done >= spec.train.epochs:
        raise TrainError(f"{run}: already finished ({done} of {spec.train.epochs} epochs; "
                         f"--resume {run} --epochs N trains it further)")
    dataset = rundir.run_data(run, data, opts.stream)
    before, now = (recorded.get("data") or {}).get("fingerprint"), fingerprint(dataset)
    if before is None:
        print(f"warning: {run} was recorded without a fingerprint of its data set (before sepspec 0.2); "
              f"the data at {dataset.source} could not be checked against it", file=sys.stderr, flush=True)
    else:
        diff = fingerprint_difference(before, now)
        if diff:
            raise TrainError(f"{dataset.source} is not the data set {run} was trained on: {diff}")
    if data is not None and opts.data != os.path.abspath(data):
        opts.data, changed = os.path.abspath(data), True
    # Keras last: every refusal above costs no TensorFlow start-up
    trained_on, here = recorded.get("backend", "tensorflow"), backend(import_keras())
    if trained_on != here:
        raise TrainError(f"{run} was trained on the {trained_on} backend and Keras runs on {here} here; resume "
                         f"it with KERAS_BACKEND={trained_on} (each backend draws its own augmentation, so a run "
                         f"keeps one)")
    if changed:
        rundir.write_spec(run, spec)
        rundir.write_record(run, {**recorded, "options": asdict(opts), "data": _data_record(dataset, now)})
    report = check_spec(spec, os.path.join(run, rundir.SPEC)).raise_errors().report
    return Result(_loop(run, report, opts, state, dataset), run)


def _loop(run: str, report: Report, opts: Options, state: dict | None, data, on_epoch=None) -> str:
    """Train from `state` to the end (or a stop); the status. Keras's global dtype policy is left as it was."""
    precision = import_keras().mixed_precision
    policy = precision.global_policy()
    try:
        training = Training(run, report, opts, state, data)
        status = training.epochs(on_epoch)
        training.finish(status)
        return status
    finally:
        precision.set_global_policy(policy)


# ------------------------------------------------------------------------------------- the steps
class Training:
    """One process's training of one run: what set-up made, and the steps of an epoch."""

    def __init__(self, run: str, report: Report, opts: Options, state: dict | None, data):
        self.run, self.report, self.opts, self.data = run, report, opts, data
        self.spec, self.t = report.spec, report.spec.train
        self.keras = keras = import_keras()
        tf = tensorflow(keras)  # None on the JAX and PyTorch backends
        if tf is not None:
            split_cpu(tf)
        else:
            import_tensorflow_if_installed()
        keras.utils.set_random_seed(opts.seed)
        t = self.t
        self.x, self.y, self.xv, self.yv = split(data, t, opts)
        self.mean, self.std = (channel_stats(self.x) if t.normalize == "per_channel"
                               else ([0.0] * data.x_train.shape[-1], [1.0] * data.x_train.shape[-1]))
        policy = set_precision(keras, opts.precision)
        self._warn_jit(tf)
        strategy = make_strategy(keras, opts.strategy)
        with strategy.scope():
            if state:
                self.model = rundir.load_model(os.path.join(run, state["checkpoint"]), optimizer=True)
                spare_from_decay(self.model, t)
            else:
                self.model = compile_model(keras, report, t, mixed=policy != "float32", jit_compile=jit(keras, opts))
        self.fast = fast_training(self.model) if opts.fast_layers else {"batch_norm": 0, "dropout": 0}
        self._restore_random_state(state)
        self.average = self._average(state)
        self.rows = [r for r in rundir.read_history(os.path.join(run, rundir.HISTORY))
                     if state and r["epoch"] <= state["epoch"]]
        self.done = state["epoch"] if state else 0  # epochs committed
        self.plateau = state.get("plateau", {}) if state else {}
        self.best = state.get("best", {"val_accuracy": -1.0, "epoch": 0}) if state else {"val_accuracy": -1.0,
                                                                                          "epoch": 0}
        self.split = split_words(t.validation, len(self.xv))
        self.info = self._info(strategy, policy)
        self.steps = math.ceil(len(self.x) / t.batch_size)
        self.board = Board(run, len(self.x)) if t.tensorboard and Board.available() else None
        if self.board is not None:
            if not state and tf is not None:
                self.board.graph(self.model)
            self.board.log(self.rows)  # an epoch committed but not yet logged when the run stopped
        needs_arrays = t.tta != "none" or self.average is not None  # scored through predict, normalised once
        self.xv_normal = normalize(self.xv, self.mean, self.std) if needs_arrays else None
        self.val_ds = dataset(self.xv, self.yv, batch=t.batch_size, classes=self.spec.classes, mean=self.mean,
                              std=self.std, seed=opts.seed, epoch=0, training=False)
        print(f"{self.spec.name}: {report.params:,} params, {len(self.x):,} training images, validation on "
              f"{self.split}, batch {t.batch_size}, {t.epochs} epoch{'s' if t.epochs != 1 else ''}, "
              f"{self.info['device']}, run {run}", flush=True)
        if self.done:
            print(f"resuming after epoch {self.done}", flush=True)

    def _info(self, strategy, policy) -> dict:
        """What metrics.json says about the run besides its figures."""
        keras, opts, t, report = self.keras, self.opts, self.t, self.report
        return {"spec": self.spec.name, "params": report.params, "trainable": report.trainable,
                "non_trainable": report.non_trainable, "train_images": int(len(self.x)),
                "val_images": int(len(self.xv)), "validation": t.validation, "validation_split": self.split,
                "data": self.data.source, "device": device_name(keras), "strategy": opts.strategy,
                "replicas": strategy.num_replicas_in_sync, "precision": policy, "jit_compile": jit(keras, opts),
                "backend": keras.backend.backend(), "seed": opts.seed, "fast_layers": self.fast,
                "versions": {"sepspec": __version__, **versions(keras), "keras": keras.__version__,
                             "python": platform.python_version()}}

    def _warn_jit(self, tf) -> None:
        if (self.opts.jit_compile and tf is not None and not tf.config.list_physical_devices("GPU")
                and any(isinstance(r.layer, (L.SeparableConv2D, L.DepthwiseConv2D)) for r in self.report.rows)):
            print("warning: --jit-compile on CPU: XLA was measured more than 15x slower for depthwise convolutions "
                  "here; leave it off unless you are measuring that", file=sys.stderr, flush=True)

    def _restore_random_state(self, state) -> None:
        if self.keras.backend.backend() == "torch":
            _seed_torch_dropout(self.model)
        if state and state.get("rng"):  # the dropout masks go on as an uninterrupted run draws them
            _restore_rng(self.model, state["rng"])

    def _average(self, state):
        if not self.t.ema:
            return None
        average = weight_average(self.keras, self.model, self.t.ema)
        if state and state.get("ema"):
            try:
                average.load(os.path.join(self.run, state["ema"]))
            except (OSError, ValueError, KeyError) as e:
                raise TrainError(f"{self.run}: the weight average {state['ema']} cannot be read ({e})") from None
        return average

    # -- per epoch
    def epochs(self, on_epoch=None) -> str:
        """Every epoch after the last committed one to the end, each committed; the status at the end. SIGTERM
        and SIGINT stop between two instants of the commit protocol like Ctrl-C: the run stays resumable."""
        with _stop_signals():
            try:
                for e in range(self.done, self.t.epochs):
                    row = self.epoch(e)
                    if row is None:
                        return "nan"
                    self.commit(row)
                    if on_epoch is not None and on_epoch(e + 1, row) and e + 1 < self.t.epochs:
                        return "pruned"
                return "finished"
            except KeyboardInterrupt:
                print(f"\ninterrupted; the run is saved up to epoch {self.rows[-1]['epoch'] if self.rows else 0}. "
                      f"Resume with:\n  sepspec train --resume {self.run}", file=sys.stderr, flush=True)
                return "interrupted"

    def epoch(self, e: int) -> dict | None:
        """Fit one pass (epoch index e, from 0) and validate; the history row, or None when the loss is not finite.
        A new best model is saved (`rundir.best_file`) for the commit to name."""
        t, keras = self.t, self.keras
        lr = lr_at(t, e, self.plateau, 0, self.steps)  # per step: the rate of the epoch's first step
        self.model.optimizer.learning_rate.assign(lr)
        stepwise = ([keras.callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs: self.model.optimizer
                                                    .learning_rate.assign(lr_at(t, e, None, b, self.steps)))]
                    if per_step(t) else [])
        ds = dataset(self.x, self.y, batch=t.batch_size, classes=self.spec.classes, mean=self.mean, std=self.std,
                     seed=self.opts.seed, epoch=e, training=True, aug=t.augment)
        progress = _Progress(keras, e + 1, t.epochs, self.steps)
        t0 = time.perf_counter()
        h = self.model.fit(ds, epochs=e + 1, initial_epoch=e, verbose=0, shuffle=False,
                           callbacks=stepwise + [progress.cb, keras.callbacks.TerminateOnNaN()]
                           + ([self.average.callback(keras)] if self.average else []))
        t_train = time.perf_counter() - t0
        progress.clear()
        with self.average.swapped_in() if self.average else contextlib.nullcontext():  # validate the average
            val, extra = self.validate(self.val_ds, self.xv_normal, self.yv, "_no_tta")
            self.improved = val["accuracy"] > self.best["val_accuracy"]  # False for NaN
            if self.improved:
                rundir.save_model(self.model, os.path.join(self.run, rundir.best_file(e + 1)))
        if self.average is not None:  # the live weights' figures, for the ablation in the history
            live, live_extra = self.validate(self.val_ds, self.xv_normal, self.yv, "_plain")
            extra.update({"_no_ema": live["accuracy"], **live_extra})
        row = {"epoch": e + 1, "loss": float(h.history["loss"][-1]) if h.history.get("loss") else float("nan"),
               "accuracy": float(h.history["accuracy"][-1]) if h.history.get("accuracy") else float("nan"),
               "val_loss": float(val["loss"]), "val_accuracy": float(val["accuracy"]), "lr": float(lr),
               "seconds": round(time.perf_counter() - t0, 2), "train_seconds": round(t_train, 2),
               **{f"val_accuracy{k}": v for k, v in extra.items()}}
        if not all(math.isfinite(row[k]) for k in ("loss", "val_loss")):
            where = (f"The best model so far is kept in {os.path.join(self.run, rundir.BEST)}" if self.best["epoch"]
                     else "no epoch finished well enough to keep a model. Try a lower learning rate.")
            print(f"Epoch {e + 1}/{t.epochs}: the loss became NaN/inf; stopping (lr {lr:.6g}); {where}",
                  file=sys.stderr, flush=True)
            return None
        print(f"Epoch {e + 1}/{t.epochs} - {row['seconds']:.0f}s - loss: {row['loss']:.4f} - accuracy: "
              f"{row['accuracy']:.4f} - val_loss: {row['val_loss']:.4f} - val_accuracy: {row['val_accuracy']:.4f} "
              f"({rundir.split_name(t.validation)}) - lr: {lr:.6g}", flush=True)
        return row

    def validate(self, ds, x_normal, y, untta: str) -> tuple[dict, dict]:
        """The loss and accuracy as the recipe defines them (its `tta` views), and, where TTA is on, the
        accuracy without it under the history suffix `untta`. Through `predict` whenever the recipe has TTA or
        an average (the loss is then plain cross-entropy, without label smoothing), else Keras's `evaluate`."""
        if x_normal is None:
            return self.model.evaluate(ds, verbose=0, return_dict=True), {}
        p = by_view(self.model, x_normal, self.t.tta, self.t.batch_size)
        extra = {untta: scores(p["none"], y)["accuracy"]} if self.t.tta != "none" else {}
        if self.t.tta == "flip_shift" and untta == "_no_tta":  # the mirror alone, for the ablation
            extra["_flip_only"] = scores(p["flip"], y)["accuracy"]
        return scores(p[self.t.tta], y), extra

    def commit(self, row: dict) -> None:
        epoch = self.done = row["epoch"]
        self.rows.append(row)
        self.plateau = plateau_update(self.t, self.plateau, row["val_loss"])
        if self.improved:
            self.best = {"val_accuracy": row["val_accuracy"], "epoch": epoch, "file": rundir.best_file(epoch)}
        status = "running" if epoch < self.t.epochs else "finished"
        rundir.commit(self.run, epoch, self.model, rows=self.rows,
                      metrics=self.metrics(status), title=f"{self.spec.name} ({self.run})", average=self.average,
                      plateau=self.plateau, best=self.best, rng=_rng_state(self.model))
        if self.board is not None:
            self.board.log(self.rows)

    # -- at the end
    def finish(self, status: str) -> None:
        """The final metrics; for a finished run also the test figures: the final epoch's model (as validation
        sees it: the average if any, flips if `tta`) and `best.keras`, on the test split."""
        test = self.test_figures() if status == "finished" else None
        rundir.write_metrics(self.run, self.metrics(status, test))
        if self.board is not None:
            if test:
                self.board.test(test)
            self.board.close()
        if status == "finished":
            b = self.best
            print(f"best val_accuracy {b['val_accuracy']:.4f} at epoch {b['epoch']} ({self.split}); test accuracy "
                  f"(the test split, {test['images']:,} images): final epoch {test['final_accuracy']:.4f}, "
                  f"best.keras {test['best_accuracy']:.4f}; run saved in {self.run}", flush=True)
        note = lagging_statistics(self.report, self.rows, self.steps)
        if note:
            print(f"note: {note}", flush=True)

    def test_figures(self) -> dict:
        with self.average.swapped_in() if self.average else contextlib.nullcontext():
            p = test_predictions(self.model, self.data, (self.mean, self.std), self.t.tta)
        final = scores(p, self.data.y_test)
        last = self.rows[-1]["epoch"]
        # best.keras holds the very weights scored above when the final epoch was the best one
        best = (final["accuracy"] if self.best["epoch"] == last else
                test_accuracy(self.run, rundir.BEST, self.t.tta, self.data))
        return {"images": int(len(self.data.y_test)), "tta": self.t.tta, "final_accuracy": final["accuracy"],
                "final_epoch": last, "best_accuracy": best, "best_epoch": self.best["epoch"]}

    def metrics(self, status: str, test: dict | None = None) -> dict:
        rows, best = self.rows, self.best
        secs = [r["seconds"] for r in rows]
        train_secs = [r["train_seconds"] for r in rows]
        last = rows[-1] if rows else {}
        return {**self.info, "status": status, "epochs_planned": self.t.epochs, "epochs_completed": len(rows),
                "best_val_accuracy": best["val_accuracy"] if best["epoch"] else None,
                "best_epoch": best["epoch"] or None,
                "final_val_accuracy": last.get("val_accuracy"), "final_epoch": last.get("epoch"),
                "test": test,
                "seconds_per_epoch": float(np.median(secs)) if secs else None,
                "images_per_second": round(self.info["train_images"] / float(np.median(train_secs)), 1)
                if train_secs else None,
                "normalization": {"mean": self.mean, "std": self.std}}


# -------------------------------------------------------------------------------------- helpers
def lagging_statistics(report: Report, rows: list[dict], steps_per_epoch: int) -> str | None:
    """Why a short run validates far below its training accuracy, said where the user sees it: validation uses the
    batch norms' moving statistics, which at a momentum of 0.99 still carry the first steps' (very different)
    weights after an epoch or two (`specs/base.yaml`, the seed's recipe: 18.6% validation against 45.2% training
    after epoch 1, 63.9% against 66.5% after epoch 3: results/base-50ep). None when that is not the case."""
    momenta = [r.layer.momentum for r in report.rows if isinstance(r.layer, L.BatchNormalization)]
    if not momenta or not rows or max(momenta) < 0.99:
        return None
    last = rows[-1]
    if last.get("val_accuracy") is None or last["val_accuracy"] >= 0.75 * last["accuracy"]:
        return None
    steps = len(rows) * steps_per_epoch
    return (f"validation accuracy {last['val_accuracy']:.4f} trails training accuracy {last['accuracy']:.4f}: "
            f"validation uses the batch norms' moving statistics (momentum {max(momenta):g}), which after {steps:,} "
            f"steps still weigh the first steps' weights ({max(momenta):g}^{steps:,} = {max(momenta) ** steps:.2f} of "
            "their start); they catch up within a few epochs, as the full run shows (a short run of your own can set "
            "a lower bn_momentum in the spec's defaults)")

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


@contextlib.contextmanager
def _stop_signals():
    """SIGTERM stops like Ctrl-C; and a background shell (nohup ... &) starts us with SIGINT ignored, yet
    `kill -INT` should still stop cleanly."""
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def _raise_interrupt(*_):
    raise KeyboardInterrupt


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
