"""The user's own data: image folders (PNG, JPEG; colour and 28x28 grayscale), NumPy archives and CIFAR-100,
written from images the tests make (conftest.images); every bad-data case a one-line error (or a documented
skip); a folder streamed from its files exactly as in memory; a grayscale folder trained, killed, resumed
(streaming), evaluated and exported through the real CLI."""
import csv
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest

from sepspec.data import read as D
from sepspec.data.imagefolder import TEST_FRACTION

from conftest import OFFLINE, ROOT, run_cli
from writers import write_cifar100, write_folder, write_npz

ENV = OFFLINE


def _gray28(x):
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(img).convert("L").resize((28, 28), Image.BILINEAR))[..., None]
                     for img in x])


def _folder_order(x, y):
    """The order a folder gives: by class (sorted names), then by file name (the index written)."""
    idx = np.lexsort((np.arange(len(y)), y))
    return x[idx], y[idx]


def test_a_png_folder_and_an_npz_of_the_same_images_give_identical_arrays_and_fingerprints(tmp_path, images):
    x, y, xt, yt, names = images
    root = str(tmp_path / "png")
    write_folder(root, x, y, names, split="train")
    write_folder(root, xt, yt, names, split="test")
    f = D.load_data(root)
    ex, ey = _folder_order(x, y)
    assert f.layout == "folder" and f.split == "train/ and test/ folders" and f.class_names == sorted(names)
    # the class index is the sorted folder name: CIFAR's order is not alphabetical, so map it
    remap = np.array([sorted(names).index(n) for n in names])
    assert np.array_equal(f.x_train, ex) and np.array_equal(f.y_train, remap[ey])
    npz = write_npz(str(tmp_path / "same.npz"), f.x_train, f.y_train, f.x_test, f.y_test, f.class_names)
    z = D.load_data(npz)
    assert z.layout == "npz" and z.class_names == f.class_names
    for a, b in ((z.x_train, f.x_train), (z.y_train, f.y_train), (z.x_test, f.x_test), (z.y_test, f.y_test)):
        assert np.array_equal(a, b)
    assert D.fingerprint(z) == D.fingerprint(f)
    assert f.example("train", 0) == os.path.join("train", "airplane", f.files["train"][0].split(os.sep)[-1])


@pytest.mark.slow
def test_a_streamed_folder_gives_the_arrays_stats_fingerprint_and_batches_of_the_folder_in_memory(tmp_path, images,
                                                                                                     monkeypatch):
    """stream: on reads the folder once to check and hash it and then decodes each batch's files: the images,
    the exact channel statistics, the fingerprint, every training batch (order, flips, shifts) and the test
    predictions are those of the same folder decoded into memory; bad files are named as before."""
    from sepspec.data import imagefolder
    from sepspec.lazy import import_keras
    from sepspec.spec.trainconf import Augment
    from sepspec.train import scoring
    from sepspec.train.pipeline import _tf_dataset, channel_stats, host_batches
    from sepspec.train.scoring import predictions_on_test_split

    x, y, xt, yt, names = images
    root = str(tmp_path / "png")
    write_folder(root, x, y, names, split="train")
    write_folder(root, xt, yt, names, split="test")
    m, s = D.load_data(root, stream="off"), D.load_data(root, stream="on")
    assert s.streamed and not m.streamed and s.x_train.shape == m.x_train.shape == (240, 32, 32, 3)
    assert np.array_equal(np.asarray(s.x_train), m.x_train) and np.array_equal(np.asarray(s.x_test), m.x_test)
    assert D.fingerprint(s) == D.fingerprint(m)
    held = np.zeros(240, bool)
    held[::7] = True
    part = s.x_train[~held][:100]  # the trainer's split and --train-limit, still on disk
    assert isinstance(part, imagefolder.FolderImages) and np.array_equal(np.asarray(part), m.x_train[~held][:100])
    assert channel_stats(part) == channel_stats(m.x_train[~held][:100])  # to the last bit
    aug = Augment(flip="alternate", crop=3)
    kw = dict(batch=32, classes=10, mean=[0.5] * 3, std=[0.25] * 3, seed=4, epoch=1, aug=aug)
    for a, b in zip(_tf_dataset(part, m.y_train[~held][:100], **kw), _tf_dataset(m.x_train[~held][:100],
                                                                                     m.y_train[~held][:100], **kw)):
        assert np.array_equal(a[0].numpy(), b[0].numpy()) and np.array_equal(a[1].numpy(), b[1].numpy())

    def host(images):  # the host batches' batch 1 (PyTorch's path; on this TensorFlow backend without a device copy)
        return host_batches(images, m.y_train, batch=32, classes=10, mean=[0.5] * 3, std=[0.25] * 3, seed=4, epoch=1,
                            aug=Augment(flip=True, crop=3))[1]

    assert all(np.array_equal(a, b) for a, b in zip(host(s.x_train), host(m.x_train)))
    if importlib.util.find_spec("jax") is not None:  # JAX: the batch made on the device from a copy, or sent decoded
        from sepspec.train.pipeline import _jax_batches, numpy_draws

        idx = np.random.default_rng(1).permutation(240)[:32]
        draws = numpy_draws(np.random.default_rng(2), 32, 32, 32, aug)
        images, labels, make = _jax_batches(m.x_train, m.y_train, 10, [0.5] * 3, [0.25] * 3, aug)
        none, _, streamed = _jax_batches(s.x_train, s.y_train, 10, [0.5] * 3, [0.25] * 3, aug)
        assert none is None and streamed is make
        a = make(images, labels, idx, draws)
        b = streamed(s.x_train.decode(idx), s.y_train[idx].astype(np.int32), np.arange(32), draws)
        assert all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in zip(a, b))
    keras = import_keras()
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inp)))
    monkeypatch.setattr(scoring, "CHUNK", 25)  # three chunks of the 60 test images
    norm = ([0.5] * 3, [0.25] * 3)
    assert np.allclose(predictions_on_test_split(model, s, norm, "flip"), predictions_on_test_split(model, m, norm, "flip"))
    monkeypatch.setattr(imagefolder, "STREAM_SHARE", 1e-9)  # auto: a folder larger than its share of memory streams
    assert D.load_data(root).streamed
    monkeypatch.setattr(imagefolder, "STREAM_SHARE", 0.25)
    assert not D.load_data(root).streamed
    bad = s.files["train"][40]
    with open(os.path.join(root, bad), "r+b") as f:  # a truncated file, named by the checking pass
        f.truncate(200)
    with pytest.raises(D.DataError, match=f"{os.path.basename(bad)}: not a readable image"):
        D.load_data(root, stream="on")


