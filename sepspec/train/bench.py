"""`sepspec bench`: training images/s of the trainer (its model with the fast layers of `fastpath`, fed by its pipeline:
tf.data on TensorFlow, a PyDataset's worker thread on JAX/PyTorch; normalisation, augmentation), of the trainer's
step alone on ready tensors, and of a plain `model.fit` of the same emitted Keras model on the fastest plain input
(a cached tf.data dataset; arrays elsewhere), that dataset both without tf.data's autotuning (as the trainer's, the
baseline) and with it (as a user writes it). Interleaved repeats in one process: a `Bench` record of every timed
run (its medians and ratios are properties; the command line prints them, or `--format json`). With `--data FOLDER`
(an image folder) the trainer is also timed streaming the same images from their files (what it does for a folder
too large for memory) beside the same images held in memory."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from ..data.read import DataError, load_data, options_of
from .compiled import compile_model, jit
from .devices import backend, compilation_cache, device_name, set_precision, tensorflow
from .fastpath import fast_training
from .options import Options
from .pipeline import dataset, fixed, input_stats, normalize
from .split import check_fits
from .trainer import training_report

LABELS = {"trainer": "trainer ({feed} + normalise + augment{fast})",
          "streamed": "trainer streaming the folder's files (decoded per batch)",
          "step": "trainer's step alone (ready tensors)",
          "plain": "plain model.fit of the emitted model on {plain_feed}",
          "tuned": "the same plain fit, its dataset autotuned (prefetch(AUTOTUNE))",
          "stacked": "{stacked} seeds stacked in one step (their images together)"}


@dataclass
class Bench:
    """Training images/s of each way of training the spec (`runs`: key -> one figure per interleaved repeat)."""

    spec: str
    batch: int
    steps: int
    repeats: int
    device: str
    backend: str
    precision: str
    steps_per_execution: int
    data: str
    augmentation: str
    fused: dict  # fast layers in the trainer's model: {"batch_norm": n, "dropout": n}
    feed: str  # the trainer's input pipeline
    plain_feed: str  # the plain fit's input
    runs: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    jit_compile: bool = False  # the steps compiled (XLA on TensorFlow and JAX, torch.compile on PyTorch)
    stacked: int = 0  # seeds stacked in one step (`train --seeds --stacked`), timed beside the trainer; 0: none

    @property
    def medians(self) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in self.runs.items()}

    @property
    def ratio(self) -> float:
        """The trainer against the plain fit (medians): the figure `sepspec bench` is for."""
        return self.medians["trainer"] / self.medians["plain"]

    def label(self, key: str) -> str:
        fast = ", fast layers" if any(self.fused.values()) else ""
        return LABELS[key].format(feed=self.feed, fast=fast, plain_feed=self.plain_feed, stacked=self.stacked)


def bench(spec_path: str, *, steps: int = 20, batch_size: int | None = None, data: str | None = None,
          repeats: int = 3, precision: str = "auto", steps_per_execution: int = 1, jit_compile: bool = False,
          stacked: int = 0) -> Bench:
    """`stacked` > 0 also times that many seeds' models stacked in one step, each fed as the trainer feeds one
    (its own order and augmentation): their images per second together, against the trainer's one seed."""
    from ..lazy import import_keras

    report = training_report(Options(spec=spec_path, batch_size=batch_size))
    spec = report.spec
    t = spec.train
    b = t.batch_size
    n = steps * b
    streamed = None  # an image folder's images as the trainer streams them
    notes = []
    try:
        d = load_data(data, download=False, stream="on", **options_of(spec))  # only a folder streams
        check_fits(spec, d, spec_path)
        kind = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "npz": "NumPy archive", "folder": "image folder"}
        x, y, source = d.x_train[:n], d.y_train[:n], f"{kind[d.layout]} {d.source}"
        if d.streamed:
            streamed, x = x, np.asarray(x)
    except DataError:
        if data is not None:  # asked for this data: a wrong --data is an error, not a silent substitute
            raise
        notes.append("no CIFAR-10 found (--data, $SEPSPEC_DATA, Keras's cache); measured on random images of the "
                     "spec's input shape")
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (n, *spec.input), dtype=np.uint8)
        y = rng.integers(0, spec.classes, n).astype(np.int32)
        source = "random images (no CIFAR-10 found)"
    if len(x) < n:  # a small set (the device check's subset): its images again, for the throughput alone
        notes.append(f"{len(x):,} images for {steps} steps of {b}: each is used up to {math.ceil(n / len(x))} times")
        if streamed is not None:
            streamed = streamed[np.resize(np.arange(len(x)), n)]
        x, y = np.resize(x, (n, *x.shape[1:])), np.resize(y, n)
    keras = import_keras()  # after the spec and the data are read: a mistake in either is told at once
    tf = tensorflow(keras)  # None on JAX/PyTorch
    compilation_cache(keras)
    mean, std = input_stats(t.normalize, x)
    policy = set_precision(keras, precision)  # "auto": the precision the trainer uses by default
    opts = Options(spec=spec_path, precision=precision, jit_compile=jit_compile)

    def compiled(fused: bool):
        m = compile_model(keras, report, t, mixed=policy != "float32", jit_compile=jit(keras, opts), steps=steps,
                          steps_per_execution=steps_per_execution)
        return m, (fast_training(m) if fused else {})

    ours_model, fused = compiled(True)
    plain_model, _ = compiled(False)
    xf, yf = normalize(x, mean, std), np.eye(spec.classes, dtype=np.float32)[y]
    if tf is not None:  # the fastest plain Keras input: a cached, prefetched tf.data dataset of the tensors
        cached = tf.data.Dataset.from_tensor_slices((xf, yf)).batch(b).cache()
        # as a user writes it (tf.data's autotuning on), and as the trainer makes its datasets (autotuning off:
        # the end of an epoch can wait for the autotuning thread, pipeline.fixed): the second is the
        # baseline, so that the ratio is the model's and not that wait's
        tuned = cached.prefetch(tf.data.AUTOTUNE)
        cached = fixed(tf, cached)
        plain_feed = "a cached tf.data dataset"
    else:
        cached = tuned = None
        plain_feed = "in-memory arrays"

    def timed(fit) -> float:
        t0 = time.perf_counter()
        fit()
        return n / (time.perf_counter() - t0)

    def trainer(epoch, images=x):  # the trainer's model and input: its pipeline with normalisation and augmentation
        ds = dataset(images, y, batch=b, classes=spec.classes, mean=mean, std=std, seed=0, epoch=epoch, aug=t.augment)
        return timed(lambda: ours_model.fit(ds, epochs=1, verbose=0, shuffle=False))

    def ready(model, feed=None):  # a model on ready tensors: the trainer's step alone, or the emitted model
        feed = cached if feed is None else feed
        return timed(lambda: model.fit(feed, epochs=1, verbose=0, shuffle=False) if feed is not None else
                     model.fit(xf, yf, batch_size=b, epochs=1, shuffle=False, verbose=0))

    together = _stacked(keras, report, stacked, compiled, jit(keras, opts), steps, steps_per_execution, timed,
                        lambda k, epoch: dataset(x, y, batch=b, classes=spec.classes, mean=mean, std=std, seed=k,
                                                 epoch=epoch, aug=t.augment)) if stacked else None
    trainer(repeats), ready(ours_model), ready(plain_model)  # warm-up: tracing, the cache, the first allocations
    runs = {"trainer": [], "step": [], "plain": []}
    if tuned is not None:
        ready(plain_model, tuned)
        runs["tuned"] = []
    if streamed is not None:
        trainer(repeats, streamed)
        runs["streamed"] = []
    if together is not None:
        together(repeats)
        runs["stacked"] = []
    for r in range(repeats):  # interleaved: a machine that changes speed slows them all alike
        runs["trainer"].append(trainer(r))
        if streamed is not None:
            runs["streamed"].append(trainer(r, streamed))
        runs["step"].append(ready(ours_model))
        runs["plain"].append(ready(plain_model))
        if tuned is not None:
            runs["tuned"].append(ready(plain_model, tuned))
        if together is not None:
            runs["stacked"].append(together(r))
    aug = ", ".join(f"{k}={v}" for k, v in t.augment.model_dump().items() if v) or "none"
    return Bench(spec.name, b, steps, repeats, device_name(keras), backend(keras), policy, steps_per_execution, source,
                 aug, fused, "tf.data" if tf is not None else "PyDataset", plain_feed, runs, notes,
                 jit_compile=jit(keras, opts), stacked=stacked)


def _stacked(keras, report, seeds: int, compiled, jit_compile: bool, steps: int, steps_per_execution: int, timed,
             batches):
    """The timing of `seeds` models of the spec stacked in one step (`stacked.stack_models`), each fed
    `batches(k, epoch)`: a function of the epoch giving all their images per second."""
    from .pipeline import stacked_batches
    from .stacked import stack_models

    names = [f"seed{k}" for k in range(seeds)]
    models = []
    for name in names:
        with keras.name_scope(name):
            models.append(compiled(True)[0])
    model = stack_models(keras, models, names, report.spec.train, steps, jit_compile, steps_per_execution)

    def together(epoch) -> float:
        ds = stacked_batches([batches(k, epoch) for k in range(seeds)], names)
        return seeds * timed(lambda: model.fit(ds, epochs=1, verbose=0, shuffle=False))

    return together
