"""What a training shows and hears on the terminal: a progress bar on a tty, SIGTERM and SIGINT as a clean stop,
and the one note a short run needs (why its validation trails its training)."""

from __future__ import annotations

import contextlib
import signal
import sys
import time

from .. import layers as L
from ..graph.analysis import Report


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


class Progress:
    """A one-line progress bar on a terminal; nothing when output goes to a file (no carriage returns). `keys`:
    the logs' names of the loss and the accuracy (stacked seeds: each seed's, shown as their mean)."""

    def __init__(self, keras, epoch, epochs, steps, keys=(("loss",), ("accuracy",))):
        self.tty = sys.stdout.isatty()
        self.cb = None  # its callback: only on a terminal, and marked safe to run in Keras's callback thread
        if self.tty:
            self.cb = keras.callbacks.LambdaCallback(on_train_batch_end=self._step)
            self.cb.async_safe = True
        self.epoch, self.epochs, self.steps, self.keys = epoch, epochs, steps, keys
        self.t0 = time.perf_counter()

    def _step(self, batch, logs):
        done = batch + 1
        bar = "#" * int(30 * done / self.steps)
        loss, acc = (sum(float(logs.get(k, float("nan"))) for k in keys) / len(keys) for keys in self.keys)
        sys.stdout.write(f"\rEpoch {self.epoch}/{self.epochs} [{bar:<30}] {done}/{self.steps} "
                         f"loss {loss:.4f} acc {acc:.4f} {time.perf_counter() - self.t0:.0f}s")
        sys.stdout.flush()

    def clear(self):
        if self.tty:
            sys.stdout.write("\r" + " " * 100 + "\r")


@contextlib.contextmanager
def stop_signals():
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
