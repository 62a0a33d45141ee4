"""Weights for comparing two models that should compute the same function, and how each layer's weights start."""
import numpy as np


def randomise(model, rng) -> None:
    """Weights that keep the signal near unit scale through any depth (He-scaled kernels, batch norms with
    random statistics), so that a difference anywhere reaches the output: Keras's fresh batch norms and initialisers
    shrink it to 1e-10 within a few blocks, where a sigmoid and a hard sigmoid agree."""
    for v in model.weights:
        shape, name = tuple(v.shape), v.path.rsplit("/", 1)[-1]
        if name == "count":  # a Normalization's: how many values its statistics have seen
            continue
        if name in ("gamma", "moving_variance", "variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("beta", "moving_mean", "bias", "mean"):
            value = rng.normal(0, 0.2, shape)
        else:  # a kernel: (h, w, in, out), depthwise (h, w, c, multiplier), dense (in, out)
            fan_in = np.prod(shape[:-2]) if "depthwise" in name else np.prod(shape[:-1])
            value = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
        v.assign(value.astype("float32"))


def layer_options(layer) -> tuple:
    """How a layer's weights start and what they add to the loss: its initializers, regularizers and constraints as
    Keras configures them (an initializer's seed aside)."""
    def value(v):
        if not isinstance(v, dict):
            return v
        return v["class_name"], tuple(sorted((k, x) for k, x in (v.get("config") or {}).items() if k != "seed"))

    return tuple(sorted((k, value(v)) for k, v in layer.get_config().items()
                        if k.endswith(("_initializer", "_regularizer", "_constraint"))))
