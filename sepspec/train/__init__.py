"""The shared trainer: every spec is trained by the same code, so two runs differ only in their YAML.

Importing this package is cheap; TensorFlow is imported only by the modules that run training.
"""

STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")  # auto: float32 on CPU; on a GPU, per backend
                                                                   # as measured (devices.AUTO_GPU_PRECISION)
TTA = ("none", "flip")  # test-time augmentation: none, or the mean over each image and its mirror image
