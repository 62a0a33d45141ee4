"""The spec's model compiled with its recipe: the optimizer (and the weights its decay spares), the loss (from
logits or probabilities), float32 class scores under mixed precision, XLA where it pays."""

from __future__ import annotations

from .predict import gives_probabilities
from .schedule import in_step


def recipe_loss(keras, model, train):
    """The recipe's loss for `model`'s class scores (from logits, or from probabilities after a softmax)."""
    return keras.losses.CategoricalCrossentropy(from_logits=not gives_probabilities(model),
                                                label_smoothing=train.label_smoothing)


def optimizer(keras, train, steps):
    o = train.optimizer
    # a per-step rate inside the compiled step where the backend cannot take one assigned between steps
    rate = o.learning_rate
    if steps and in_step(keras, train):
        from .steprate import step_rate

        rate = step_rate(train, steps)
    if o.name == "sgd":
        return keras.optimizers.SGD(rate, momentum=o.momentum, nesterov=o.nesterov,
                                    weight_decay=o.weight_decay or None)
    if o.name == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=o.weight_decay)
    return keras.optimizers.Adam(rate, weight_decay=o.weight_decay or None)


def compile_model(keras, report, train, *, mixed: bool, jit_compile: bool, steps_per_execution: int = 1,
                  steps: int | None = None):
    """The spec's model, compiled with the spec's optimizer and loss; `steps` per epoch for a `per: step` rate
    computed inside the step (`schedule.in_step`)."""
    from ..emit.model import keras_model

    model = keras_model(report)
    loss = recipe_loss(keras, model, train)
    if mixed:  # class scores in float32 whatever the compute dtype
        out = keras.layers.Activation("linear", dtype="float32", name="output_float32")(model.output)
        model = keras.Model(model.input, out, name=model.name)
    model.compile(optimizer=optimizer(keras, train, steps), loss=loss, metrics=["accuracy"], jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    spare_from_decay(model, train)
    build_state(keras, model)
    return model


def build_state(keras, model) -> None:
    """Make the compiled loss's and metrics' variables before the first step is traced. Without a distribution
    strategy Keras's TensorFlow trainer leaves that to the first trace of the training step, and TensorFlow traces
    a function that made variables a second time: for `specs/mbconv.yaml` 4.7 s more start-up on 2 CPU cores.
    `_symbolic_build` is what Keras itself runs first under a strategy, and it builds only what is not built;
    the other backends run it always."""
    build = getattr(model, "_symbolic_build", None)
    if keras.backend.backend() != "tensorflow" or build is None:
        return
    import numpy as np

    shape = (1, *model.input_shape[1:])
    build(data_batch=(np.zeros(shape, np.float32), np.zeros((1, *model.output_shape[1:]), np.float32)))


def spare_from_decay(model, train) -> int:
    """Exclude the weights `optimizer.no_decay` names from the model's optimizer's weight decay; how many. Called
    when the model is compiled and again when a checkpoint is loaded (a .keras file does not keep the
    exclusions)."""
    spared = spared_from_decay(model, train)
    if spared:
        model.optimizer.exclude_from_weight_decay(var_list=spared)
    return len(spared)


def spared_from_decay(model, train) -> list:
    """The weights of `model` that `optimizer.no_decay` names. (Keras's `exclude_from_weight_decay` replaces the
    exclusions it had: an optimizer of several models takes all their lists at once.)"""
    keep = set(train.optimizer.no_decay)
    spared = []
    if not keep:
        return spared
    for layer in model.layers:
        kind = type(layer).__name__
        if "alpha" in keep and kind == "PReLU":
            spared += layer.trainable_weights
            continue
        if "norm" in keep and kind in ("BatchNormalization", "LayerNormalization"):
            spared += layer.trainable_weights
            continue
        if "depthwise" in keep:
            spared += [w for w in (getattr(layer, "depthwise_kernel", None),
                                   layer.kernel if kind == "DepthwiseConv2D" else None) if w is not None]
        if "bias" in keep and getattr(layer, "bias", None) is not None:
            spared.append(layer.bias)
    return spared


def jit(keras, opts) -> bool:
    """XLA as asked on TensorFlow (off by default: slower on CPU here) and PyTorch (torch.compile); always on JAX,
    whose steps are compiled or run op by op in Python."""
    return True if keras.backend.backend() == "jax" else opts.jit_compile
