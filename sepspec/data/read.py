"""The data a run trains on, from wherever a user has it, as one `Dataset` of uint8 images: arrays in memory, or
for a large image folder `imagefolder.FolderImages`, read from disk as batches need them.

`--data PATH` may be:

- an **image folder** (`imagefolder`): one subfolder per class, with `train/` and `test/` or one tree of which a
  seeded fifth of each class is held out as the test split;
- a **NumPy archive** `.npz` in the `keras.datasets` layout: `x_train`, `y_train`, `x_test`, `y_test` (uint8 images
  `(n, h, w)` or `(n, h, w, c)`, integer labels), optionally `class_names`; read with `allow_pickle=False`;
- **CIFAR-10 or CIFAR-100** in their python layouts (`cifar`), archive or folder, read with a safe unpickler.

Without `--data`: CIFAR-10 from `$SEPSPEC_DATA`, Keras's cache (`~/.keras/datasets`, in the Keras 2 layout
`cifar-10-batches-py/` and the Keras 3 layout `cifar-10-batches-py-target` + `..._extracted/`), and finally Keras's
own download. Images of another size than the spec's are resized only when asked (`size`); channels never change.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from . import cifar, imagefolder
from .cifar import CLASS_NAMES, DataError, write_batches  # noqa: F401  (the formats' one error; a CIFAR writer)

ACCEPTED = ("an image folder (one subfolder per class, or train/ and test/ holding them), a .npz archive "
            "(x_train, y_train, x_test, y_test), or CIFAR-10/100 (cifar-10-python.tar.gz, cifar-100-python.tar.gz "
            "or their extracted folders)")


@dataclass
class Dataset:
    x_train: np.ndarray  # uint8 (n, h, w, c), or an image folder's FolderImages (streamed)
    y_train: np.ndarray  # int32 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    class_names: list
    layout: str = "cifar10"  # cifar10 | cifar100 | npz | folder
    split: str = "the data's own test split"  # how the test split was made
    files: dict = field(default_factory=dict)  # {split: [file of each image]} for an image folder
    skipped: list = field(default_factory=list)  # files in an image folder that are not images
    resized: bool = False  # some images were resized to the spec's input

    @property
    def streamed(self) -> bool:
        """Read from disk batch by batch (a large image folder) rather than held in memory."""
        return isinstance(self.x_train, imagefolder.FolderImages)

    def example(self, split: str = "train", index: int = 0) -> str:
        """Where one image comes from, for messages: its file, or its array and index."""
        if self.files.get(split):
            return self.files[split][index]
        return f"x_{split}[{index}]" if self.layout == "npz" else f"{split} image {index}"


def candidates(data_arg: str | None, origin: str = "--data") -> list[tuple[str, str]]:
    """(place, why) in the order they are tried."""
    cache = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "datasets")
    out = []
    if data_arg:
        out.append((data_arg, origin))
    if os.environ.get("SEPSPEC_DATA"):
        out.append((os.environ["SEPSPEC_DATA"], "$SEPSPEC_DATA"))
    out += [(os.path.join(cache, "cifar-10-batches-py"), "Keras 2 cache"),
            (os.path.join(cache, "cifar-10-batches-py-target_extracted"), "Keras 3 cache"),
            (os.path.join(cache, "cifar-10-batches-py-target"), "Keras 3 cache (archive)")]
    return out


def _download() -> str:
    """Keras's own download of the archive (needs the network); returns the extracted folder."""
    from ..lazy import import_keras

    path = import_keras().utils.get_file(fname="cifar-10-batches-py-target",
                                  origin="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", extract=True)
    return path


def load_data(data_arg: str | None = None, *, download: bool = True, origin: str = "--data", labels: str = "fine",
              size: tuple[int, int] | None = None, stream: str = "auto") -> Dataset:
    """Find and read the data. Raises DataError with a one-line message.

    `origin` says where `data_arg` came from (`--data`, or the place a run recorded), for the messages; `labels`
    chooses CIFAR-100's fine or coarse labels; `size` (h, w) resizes images of another size (bilinear); `stream`
    (auto, on, off) whether an image folder is read from disk batch by batch (auto: when it is large).
    """
    tried = []
    for place, why in candidates(data_arg, origin):
        explicit = why in (origin, "$SEPSPEC_DATA")
        if explicit and not os.path.exists(place):
            raise DataError(f"{place} ({why}): no such file or folder")
        data = _read(place, labels, size, explicit, stream)
        if data is None:
            if explicit:
                raise DataError(f"{place} ({why}): no data here; expected {ACCEPTED}")
            tried.append(place)
            continue
        return data
    if download and os.environ.get("SEPSPEC_OFFLINE") != "1":
        try:
            place = _download()
        except Exception as e:  # offline: Keras raises various network errors
            reason = " ".join(str(e).split()) or type(e).__name__
            raise DataError(f"CIFAR-10 not found and cannot be downloaded ({reason}). Looked in: "
                            + ", ".join(tried) + ". Give --data PATH (the cifar-10-python.tar.gz archive or its "
                            "extracted folder) or set SEPSPEC_DATA.") from None
        data = _read(place, labels, size, False)
        if data is not None:
            return data
    raise DataError("CIFAR-10 not found. Looked in: " + ", ".join(tried) + " (no download: SEPSPEC_OFFLINE=1). "
                    "Give --data PATH (the cifar-10-python.tar.gz archive or its extracted folder) or set "
                    "SEPSPEC_DATA.")