def test_jpeg_gif_bmp_and_grayscale_folders_decode(tmp_path, images):
    x, y, xt, yt, names = images
    for fmt in ("jpg", "gif", "bmp"):
        root = str(tmp_path / fmt)
        write_folder(root, x[:120], y[:120], names, fmt=fmt)
        d = D.load_data(root)
        assert d.x_train.shape[1:] == (32, 32, 3) and len(d.x_train) + len(d.x_test) == 120
        if fmt == "bmp":  # lossless
            assert set(map(bytes, d.x_train.reshape(len(d.x_train), -1))) <= set(map(bytes, x[:120].reshape(120, -1)))
        if fmt == "jpg":  # lossy, but the same pictures
            assert abs(float(np.concatenate([d.x_train, d.x_test]).mean()) - float(x[:120].mean())) < 2.0
    g = str(tmp_path / "gray")
    write_folder(g, _gray28(x[:120]), y[:120], names)
    d = D.load_data(g)
    assert d.x_train.shape[1:] == (28, 28, 1) and d.x_train.dtype == np.uint8


def test_one_tree_holds_out_a_seeded_fifth_of_each_class(tmp_path, images):
    x, y, _, _, names = images
    root = str(tmp_path / "tree")
    write_folder(root, x, y, names)
    a, b = D.load_data(root), D.load_data(root)
    assert a.files == b.files and np.array_equal(a.x_test, b.x_test)  # the same split every time
    for i in range(len(names)):
        n = int((y == i).sum())
        assert int((a.y_test == i).sum()) == min(n - 1, max(1, round(n * TEST_FRACTION)))
    assert set(a.files["train"]).isdisjoint(a.files["test"]) and "held out as the test split (seed 0)" in a.split


