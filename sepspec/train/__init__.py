"""The shared trainer: every spec is trained by the same code, so two runs differ only in their YAML.

Importing this package is cheap; TensorFlow is imported only by the modules that run training.
"""
