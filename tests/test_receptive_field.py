"""The receptive field measured on the model itself equals the analysis.

Weights are set to positive constants and ReLU/BN/Dropout are made linear or neutral, so every input pixel
inside the receptive field has a non-zero gradient on one output position of the last convolution. Two
traps: on the spec's own 32x32 input an RF of 34 is clipped by the image, so the same layers are built on a
larger input and a central output is taken; and max pooling routes the gradient to one element per window,
so it is swapped for average pooling of the same size and stride.
"""
import numpy as np
import pytest

from sepspec import analyse
from sepspec.spec import load

from conftest import BASE


def measured_rf(rep, size=96):
    from sepspec import emit
    from sepspec._quiet import keras
    import tensorflow as tf

    k = keras()
    conv_rows = [r for r in rep.rows if r.layer.weighted and len(r.output) == 3]
    last = rep.rf_row()
    model = emit.build_model(rep, input_shape=(size, size, rep.spec.input[2]),
                             swap={"MaxPooling2D": "AveragePooling2D"})
    for layer in model.layers:
        if isinstance(layer, k.layers.Activation):
            layer.activation = k.activations.linear
        for w in layer.weights:
            w.assign(np.full(w.shape, 0.1 if "moving_variance" not in w.name else 1.0, dtype="float32")
                     if "moving_mean" not in w.name else np.zeros(w.shape, "float32"))
    probe = k.Model(model.input, model.get_layer(last.name).output)
    x = tf.ones((1, size, size, rep.spec.input[2]))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = probe(x, training=False)
        cy, cx = y.shape[1] // 2, y.shape[2] // 2
        target = y[0, cy, cx, 0]
    g = tape.gradient(target, x)[0].numpy()
    nz = np.argwhere(np.abs(g).sum(axis=-1) > 0)
    assert conv_rows
    return (int(nz[:, 0].max() - nz[:, 0].min() + 1), int(nz[:, 1].max() - nz[:, 1].min() + 1))


def test_base_receptive_field_is_34_measured():
    spec, _ = load(BASE)
    rep = analyse(spec)
    assert rep.receptive_field == (34, 34)
    assert measured_rf(rep) == (34, 34)


@pytest.mark.parametrize("layers, expected", [
    (["sepconv: {filters: 4, kernel: 5, dilation: 2}", "maxpool: 3", "sepconv: {filters: 2, kernel: 3}"],
     (9 + 2 + 2 * 3, 9 + 2 + 2 * 3)),
    (["depthwise: {kernel: [3, 5], stride: 2}", "pointwise: 4", "avgpool: {size: 2, stride: 1}",
      "sepconv: {filters: 2, kernel: 3, dilation: 3}"],
     (3 + 2 + 12, 5 + 2 + 12)),
    (["conv: {filters: 3, kernel: 7, stride: 3, norm: batch, activation: relu}",
      "sepconv: {filters: 2, kernel: 3, padding: valid}"],
     (7 + 2 * 3, 7 + 2 * 3)),
])
def test_other_specs_measured(tmp_path, layers, expected):
    p = tmp_path / "s.yaml"
    p.write_text("name: s\ninput: [24, 24, 2]\nclasses: 2\nlayers:\n"
                 + "".join(f"  - {x}\n" for x in layers) + "  - gap: {}\n")
    spec, _ = load(str(p))
    rep = analyse(spec)
    assert rep.receptive_field == expected
    assert measured_rf(rep) == expected