@pytest.mark.slow
def test_cifar100_fine_and_coarse_labels(tmp_path, images):
    x, y, xt, yt, _ = images
    fine, coarse = [f"fine{i}" for i in range(100)], [f"coarse{i}" for i in range(20)]
    arch = write_cifar100(str(tmp_path), x, y * 10 + np.arange(len(y)) % 10, y * 2 + np.arange(len(y)) % 2,
                          xt, yt * 10, yt * 2, fine, coarse, archive=str(tmp_path / "cifar-100-python.tar.gz"))
    d = D.load_data(arch)
    assert d.layout == "cifar100" and len(d.class_names) == 100 and d.y_train.max() <= 99
    assert np.array_equal(d.x_train, x) and np.array_equal(d.y_train, y * 10 + np.arange(len(y)) % 10)
    c = D.load_data(str(tmp_path / "cifar-100-python"), labels="coarse")
    assert c.class_names == coarse and np.array_equal(c.y_test, yt * 2)
    # the trainer reads the coarse labels when the spec asks for them, and evaluate names them
    spec = tmp_path / "coarse.yaml"
    spec.write_text("name: coarse\ninput: [32, 32, 3]\nclasses: 20\nlayers:\n  - sepconv: {filters: 8, norm: batch, "
                    "activation: relu}\n  - maxpool: 2\n  - sepconv: 20\n  - gap: {}\n  - activation: softmax\n"
                    "train: {epochs: 1, batch_size: 32, labels: coarse}\n")
    run = str(tmp_path / "run")
    r = run_cli("train", str(spec), "--data", arch, "--out", run, env=ENV)
    assert r.returncode == 0, r.stderr
    assert json.load(open(os.path.join(run, "run.json")))["data"]["classes"] == coarse
    r = run_cli("evaluate", run, env=ENV)
    assert r.returncode == 0 and "coarse19" in r.stdout, r.stderr
    r = run_cli("train", str(spec), "--data", arch,
                "--out", str(tmp_path / "fine"), "--set", "train.labels=fine", env=ENV)
    assert r.returncode == 2 and "classes: 20, but the data has 100 classes (fine0" in r.stderr


# ------------------------------------------------------------------------------------------- bad data
def _tree(tmp_path, images, n=120):
    x, y, _, _, names = images
    root = str(tmp_path / "bad")
    write_folder(root, x[:n], y[:n], names)
    return root, names


