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
import sys
import time
from dataclasses import asdict

import numpy as np

from .. import layers as L
from ..checked import check_spec
from ..data.read import fingerprint, fingerprint_difference, load_data, options_of, skipped_note
from ..graph.analysis import Report
from ..lazy import import_keras, import_tensorflow_if_installed
from ..spec.edit import with_overrides
from ..spec.load import Spec, load_source, resolve, to_yaml
from ..spec.source import parse
from ..version import __version__
from . import rundir
from .average import weight_average
from .board import Board
from .compiled import build_state, compile_model, jit, spare_from_decay
from .devices import (
    backend,
    check_shares,
    check_strategy,
    check_tf_config,
    compilation_cache,
    device_name,
    make_strategy,
    set_precision,
    split_cpu,
    tensorflow,
    versions,
)
from .fastpath import fast_training
from .lock import hold
from .options import Options, Result, TrainError
from .pipeline import dataset, input_stats, normalize
from .predict import scores
from .schedule import BY_LENGTH, in_step, lr_at, per_step, plateau_update
from .scoring import CHUNK, accuracy_on_test_split, predictions_on_test_split, views
from .split import check_fits, held_out, split, split_words
from .terminal import Progress, lagging_statistics, stop_signals


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


def _data_record(data, fingerprint_now: dict | None = None) -> dict:
    return {"source": os.path.abspath(data.source), "fingerprint": fingerprint_now or fingerprint(data),
            "layout": data.layout, "test_split": data.split, "classes": list(data.class_names),
            "resized": data.resized, "streamed": data.streamed}


# ------------------------------------------------------------------------------------ start, resume
def train(report: Report, opts: Options, on_epoch=None) -> Result:
    """Start a run of a checked spec (`training_report`). `on_epoch(epoch, row)` is called after each committed
    epoch (a sweep reports to its pruner there); when it returns True the run stops, with status "pruned"."""
    data = prepare(report, opts)
    run = rundir.new_run_dir(opts.out, report.spec.name)
    with hold(run):
        start_record(run, report.spec, opts, data)
        return Result(_loop(run, report, opts, None, data, on_epoch), run)


def prepare(report: Report, opts: Options):
    """Every check of a new run that needs no run folder, and its data set: a refused run leaves nothing behind.
    Settles `opts.seed` and makes its paths absolute (the record keeps them relative to the run folder)."""
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
    check_tf_config(opts.strategy)
    keras = import_keras()
    check_strategy(keras, opts.strategy, spec.train.batch_size)
    if opts.strategy == "data":
        _check_shares(keras, spec.train, opts, data)
    # absolute while it runs; the record keeps them relative to the run folder (rundir.write_record)
    opts.spec = os.path.abspath(opts.spec) if opts.spec else None
    opts.data = os.path.abspath(opts.data) if opts.data else None
    return data


def start_record(run: str, spec: Spec, opts: Options, data, **more) -> None:
    """A new run folder's spec and record (run.json; `more` adds to it)."""
    rundir.write_spec(run, spec)
    rundir.write_record(run, {"options": asdict(opts), "sepspec": __version__, "backend": backend(import_keras()),
                              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "data": _data_record(data), **more})


def _check_shares(keras, t, opts: Options, data) -> None:
    check_shares(keras, len(split(data, t, opts)[0]), t.batch_size)


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
    report, opts, state, dataset = reopen(run, epochs, data, spec_path)
    return Result(_loop(run, report, opts, state, dataset), run)


def reopen(run: str, epochs: int | None, data: str | None, spec_path: str | None, loaded=None):
    """Every check of a resumed run (held by the caller), settled into (report, options, state, data set).
    `loaded`: the data set already loaded for another run on the same data (it is still checked against this
    run's fingerprint)."""
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
    dataset = loaded if loaded is not None else rundir.run_data(run, data, opts.stream)
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
    check_tf_config(opts.strategy)
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
    return report, opts, state, dataset


def _loop(run: str, report: Report, opts: Options, state: dict | None, data, on_epoch=None) -> str:
    """Train from `state` to the end (or a stop); the status. Keras's global dtype policy and distribution are left
    as they were."""
    with keras_globals_kept():
        training = Training(run, report, opts, state, data)
        status = training.epochs(on_epoch)
        training.finish(status)
        return status


