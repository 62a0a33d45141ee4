"""A run's models scored on the test split of its data, normalised as the run was."""

from __future__ import annotations

import os

from ..diagnostics import UserError
from . import rundir

CHUNK = 10_000  # images normalised (a streamed folder's: decoded) and scored at once


def views(model, x, norm: tuple[list, list] | None, tta: str = "none", batch_size: int | None = None):
    """`predict.by_view` over a split's uint8 images (normalised with `norm` a chunk at a time: no float copy of
    a whole large split), or over images already normalised (`norm` None); batches of `batch_size` images
    (`predict.PREDICT_BATCH` if None)."""
    import numpy as np

    from .pipeline import normalize
    from .predict import PREDICT_BATCH, by_view

    batch_size = batch_size or PREDICT_BATCH
    if norm is None:
        return by_view(model, x, tta, batch_size)
    parts = [by_view(model, normalize(x[i:i + CHUNK], *norm), tta, batch_size)
             for i in range(0, max(len(x), 1), CHUNK)]  # an empty split: one empty chunk
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def predictions_on_test_split(model, data, norm: tuple[list, list], tta: str = "none",
                              batch_size: int | None = None):
    """Class probabilities of a model on the data's test split, normalised as the run was."""
    return views(model, data.x_test, norm, tta, batch_size)[tta]


def accuracy_on_test_split(run: str, model_file: str = rundir.BEST, tta: str = "none", data=None,
                           batch_size: int | None = None) -> float:
    """A run's model (`best.keras`, or a checkpoint in it) on the test split of the run's own data."""
    norm = rundir.normalization(run)
    if norm is None:
        raise UserError(f"{run}: no {rundir.METRICS}, so no normalisation to score its models with")
    data = data or rundir.run_data(run)
    p = predictions_on_test_split(rundir.load_model(os.path.join(run, model_file)), data, norm, tta, batch_size)
    return float((p.argmax(-1) == data.y_test).mean())
