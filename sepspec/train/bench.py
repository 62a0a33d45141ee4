"""`sepspec bench`: is the data pipeline the bottleneck? Training images/s of the trainer's full step
(tf.data on TensorFlow, a PyDataset's worker thread on JAX/PyTorch; normalisation, augmentation) next to a plain `model.fit`
on in-memory arrays of the same compiled model. Interleaved repeats in one process; medians and their ratio
are printed."""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from .data import DataError, load_data
from .pipeline import channel_stats, dataset, normalize
from .devices import backend, device_name, set_precision, tensorflow
from .trainer import Options, compile_model, jit, training_report


def bench(spec_path: str, *, steps: int = 20, batch_size: int | None = None, data: str | None = None,
          repeats: int = 3, precision: str = "auto", steps_per_execution: int = 1) -> int:
    from ..lazy import import_keras

    keras = import_keras()
    tf = tensorflow(keras)  # None on JAX/PyTorch

    report = training_report(Options(spec=spec_path, batch_size=batch_size))
    spec = report.spec
    t = spec.train
    b = t.batch_size
    n = steps * b
    try:
        d = load_data(data, download=False)
        x, y, source = d.x_train[:n], d.y_train[:n], "CIFAR-10 " + d.source
    except DataError:
        if data is not None:  # asked for this data: a wrong --data is an error, not a silent substitute
            raise
        print("note: no CIFAR-10 found (--data, $SEPSPEC_DATA, Keras's cache); measuring on random images of the "
              "spec's input shape", flush=True)
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (n, *spec.input), dtype=np.uint8)
        y = rng.integers(0, spec.classes, n).astype(np.int32)
        source = "random images (no CIFAR-10 found)"
    if len(x) < n:  # a small set (the device check's subset): its images again, for the throughput alone
        print(f"note: {len(x):,} images for {steps} steps of {b}: each is used up to {math.ceil(n / len(x))} times",
              flush=True)
        x, y = np.resize(x, (n, *x.shape[1:])), np.resize(y, n)
    mean, std = channel_stats(x)
    policy = set_precision(keras, precision)  # "auto": the precision the trainer uses by default
    opts = Options(spec=spec_path, precision=precision)
    model = compile_model(keras, report, t, mixed=policy != "float32", jit_compile=jit(keras, opts),
                          steps_per_execution=steps_per_execution)
    xf, yf = normalize(x, mean, std), np.eye(spec.classes, dtype=np.float32)[y]
    if tf is not None:  # in-memory tensors, as before
        xf, yf = tf.constant(xf), tf.constant(yf)

    def trainer_step(epoch):
        ds = dataset(x, y, batch=b, classes=spec.classes, mean=mean, std=std, seed=0, epoch=epoch, training=True,
                     aug=t.augment)
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0, shuffle=False)
        return n / (time.perf_counter() - t0)

    def plain_fit():
        t0 = time.perf_counter()
        model.fit(xf, yf, batch_size=b, epochs=1, shuffle=False, verbose=0)
        return n / (time.perf_counter() - t0)

    trainer_step(repeats), plain_fit()  # warm-up: tracing and the first allocations are not measured
    ours, plain = [], []
    for r in range(repeats):
        ours.append(trainer_step(r))
        plain.append(plain_fit())
    mo, mp = statistics.median(ours), statistics.median(plain)
    aug = ", ".join(f"{k}={v}" for k, v in t.augment.model_dump().items() if v) or "none"
    feed = "tf.data" if tf is not None else "PyDataset"
    print(f"{spec.name}: batch {b}, {steps} steps x {repeats} repeats, {device_name(keras)}, backend {backend(keras)}, "
          f"precision {policy}, {steps_per_execution} step(s) per call, data: {source}, augmentation: {aug}")
    print(f"trainer step ({feed} + normalise + augment): median {mo:,.0f} images/s  runs {[round(v) for v in ours]}")
    print(f"plain model.fit on in-memory arrays:{' ' * (len(feed) + 2)}median {mp:,.0f} images/s  runs {[round(v) for v in plain]}")
    print(f"ratio trainer / plain: {mo / mp:.3f} (target >= 0.95)")
    return 0
