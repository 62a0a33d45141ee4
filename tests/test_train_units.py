"""The trainer's pure parts: data loading (safely), schedules, augmentation, TF_CONFIG handling."""
import importlib.util
import os
import pickle

import numpy as np
import pytest

from sepspec.data import read as D
from sepspec.spec.trainconf import Train
from sepspec.train.devices import DeviceError, parse_tf_config
from sepspec.train.options import TrainError
from sepspec.train.schedule import lr_at, plateau_update


def tiny(n_train=60, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_train),
            rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_test))


def test_reads_folder_and_archive_in_the_standard_layout(tmp_path):
    xt, yt, xv, yv = tiny()
    folder = D.write_batches(str(tmp_path / "f"), xt, yt, xv, yv)
    archive = D.write_batches(str(tmp_path / "a"), xt, yt, xv, yv, archive=str(tmp_path / "c.tar.gz"))
    for place in (folder, str(tmp_path / "f"), archive, str(tmp_path / "a")):
        c = D.load_data(place, download=False)
        assert np.array_equal(c.x_train, xt) and np.array_equal(c.y_train, yt)
        assert np.array_equal(c.x_test, xv) and np.array_equal(c.y_test, yv)
    # the planes are red, green, blue, each row-major: pixel (0, 1) of image 0 is data[1], data[1025], data[2049]
    with open(os.path.join(folder, "data_batch_1"), "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    assert list(c.x_train[0, 0, 1]) == [raw[0, 1], raw[0, 1025], raw[0, 2049]]


def test_search_order_env_and_keras_caches(tmp_path, monkeypatch):
    xt, yt, xv, yv = tiny()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("SEPSPEC_DATA", raising=False)
    cache = tmp_path / "keras" / "datasets"
    # Keras 3 layout: the archive saved as cifar-10-batches-py-target, extracted beside it
    D.write_batches(str(cache / "cifar-10-batches-py-target_extracted"), xt, yt, xv, yv)
    assert D.load_data(None, download=False).source.endswith("cifar-10-batches-py-target_extracted")
    # Keras 2 layout wins over Keras 3
    D.write_batches(str(cache), xt[:10], yt[:10], xv, yv)
    assert len(D.load_data(None, download=False).x_train) == 10
    # $SEPSPEC_DATA wins over the caches, --data over everything
    env = D.write_batches(str(tmp_path / "env"), xt[:20], yt[:20], xv, yv)
    monkeypatch.setenv("SEPSPEC_DATA", env)
    assert len(D.load_data(None, download=False).x_train) == 20
    arg = D.write_batches(str(tmp_path / "arg"), xt[:30], yt[:30], xv, yv)
    assert len(D.load_data(arg, download=False).x_train) == 30


def test_nothing_found_names_the_places(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("SEPSPEC_DATA", raising=False)
    monkeypatch.setenv("SEPSPEC_OFFLINE", "1")
    with pytest.raises(D.DataError) as e:
        D.load_data(None)
    assert "cifar-10-batches-py-target" in str(e.value) and "--data" in str(e.value)
    with pytest.raises(D.DataError, match="no such file"):
        D.load_data(str(tmp_path / "nope"))
    with pytest.raises(D.DataError, match="no data here; expected an image folder .* a .npz archive .* CIFAR-10/100"):
        D.load_data(str(tmp_path))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_runs_nothing(tmp_path):
    xt, yt, xv, yv = tiny()
    folder = D.write_batches(str(tmp_path / "f"), xt, yt, xv, yv)
    marker = tmp_path / "pwned"
    with open(os.path.join(folder, "data_batch_1"), "wb") as f:
        pickle.dump({b"data": _Evil(marker), b"labels": [1]}, f, protocol=2)
    with pytest.raises(D.DataError, match="refused to load posix.system|refused to load os.system"):
        D.load_data(folder, download=False)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_archive_is_a_clear_error(tmp_path, damage):
    xt, yt, xv, yv = tiny()
    archive = D.write_batches(str(tmp_path / "a"), xt, yt, xv, yv, archive=str(tmp_path / "c.tar.gz"))
    raw = open(archive, "rb").read()
    with open(archive, "wb") as f:
        f.write(raw[: len(raw) // 2] if damage == "truncate" else b"\x1f\x8b" + os.urandom(4000))
    with pytest.raises(D.DataError, match="cannot read the archive|incomplete"):
        D.load_data(archive, download=False)


def test_wrong_batch_contents(tmp_path):
    xt, yt, xv, yv = tiny()
    folder = D.write_batches(str(tmp_path / "f"), xt, yt, xv, yv)
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        pickle.dump({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}, f)
    with pytest.raises(D.DataError, match="shape"):
        D.load_data(folder, download=False)


def test_inverse_time_is_the_seeds_log():
    t = Train()  # the defaults reproduce the seed: adam 0.01, inverse_time 0.319
    seed_log = [0.01, 0.0075815011, 0.0061050061, 0.005109862, 0.0043936731, 0.0038535645, 0.003431709,
                0.0030931024, 0.0028153153, 0.0025833118]
    assert [round(lr_at(t, e), 10) for e in range(10)] == pytest.approx(seed_log, abs=1e-9)
    assert lr_at(t, 49) == pytest.approx(0.0006012868, abs=1e-9)


def test_other_schedules():
    t = Train.model_validate({"epochs": 10, "optimizer": {"learning_rate": 0.1}, "schedule": {"name": "step", "every": 3, "factor": 0.5}})
    assert [lr_at(t, e) for e in (0, 2, 3, 6, 9)] == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.0125])
    t = Train.model_validate({"epochs": 11, "optimizer": {"learning_rate": 0.1}, "schedule": {"name": "cosine", "warmup_epochs": 1}})
    assert lr_at(t, 0) == pytest.approx(0.1) and lr_at(t, 1) == pytest.approx(0.1) and lr_at(t, 6) == pytest.approx(0.05)
    t = Train.model_validate({"epochs": 9, "optimizer": {"learning_rate": 0.1}, "schedule": {"name": "one_cycle", "peak_at": 0.25, "start_factor": 0.1, "end_factor": 0.0}})
    lrs = [lr_at(t, e) for e in range(9)]
    assert lrs[0] == pytest.approx(0.01) and max(lrs) == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.0)
    assert lrs.index(max(lrs)) == 2
    t = Train.model_validate({"schedule": {"name": "constant"}})
    assert lr_at(t, 30) == 0.01


def test_per_step_schedules_are_functions_of_the_position():
    """per: step: the rate before each step is a function of (epoch, batch) alone, so a resumed run gets the
    rates an uninterrupted one had; per epoch the figures stay what they were."""
    steps = 4
    t = Train.model_validate({"epochs": 5, "optimizer": {"learning_rate": 0.1},
                              "schedule": {"name": "linear", "warmup_epochs": 1, "per": "step"}})
    rates = [lr_at(t, e, None, b, steps) for e in range(5) for b in range(steps)]
    assert rates[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # warm-up: the first update is not at zero
    assert rates[4] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.1 * 1 / 16)  # then linear to zero
    assert all(a > b for a, b in zip(rates[4:], rates[5:]))
    t = Train.model_validate({"epochs": 4, "optimizer": {"learning_rate": 0.1},
                              "schedule": {"name": "one_cycle", "peak_at": 0.25, "start_factor": 0.1, "per": "step"}})
    rates = [lr_at(t, e, None, b, steps) for e in range(4) for b in range(steps)]
    assert rates[0] == pytest.approx(0.01) and max(rates) == pytest.approx(0.1) and rates.index(0.1) == 4
    assert rates[-1] == pytest.approx(0.1 / 12)
    t = Train.model_validate({"epochs": 2, "optimizer": {"learning_rate": 0.1},
                              "schedule": {"name": "cosine", "per": "step"}})
    assert lr_at(t, 1, None, 0, steps) == pytest.approx(0.05)  # halfway through the run
    assert lr_at(t, 0, None, 3, steps) < lr_at(t, 0, None, 2, steps) < 0.1
    per_epoch = Train.model_validate({"epochs": 5, "optimizer": {"learning_rate": 0.1},
                                      "schedule": {"name": "linear", "warmup_epochs": 1}})
    assert [lr_at(per_epoch, e, None, 3, steps) for e in range(5)] == pytest.approx([0.1, 0.1, 0.075, 0.05, 0.025])
    with pytest.raises(ValueError):  # a plateau has no time of its own
        Train.model_validate({"schedule": {"name": "reduce_on_plateau", "per": "step"}})


def test_reduce_on_plateau_state():
    t = Train.model_validate({"optimizer": {"learning_rate": 0.1}, "schedule": {"name": "reduce_on_plateau", "patience": 2, "factor": 0.5}})
    p = {}
    lrs = []
    for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.8]:
        lrs.append(lr_at(t, 0, p))
        p = plateau_update(t, p, loss)
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
    assert lr_at(t, 0, p) == pytest.approx(0.05)


