"""Readers of a `Report` for people and programs: the per-layer table, the JSON document, and the
seed-style comment (``# rin=7, nin=32x32, cin=96, ...``) that `compile --to python` writes."""

from __future__ import annotations

from ..layers import axes, dims
from .analysis import Report, Row
from .memory import Deployment, estimate

DOC_VERSION = 1


def square(pair):
    """An int when both axes agree, else [h, w] (JSON) — non-square windows are allowed."""
    return pair[0] if pair[0] == pair[1] else list(pair)


def table(rep: Report, path: str) -> str:
    """`sepspec show`: one row per Keras layer, then the totals."""
    s = rep.spec
    lines = [f"{s.name}: input {dims(s.input)}, {s.classes} classes ({path})"]
    width = max([22] + [len(r.name) for r in rep.rows])
    graph = any(not _chained(rep, i) for i in range(len(rep.rows)))
    head = (f"{'#':>3}  {'layer':<{width}} {'keras':<22} {'output':>11} {'params':>9} {'rf':>5} {'jump':>4} "
            f"{'MACs':>12}" + ("  from" if graph else ""))
    lines += [head, "-" * len(head)]
    for i, r in enumerate(rep.rows):
        src = "" if _chained(rep, i) else "  " + ", ".join(r.inputs)
        lines.append(f"{i + 1:>3}  {r.name:<{width}} {r.layer.keras:<22} {dims(r.output):>11} {r.params:>9,} "
                     f"{axes(r.rf):>5} {axes(r.jump):>4} {r.macs:>12,}{src}")
    lines.append("-" * len(head))
    rf_row = rep.rf_row()
    lines.append(f"params {rep.params:,} (trainable {rep.trainable:,}, non-trainable {rep.non_trainable:,})  "
                 f"MACs {rep.macs:,}  receptive field {axes(rep.receptive_field)}"
                 + (f" at {rf_row.name} ({dims(rf_row.output)})" if rf_row else ""))
    if rep.failure:
        lines.append(f"analysis stopped: {rep.failure.message}")
    else:
        lines.append(_memory_line(estimate(rep)) + "  (show --memory)")
    return "\n".join(lines)


def _memory_line(d: Deployment) -> str:
    at = d.peak_at
    where = at.layer or at.name
    where = where if len(where) <= 48 else "..." + where[-45:]  # a converted file's fused tensor names are long
    line = (f"int8: flash {d.flash_bytes:,} bytes, activations {d.arena_bytes:,} bytes (peak alive "
            f"{d.peak_bytes:,} at {where})")
    if d.not_int8:
        line += "; no int8 kernel for " + ", ".join(f"{f} ({n})" for n, f in d.not_int8)
    return line


def memory_table(rep: Report, path: str) -> str:
    """`show --memory`: the int8 ops the converter makes of the spec, with the bytes each holds and needs."""
    title = f"{rep.spec.name}: the int8 model `sepspec export --format litert-int8` writes, batch 1 ({path})"
    lines = [ops_table(estimate(rep), title)]
    if rep.failure:
        lines.append(f"analysis stopped: {rep.failure.message}")
    return "\n".join(lines)


def ops_table(d: Deployment, title: str) -> str:
    """A deployment's ops, a row each (what each writes, its MACs and weight bytes, the bytes alive while it
    runs), and the totals: `show SPEC --memory` and `show FILE.tflite --memory` print the same table."""
    width = min(max([16] + [len(o.name) for o in d.ops]), 48)
    head = (f"{'#':>3}  {'tensor':<{width}} {'op':<18} {'output':>11} {'MACs':>11} {'bytes':>9} {'weights':>9} "
            f"{'alive':>9}")
    lines = [title, head, "-" * len(head)]
    for i, (o, live) in enumerate(zip(d.ops, d.live)):
        op = "INPUT (uint8)" if o.op == "INPUT" and o.itemsize == 1 else o.op
        name = o.name if len(o.name) <= width else "..." + o.name[-(width - 3):]
        lines.append(f"{i + 1:>3}  {name:<{width}} {op:<18} {dims(o.shape):>11} {o.macs:>11,} {o.bytes:>9,} "
                     f"{o.weight_bytes:>9,} {live:>9,}")
    lines.append("-" * len(head))
    lines.append(_memory_line(d))
    lines.append(d.summary())
    lines.append("flash: int8 weights, int32 biases and constants as the file stores them; activations: the arena "
                 "TensorFlow Lite Micro's planner lays them out in (alive: while each op runs)")
    return "\n".join(lines)


