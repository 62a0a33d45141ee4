"""Data the tests write in the real formats, so that the readers' real code paths run: a CIFAR-100 archive, an
image folder, a `.npz` in the keras.datasets layout (CIFAR-10's writer, `write_batches`, is the package's own: the
GPU bundle writes its subset with it)."""

import os

import numpy as np

from sepspec.data.cifar import _dump, _meta, _tar
from sepspec.data.read import write_batches  # noqa: F401  (one import for every writer)


def write_npz(path: str, x_train, y_train, x_test, y_test, class_names=None) -> str:
    """Write arrays in the keras.datasets layout."""
    extra = {"class_names": np.asarray(class_names)} if class_names is not None else {}
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, **extra)
    return path


def write_cifar100(folder: str, x_train, fine_train, coarse_train, x_test, fine_test, coarse_test, fine_names,
                   coarse_names, *, archive: str | None = None) -> str:
    """Write images in CIFAR-100's format (`train`, `test`, `meta` under cifar-100-python/)."""
    d = os.path.join(folder, "cifar-100-python")
    os.makedirs(d, exist_ok=True)
    for name, x, fine, coarse in (("train", x_train, fine_train, coarse_train), ("test", x_test, fine_test, coarse_test)):
        _dump(os.path.join(d, name), x, {b"fine_labels": fine, b"coarse_labels": coarse})
    _meta(os.path.join(d, "meta"), {b"fine_label_names": fine_names, b"coarse_label_names": coarse_names})
    return _tar(d, "cifar-100-python", archive)


def write_folder(root: str, x, y, class_names, *, fmt: str = "png", split: str | None = None) -> str:
    """Write uint8 images as `root/[split/]<class>/<index>.<fmt>` Returns root."""
    from PIL import Image

    base = os.path.join(root, split) if split else root
    for c in class_names:
        os.makedirs(os.path.join(base, c), exist_ok=True)
    for i, (img, label) in enumerate(zip(x, y)):
        a = np.asarray(img, np.uint8)
        im = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
        im.save(os.path.join(base, class_names[int(label)], f"{i:05d}.{fmt}"), quality=95) if fmt == "jpg" else \
            im.save(os.path.join(base, class_names[int(label)], f"{i:05d}.{fmt}"))
    return root