def test_augmentation_is_exact_and_deterministic():
    import tensorflow as tf

    from sepspec.spec.trainconf import Augment
    from sepspec.train.pipeline import ArrayOps, tf_draws
    from sepspec.train.pipeline import augment_batch as aug_with

    n = 16
    x = tf.reshape(tf.range(n * 8 * 8 * 1, dtype=tf.float32) + 1, (n, 8, 8, 1))
    seed = tf.constant([7, 3], tf.int64)

    def augment_batch(tf, x, seed, aug):  # as the tf.data pipeline calls it
        return aug_with(ArrayOps.tensorflow(), x, tf_draws(tf, n, 8, 8, seed, aug), aug)

    flipped = augment_batch(tf, x, seed, Augment(flip=True)).numpy()
    mirrored = [np.array_equal(flipped[i], x[i].numpy()[:, ::-1]) for i in range(n)]
    for i in range(n):  # each image is itself or its mirror image
        assert mirrored[i] or np.array_equal(flipped[i], x[i].numpy())
    assert 0 < sum(mirrored) < n  # and both happen
    assert np.array_equal(flipped, augment_batch(tf, x, seed, Augment(flip=True)).numpy())
    crops = augment_batch(tf, x, seed, Augment(crop=2)).numpy()
    offsets = set()
    for i in range(n):  # a shifted window of the zero-padded image
        padded = np.pad(x[i].numpy(), ((2, 2), (2, 2), (0, 0)))
        found = [(r, c) for r in range(5) for c in range(5) if np.array_equal(crops[i], padded[r:r + 8, c:c + 8])]
        assert found
        offsets.add(found[0])
    assert len(offsets) > 3  # shifts vary from image to image
    cut = augment_batch(tf, x, seed, Augment(cutout=3)).numpy()
    zeros = (cut == 0).sum(axis=(1, 2, 3))
    assert all(1 <= z <= 9 for z in zeros)  # a 3x3 square, clipped at the border
    for i in range(n):  # the zeros form one box and everything else is untouched
        rows, cols = np.nonzero(cut[i, :, :, 0] == 0)
        box = np.s_[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert (cut[i][box] == 0).all() and rows.max() - rows.min() < 3 and cols.max() - cols.min() < 3
        keep = cut[i] != 0
        assert np.array_equal(cut[i][keep], x[i].numpy()[keep])


def test_alternate_flips_mirror_each_image_every_other_epoch_in_every_pipeline():
    """flip: alternate: a seeded coin per image in epoch 0, then the other side each epoch, the same in the
    tf.data pipeline and the host batches of the other backends."""
    from sepspec.spec.trainconf import Augment
    from sepspec.train.pipeline import _tf_dataset, alternate_flips, host_batches

    first = alternate_flips(64, 3, 0)
    assert 10 < first.sum() < 54 and np.array_equal(alternate_flips(64, 3, 2), first)
    assert np.array_equal(alternate_flips(64, 3, 1), ~first) and not np.array_equal(alternate_flips(64, 4, 0), first)
    x = np.random.default_rng(0).integers(0, 256, (64, 6, 6, 3), dtype=np.uint8)
    y = np.arange(64) % 4
    aug = Augment(flip="alternate")
    kw = dict(batch=16, classes=4, mean=[0.5] * 3, std=[0.25] * 3, seed=3, aug=aug)
    for epoch in (0, 1):
        order = np.random.default_rng([3, epoch]).permutation(64)
        plain = (x[order].astype(np.float32) / 255 - 0.5) / 0.25
        want = np.where(alternate_flips(64, 3, epoch)[order][:, None, None, None], plain[:, :, ::-1], plain)
        got = np.concatenate([b[0].numpy() for b in _tf_dataset(x, y, epoch=epoch, **kw)])
        assert np.allclose(got, want, atol=1e-6)
        host = host_batches(x, y, epoch=epoch, **kw)  # PyTorch's path (no device copy on this backend)
        assert np.allclose(np.concatenate([host[i][0] for i in range(4)]), want, atol=1e-6)


def test_pixels_are_the_pixel_values_themselves_in_every_pipeline():
    """normalize: pixels hands the model 0-255 exactly (a model that rescales them itself), on tf.data, the host
    batches and JAX's device; dividing by 1/255 would be off by up to 1.5e-5. Other statistics are not mistaken
    for it."""
    from sepspec.spec.trainconf import Augment, Train
    from sepspec.train.pipeline import _jax_make, _tf_dataset, are_pixel_stats, host_batches, normalize, pixel_stats

    assert Train(normalize="pixels").normalize == "pixels"
    x = np.arange(256, dtype=np.uint8).reshape(16, 4, 4, 1).repeat(3, axis=-1)
    y = np.arange(16) % 4
    mean, std = pixel_stats(3)
    assert np.array_equal(normalize(x, mean, std), x.astype(np.float32))
    assert np.array_equal(normalize(x, np.float32(mean), np.float32(std)), x.astype(np.float32))
    assert not are_pixel_stats([0.0] * 3, [1.0] * 3) and not are_pixel_stats([0.1] * 3, std)
    assert np.abs(normalize(x, [0.0] * 3, [1.0] * 3) - x / 255).max() < 1e-7
    kw = dict(batch=16, classes=4, mean=mean, std=std, seed=3, aug=Augment(), epoch=0)
    order = np.random.default_rng([3, 0]).permutation(16)
    want = x[order].astype(np.float32)
    assert np.array_equal(next(iter(_tf_dataset(x, y, **kw)))[0].numpy(), want)
    assert np.array_equal(host_batches(x, y, **kw)[0][0], want)
    jnp = pytest.importorskip("jax.numpy")
    make = _jax_make(4, mean, std, None)
    got = make(jnp.asarray(x), jnp.asarray(y.astype(np.int32)), jnp.asarray(order), {})[0]
    assert np.array_equal(np.asarray(got), want)


def test_one_augmentation_for_every_array_library():
    """augment_batch is one definition: NumPy (PyTorch's batches), jax.numpy (JAX's, on the device) and TensorFlow
    (tf.data) give the same images for the same draws, with every augmentation on at once."""
    import tensorflow as tf

    from sepspec.spec.trainconf import Augment
    from sepspec.train.pipeline import ArrayOps, augment_batch, numpy_draws

    rng = np.random.default_rng(5)
    x = rng.normal(size=(32, 10, 12, 3)).astype(np.float32)  # not square: rows and columns must not be swapped
    aug = Augment(flip=True, crop=3, cutout=5)
    draws = numpy_draws(np.random.default_rng(1), 32, 10, 12, aug)
    ref = augment_batch(ArrayOps(np), x, draws, aug)
    assert ref.shape == x.shape and not np.array_equal(ref, x)
    got = augment_batch(ArrayOps.tensorflow(), tf.constant(x), {k: tf.constant(v) for k, v in draws.items()}, aug)
    assert np.array_equal(got.numpy(), ref)
    jnp = pytest.importorskip("jax.numpy")
    got = augment_batch(ArrayOps(jnp), jnp.asarray(x), {k: jnp.asarray(v) for k, v in draws.items()}, aug)
    assert np.array_equal(np.asarray(got), ref)
    # and the crop is the window at the drawn offset of the zero-padded image, the flip the drawn mirror
    i = 0
    img = x[i][:, ::-1] if draws["flip"][i, 0, 0, 0] else x[i]
    r, c = draws["offset"][i]
    window = np.pad(img, ((3, 3), (3, 3), (0, 0)))[r:r + 10, c:c + 12]
    keep = ref[i] != 0
    assert np.array_equal(ref[i][keep], window[keep])


def test_mixup_blends_each_image_and_label_with_its_partner_in_every_pipeline():
    """augment.mixup: image i of a training batch and its one-hot label become lam * (i's) + (1 - lam) * (those of
    image b-1-i), lam drawn per image from Beta(a, a); the same batches from tf.data and the host batches of the
    other backends (one `mix_batch` for NumPy, TensorFlow and jax.numpy), none in validation, seeded per batch."""
    import tensorflow as tf

    from sepspec.spec.trainconf import Augment
    from sepspec.train.pipeline import _tf_dataset, host_batches, mix_batch, numpy_draws, tf_draws

    aug = Augment(mixup=0.4)
    lam = numpy_draws(np.random.default_rng(2), 4000, 8, 8, aug)["lam"]
    assert lam.shape == (4000, 1) and (lam >= 0).all() and (lam <= 1).all()
    assert abs(lam.mean() - 0.5) < 0.03 and (np.abs(lam - 0.5) > 0.4).mean() > 0.4  # Beta(0.4, 0.4): U-shaped
    tl = tf_draws(tf, 4000, 8, 8, tf.constant([3, 1], tf.int64), aug)["lam"].numpy()
    assert tl.shape == (4000, 1) and np.isfinite(tl).all() and (tl >= 0).all() and (tl <= 1).all()
    assert abs(tl.mean() - 0.5) < 0.03 and (np.abs(tl - 0.5) > 0.4).mean() > 0.4
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=(6, 4, 5, 3)).astype(np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]], lam[:6]
    mx, my = mix_batch(np, x, y, w)
    assert np.allclose(mx[1], w[1] * x[1] + (1 - w[1]) * x[4]) and np.allclose(my[1], w[1] * y[1] + (1 - w[1]) * y[4])
    tx, ty = mix_batch(tf.experimental.numpy, tf.constant(x), tf.constant(y), tf.constant(w))
    assert np.allclose(tx.numpy(), mx) and np.allclose(ty.numpy(), my)
    jnp = pytest.importorskip("jax.numpy")
    jx, jy = mix_batch(jnp, jnp.asarray(x), jnp.asarray(y), jnp.asarray(w))
    assert np.allclose(np.asarray(jx), mx, atol=1e-6) and np.allclose(np.asarray(jy), my, atol=1e-6)

    images = np.random.default_rng(1).integers(0, 256, (64, 6, 6, 3), dtype=np.uint8)
    labels = np.arange(64) % 4
    kw = dict(batch=16, classes=4, mean=[0.5] * 3, std=[0.25] * 3, seed=3, epoch=1, aug=aug)
    order = np.random.default_rng([3, 1]).permutation(64)
    plain = (images[order].astype(np.float32) / 255 - 0.5) / 0.25
    host = host_batches(images, labels, **kw)  # PyTorch's path (no device copy on this backend)
    tf_batches = [(a.numpy(), b.numpy()) for a, b in _tf_dataset(images, labels, **kw)]
    for name, batches in [("tf.data", tf_batches), ("host", [host[i] for i in range(len(host))])]:
        bx, by = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
        assert np.allclose(by.sum(1), 1) and (np.count_nonzero(by, axis=1) <= 2).all(), name
        own = by[np.arange(64), labels[order]]  # the weight of each image's own label
        assert 0.3 < (np.abs(own - 1) > 0.01).mean(), name  # most images are blended
        mixed = 0
        for i in range(64):
            j = (i // 16) * 16 + 15 - i % 16  # its partner: the mirrored place in its batch
            if labels[order[i]] != labels[order[j]]:
                assert np.allclose(bx[i], own[i] * plain[i] + (1 - own[i]) * plain[j], atol=1e-5), (name, i)
                mixed += 1
        assert mixed > 40
    again = [b[1].numpy() for b in _tf_dataset(images, labels, **kw)]  # the same draws each time
    assert np.array_equal(np.concatenate(again), np.concatenate([b[1] for b in tf_batches]))


def test_tf_config_checks():
    ok = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    assert parse_tf_config(ok)["task"]["index"] == 1
    for bad, msg in [(None, "not set"), ("{", "not valid JSON"), ('{"cluster": {}}', "worker"),
                     ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
                     ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "task.type"),
                     ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "task.index")]:
        with pytest.raises(DeviceError, match=msg):
            parse_tf_config(bad)


