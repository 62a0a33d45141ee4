"""The example specs of networks nobody here wrote (specs/examples/): each is Keras's own model from
`keras.applications`, written plainly, equal in parameters (total, trainable, non-trainable) and in function: Keras's
weights are copied in, layer for layer in the graphs' common order, and the outputs compared on random inputs."""
import os

import numpy as np
import pytest

import sepspec
from sepspec.lazy import import_keras

from conftest import ROOT
from weights import layer_options, randomise

# spec -> (the keras.applications constructor, its arguments)
EXAMPLES = {
    "densenet121": ("DenseNet121", {"input_shape": (64, 64, 3)}),
    "xception": ("Xception", {"input_shape": (71, 71, 3)}),
    "inception_v3": ("InceptionV3", {"input_shape": (75, 75, 3)}),
    "nasnet_mobile": ("NASNetMobile", {"input_shape": (32, 32, 3)}),
    "mobilenet_v3_small": ("MobileNetV3Small", {"input_shape": (32, 32, 3), "include_preprocessing": False}),
}


def graph_order(model) -> list:
    """The model's layers in one order fixed by the graph alone: depth first from the output, each layer's inputs
    in the order it takes them. Two models that compute the same graph list their layers the same way, whatever
    their names or the order their layers were created in."""
    seen, out = set(), []

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        for t in layer._inbound_nodes[0].input_tensors:
            visit(t._keras_history.operation)
        out.append(layer)

    for t in model.outputs:
        visit(t._keras_history.operation)
    return out


def copy_weights(source, target) -> int:
    """Copy the weights of `source` into `target`, layer for layer in `graph_order`; how many layers."""
    a = [x for x in graph_order(source) if getattr(x, "weights", None)]
    b = [x for x in graph_order(target) if getattr(x, "weights", None)]
    assert len(a) == len(b), (len(a), len(b))
    for x, y in zip(a, b):
        assert type(x).__name__ == type(y).__name__ and [w.shape for w in x.weights] == \
            [w.shape for w in y.weights], (x.name, y.name)
        assert layer_options(x) == layer_options(y), (x.name, y.name)  # they start as Keras's do (NASNet: He)
        y.set_weights(x.get_weights())
    return len(a)


def counts(model) -> tuple[int, int, int]:
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return model.count_params(), trainable, model.count_params() - trainable


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_an_example_is_kerass_own_network(name):
    keras = import_keras()
    fn, args = EXAMPLES[name]
    theirs = getattr(keras.applications, fn)(weights=None, classes=10, **args)
    c = sepspec.check(os.path.join(ROOT, "specs", "examples", f"{name}.yaml"))
    assert c.ok, [d.text() for d in c.diagnostics]
    ours = sepspec.build_model(c.report)
    assert counts(ours) == counts(theirs)
    assert (c.report.params, c.report.trainable) == counts(theirs)[:2]
    randomise(theirs, np.random.default_rng(1))
    assert copy_weights(theirs, ours) > 0
    x = np.random.default_rng(0).uniform(-1, 1, (2, *args["input_shape"])).astype("float32")
    for a, b in zip(taps(keras, theirs)([x]), taps(keras, ours)([x])):  # every weighted layer's input, and the output
        assert close(np.asarray(a), np.asarray(b))
    keras.backend.clear_session()


def close(a, b) -> bool:
    """Equal within 1e-5 of the largest value; where one model pads explicitly before a `valid` layer and the other
    has the layer pad (`same`), the unpadded input sits inside the padded one at some offset."""
    if a.shape[-1] != b.shape[-1] or a.ndim != b.ndim:
        return False
    if a.shape[1:3] < b.shape[1:3]:
        a, b = b, a
    dh, dw = (a.shape[1] - b.shape[1], a.shape[2] - b.shape[2]) if a.ndim == 4 else (0, 0)
    if dh < 0 or dw < 0:
        return False
    tol = 1e-5 * np.max(np.abs(a))
    return any(np.max(np.abs(a[:, i:i + b.shape[1], j:j + b.shape[2]] - b) if a.ndim == 4 else np.abs(a - b)) <= tol
               for i in range(dh + 1) for j in range(dw + 1))


def taps(keras, model):
    """A model of the same graph that outputs what each weighted layer reads (in `graph_order`; a layer's own
    activation may be a layer of its own in the other model) and the model's output."""
    weighted = [x for x in graph_order(model) if getattr(x, "weights", None)]
    return keras.Model(model.inputs, [x.input for x in weighted] + list(model.outputs))


@pytest.mark.slow
def test_nasnet_is_shorter_than_kerass_source_for_it():
    """Keras's NASNetMobile is NASNet() and its four helpers (without docstrings, comments and blank lines)."""
    import ast
    import inspect

    from keras.src.applications import nasnet

    source = 0
    for fn in (nasnet.NASNet, nasnet.NASNetMobile, nasnet._separable_conv_block, nasnet._adjust_block,
               nasnet._normal_a_cell, nasnet._reduction_a_cell):
        text = inspect.getsource(fn)
        doc = ast.parse(text).body[0].body[0]
        skip = set(range(doc.lineno, doc.end_lineno + 1)) if isinstance(doc, ast.Expr) else set()
        source += sum(1 for i, line in enumerate(text.splitlines(), 1)
                      if line.strip() and not line.strip().startswith("#") and i not in skip)
    spec = open(os.path.join(ROOT, "specs", "examples", "nasnet_mobile.yaml")).read().splitlines()
    assert len(spec) < source / 2, (len(spec), source)
