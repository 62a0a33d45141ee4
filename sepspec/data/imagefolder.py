"""Image folders in the layout of Keras's `image_dataset_from_directory`: one subfolder per class (class index =
the sorted folder names), PNG, JPEG, BMP or GIF files, grayscale or colour, decoded by Pillow.

Either `train/` and `test/` beside each other, holding the same class folders, or one tree of class folders
from which `TEST_FRACTION` of each class is held out as the test split by a fixed-seed permutation (the same
images for every run on the same folder). Files are read in sorted order, so a folder always gives the same
arrays. Files without an image suffix (notes, `.DS_Store`) are skipped and counted; an image file that does not
decode, an empty class, a class missing from one split, images of mixed sizes or channels are one-line errors
that name the file.

A folder whose decoded images would take more than `STREAM_SHARE` of this machine's memory (or any folder, with
`stream="on"`) is not decoded into one array: each split is a `FolderImages`, checked in one pass over its files
(every file decoded once, in threads, and dropped) that keeps what the trainer needs of the whole (the SHA-256 of
the images in order, per-image channel sums), and decodes the images a batch asks for when it asks.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import STREAMS
from .cifar import DataError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TEST_FRACTION = 0.2  # of each class, for a folder without train/ and test/
SPLIT_SEED = 0
_CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
STREAM_SHARE = 0.25  # auto: stream when the decoded images would take more than this share of physical memory
_CHUNK = 1024  # images decoded at once by the checking pass


def is_image_folder(path: str) -> bool:
    """A folder with class subfolders (or train/ and test/ holding them)."""
    if not os.path.isdir(path):
        return False
    return any(os.path.isdir(os.path.join(path, d)) and not d.startswith(".") for d in os.listdir(path))


def _classes(root: str) -> list[str]:
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))


def _files(root: str, classes: list[str], skipped: list[str]) -> tuple[list[str], list[int]]:
    paths, labels = [], []
    for i, c in enumerate(classes):
        found = []
        for name in sorted(os.listdir(os.path.join(root, c))):
            p = os.path.join(root, c, name)
            if not os.path.isfile(p):
                continue
            if name.lower().endswith(SUFFIXES):
                found.append(p)
            else:
                skipped.append(p)
        if not found:
            raise DataError(f"{os.path.join(root, c)}: an empty class folder (no {', '.join(SUFFIXES)} files)")
        paths += found
        labels += [i] * len(found)
    return paths, labels


def _decode(path: str, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "P":  # a palette (GIF, some PNGs) holds colours: decode them
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode == "1":
                im = im.convert("L")
            elif im.mode in ("CMYK", "YCbCr"):
                im = im.convert("RGB")
            if im.mode not in _CHANNELS:
                raise DataError(f"{path}: image mode {im.mode} is not 8-bit grayscale or colour")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, np.uint8)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        why = " ".join(str(e).split())[:120]
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {why})") from None
    return a[..., None] if a.ndim == 2 else a


def _decoded(paths: list[str], size) -> list[np.ndarray]:
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # Pillow decodes without the GIL
        return list(pool.map(lambda p: _decode(p, size), paths))


def _check_like(images: list[np.ndarray], paths: list[str], first: np.ndarray, first_path: str, root: str) -> None:
    """Every image has the first one's size and channels, else a one-line error naming both files."""
    for p, a in zip(paths, images):
        if a.shape[-1] != first.shape[-1]:
            kind = {1: "grayscale", 2: "grayscale with alpha", 3: "colour", 4: "colour with alpha"}
            raise DataError(f"{os.path.relpath(p, root)}: {kind[a.shape[-1]]} ({a.shape[-1]} channels) among "
                            f"{kind[first.shape[-1]]} images ({first.shape[-1]} channels, e.g. "
                            f"{os.path.relpath(first_path, root)}); channels are never converted")
        if a.shape != first.shape:
            raise DataError(f"{os.path.relpath(p, root)}: {a.shape[1]}x{a.shape[0]} pixels among images of "
                            f"{first.shape[1]}x{first.shape[0]} (e.g. {os.path.relpath(first_path, root)}); set "
                            f"train.resize: true to resize every image to the spec's input")


def _stack(paths: list[str], root: str, size) -> np.ndarray:
    images = _decoded(paths, size)
    _check_like(images, paths, images[0], paths[0], root)
    return np.stack(images)