def test_tf_config_is_read_for_multiworker_only(monkeypatch):
    from sepspec.train.devices import check_tf_config

    monkeypatch.setenv("TF_CONFIG", "{")
    for name in ("default", "mirrored", "data"):
        check_tf_config(name)  # not theirs to read
    with pytest.raises(DeviceError, match="not valid JSON"):
        check_tf_config("multiworker")


def test_options_refuse_unknown_choices_before_anything_runs():
    from sepspec.train.options import Options

    assert Options(spec="x.yaml").precision == "auto"
    for kwargs, msg in [({"precision": "half"}, "unknown precision 'half'"),
                        ({"strategy": "tpu"}, "unknown strategy 'tpu' \\(default, mirrored, multiworker, data\\)")]:
        with pytest.raises(TrainError, match=msg):
            Options(spec="x.yaml", **kwargs)


def test_a_failed_download_says_why(monkeypatch, tmp_path):
    from sepspec.data import read as D

    def offline():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(D, "_download", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("SEPSPEC_DATA", raising=False)
    monkeypatch.delenv("SEPSPEC_OFFLINE", raising=False)
    with pytest.raises(D.DataError, match=r"cannot be downloaded \(\[Errno -3\] Temporary failure in name resolution\)"):
        D.load_data(None)


def test_fingerprint_is_the_data_not_its_container(tmp_path):
    from sepspec.data import read as D

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 20)
    archive = D.write_batches(str(tmp_path), x, y, x[:5], y[:5], archive=str(tmp_path / "c.tar.gz"))
    a, b = D.fingerprint(D.load_data(archive)), D.fingerprint(D.load_data(str(tmp_path / "cifar-10-batches-py")))
    assert a == b and D.fingerprint_difference(a, b) is None
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 10  # one label changed
    D.write_batches(str(tmp_path / "other"), x, y2, x[:5], y[:5])
    c = D.fingerprint(D.load_data(str(tmp_path / "other")))
    assert c["test"] == a["test"] and c["train"] != a["train"]
    assert D.fingerprint_difference(a, c).startswith("its training set has 20 images (sha256 ")


