"""TensorBoard event files in the run folder (`RUN/tensorboard/`), so that `tensorboard --logdir runs/` shows
every run: per epoch the history row's figures (loss, accuracy, validation figures, learning rate, seconds and
images/s), and on the TensorFlow backend the model's graph once.

Written with the `tensorboard` package's own writer (no TensorFlow needed: every Keras backend), after each
commit, from the committed history: `logged.json` says up to which epoch the files hold, so a run killed
between a commit and its logging logs that epoch on resume, and every epoch appears once (a kill in the instant
between writing an epoch's events and `logged.json` can show it twice)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

from .. import atomic

FOLDER = "tensorboard"
SCALARS = {"loss": "train/loss", "accuracy": "train/accuracy", "val_loss": "validation/loss",
           "val_accuracy": "validation/accuracy", "val_accuracy_no_tta": "validation/accuracy_without_tta",
           "val_accuracy_no_ema": "validation/accuracy_without_average",
           "val_accuracy_plain": "validation/accuracy_plain",
           "val_accuracy_flip_only": "validation/accuracy_flip_only", "lr": "train/learning_rate",
           "seconds": "time/seconds_per_epoch"}


class Board:
    def __init__(self, run: str, train_images: int):
        self.folder = os.path.join(run, FOLDER)
        self.train_images = train_images
        self.marker = os.path.join(self.folder, "logged.json")
        self._writer = None

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("tensorboard") is not None

    def logged(self) -> int:
        try:
            with open(self.marker) as f:
                return int(json.load(f)["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def writer(self):
        if self._writer is None:
            from tensorboard.summary import Writer

            os.makedirs(self.folder, exist_ok=True)
            self._writer = Writer(self.folder)
        return self._writer

    def log(self, rows: list[dict]) -> None:
        """Every committed row after the last one logged."""
        done = self.logged()
        new = [r for r in rows if r["epoch"] > done]
        if not new:
            return
        w = self.writer()
        for r in new:
            for key, tag in SCALARS.items():
                if r.get(key) is not None:
                    w.add_scalar(tag, float(r[key]), step=r["epoch"])
            if r.get("train_seconds"):
                w.add_scalar("time/images_per_second", self.train_images / r["train_seconds"], step=r["epoch"])
        w.flush()
        atomic.write(self.marker, json.dumps({"epoch": new[-1]["epoch"]}) + "\n")

    def test(self, test: dict) -> None:
        """The finished run's test figures, at the final epoch's step."""
        w = self.writer()
        w.add_scalar("test/accuracy_final_epoch", test["final_accuracy"], step=test["final_epoch"])
        w.add_scalar("test/accuracy_best_keras", test["best_accuracy"], step=test["final_epoch"])
        w.flush()

    def graph(self, model) -> None:
        """The model's graph (TensorFlow backend only: the graph is TensorFlow's), in its own events file."""
        import tensorflow as tf

        try:
            fn = tf.function(lambda x: model(x, training=False))
            concrete = fn.get_concrete_function(tf.TensorSpec((1, *model.input_shape[1:]), tf.float32))
            writer = tf.summary.create_file_writer(self.folder)
            with writer.as_default():
                tf.summary.graph(concrete.graph)
            writer.close()
        except Exception as e:  # a picture is not worth a run: say so and go on
            print(f"note: the model graph was not written to TensorBoard ({type(e).__name__})", file=sys.stderr)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
