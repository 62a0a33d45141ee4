"""The shared trainer: every spec is trained by the same code, so two runs differ only in their YAML.

Importing this package is cheap; TensorFlow is imported only by the modules that run training.
"""

from typing import get_args as _args

from ..data import STREAMS  # noqa: F401  (the trainer's --stream choices)
from ..spec.trainconf import Train as _Train

STRATEGIES = ("default", "mirrored", "multiworker", "data")  # data: keras.distribution.DataParallel
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")  # auto: float32 on CPU; on a GPU, per backend
                                                                   # as measured (devices.AUTO_GPU_PRECISION)
TTA = _args(_Train.model_fields["tta"].annotation)  # test-time augmentation: the views whose mean is the figure