def test_flip_tta_is_the_mean_over_each_image_and_its_mirror():
    from sepspec.lazy import import_keras
    from sepspec.train.predict import gives_probabilities, probabilities, scores

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(3)(keras.layers.Flatten()(inp))
    as_logits = keras.Model(inp, logits)
    as_probs = keras.Model(inp, keras.layers.Activation("softmax")(logits))
    assert gives_probabilities(as_probs) and not gives_probabilities(as_logits)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4, 4, 1)).astype("float32")
    p = probabilities(as_logits, x)
    assert np.allclose(p, probabilities(as_probs, x), atol=1e-6) and np.allclose(p.sum(axis=1), 1)
    flip = probabilities(as_probs, x, "flip")
    assert np.allclose(flip, (p + probabilities(as_probs, x[:, :, ::-1, :])) / 2, atol=1e-6)
    assert not np.allclose(flip, p)
    symmetric = x + x[:, :, ::-1, :]  # the mirror image is the same image: flipping changes nothing
    assert np.allclose(probabilities(as_probs, symmetric, "flip"), probabilities(as_probs, symmetric), atol=1e-6)
    s = scores(np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([0, 0]))
    assert s["accuracy"] == 0.5 and s["loss"] == pytest.approx(-(np.log(0.9) + np.log(0.4)) / 2)