def _error(path, **kw) -> str:
    with pytest.raises(D.DataError) as e:
        D.load_data(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_truncated_image_and_a_file_that_is_no_image_name_the_file(tmp_path, images):
    root, names = _tree(tmp_path, images)
    victim = os.path.join(root, names[0], sorted(os.listdir(os.path.join(root, names[0])))[0])
    raw = open(victim, "rb").read()
    open(victim, "wb").write(raw[:len(raw) // 2])
    assert victim in _error(root) and "not a readable image" in _error(root)
    open(victim, "wb").write(b"this is a note, not a picture\n")
    assert victim in _error(root)


def test_files_without_an_image_suffix_are_skipped_and_counted(tmp_path, images):
    root, names = _tree(tmp_path, images)
    open(os.path.join(root, names[1], "notes.txt"), "w").write("labels checked by hand\n")
    open(os.path.join(root, names[1], ".DS_Store"), "wb").write(b"\0\1")
    d = D.load_data(root)
    assert len(d.skipped) == 2 and D.skipped_note(d).startswith(f"note: {root}: skipped 2 file(s)")


def test_an_empty_class_and_a_class_missing_from_one_split(tmp_path, images):
    root, names = _tree(tmp_path, images)
    os.makedirs(os.path.join(root, "zebra"))
    assert "zebra: an empty class folder" in _error(root)
    x, y, xt, yt, names = images
    split = str(tmp_path / "split")
    write_folder(split, x[:60], y[:60], names, split="train")
    write_folder(split, xt, yt, names, split="test")
    shutil.rmtree(os.path.join(split, "test", "truck"))
    msg = _error(split)
    assert "test: has no folder for class 'truck', which train/ has" in msg


def test_mixed_sizes_and_grayscale_among_colour_name_a_file(tmp_path, images):
    from PIL import Image

    root, names = _tree(tmp_path, images)
    odd = os.path.join(root, names[2], "big.png")
    Image.fromarray(np.zeros((40, 36, 3), np.uint8)).save(odd)
    msg = _error(root)
    assert "big.png: 36x40 pixels among images of 32x32" in msg and "train.resize: true" in msg
    d = D.load_data(root, size=(32, 32))  # asked for: resized
    assert d.x_train.shape[1:] == (32, 32, 3) and d.resized
    os.remove(odd)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(os.path.join(root, names[2], "gray.png"))
    msg = _error(root)
    assert "gray.png: grayscale (1 channels) among colour images (3 channels" in msg
    assert "channels are never converted" in msg


def test_bad_npz_archives(tmp_path, images):
    x, y, xt, yt, _ = images
    p = str(tmp_path / "d.npz")
    write_npz(p, x, y, xt, yt + 50)  # without class_names the classes are 0..the largest label
    assert len(D.load_data(p).class_names) == int(yt.max()) + 51
    write_npz(p, x, y, xt, yt, [f"c{i}" for i in range(10)])
    assert D.load_data(p).class_names == [f"c{i}" for i in range(10)]
    write_npz(p, x, y, xt, np.where(np.arange(len(yt)) == 7, 12, yt), [f"c{i}" for i in range(10)])
    assert "y_test[7] is 12, outside 0..9 (10 classes)" in _error(p)
    write_npz(p, x, y.astype(np.float32), xt, yt)
    assert "y_train must be integer class indices" in _error(p)
    write_npz(p, x.astype(np.float32), y, xt, yt)
    assert "x_train must be uint8 images" in _error(p)
    np.savez(p, x_train=x, y_train=y, x_test=xt)
    assert "missing y_test" in _error(p)
    np.savez(p, x_train=x, y_train=y, x_test=xt, y_test=np.array([{"evil": 1}] * len(yt), dtype=object))
    assert "pickle" in _error(p)
    open(p, "wb").write(b"PK\3\4 not really a zip")
    assert "not a readable .npz archive" in _error(p)


def test_a_spec_that_does_not_fit_the_data_is_refused_before_any_run_folder(tmp_path, images):
    x, y, _, _, names = images
    root = str(tmp_path / "gray")
    write_folder(root, _gray28(x[:120]), y[:120], names)
    out = tmp_path / "run"
    r = run_cli("train", os.path.join(ROOT, "specs", "base.yaml"), "--data", root, "--out", str(out), env=ENV)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "specs/base.yaml: input 32x32x3, but the data's images are 28x28x1 (e.g. airplane/" in line
    assert not out.exists()
    spec = tmp_path / "five.yaml"
    spec.write_text(open(os.path.join(ROOT, "specs", "gray28.yaml")).read().replace("classes: 10", "classes: 5")
                    .replace("filters: 10,", "filters: 5,"))
    r = run_cli("train", str(spec), "--data", root, "--out", str(out), env=ENV)
    assert r.returncode == 2 and "five.yaml: classes: 5, but the data has 10 classes (airplane" in r.stderr
    assert not out.exists()


# ---------------------------------------------------------------------------------- the whole way
@pytest.mark.slow
def test_a_grayscale_folder_trains_resumes_evaluates_and_exports(tmp_path, images):
    from sepspec.deploy.runtime import scores

    x, y, xt, yt, names = images
    root = str(tmp_path / "digits")
    write_folder(root, _gray28(x), y, names, split="train")
    write_folder(root, _gray28(xt), yt, names, split="test", fmt="jpg")
    spec = os.path.join(ROOT, "specs", "gray28.yaml")
    args = ["train", spec, "--data", root, "--epochs", "2", "--set", "train.batch_size=32"]
    whole, cut = str(tmp_path / "whole"), str(tmp_path / "cut")
    r = run_cli(*args, "--out", whole, env=ENV)
    assert r.returncode == 0, r.stderr
    # the cut run streams the folder from its files (and resumes streaming): the same training as in memory
    r = run_cli(*args, "--out", cut, "--stream", "on", env={**ENV, "SEPSPEC_CRASH_AT": "before-commit:2"})
    assert r.returncode == 137
    r = run_cli("train", "--resume", cut, env=ENV)
    assert r.returncode == 0 and "resuming after epoch 1" in r.stdout, r.stderr
    a, b = (list(csv.DictReader(open(os.path.join(run, "history.csv")))) for run in (whole, cut))
    assert [int(r["epoch"]) for r in b] == [1, 2]
    assert [(r["loss"], r["val_loss"]) for r in a] == [(r["loss"], r["val_loss"]) for r in b]  # as uninterrupted
    record = json.load(open(os.path.join(whole, "run.json")))["data"]
    assert record["layout"] == "folder" and record["classes"] == sorted(names) and not record["resized"]
    assert not record["streamed"] and json.load(open(os.path.join(cut, "run.json")))["data"]["streamed"]
    r = run_cli("evaluate", whole, env=ENV)
    assert r.returncode == 0 and "airplane" in r.stdout and "truck" in r.stdout, r.stderr
    q = str(tmp_path / "q.tflite")
    r = run_cli("export", whole, "--format", "litert-int8", "-o", q, "--calibration", "32", env=ENV)
    assert r.returncode == 0, r.stderr  # calibrated on the run's own folder
    d = D.load_data(root)
    assert scores(q, d.x_test).shape == (len(d.x_test), 10)
    r = run_cli("train", "--resume", cut, "--data", str(tmp_path / "digits"), "--epochs", "2", env=ENV)
    assert r.returncode == 2 and "already finished" in r.stderr
