"""The fast layers (sepspec/train/fastpath.py): the fused batch norm trains to the values Keras's own layer gives
(outputs, gradients, moving statistics over several steps, in float32 and mixed float16); dropout with integer
masks keeps each element with probability 1 - rate, scaled as Keras scales, from the layer's own seed generator;
the saved model stays plain Keras."""
import numpy as np
import pytest

from sepspec.lazy import import_keras

keras = import_keras()
pytestmark = [pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the fused kernel is TensorFlow's"),
              pytest.mark.slow]  # trains: not in the inner loop


def _pair(momentum=0.9, center=True, scale=True):
    from sepspec.train.fastpath import fuse_batch_norms

    def make():
        keras.utils.set_random_seed(3)
        i = keras.Input((12, 10, 6))
        x = keras.layers.SeparableConv2D(8, 3, padding="same")(i)
        x = keras.layers.BatchNormalization(momentum=momentum, center=center, scale=scale, name="bn")(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(i, keras.layers.Dense(5)(x))

    a, b = make(), make()
    b.set_weights(a.get_weights())
    assert fuse_batch_norms(b) == 1
    return a, b


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, 2.0, (24, 12, 10, 6)).astype("float32"), rng.integers(0, 5, 24)


@pytest.mark.parametrize("center, scale", [(True, True), (False, False)])
def test_fused_training_equals_keras_batch_norm(center, scale):
    import tensorflow as tf

    a, b = _pair(center=center, scale=scale)
    x, y = _data()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for model in (a, b):
        model.compile(keras.optimizers.SGD(0.05), loss)
    # one step by hand: the training outputs and every gradient
    grads = []
    for model in (a, b):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            value = loss(y, out)
        grads.append((out.numpy(), [g.numpy() for g in tape.gradient(value, model.trainable_weights)]))
    (oa, ga), (ob, gb) = grads
    assert np.abs(oa - ob).max() < 1e-5
    assert all(np.abs(p - q).max() < 1e-5 for p, q in zip(ga, gb))
    for step in range(6):  # then steps of fit: the weights and the moving statistics follow
        x, y = _data(step + 1)
        a.train_on_batch(x, y)
        b.train_on_batch(x, y)
    for wa, wb in zip(a.weights, b.weights):
        assert np.abs(wa.numpy() - wb.numpy()).max() < 1e-5, wa.path
    mv = b.get_layer("bn").moving_variance.numpy()
    assert np.abs(a.get_layer("bn").moving_variance.numpy() - mv).max() < 1e-5 and not np.allclose(mv, 1.0)
    assert np.abs(a(x, training=False).numpy() - b(x, training=False).numpy()).max() < 1e-5


def test_fused_in_mixed_float16_and_the_saved_model_is_plain_keras(tmp_path):
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        a, b = _pair()
        x, y = _data()
        for model in (a, b):
            model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            for _ in range(3):
                model.train_on_batch(x, y)
        assert b.get_layer("bn").compute_dtype == "float16"
        for wa, wb in zip(a.weights, b.weights):
            assert np.abs(wa.numpy().astype("float32") - wb.numpy().astype("float32")).max() < 5e-3, wa.path
    finally:
        keras.mixed_precision.set_global_policy(policy)
    path = str(tmp_path / "m.keras")
    b.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)  # its layers, not its optimizer
    assert type(loaded.get_layer("bn")) is keras.layers.BatchNormalization and "call" not in vars(loaded.get_layer("bn"))


def test_dropout_masks_keep_one_minus_rate_scaled_as_keras_and_follow_the_seed_generator():
    from sepspec.train.fastpath import cheap_dropouts, mask_threshold

    def model():
        i = keras.Input((64, 64, 8))
        return keras.Model(i, keras.layers.Dropout(0.07, seed=5, name="drop")(i))

    m = model()
    assert cheap_dropouts(m) == 1
    x = np.ones((16, 64, 64, 8), "float32")
    a = m(x, training=True).numpy()
    kept = a != 0
    n = kept.size
    assert abs(kept.mean() - 0.93) < 4 * np.sqrt(0.07 * 0.93 / n)  # within 4 standard deviations of 1 - rate
    assert mask_threshold(0.07) == 4588 and mask_threshold(1e-9) == 1  # the rate on the 2**-16 grid, never 0
    # two elements share a random word (16 bits each): their decisions are independent all the same
    pairs = kept.reshape(-1, 2)
    both, q = pairs.all(axis=1).mean(), kept.mean()
    assert abs(both - q * q) < 4 * np.sqrt(q * q * (1 - q * q) / len(pairs))
    assert np.allclose(a[kept], 1 / 0.93)  # Keras's scale
    assert not np.array_equal(a, m(x, training=True).numpy())  # a new mask every call
    assert np.array_equal(m(x, training=False).numpy(), x)  # inference: the identity
    # the masks follow the seed generator's state (what the trainer saves for an exact resume)
    g = m.get_layer("drop").seed_generator
    state = g.state.numpy()
    first = m(x, training=True).numpy()
    g.state.assign(state)
    assert np.array_equal(m(x, training=True).numpy(), first)