def test_every_dataset_the_trainer_makes_has_tf_data_autotuning_off():
    """tf.data's autotuning thread can hold the end of an epoch until its current sleep ends (10.23 s for 6.3 s of
    steps, docs/experiments.md): the trainer's training datasets and predict's turn it off."""
    import tensorflow as tf

    from sepspec.lazy import import_keras
    from sepspec.spec.trainconf import Augment
    from sepspec.train.pipeline import dataset
    from sepspec.train.predict import _batches, probabilities

    x = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    y = np.arange(10) % 3
    ds = dataset(x, y, batch=4, classes=3, mean=[0.0] * 3, std=[1.0] * 3, seed=0, epoch=0, aug=Augment(flip=True))
    assert ds.options().autotune.enabled is False and ds.options().deterministic is True
    assert [len(b[0]) for b in ds] == [4, 4, 2]
    xf = x.astype("float32") / 255
    assert _batches(xf, 4)[0].options().autotune.enabled is False
    keras = import_keras()
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp)))
    assert np.allclose(probabilities(model, xf, batch_size=4), model(tf.constant(xf)).numpy(), atol=1e-6)


def test_predict_runs_one_batch_shape_and_scores_each_image_as_alone():
    """Validation and the test split are scored in batches of exactly the batch size, the last one padded and its
    padding dropped: one traced predict function for any number of images of at least a batch (a shorter last
    batch would be a second), fewer in one batch of their own; each image scored as the model scores it alone
    (batch norm in inference), nothing for no images. The loss `scores` gives is Keras's own, label smoothing
    included."""
    from sepspec.lazy import import_keras
    from sepspec.train.predict import predict, scores

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 2))
    h = keras.layers.BatchNormalization()(keras.layers.Conv2D(3, 3, padding="same")(inp))
    model = keras.Model(inp, keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(h)))
    model.layers[2].moving_variance.assign(np.full(3, 4.0, np.float32))  # statistics that are not the identity
    x = np.random.default_rng(0).normal(size=(10, 4, 4, 2)).astype("float32")
    for n in (10, 6, 8, 3):
        out = predict(model, x[:n], 4)
        assert out.shape == (n, 5) and out.dtype == np.float64
        assert np.allclose(out, np.asarray(model(x[:n], training=False)), atol=1e-5)
        assert model.predict_function.experimental_get_tracing_count() == (1 if n >= 4 else 2)  # 3: one of 3
    assert predict(model, x[:0], 4).shape == (0, 5)
    p = np.asarray(keras.ops.softmax(model(x, training=False)), np.float64)
    y = np.arange(10) % 5
    for s in (0.0, 0.1):
        want = keras.losses.CategoricalCrossentropy(label_smoothing=s)(np.eye(5)[y], p)
        assert scores(p, y, s)["loss"] == pytest.approx(float(want), rel=1e-5)
    assert scores(p, y, 0.1)["loss"] != pytest.approx(scores(p, y)["loss"], rel=1e-4)  # smoothing counts


