"""The example specs of networks nobody here wrote (specs/examples/): each is Keras's own model from
`keras.applications`, written plainly, equal in parameters (total, trainable, non-trainable) and in function: Keras's
weights are copied in, layer for layer in the graphs' common order, and the outputs compared on random inputs."""
import os

import numpy as np
import pytest

import sepspec
from sepspec.lazy import import_keras

from conftest import ROOT

# spec -> (the keras.applications constructor, its arguments)
EXAMPLES = {
    "densenet121": ("DenseNet121", {"input_shape": (64, 64, 3)}),
    "xception": ("Xception", {"input_shape": (71, 71, 3)}),
    "inception_v3": ("InceptionV3", {"input_shape": (75, 75, 3)}),
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
    a = [x for x in graph_order(source) if x.weights]
    b = [x for x in graph_order(target) if x.weights]
    assert len(a) == len(b), (len(a), len(b))
    for x, y in zip(a, b):
        assert type(x).__name__ == type(y).__name__ and [w.shape for w in x.weights] == \
            [w.shape for w in y.weights], (x.name, y.name)
        y.set_weights(x.get_weights())
    return len(a)


def counts(model) -> tuple[int, int, int]:
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return model.count_params(), trainable, model.count_params() - trainable


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
    assert copy_weights(theirs, ours) > 0
    x = np.random.default_rng(0).uniform(-1, 1, (2, *args["input_shape"])).astype("float32")
    for a, b in zip(taps(keras, theirs)(x), taps(keras, ours)(x)):  # every weighted layer's input, and the output
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and np.max(np.abs(a - b)) <= 1e-5 * np.max(np.abs(a)), np.max(np.abs(a - b))
    keras.backend.clear_session()


def taps(keras, model):
    """A model of the same graph that outputs what each weighted layer reads (in `graph_order`; a layer's own
    activation may be a layer of its own in the other model) and the model's output."""
    return keras.Model(model.inputs, [x.input for x in graph_order(model) if x.weights] + list(model.outputs))
