"""The receptive field measured on the model itself equals the analysis.

Weights are set to positive constants and ReLU/BN/Dropout are made linear or neutral, so every input pixel
inside the receptive field has a non-zero gradient on one output position of the last convolution. Two
traps: on the spec's own 32x32 input an RF of 34 is clipped by the image, so the same layers are built on a
larger input and a central output is taken; and max pooling routes the gradient to one element per window,
so it is swapped for average pooling of the same size and stride. The probed output is then a sum of positive
terms over the pixels it sees, so lighting a prefix (suffix) of the rows either reaches it or not: a binary search
finds each edge of the field in a few forward passes of one image.
"""
import numpy as np
import pytest

from sepspec import analyse, load

from conftest import BASE


def _gate_constant():
    """Multiply with an SE gate held constant (at 1): the gate sees the whole image by design. Two branches of
    equal shape (a parallel block's gate) are added instead: on a zero image with one row lit, a product is
    non-zero only where both branches see the row, a sum wherever either does, which is what the output
    depends on."""
    from sepspec.lazy import import_keras

    class GateConstant(import_keras().layers.Layer):
        def call(self, inputs):
            if all(tuple(t.shape) == tuple(inputs[0].shape) for t in inputs):
                return sum(inputs[1:], inputs[0])
            return inputs[0]

    return GateConstant


def _passthrough():
    """A layer that returns its input: for layer norm (constant weights give every channel of a pixel the same
    value, which layer norm turns into zero) and a shuffle's reshapes (built for the spec's own image size; a
    shuffle only reorders channels, which the constant weights cannot tell apart)."""
    from sepspec.lazy import import_keras

    class Passthrough(import_keras().layers.Layer):
        def __init__(self, name=None, **_):
            super().__init__(name=name)

        def call(self, x):
            return x

    return Passthrough