class FolderImages:
    """The images of one split of an image folder, decoded when they are read: what stands for the uint8 array
    (n, h, w, c) of a folder too large to decode whole. Indexing with a slice, a mask or indices gives the subset
    (still on disk), `decode(idx)` and `np.asarray` the pixels; `sums`/`squares` are each image's exact channel
    sums of values and of squared values, `digest` the SHA-256 of the whole split's image bytes in order (what
    `data.fingerprint` hashes for an array)."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths, size, image_shape, sums, squares, digest=None):
        self.paths, self.size = list(paths), size
        self.shape = (len(self.paths), *image_shape)
        self.sums, self.squares, self.digest = sums, squares, digest

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return _decode(self.paths[key], self.size)
        idx = np.arange(len(self.paths))[key]
        return FolderImages([self.paths[i] for i in idx], self.size, self.shape[1:], self.sums[idx],
                            self.squares[idx])

    def decode(self, idx=None) -> np.ndarray:
        """The pixels of the images at `idx` (all when None), as one uint8 array."""
        paths = self.paths if idx is None else [self.paths[i] for i in np.asarray(idx).reshape(-1)]
        if not paths:
            return np.zeros((0, *self.shape[1:]), np.uint8)
        return np.stack(_decoded(paths, self.size))

    def __array__(self, dtype=None, copy=None):
        a = self.decode()
        return a if dtype is None else a.astype(dtype)


def _scan(paths: list[str], root: str, size) -> FolderImages:
    """One checking pass over a split's files: each decoded once (in chunks, in threads) and checked against the
    first, its bytes hashed in order and its channel sums kept; no image stays in memory."""
    first = _decode(paths[0], size)
    digest = hashlib.sha256()
    c = first.shape[-1]
    sums, squares = np.zeros((len(paths), c), np.uint64), np.zeros((len(paths), c), np.uint64)
    for start in range(0, len(paths), _CHUNK):
        part = paths[start:start + _CHUNK]
        images = _decoded(part, size)
        _check_like(images, part, first, paths[0], root)
        for i, a in enumerate(images, start):
            digest.update(np.ascontiguousarray(a).tobytes())
            flat = a.reshape(-1, c).astype(np.uint64)
            sums[i], squares[i] = flat.sum(0), (flat * flat).sum(0)
    return FolderImages(paths, size, first.shape, sums, squares, digest)


def _streams(stream: str, paths: list[str], size) -> bool:
    """Whether to stream: `on`/`off` as asked; `auto` when the decoded images of every split would take more than
    STREAM_SHARE of the physical memory (judged by the first image's decoded size)."""
    if stream != "auto":
        return stream == "on"
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (not Linux/macOS): decode into memory
        return False
    return _decode(paths[0], size).nbytes * len(paths) > STREAM_SHARE * memory


def read(path: str, size: tuple[int, int] | None = None, stream: str = "auto"):
    """(x_train, y_train, x_test, y_test, class names, files {split: [path relative to `path`]}, how the test split
    was made, skipped files). `size` (h, w) resizes every image (bilinear) as it is decoded. The x are arrays, or
    `FolderImages` when the folder streams (`stream`: auto, on, off)."""
    skipped: list[str] = []
    train_dir, test_dir = os.path.join(path, "train"), os.path.join(path, "test")
    if os.path.isdir(train_dir) and os.path.isdir(test_dir):
        classes = _classes(train_dir)
        if not classes:
            raise DataError(f"{train_dir}: no class folders")
        test_classes = _classes(test_dir)
        for a, b, where in ((classes, test_classes, "test"), (test_classes, classes, "train")):
            extra = [c for c in a if c not in b]
            if extra:
                raise DataError(f"{os.path.join(path, where)}: has no folder for class {extra[0]!r}, which "
                                f"{'train' if where == 'test' else 'test'}/ has (both splits need the same classes)")
        tr, ytr = _files(train_dir, classes, skipped)
        te, yte = _files(test_dir, classes, skipped)
        how = "train/ and test/ folders"
    else:
        classes = _classes(path)
        files, labels = _files(path, classes, skipped)
        labels_a = np.asarray(labels)
        test = np.zeros(len(files), bool)
        rng = np.random.default_rng(SPLIT_SEED)
        for i, c in enumerate(classes):
            idx = np.flatnonzero(labels_a == i)
            if len(idx) < 2:
                raise DataError(f"{os.path.join(path, c)}: one image; a class needs two to hold one out as the "
                                f"test split (or give train/ and test/ folders)")
            k = min(len(idx) - 1, max(1, int(round(len(idx) * TEST_FRACTION))))
            test[rng.permutation(idx)[:k]] = True
        tr = [f for f, t in zip(files, test) if not t]
        te = [f for f, t in zip(files, test) if t]
        ytr, yte = labels_a[~test].tolist(), labels_a[test].tolist()
        how = f"{TEST_FRACTION:.0%} of each class held out as the test split (seed {SPLIT_SEED})"
    if stream not in STREAMS:
        raise DataError(f"stream {stream!r}: expected one of {', '.join(STREAMS)}")
    read_split = _scan if _streams(stream, tr + te, size) else _stack
    x_train, x_test = read_split(tr, path, size), read_split(te, path, size)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{os.path.relpath(te[0], path)}: test images are {x_test.shape[2]}x{x_test.shape[1]}x"
                        f"{x_test.shape[3]}, training images {x_train.shape[2]}x{x_train.shape[1]}x{x_train.shape[3]} "
                        f"(e.g. {os.path.relpath(tr[0], path)})")
    rel = {"train": [os.path.relpath(p, path) for p in tr], "test": [os.path.relpath(p, path) for p in te]}
    return (x_train, np.asarray(ytr, np.int32), x_test, np.asarray(yte, np.int32), classes, rel, how,
            [os.path.relpath(p, path) for p in skipped])