def test_flip_shift_tta_is_the_mean_over_six_views():
    from sepspec.lazy import import_keras
    from sepspec.train.predict import by_view, shifted

    x = np.arange(2 * 3 * 3 * 1, dtype=np.float32).reshape(2, 3, 3, 1) + 1
    assert np.array_equal(shifted(x, 1, 1)[0, :, :, 0], [[0, 0, 0], [0, 1, 2], [0, 4, 5]])
    assert np.array_equal(shifted(x, -1, -1)[0, :, :, 0], [[5, 6, 0], [8, 9, 0], [0, 0, 0]])
    keras = import_keras()
    keras.utils.set_random_seed(0)
    inp = keras.Input((3, 3, 1))
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp)))
    p = by_view(model, x, "flip_shift")
    assert set(p) == {"none", "flip", "flip_shift"}
    one = lambda v: model.predict(v, verbose=0)  # noqa: E731
    views = [v2 for v in (x, x[:, :, ::-1]) for v2 in (v, shifted(v, 1, 1), shifted(v, -1, -1))]
    assert np.allclose(p["flip_shift"], np.mean([one(v) for v in views], axis=0), atol=1e-6)
    assert np.allclose(p["flip"], (one(x) + one(x[:, :, ::-1])) / 2, atol=1e-6)


