"""The user's images, read once for every stage that needs them (the trainer, the exporter's calibration, a
sweep, the evaluator): `read` (what `--data` names: a CIFAR archive or folder, a `.npz`, an image folder, Keras's
cache; the `Dataset` every reader returns and its fingerprint), `cifar` (CIFAR-10/100, read safely) and
`imagefolder` (class folders via Pillow, streamed from disk when large). NumPy only; no TensorFlow."""

STREAMS = ("auto", "on", "off")  # whether an image folder is read from disk batch by batch (auto: when it is large)