def measured_span(rep, name=None):
    """(start, rf) per axis of one output pixel of layer `name` (default: the layer feeding gap), measured.

    The same layers are built on a larger input, n + m * jump per axis, at which every layer's before-padding
    is unchanged (each layer's input grows by a multiple of its stride), and made linear with positive
    weights and no biases (ReLU and friends linear, max pooling averaged, SE gates constant, a parallel block's
    product a sum, layer norm and shuffles passed through), so the probed
    output is zero on a zero image and positive as soon as one input pixel it sees is lit. Lighting the first
    (last) rows of the image, a binary search finds the first (last) row of its field, and so for columns;
    forward passes of one image only."""
    from sepspec.emit import model as emit
    from sepspec.lazy import import_keras

    k = import_keras()
    row = rep.row(name) if name else rep.rf_row()
    (h, w, c), start, rf, jump = rep.spec.input, row.start, row.rf, row.jump
    size = [n + j * (-(-(r + 2 * abs(s) + n + 2) // j) + 1) for n, s, r, j in zip((h, w), start, rf, jump)]
    # an output in the middle: far from the image's border and from every inner one (an explicit padding or
    # cropping puts a tensor's edge inside the image)
    index = [max(0, (m // 2 - r // 2 - s) // j) for m, s, r, j in zip(size, start, rf, jump)]
    model = emit.keras_model(rep, input_shape=(*size, c),
                             swap={"MaxPooling2D": "AveragePooling2D", "Multiply": _gate_constant(),
                                   "LayerNormalization": _passthrough(), "Reshape": _passthrough(),
                                   "Permute": _passthrough()})
    for layer in model.layers:
        if isinstance(layer, k.layers.Activation):
            layer.activation = k.activations.linear
        for wt in layer.weights:
            kind = wt.path.split("/")[-1]
            value = {"bias": 0.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0, "gamma": 1.0}.get(kind, 0.1)
            wt.assign(np.full(wt.shape, value, dtype="float32"))
    probe = k.Model(model.input, model.get_layer(row.name).output)

    def reaches(axis: int, lo: int, hi: int) -> bool:
        """Does the probed output see any of rows (axis 0) or columns (axis 1) lo..hi? Light them and look."""
        image = np.zeros((1, *size, c), "float32")
        image[(slice(None),) + (slice(None),) * axis + (slice(lo, hi + 1),)] = 1.0
        out = np.asarray(probe(image, training=False))[0, index[0], index[1]]
        assert np.all(out >= 0)
        return bool(out.sum() > 0)

    def edges(axis: int) -> tuple[int, int]:
        """The first and last row (column) the output sees: what it sees of a prefix or a suffix only grows with
        it, so each edge is a binary search."""
        n = size[axis]
        lo, hi = 0, n - 1
        while lo < hi:  # the smallest r with rows 0..r seen
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if reaches(axis, 0, mid) else (mid + 1, hi)
        first, lo, hi = lo, 0, n - 1
        while lo < hi:  # the largest r with rows r..n-1 seen
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if reaches(axis, mid, n - 1) else (lo, mid - 1)
        return first, lo

    field = [edges(0), edges(1)]
    assert all(lo > 0 and hi < n - 1 for (lo, hi), n in zip(field, size))  # not clipped by the image
    return (tuple(lo - i * j for (lo, _), i, j in zip(field, index, jump)),
            tuple(hi - lo + 1 for lo, hi in field))


def measured_rf(rep):
    return measured_span(rep)[1]


@pytest.mark.slow
def test_base_receptive_field_is_34_measured():
    spec = load(BASE)
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
@pytest.mark.slow
def test_other_specs_measured(tmp_path, layers, expected):
    p = tmp_path / "s.yaml"
    p.write_text("name: s\ninput: [24, 24, 2]\nclasses: 2\nlayers:\n"
                 + "".join(f"  - {x}\n" for x in layers) + "  - gap: {}\n")
    spec = load(str(p))
    rep = analyse(spec)
    assert rep.receptive_field == expected
    assert measured_span(rep) == (rep.rf_row().start, expected)


def _report(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    spec = load(str(p))
    rep = analyse(spec)
    assert rep.failure is None, rep.failure
    return rep


@pytest.mark.slow
def test_residual_span_is_the_union_of_its_branches(tmp_path):
    """The issue's first example: body [-2, 4], 1x1 stride-2 projection [0, 0]: the union is [-2, 4], rf 7."""
    rep = _report(tmp_path, """
name: r
input: [32, 32, 3]
classes: 2
layers:
  - residual:
      name: res
      body: [conv: {filters: 4, stride: 2}, conv: {filters: 4}]
      shortcut: project
  - sepconv: 2
  - gap: {}
""")
    assert rep.row("res_conv_2").start == (-2, -2) and rep.row("res_conv_2").rf == (7, 7)
    assert rep.row("res_project").start == (0, 0) and rep.row("res_project").rf == (1, 1)
    assert (rep.row("res_add").start, rep.row("res_add").rf) == ((-2, -2), (7, 7))
    assert measured_span(rep, "res_add") == ((-2, -2), (7, 7))


@pytest.mark.slow
def test_union_is_not_the_larger_branch(tmp_path):
    """The issue's second example: body [-2, 2], shortcut avgpool 5 / stride 2 [-1, 3]: union [-2, 3], rf 6."""
    rep = _report(tmp_path, """
name: r
input: [32, 32, 3]
classes: 2
layers:
  - residual:
      name: res
      body: [sepconv: {filters: 4, kernel: 1, stride: 2}, sepconv: {filters: 4, kernel: 3}]
      shortcut: [avgpool: {size: 5, stride: 2, padding: same}, pointwise: {filters: 4}]
  - sepconv: 2
  - gap: {}
""")
    assert (rep.row("res_sepconv_2").start, rep.row("res_sepconv_2").rf) == ((-2, -2), (5, 5))
    assert (rep.row("res_shortcut_avgpool_1").start, rep.row("res_shortcut_avgpool_1").rf) == ((-1, -1), (5, 5))
    assert (rep.row("res_add").start, rep.row("res_add").rf) == ((-2, -2), (6, 6))
    assert measured_span(rep, "res_add") == ((-2, -2), (6, 6))


@pytest.mark.parametrize("layers", [
    # nested residuals, with non-square kernels and an identity inside a strided block
    ["sepconv: 6", "residual: {body: [sepconv: {filters: 6, kernel: [3, 5], stride: 2}, "
     "residual: {body: [sepconv: {filters: 6, dilation: 2}], shortcut: identity}], activation: relu}",
     "residual: {body: [maxpool: {size: 3, stride: 2, padding: same}, sepconv: 6]}", "sepconv: 2"],
    # an mbconv stack with kernel 5 and squeeze-and-excitation, and a lone se
    ["sepconv: 8", "mbconv: {filters: 8, kernel: 5, se: 0.25}", "mbconv: {filters: 12, kernel: 5, stride: 2, se: 0.5}",
     "se: 0.5", "mbconv: {filters: 12, kernel: [5, 3], expand: 2, se: 0.25}", "sepconv: 2"],
    # explicit padding and cropping: the window's offset moves, its size does not (Keras's applications' form)
    ["zeropad: [[0, 1], [2, 0]]", "conv: {filters: 4, kernel: 3, stride: 2, padding: valid}", "crop: [[1, 0], [0, 2]]",
     "sepconv: {filters: 4, padding: valid}", "zeropad: [1, 2]", "maxpool: {size: 3, stride: 2}", "sepconv: 2"],
    ["crop: 2", "residual: {body: [zeropad: 1, sepconv: {filters: 2, padding: valid}]}", "zeropad: [[3, 0], [0, 3]]",
     "sepconv: {filters: 2, kernel: 3, stride: 2}", "sepconv: {filters: 2, kernel: 5}"],
])
@pytest.mark.slow
def test_branchy_specs_measured(tmp_path, layers):
    rep = _report(tmp_path, "name: s\ninput: [24, 20, 2]\nclasses: 2\nlayers:\n"
                  + "".join(f"  - {x}\n" for x in layers) + "  - gap: {}\n")
    row = rep.rf_row()
    assert measured_span(rep) == (row.start, row.rf)
    assert max(row.rf) > 10


PARALLEL_SPECS = {
    # the mixer: identity, 3x3, 7x7, and 3x3 average + dilated 7x7 on four channel groups, then a GLU
    "mixer": ["sepconv: 8", "parallel: {split: channels, branches: [[], [depthwise: 3], [depthwise: 7], "
              "[avgpool: {size: 3, stride: 1, padding: same}, depthwise: {kernel: 7, dilation: 3}]]}",
              "layernorm: {}", "parallel: {branches: [[pointwise: 8], [pointwise: {filters: 8, activation: sigmoid}]], "
              "merge: multiply}", "sepconv: 2"],
    # ShuffleNet units: a downsampling copy split and a channel split with unequal groups, shuffles between
    "shuffle": ["sepconv: 8", "parallel: {branches: [[depthwise: {kernel: 3, stride: 2}, pointwise: 4], "
                "[pointwise: 4, depthwise: {kernel: 5, stride: 2}, pointwise: 4]]}", "shuffle: 2",
                "parallel: {split: channels, sizes: [2, 6], branches: [[], [pointwise: {filters: 6, groups: 2}, "
                "depthwise: 3]]}", "shuffle: 4", "sepconv: 2"],
    # nesting: a residual inside a branch, a parallel inside a residual's body, an add merge
    "nested": ["sepconv: 4", "residual: {body: [parallel: {branches: [[sepconv: {filters: 4, kernel: [3, 5]}], "
               "[residual: {body: [depthwise: {kernel: 3, dilation: 2}]}]], merge: add}]}",
               "parallel: {branches: [[maxpool: {size: 2, padding: same}], [sepconv: {filters: 4, stride: 2}]]}",
               "sepconv: 2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PARALLEL_SPECS))
def test_parallel_specs_measured(tmp_path, name):
    rep = _report(tmp_path, "name: s\ninput: [24, 20, 8]\nclasses: 2\nlayers:\n"
                  + "".join(f"  - {x}\n" for x in PARALLEL_SPECS[name]) + "  - gap: {}\n")
    row = rep.rf_row()
    assert measured_span(rep) == (row.start, row.rf)
    assert max(row.rf) > 10


@pytest.mark.slow
def test_parallel_union_is_not_the_largest_branch(tmp_path):
    """A 1x5 kernel beside a 5x1 one on two channel groups: the concatenation sees 5x5, more than either branch;
    then poolings of stride 2 with a 2x2 valid window ([-2, 3]) and a 3x3 same one ([-2, 4]): the union is the
    larger one's, measured through a concatenation of differently padded branches."""
    rep = _report(tmp_path, """
name: u
input: [24, 24, 4]
classes: 2
layers:
  - parallel:
      name: cross
      split: channels
      branches: [[depthwise: {kernel: [1, 5]}], [depthwise: {kernel: [5, 1]}]]
  - parallel:
      name: shifted
      branches: [[avgpool: {size: 2, stride: 2}], [avgpool: {size: 3, stride: 2, padding: same}]]
  - sepconv: 2
  - gap: {}
""")
    assert rep.row("cross_b1_depthwise_1").rf == (1, 5) and rep.row("cross_b2_depthwise_1").rf == (5, 1)
    assert (rep.row("cross_concat").start, rep.row("cross_concat").rf) == ((-2, -2), (5, 5))
    assert measured_span(rep, "cross_concat") == ((-2, -2), (5, 5))
    assert (rep.row("shifted_concat").start, rep.row("shifted_concat").rf) == ((-2, -2), (7, 7))
    assert measured_span(rep, "shifted_concat") == ((-2, -2), (7, 7))
