"""The shared trainer: every spec is trained by the same code, so two runs differ only in their YAML.

Importing this package is cheap; TensorFlow is imported only by the modules that run training.
"""

STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("auto", "float32", "mixed_float16")  # auto: mixed_float16 on a GPU, float32 on CPU
TTA = ("none", "flip")  # test-time augmentation: none, or the mean over each image and its mirror image