def options_of(spec) -> dict:
    """`load_data`'s keywords for a spec: CIFAR-100's labels, and the size to resize to when the spec asks."""
    return {"labels": spec.train.labels, "size": tuple(spec.input[:2]) if spec.train.resize else None}


def skipped_note(data: Dataset) -> str | None:
    """One line about files of an image folder that were not read (not images), or None."""
    if not data.skipped:
        return None
    shown = ", ".join(data.skipped[:3]) + (", ..." if len(data.skipped) > 3 else "")
    return f"note: {data.source}: skipped {len(data.skipped)} file(s) without an image suffix ({shown})"


def _read(place: str, labels: str, size, explicit: bool, stream: str = "auto") -> Dataset | None:
    found = cifar.find(place)
    if found is not None:
        kind, how, where = found
        x, y, xt, yt, names = cifar.read(kind, how, where, labels)
        return _resized(Dataset(x, y, xt, yt, place, names, kind), size)
    if not explicit:
        return None
    if os.path.isfile(place) and place.lower().endswith(".npz"):
        return _resized(_npz(place), size)
    if imagefolder.is_image_folder(place):
        x, y, xt, yt, names, files, how, skipped = imagefolder.read(place, size, stream)
        return Dataset(x, y, xt, yt, place, names, "folder", how, files, skipped,
                       resized=size is not None)
    return None


def _npz(path: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:  # an object array needs pickle: refused
        raise DataError(f"{path}: {' '.join(str(e).split())[:160]} (arrays that need pickle are refused)") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)} (the keras.datasets layout: x_train, y_train, "
                        f"x_test, y_test, optionally class_names)")
    xs = {}
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise DataError(f"{path}: x_{split} must be uint8 images (n, h, w) or (n, h, w, c), got {x.dtype} "
                            f"{tuple(x.shape)}")
        xs[split] = x[..., None] if x.ndim == 3 else x
    if xs["train"].shape[1:] != xs["test"].shape[1:]:
        raise DataError(f"{path}: x_test images are {tuple(xs['test'].shape[1:])}, x_train images "
                        f"{tuple(xs['train'].shape[1:])}")
    ys = {}
    for split in ("train", "test"):
        y = arrays[f"y_{split}"]
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y  # keras.datasets keeps (n, 1) for CIFAR
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            raise DataError(f"{path}: y_{split} must be integer class indices (n,), got {y.dtype} {tuple(y.shape)}")
        if len(y) != len(xs[split]):
            raise DataError(f"{path}: y_{split} has {len(y)} labels for {len(xs[split])} images in x_{split}")
        ys[split] = y
    if "class_names" in arrays:
        names = [str(n) for n in arrays["class_names"].reshape(-1)]
    else:
        names = [str(i) for i in range(int(max(ys["train"].max(initial=0), ys["test"].max(initial=0))) + 1)]
    for split in ("train", "test"):
        bad = np.flatnonzero((ys[split] < 0) | (ys[split] >= len(names)))
        if len(bad):
            raise DataError(f"{path}: y_{split}[{bad[0]}] is {int(ys[split][bad[0]])}, outside 0..{len(names) - 1} "
                            f"({len(names)} classes)")
    return Dataset(xs["train"], ys["train"].astype(np.int32), xs["test"], ys["test"].astype(np.int32), path, names,
                   "npz")


def _resized(d: Dataset, size) -> Dataset:
    """The arrays resized (bilinear) to `size` when they are another size."""
    if size is None or tuple(d.x_train.shape[1:3]) == tuple(size):
        return d
    from PIL import Image

    def resize(x):
        out = np.empty((len(x), *size, x.shape[-1]), np.uint8)
        for i, img in enumerate(x):
            im = Image.fromarray(img[..., 0] if x.shape[-1] == 1 else img)
            a = np.asarray(im.resize((size[1], size[0]), Image.BILINEAR), np.uint8)
            out[i] = a[..., None] if a.ndim == 2 else a
        return out

    d.x_train, d.x_test, d.resized = resize(d.x_train), resize(d.x_test), True
    return d


def fingerprint(data: Dataset) -> dict:
    """What identifies a data set, whatever holds it (archive, extracted folder, Keras cache): the count and a
    SHA-256 of the decoded images and labels of each split. Recorded when a run starts, checked on resume."""
    out = {}
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        if isinstance(x, imagefolder.FolderImages):  # the same hash, taken image by image as the folder was read
            h = x.digest.copy()
        else:
            h = hashlib.sha256()
            h.update(np.ascontiguousarray(x, np.uint8).tobytes())
        h.update(np.ascontiguousarray(y, np.int32).tobytes())
        out[split] = {"images": int(len(x)), "sha256": h.hexdigest()}
    return out


def fingerprint_difference(recorded: dict, now: dict) -> str | None:
    """None when two fingerprints agree, else one line saying what differs."""
    parts = []
    for split, what in (("train", "training"), ("test", "test")):
        a, b = recorded.get(split) or {}, now.get(split) or {}
        if a != b:
            parts.append(f"its {what} set has {b.get('images', '?'):,} images (sha256 {str(b.get('sha256'))[:12]}), "
                         f"the run's had {a.get('images', '?'):,} (sha256 {str(a.get('sha256'))[:12]})"
                         if isinstance(a.get("images"), int) and isinstance(b.get("images"), int) else
                         f"its {what} set differs")
    return "; ".join(parts) or None


