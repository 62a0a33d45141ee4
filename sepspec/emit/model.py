"""Analysis rows -> a Keras model (Functional API), and the check that Keras built what the analysis says.

Keras is imported only when called. Each row's Keras class is looked up in a fixed table of `keras.layers`
classes: the names the `sepspec.layers` classes declare (`keras_classes`); nothing
taken from a spec is ever imported or evaluated. Only `keras.layers`/`keras.Model` are used, so the model
also builds under Keras's JAX and PyTorch backends.
"""

from __future__ import annotations

from ..graph.analysis import INPUT, Report
from ..layers import dims, keras_classes
from ..lazy import import_keras


def _classes() -> dict:
    layers = import_keras().layers
    return {name: getattr(layers, name) for name in keras_classes()}


def keras_model(report: Report, *, input_shape=None, swap=None):
    """The Keras model of an analysed, valid spec.

    `input_shape` builds the same layers on another input (the receptive-field measurement uses a larger
    image); `swap` maps a Keras class name to another name or to a layer class (e.g. MaxPooling2D ->
    AveragePooling2D) for it.
    """
    if report.failure is not None or not report.rows:
        raise ValueError(f"{report.spec.name}: the spec does not analyse cleanly, no model can be built")
    keras = import_keras()
    table = _classes()
    tensors = {INPUT: keras.Input(shape=tuple(input_shape or report.spec.input), name=INPUT)}
    for row in report.rows:
        cls = (swap or {}).get(row.layer.keras, row.layer.keras)
        cls = table[cls] if isinstance(cls, str) else cls
        args = [tensors[t] for t in row.inputs]
        tensors[row.name] = cls(name=row.name, **row.layer.keras_kwargs())(args if len(args) > 1 else args[0])
    return keras.Model(tensors[INPUT], tensors[report.rows[-1].name], name=report.spec.name)


def save_model(report: Report, path: str) -> None:
    """Write the model to `path` atomically: a failure leaves any earlier file untouched."""
    from ..atomic import save_model as atomic_save

    atomic_save(keras_model(report), path)


def keras_rows(model) -> list[tuple[str, str, tuple, int, int]]:
    """(name, class, output shape without batch, trainable, non-trainable) of each layer Keras built."""
    import numpy as np

    rows = []
    for layer in model.layers[1:]:  # [0] is the Input
        shape = tuple(layer.output.shape[1:])
        t = int(sum(np.prod(w.shape) for w in layer.trainable_weights))
        n = int(sum(np.prod(w.shape) for w in layer.non_trainable_weights))
        rows.append((layer.name, type(layer).__name__, shape, t, n))
    return rows


def differences(report: Report, model) -> list[str]:
    """Every way the built model differs from the analysis (should be none). Layers are matched by name:
    Keras orders a functional model's layers its own way."""
    diffs = []
    built = {r[0]: r for r in keras_rows(model)}
    mine = {r.name for r in report.rows}
    for name in sorted(set(built) - mine):
        diffs.append(f"{name}: built by Keras, not in the analysis")
    for row in report.rows:
        if row.name not in built:
            diffs.append(f"{row.name}: in the analysis, not built by Keras")
            continue
        name, cls, shape, t, n = built[row.name]
        want = (row.name, row.layer.keras, tuple(row.output), row.trainable, row.non_trainable)
        if want != (name, cls, shape, t, n):
            diffs.append(f"{row.name}: analysis {want[1]} {list(want[2])} {want[3]}+{want[4]} params, "
                         f"Keras {cls} {list(shape)} {t}+{n} params")
    return diffs


def compare_text(report: Report) -> tuple[str, bool]:
    """Keras's own summary beside the analysis, and whether they agree everywhere."""
    model = keras_model(report)
    lines: list[str] = []
    model.summary(print_fn=lambda s, **_: lines.append(s), line_length=100)
    built = {r[0]: r for r in keras_rows(model)}
    table = [f"{'layer':<22} {'analysis output':>16} {'keras output':>14} {'analysis params':>16} "
             f"{'keras params':>13}  same"]
    for row in report.rows:
        b = built.get(row.name)
        k_out, k_params = (dims(b[2]), b[3] + b[4]) if b else ("-", "-")
        same = b is not None and tuple(b[2]) == tuple(row.output) and (b[3], b[4]) == (row.trainable, row.non_trainable)
        table.append(f"{row.name:<22} {dims(row.output):>16} {k_out:>14} {row.params:>16,} "
                     f"{k_params if isinstance(k_params, str) else format(k_params, ','):>13}  "
                     f"{'yes' if same else 'NO'}")
    diffs = differences(report, model)
    verdict = "analysis and Keras agree on every layer" if not diffs else \
        "DIFFERENCES:\n" + "\n".join(f"  {d}" for d in diffs)
    return "\n".join(["\n".join(lines), "", *table, "", verdict]), not diffs