def test_weight_decay_spares_what_no_decay_names():
    """optimizer.no_decay: the depthwise kernels, the norms' scales and offsets, the biases and PReLU's slopes keep
    their values under a decay that shrinks everything else (a zero gradient leaves decay alone at work)."""
    from sepspec.lazy import import_keras
    from sepspec.spec.trainconf import Train
    from sepspec.train.compiled import spare_from_decay

    keras = import_keras()
    inp = keras.Input((6, 6, 3))
    h = keras.layers.SeparableConv2D(4, 3, name="sep")(inp)
    h = keras.layers.DepthwiseConv2D(3, name="dw")(keras.layers.BatchNormalization(name="bn")(h))
    h = keras.layers.LayerNormalization(name="ln")(keras.layers.Conv2D(4, 1, name="pw")(h))
    h = keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer="ones", name="pr")(h)
    model = keras.Model(inp, keras.layers.Dense(2, name="out")(keras.layers.Flatten()(h)))
    train = Train.model_validate({"optimizer": {"name": "adamw", "learning_rate": 0.1, "weight_decay": 0.5,
                                                "no_decay": ["depthwise", "norm", "bias", "alpha"]}})
    model.compile(optimizer=keras.optimizers.AdamW(0.1, weight_decay=0.5), loss="mse")
    assert spare_from_decay(model, train) == 11  # 2 depthwise kernels, 2 + 2 norm weights, 4 biases, 1 alpha
    before = {w.path: np.array(w.numpy()) for w in model.trainable_weights}
    model.optimizer.apply_gradients([(np.zeros(w.shape, "float32"), w) for w in model.trainable_weights])
    kept = {w.path for w in model.trainable_weights if np.array_equal(w.numpy(), before[w.path])}
    assert kept == {"sep/depthwise_kernel", "dw/kernel", "bn/gamma", "bn/beta", "ln/gamma", "ln/beta",
                    "sep/bias", "dw/bias", "pw/bias", "out/bias", "pr/alpha"}, kept


def test_the_jax_device_cache_never_serves_another_arrays_images():
    """A sweep trains many trials in one process: arrays made and dropped one after another must never be
    served another array's device copy (the cache once keyed arrays by `id()` alone, which Python reuses)."""
    pytest.importorskip("jax")
    from sepspec.train import pipeline

    for i in range(30):
        x = np.full((4, 2, 2, 3), i, np.uint8)
        images, _, _ = pipeline._jax_batches(x, np.zeros(4, np.int64), 10, [0.0] * 3, [1.0] * 3, None)
        assert int(np.asarray(images)[0, 0, 0, 0]) == i
        del x


def test_a_short_runs_lagging_batch_norm_statistics_are_explained_where_the_user_sees_them():
    from sepspec import analyse, load
    from sepspec.train.terminal import lagging_statistics

    from conftest import BASE

    rep = analyse(load(BASE))  # the seed's batch norms: momentum 0.99
    epoch1 = [{"epoch": 1, "accuracy": 0.4522, "val_accuracy": 0.1859}]  # results/base-50ep's first epoch
    note = lagging_statistics(rep, epoch1, 196)
    assert "momentum 0.99" in note and "196 steps" in note and "0.99^196 = 0.14" in note
    assert lagging_statistics(rep, [{"epoch": 3, "accuracy": 0.6651, "val_accuracy": 0.6389}], 196) is None
    assert lagging_statistics(rep, [], 196) is None


PER_STEP = [{"name": "linear", "warmup_epochs": 0.5, "per": "step"}, {"name": "cosine", "warmup_epochs": 1, "per": "step"},
            {"name": "one_cycle", "peak_at": 0.25, "start_factor": 0.1, "per": "step"},
            {"name": "inverse_time", "decay_rate": 0.3, "per": "step"}, {"name": "step", "every": 2, "per": "step"},
            {"name": "constant", "per": "step"}]