def ops_document(d: Deployment) -> dict:
    """The same as JSON (`show --memory --json`, and the `memory` of `show --json`)."""
    return {"macs": d.macs, "flash_bytes": d.flash_bytes, "activation_bytes": d.arena_bytes,
            "peak_alive_bytes": d.peak_bytes, "peak_at": (d.peak_at.layer or d.peak_at.name) if d.ops else None,
            "summary": d.summary(),
            "not_int8": [{"layer": n, "activation": f} for n, f in d.not_int8],
            "ops": [{"tensor": o.name, "op": o.op, "layer": o.layer or None, "inputs": list(o.inputs),
                     "output": list(o.shape), "macs": o.macs, "bytes": o.bytes, "flash_bytes": o.weight_bytes,
                     "alive_bytes": live} for o, live in zip(d.ops, d.live)]}


def _chained(rep: Report, i: int) -> bool:
    """Does row i take only the row before it (the model's input for the first)?"""
    return rep.rows[i].inputs == ((rep.rows[i - 1].name,) if i else ("input",))


def document(path: str, rep: Report | None, diagnostics: list) -> dict:
    """The `show --json` document (format version `DOC_VERSION`); `rep` is None for a spec that did not load."""
    doc: dict = {"version": DOC_VERSION, "file": path}
    if rep is not None:
        s = rep.spec
        d = estimate(rep)
        per = d.by_layer()
        doc.update({
            "name": s.name, "input": list(s.input), "classes": s.classes,
            "params": {"total": rep.params, "trainable": rep.trainable, "non_trainable": rep.non_trainable},
            "macs": rep.macs, "receptive_field": square(rep.receptive_field),
            "layers": [{"name": r.name, "keras": r.layer.keras, "inputs": list(r.inputs), "output": list(r.output),
                        "params": r.params, "trainable": r.trainable, "rf": square(r.rf), "jump": square(r.jump),
                        "start": square(r.start), "macs": r.macs, "flash_bytes": per.get(r.name, (0, 0))[0],
                        "alive_bytes": per.get(r.name, (0, 0))[1]} for r in rep.rows],
            "memory": ops_document(d),
            # the analysis stopped at its first failure: the layers and totals are those before it
            "partial": rep.failure is not None,
        })
    doc["violations"] = [{"code": d.code, "rule": d.rule, "message": d.message, "file": d.file, "line": d.line,
                          "column": d.column, "layer": d.layer, "hint": d.hint, "severity": d.severity}
                         for d in diagnostics]
    return doc


def comment(r: Row, rep: Report | None = None) -> str:
    """The seed's hand-written comment for one layer, computed.

    A merge (a residual's Add, a squeeze-excite's Multiply, a parallel block's merge) takes several tensors: its
    comment names each input with its receptive field and jump, then what comes out (`rout` is the union of what
    the inputs see)."""
    def split(shape):  # an image's size and channels; a shuffle's grouped view (h, w, g, c/g) has channels gxc/g
        return (dims(shape[:2]), dims(shape[2:])) if len(shape) >= 3 else (dims(shape), str(shape[-1]))

    nout, cout = split(r.output)
    if len(r.inputs) > 1:
        parts = []
        for name in r.inputs:
            span = rep.tensors[name][1] if rep else r.span_in
            rf, jump = span.rf, span.jump
            parts.append(f"{name} (rin={axes(rf)}, jin={axes(jump)})")
        listed = ", ".join(parts[:-1]) + " and " + parts[-1]
        return (f"# {r.layer.keras.lower()} of {listed}: jout={axes(r.jump)}, rout={axes(r.rf)}, "
                f"nout={nout}, cout={cout}")
    win = r.layer.window()
    k, s = win if win else ((1, 1), (1, 1))
    nin, cin = split(r.input)
    return (f"# rin={axes(r.rf_in)}, nin={nin}, cin={cin}, jin={axes(r.jump_in)}, k={axes(k)}, "
            f"p={axes(r.padding)}, s={axes(s)}, jout={axes(r.jump)}, rout={axes(r.rf)}, nout={nout}, cout={cout}")
