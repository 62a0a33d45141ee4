"""A run's models scored on the test split of its data, normalised as the run was."""

from __future__ import annotations

import os

from ..diagnostics import UserError
from . import rundir

TEST_CHUNK = 10_000  # test images normalised (a streamed folder's: decoded) and scored at once; a multiple of
                    # predict's batch of 500, so the batches are those of one call over the whole split


def predictions_on_test_split(model, data, norm: tuple[list, list], tta: str = "none"):
    """Class probabilities of a model on the data's test split, normalised as the run was, a chunk at a time (no
    float copy of a whole large split)."""
    import numpy as np

    from .pipeline import normalize
    from .predict import probabilities

    x = data.x_test
    return np.concatenate([probabilities(model, normalize(x[i:i + TEST_CHUNK], *norm), tta)
                           for i in range(0, max(len(x), 1), TEST_CHUNK)])  # an empty split: as before


def accuracy_on_test_split(run: str, model_file: str = rundir.BEST, tta: str = "none", data=None) -> float:
    """A run's model (`best.keras`, or a checkpoint in it) on the test split of the run's own data."""
    norm = rundir.normalization(run)
    if norm is None:
        raise UserError(f"{run}: no {rundir.METRICS}, so no normalisation to score its models with")
    data = data or rundir.run_data(run)
    p = predictions_on_test_split(rundir.load_model(os.path.join(run, model_file)), data, norm, tta)
    return float((p.argmax(-1) == data.y_test).mean())