@pytest.mark.parametrize("schedule", PER_STEP, ids=[s["name"] for s in PER_STEP])
def test_the_in_step_rate_is_lr_at(schedule):
    """On JAX and PyTorch a per-step rate is computed inside the compiled step from the update count: the same
    rates as `lr_at`, to float32 rounding, at every step of every epoch (a partial last batch included)."""
    from sepspec.train.steprate import step_rate

    t = Train.model_validate({"epochs": 5, "optimizer": {"learning_rate": 0.1}, "schedule": schedule})
    steps = 7
    rate = step_rate(t, steps)
    got = [float(rate(i)) for i in range(5 * steps)]
    want = [lr_at(t, e, None, b, steps) for e in range(5) for b in range(steps)]
    # float32: a rate is within a few units of float32 rounding of the base rate (0.1) of the exact one
    assert got == pytest.approx(want, rel=1e-6, abs=4 * float(np.finfo(np.float32).eps) * 0.1)
    again = type(rate).from_config(rate.get_config())  # what a checkpoint keeps
    assert float(again(12)) == got[12]


def test_a_per_step_rate_reaches_every_step_on_jax(tmp_path):
    """Keras's JAX `fit` carries the optimizer's state from step to step: a rate assigned between two steps
    (the TensorFlow path's callback) is never seen there. With the in-step rate each step takes its own: SGD on a
    loss whose gradient is constant moves the weight by the sum of the per-step rates."""
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(
        "import numpy as np, keras\n"
        "from sepspec.spec.trainconf import Train\n"
        "from sepspec.train.schedule import lr_at\n"
        "from sepspec.train.steprate import step_rate\n"
        "t = Train.model_validate({'epochs': 2, 'optimizer': {'name': 'sgd', 'learning_rate': 0.1},\n"
        "                          'schedule': {'name': 'linear', 'warmup_epochs': 1, 'per': 'step'}})\n"
        "m = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer='zeros')])\n"
        "m.compile(keras.optimizers.SGD(step_rate(t, 3)), loss=lambda y, p: keras.ops.mean(p))\n"
        "x = np.ones((12, 1), np.float32)\n"
        "m.fit(x, x, batch_size=4, epochs=2, verbose=0, shuffle=False)\n"
        "want = -sum(lr_at(t, e, None, b, 3) for e in range(2) for b in range(3))\n"
        "print(float(m.get_weights()[0][0, 0]), want)\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
    got, want = map(float, out.stdout.split())
    assert got == pytest.approx(want, rel=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (the dev extra has it)")
def test_a_sepspec_process_on_tensorflow_keeps_jax_out_of_tensorflows_import_and_a_library_caller_does_not():
    """TensorFlow's LiteRT helpers import JAX where it is installed (0.4 s of every start); the command line's
    processes keep it out, and `import jax` still works after; a library caller's process is left alone."""
    import subprocess
    import sys

    probe = ("import sys, sepspec.lazy as l; l.OWN_PROCESS = {own}; l.import_keras(); print('jax' in sys.modules); "
             "import jax; print(jax.numpy.add(1, 2))")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    for own, imported in ((True, "False"), (False, "True")):
        r = subprocess.run([sys.executable, "-c", probe.format(own=own)], capture_output=True, text=True, env=env)
        assert r.returncode == 0 and r.stdout.split() == [imported, "3"], r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-c", "import sepspec.cli, sepspec.cli.convert, sepspec.lazy as l; "
                        "print(l.OWN_PROCESS)"], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == "False"  # importing the command line sets nothing: its entry points do


def test_the_progress_line_shows_stacked_seeds_mean_loss_and_accuracy(monkeypatch, capsys):
    """On a terminal the progress line shows the loss and accuracy Keras logs; for stacked seeds, which log each
    seed's own, their mean (not NaN, and not the stacked model's summed loss)."""
    import io
    import sys
    from types import SimpleNamespace

    from sepspec.train.terminal import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    keras = SimpleNamespace(callbacks=SimpleNamespace(LambdaCallback=lambda on_train_batch_end: SimpleNamespace(
        hook=on_train_batch_end)))
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    alone = Progress(keras, 1, 2, 4)
    alone.cb.hook(0, {"loss": 2.0, "accuracy": 0.25})
    stacked = Progress(keras, 1, 2, 4, keys=(["seed0_epoch_loss", "seed1_epoch_loss"],
                                             ["seed0_accuracy", "seed1_accuracy"]))
    stacked.cb.hook(1, {"loss": 5.0, "seed0_epoch_loss": 2.0, "seed1_epoch_loss": 3.0, "seed0_accuracy": 0.5,
                        "seed1_accuracy": 0.7})
    first, second = out.getvalue().split("\r")[1:]
    assert "1/4 loss 2.0000 acc 0.2500" in first and "2/4 loss 2.5000 acc 0.6000" in second