@contextlib.contextmanager
def keras_globals_kept():
    """Keras's global dtype policy and distribution as they were after the block (a training sets both)."""
    keras = import_keras()
    policy, distribution = keras.mixed_precision.global_policy(), keras.distribution.distribution()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)
        keras.distribution.set_distribution(distribution)


# ------------------------------------------------------------------------------------- the steps
class Training:
    """One run's training: what set-up made, and the steps of an epoch. For several seeds stepped together
    (`stacked.Stacked`): `scope`, the Keras name scope of the model's variables, which keeps them apart from the
    other seeds', and the prefix of every line the run prints; `like`, a seed already set up on the same data,
    whose split, normalisation and validation images this one takes instead of making its own copies."""

    def __init__(self, run: str, report: Report, opts: Options, state: dict | None, data, scope: str = "",
                 like: Training | None = None):
        self.run, self.report, self.opts, self.data = run, report, opts, data
        self.scope, self.prefix = scope, f"[{scope}] " if scope else ""
        self.spec, self.t = report.spec, report.spec.train
        self.keras = keras = import_keras()
        tf = tensorflow(keras)  # None on the JAX and PyTorch backends
        if tf is not None:
            split_cpu(tf)
        else:
            import_tensorflow_if_installed()
        keras.utils.set_random_seed(opts.seed)
        self.cache = compilation_cache(keras)
        t = self.t
        if like is not None:  # one copy of the images for all seeds (on JAX, one on the device)
            self.x, self.y, self.xv, self.yv, self.mean, self.std = (like.x, like.y, like.xv, like.yv, like.mean,
                                                                     like.std)
        else:
            self.x, self.y, self.xv, self.yv = split(data, t, opts)
            self.mean, self.std = input_stats(t.normalize, self.x)
        policy = set_precision(keras, opts.precision)
        self.steps = math.ceil(len(self.x) / t.batch_size)
        self._warn_jit(tf)
        strategy = make_strategy(keras, opts.strategy)
        with strategy.scope(), keras.name_scope(scope) if scope else contextlib.nullcontext():
            if state:
                self.model = rundir.load_model(os.path.join(run, state["checkpoint"]), optimizer=True)
                spare_from_decay(self.model, t)
                build_state(keras, self.model)
            else:
                self.model = compile_model(keras, report, t, mixed=policy != "float32", jit_compile=jit(keras, opts),
                                           steps=self.steps)
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
        self.board = Board(run, len(self.x)) if t.tensorboard and Board.available() else None
        if self.board is not None:
            if not state and tf is not None:
                self.board.graph(self.model)
            self.board.log(self.rows)  # an epoch committed but not yet logged when the run stopped
        # what `views` scores each epoch: (images, normalisation still to apply). Normalised here once when in
        # memory and at most a chunk; else decoded and normalised a chunk at a time each epoch (no float copy of a
        # large validation split held through the run)
        if like is not None:
            self.val = like.val
        elif isinstance(self.xv, np.ndarray) and len(self.xv) <= CHUNK:
            self.val = (normalize(self.xv, self.mean, self.std), None)
        else:
            self.val = (self.xv, (self.mean, self.std))
        self.say(f"{self.spec.name}: {report.params:,} params, {len(self.x):,} training images, validation on "
                 f"{self.split}, batch {t.batch_size}, {t.epochs} epoch{'s' if t.epochs != 1 else ''}, "
                 f"{self.info['device']}, run {run}")
        if self.done:
            self.say(f"resuming after epoch {self.done}")

    def say(self, line: str, err: bool = False) -> None:
        print(self.prefix + line, file=sys.stderr if err else sys.stdout, flush=True)

    def _info(self, strategy, policy) -> dict:
        """What metrics.json says about the run besides its figures."""
        keras, opts, t, report = self.keras, self.opts, self.t, self.report
        return {"spec": self.spec.name, "params": report.params, "trainable": report.trainable,
                "non_trainable": report.non_trainable, "train_images": int(len(self.x)),
                "val_images": int(len(self.xv)), "validation": t.validation, "validation_split": self.split,
                "data": self.data.source, "device": device_name(keras), "strategy": opts.strategy,
                "replicas": strategy.num_replicas_in_sync, "precision": policy, "jit_compile": jit(keras, opts),
                "compilation_cache": self.cache is not None,
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
    def epochs(self, on_epoch=None, until: int | None = None) -> str:
        """Every epoch after the last committed one to the end (or to epoch `until`), each committed; the status
        at the end ("running" at `until` before the end). SIGTERM and SIGINT stop between two instants of the
        commit protocol like Ctrl-C: the run stays resumable."""
        with stop_signals():
            try:
                for e in range(self.done, min(self.t.epochs, until or self.t.epochs)):
                    trained = self.epoch(e)
                    if trained is None:
                        return "nan"
                    row, improved = trained
                    self.commit(row, improved)
                    if on_epoch is not None and on_epoch(e + 1, row) and e + 1 < self.t.epochs:
                        return "pruned"
                return "finished" if self.done >= self.t.epochs else "running"
            except KeyboardInterrupt:
                print(f"\n{self.prefix}interrupted; the run is saved up to epoch {self.done}. Resume with:\n"
                      f"  sepspec train --resume {self.run}", file=sys.stderr, flush=True)
                return "interrupted"

    def epoch(self, e: int) -> tuple[dict, bool] | None:
        """Fit one pass (epoch index e, from 0) and validate: (the history row, whether it is a new best), or None
        when the loss is not finite. A new best model is saved (`rundir.best_file`) for the commit to name."""
        lr, stepwise = self.rate(e, self.model.optimizer)
        ds = self.batches(e)
        progress = Progress(self.keras, e + 1, self.t.epochs, self.steps)
        t0 = time.perf_counter()
        h = self.model.fit(ds, epochs=e + 1, initial_epoch=e, verbose=0, shuffle=False,
                           callbacks=self.callbacks(stepwise, progress))
        t_train = time.perf_counter() - t0
        progress.clear()
        return self.scored(e, lr, last(h, "loss"), last(h, "accuracy"), t_train)

    def rate(self, e: int, optimizer) -> tuple[float, list]:
        """Epoch e's learning rate (per step: its first step's) set on `optimizer`, and the callbacks that set it
        per step, unless the compiled step computes it (`steprate.StepRate`)."""
        t, keras = self.t, self.keras
        lr = lr_at(t, e, self.plateau, 0, self.steps)
        if in_step(keras, t):
            return lr, []
        optimizer.learning_rate.assign(lr)
        return lr, ([keras.callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs: optimizer.learning_rate
                                                    .assign(lr_at(t, e, None, b, self.steps)))] if per_step(t) else [])

    def batches(self, e: int):
        """Epoch e's training batches, in this run's seeded order and augmentation."""
        t = self.t
        return dataset(self.x, self.y, batch=t.batch_size, classes=self.spec.classes, mean=self.mean, std=self.std,
                       seed=self.opts.seed, epoch=e, aug=t.augment)

    def scored(self, e: int, lr: float, loss: float, accuracy: float, t_train: float) -> tuple[dict, bool] | None:
        """Epoch e after its pass (`t_train` seconds; its training loss and accuracy): validated, as `epoch`
        returns it."""
        t, t0 = self.t, time.perf_counter()
        with self.average.swapped_in() if self.average else contextlib.nullcontext():  # validate the average
            val, extra = self.validate("_no_tta")
            improved = val["accuracy"] > self.best["val_accuracy"]  # False for NaN
            if improved:
                rundir.save_model(self.model, os.path.join(self.run, rundir.best_file(e + 1)))
        if self.average is not None:  # the live weights' figures, for the ablation in the history
            live, live_extra = self.validate("_plain")
            extra.update({"_no_ema": live["accuracy"], **live_extra})
        row = {"epoch": e + 1, "loss": loss, "accuracy": accuracy,
               "val_loss": float(val["loss"]), "val_accuracy": float(val["accuracy"]), "lr": float(lr),
               "seconds": round(t_train + time.perf_counter() - t0, 2), "train_seconds": round(t_train, 2),
               **{f"val_accuracy{k}": v for k, v in extra.items()}}
        if not all(math.isfinite(row[k]) for k in ("loss", "val_loss")):
            where = (f"The best model so far is kept in {os.path.join(self.run, rundir.BEST)}" if self.best["epoch"]
                     else "no epoch finished well enough to keep a model. Try a lower learning rate.")
            self.say(f"Epoch {e + 1}/{t.epochs}: the loss became NaN/inf; stopping (lr {lr:.6g}); {where}", err=True)
            return None
        self.say(f"Epoch {e + 1}/{t.epochs} - {row['seconds']:.0f}s - loss: {row['loss']:.4f} - accuracy: "
                 f"{row['accuracy']:.4f} - val_loss: {row['val_loss']:.4f} - val_accuracy: {row['val_accuracy']:.4f} "
                 f"({rundir.split_name(t.validation)}) - lr: {lr:.6g}")
        return row, improved

    def callbacks(self, stepwise: list, progress: Progress) -> list:
        """The epoch's callbacks. On JAX and PyTorch Keras runs batch-end callbacks in a thread of their own, so
        that the next step is dispatched while the last one computes, only when each is marked `async_safe` or has
        no batch-end hook: otherwise it waits for every step's loss. The progress line and the NaN stop only read
        the loss; the weight average needs each step's weights, so a run with one stays synchronous."""
        stop = self.keras.callbacks.TerminateOnNaN()
        stop.async_safe = True  # reads the loss and sets stop_training: at worst it stops a step later
        return (stepwise + ([progress.cb] if progress.cb else []) + [stop]
                + ([self.average.callback(self.keras)] if self.average else []))

    def validate(self, untta: str) -> tuple[dict, dict]:
        """The loss (the recipe's, label smoothing included) and accuracy of the validation images as the recipe
        scores them (its `tta` views), and, where TTA is on, the accuracy without it under the history suffix
        `untta`. Through `predict` in batches of one shape, shared with the test split's scores at the end."""
        t, y = self.t, self.yv
        p = views(self.model, *self.val, t.tta, t.batch_size)
        extra = {untta: scores(p["none"], y)["accuracy"]} if t.tta != "none" else {}
        if t.tta == "flip_shift" and untta == "_no_tta":  # the mirror alone, for the ablation
            extra["_flip_only"] = scores(p["flip"], y)["accuracy"]
        return scores(p[t.tta], y, t.label_smoothing), extra

    def commit(self, row: dict, improved: bool) -> None:
        """The epoch's row into the history, the schedule's state and the best model forward, the run folder
        committed to it."""
        epoch = self.done = row["epoch"]
        self.rows.append(row)
        self.plateau = plateau_update(self.t, self.plateau, row["val_loss"])
        if improved:
            self.best = {"val_accuracy": row["val_accuracy"], "epoch": epoch, "file": rundir.best_file(epoch)}
        status = "running" if epoch < self.t.epochs else "finished"
        rundir.commit(self.run, epoch, self.model, rows=self.rows,
                      metrics=self.metrics(status), title=self._title, average=self.average,
                      plateau=self.plateau, best=self.best, rng=_rng_state(self.model))
        if self.board is not None:
            self.board.log(self.rows)

    @property
    def _title(self) -> str:
        return f"{self.spec.name} ({self.run})"

    # -- at the end
    def finish(self, status: str) -> None:
        """The final metrics; for a finished run also the test figures: the final epoch's model (as validation
        sees it: the average if any, flips if `tta`) and `best.keras`, on the test split."""
        test = self.test_figures() if status == "finished" else None
        rundir.write_metrics(self.run, self.metrics(status, test))
        if status != "finished" and self.rows:  # stopped early: the last commit may have left the drawing older
            rundir.curves(self.run, self.rows, self._title)
        if self.board is not None:
            if test:
                self.board.test(test)
            self.board.close()
        if status == "finished":
            b = self.best
            self.say(f"best val_accuracy {b['val_accuracy']:.4f} at epoch {b['epoch']} ({self.split}); test accuracy "
                  f"(the test split, {test['images']:,} images): final epoch {test['final_accuracy']:.4f}, "
                     f"best.keras {test['best_accuracy']:.4f}; run saved in {self.run}")
        note = lagging_statistics(self.report, self.rows, self.steps)
        if note:
            self.say(f"note: {note}")

    def test_figures(self) -> dict:
        with self.average.swapped_in() if self.average else contextlib.nullcontext():
            p = predictions_on_test_split(self.model, self.data, (self.mean, self.std), self.t.tta, self.t.batch_size)
        final = scores(p, self.data.y_test)
        last = self.rows[-1]["epoch"]
        # best.keras holds the very weights scored above when the final epoch was the best one
        best = (final["accuracy"] if self.best["epoch"] == last else
                accuracy_on_test_split(self.run, rundir.BEST, self.t.tta, self.data, self.t.batch_size))
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
def last(history, key: str) -> float:
    """The last epoch's figure `key` of a `fit` history (NaN when fit stopped before logging it)."""
    values = history.history.get(key)
    return float(values[-1]) if values else float("nan")


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
