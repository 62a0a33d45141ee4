"""The whole of CIFAR-10 to a machine that takes at most 64 MiB per call: packed here in parts of lossless WebP
mosaics (55% of the raw pixels, against 92% for gzip and 71% for xz), unpacked there into CIFAR-10's own layout,
checked image for image against the real set's fingerprint (`sepspec.data.read.fingerprint`, the SHA-256 a run
records), so that a run there records the very data set a run here does.

    python benchmarks/gpu_data.py pack [--data PATH] [--out .gpu/cifar10-webp] [--parts 2]
    python benchmarks/gpu_data.py unpack PART_FOLDER... --out FOLDER   # there: every part, in any order
    python benchmarks/gpu_data.py unpack PART_FOLDER --out FOLDER --partial   # a subset: what these parts hold

Packing encodes 60,000 images (about 5 minutes on 2 cores; `--workers`). Each part folder holds its mosaics
(1,600 images of 32x32 in one 1,280x1,280 picture), their labels and `manifest.json` (which images of which
split it holds, and the whole set's fingerprint); unpack refuses a set that does not match the fingerprint.
WebP needs Pillow, on both machines.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SIDE = 40  # images per mosaic row and column
PER = SIDE * SIDE


def _encode(x: np.ndarray, method: int = 6) -> bytes:
    from PIL import Image

    pad = np.zeros((PER, *x.shape[1:]), np.uint8)
    pad[:len(x)] = x
    h, w, c = x.shape[1:]
    mosaic = pad.reshape(SIDE, SIDE, h, w, c).transpose(0, 2, 1, 3, 4).reshape(SIDE * h, SIDE * w, c)
    b = io.BytesIO()
    Image.fromarray(mosaic).save(b, "WEBP", lossless=True, quality=100, method=method)
    return b.getvalue()


def _decode(data: bytes, n: int, h: int, w: int) -> np.ndarray:
    from PIL import Image

    m = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return m.reshape(SIDE, h, SIDE, w, 3).transpose(0, 2, 1, 3, 4).reshape(PER, h, w, 3)[:n]


def pack(data: str | None, out: str, parts: int, workers: int, method: int = 6) -> None:
    """`data` in `parts` folders of about equal size under `out`; `method` is WebP's effort (0-6: every one is
    lossless, 6 the smallest and slowest)."""
    from sepspec.data.read import fingerprint, load_data

    d = load_data(data, download=False)
    if d.layout != "cifar10" or d.x_train.shape[1:] != (32, 32, 3):
        raise SystemExit(f"gpu_data: {d.source} is not CIFAR-10")
    whole = fingerprint(d)
    # the first test mosaic leads, so that the first part alone is a usable subset (`unpack --partial`)
    chunks = [("test", 0)] + [("train", i) for i in range(0, len(d.x_train), PER)] + [
        ("test", i) for i in range(PER, len(d.x_test), PER)]
    arrays = {"train": (d.x_train, d.y_train), "test": (d.x_test, d.y_test)}
    parts_of = [arrays[s][0][i:i + PER] for s, i in chunks]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            encoded = list(pool.map(_encode, parts_of, [method] * len(chunks), chunksize=1))
    else:  # no pool (no fork of a process that may hold threads)
        encoded = [_encode(x, method) for x in parts_of]
    sizes = np.array([len(e) for e in encoded], float)
    # parts of about equal bytes, the mosaic that crosses a boundary in the earlier part
    bounds = np.minimum(np.searchsorted(np.cumsum(sizes), np.arange(1, parts) * sizes.sum() / parts) + 1,
                        len(chunks) - 1)
    for p, idx in enumerate(np.split(np.arange(len(chunks)), bounds)):
        folder = os.path.join(out, f"part{p + 1}")
        os.makedirs(folder, exist_ok=True)
        held = []
        for j in idx:
            split, i = chunks[j]
            x, y = arrays[split]
            name = f"{split}-{i:05d}"
            with open(os.path.join(folder, name + ".webp"), "wb") as f:
                f.write(encoded[j])
            np.save(os.path.join(folder, name + ".labels.npy"), np.asarray(y[i:i + PER], np.uint8))
            held.append({"split": split, "start": int(i), "count": int(min(PER, len(x) - i)), "file": name})
        with open(os.path.join(folder, "manifest.json"), "w") as f:
            json.dump({"fingerprint": whole, "counts": {"train": len(d.x_train), "test": len(d.x_test)},
                       "chunks": held}, f, indent=1)
        total = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))
        print(f"{folder}: {len(held)} mosaics, {total / 2**20:.1f} MiB")


def unpack(folders: list[str], out: str, partial: bool = False) -> str:
    """The parts' images in CIFAR-10's layout under `out`; all of them, checked against the fingerprint, or with
    `partial` the images these parts hold (a subset, for measurements that need no whole set)."""
    from sepspec.data.cifar import write_batches
    from sepspec.data.read import Dataset, fingerprint

    manifests = [json.load(open(os.path.join(f, "manifest.json"))) for f in folders]
    counts, whole = manifests[0]["counts"], manifests[0]["fingerprint"]
    x = {s: np.zeros((n, 32, 32, 3), np.uint8) for s, n in counts.items()}
    y = {s: np.zeros(n, np.int64) for s, n in counts.items()}
    seen = {s: np.zeros(n, bool) for s, n in counts.items()}
    for folder, m in zip(folders, manifests):
        for c in m["chunks"]:
            s, i, n = c["split"], c["start"], c["count"]
            with open(os.path.join(folder, c["file"] + ".webp"), "rb") as f:
                x[s][i:i + n] = _decode(f.read(), n, 32, 32)
            y[s][i:i + n] = np.load(os.path.join(folder, c["file"] + ".labels.npy"))
            seen[s][i:i + n] = True
    missing = {s: int((~v).sum()) for s, v in seen.items() if not v.all()}
    if partial:
        x, y = {s: x[s][seen[s]] for s in x}, {s: y[s][seen[s]] for s in y}
        write_batches(out, x["train"], y["train"], x["test"], y["test"])
        print(f"{out}: a subset of CIFAR-10, {len(y['train']):,} + {len(y['test']):,} images")
        return os.path.join(out, "cifar-10-batches-py")
    if missing:
        raise SystemExit(f"gpu_data: parts missing: {missing} images not in {folders}")
    got = fingerprint(Dataset(x["train"], y["train"], x["test"], y["test"], "unpacked", []))
    if got != whole:
        raise SystemExit(f"gpu_data: the unpacked images are not the packed set ({got} != {whole})")
    write_batches(out, x["train"], y["train"], x["test"], y["test"])
    folder = os.path.join(out, "cifar-10-batches-py")
    print(f"{folder}: CIFAR-10, {counts['train']:,} + {counts['test']:,} images, fingerprint as packed "
          f"(train sha256 {whole['train']['sha256'][:12]})")
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", help="CIFAR-10 (default: ../shared/data, $SEPSPEC_DATA)")
    p.add_argument("--out", default=os.path.join(ROOT, ".gpu", "cifar10-webp"))
    p.add_argument("--parts", type=int, default=2)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    u = sub.add_parser("unpack")
    u.add_argument("folders", nargs="+")
    u.add_argument("--out", required=True)
    u.add_argument("--partial", action="store_true", help="write the images these parts hold (a subset)")
    a = ap.parse_args()
    if a.verb == "pack":
        shared = os.path.join(os.path.dirname(ROOT), "shared", "data", "cifar-10-python.tar.gz")
        data = a.data or os.environ.get("SEPSPEC_DATA") or (shared if os.path.exists(shared) else None)
        pack(data, a.out, a.parts, a.workers)
    else:
        unpack(a.folders, a.out, a.partial)
    return 0


if __name__ == "__main__":
    sys.exit(main())
