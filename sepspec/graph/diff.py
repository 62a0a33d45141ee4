"""What changes between two specs (`sepspec diff A B`): layers added, removed and changed, matched by name, and
the totals side by side: the review question of every change to a spec. Pure Python, from the two Reports."""

from __future__ import annotations

from ..layers import axes, dims
from .analysis import Report
from .memory import estimate

FIELDS = ("keras", "inputs", "output", "params", "rf", "jump", "macs")  # a layer row's figures; then its arguments


def _row(r) -> dict:
    return {"keras": r.layer.keras, "inputs": list(r.inputs), "output": list(r.output), "params": r.params,
            "rf": list(r.rf), "jump": list(r.jump), "macs": r.macs, "args": r.layer.keras_kwargs()}


def totals(rep: Report) -> dict:
    d = estimate(rep) if rep.failure is None else None
    return {"layers": len(rep.rows), "params": rep.params, "trainable": rep.trainable,
            "non_trainable": rep.non_trainable, "macs": rep.macs, "receptive_field": list(rep.receptive_field),
            "flash_bytes": d.flash_bytes if d else None, "arena_bytes": d.arena_bytes if d else None,
            "analysis_stopped": rep.failure.message if rep.failure else None}


def diff(a: Report, b: Report) -> dict:
    """{"layers": [{"name", "change": added|removed|changed, "fields": {figure or argument: [before, after]}}],
    "settings": {rules./train. key: [before, after]}, "totals": {figure: [before, after]}}; removed layers first,
    then B's layers in B's order."""
    before = {r.name: _row(r) for r in a.rows}
    after = {r.name: _row(r) for r in b.rows}
    layers = []
    for r in a.rows:
        if r.name not in after:
            layers.append({"name": r.name, "change": "removed", "before": before[r.name]})
    for r in b.rows:
        new = after[r.name]
        if r.name not in before:
            layers.append({"name": r.name, "change": "added", "after": new})
            continue
        old = before[r.name]
        fields = {k: [old[k], new[k]] for k in FIELDS if old[k] != new[k]}
        keys = sorted(set(old["args"]) | set(new["args"]))
        fields.update({k: [old["args"].get(k), new["args"].get(k)] for k in keys
                       if old["args"].get(k) != new["args"].get(k) and k not in fields})
        if fields:
            layers.append({"name": r.name, "change": "changed", "fields": fields})
    ta, tb = totals(a), totals(b)
    sa, sb = _settings(a), _settings(b)
    settings = {k: [sa.get(k), sb.get(k)] for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)}
    return {"layers": layers, "settings": settings, "totals": {k: [ta[k], tb[k]] for k in ta}}


def _settings(rep: Report) -> dict:
    """The spec's `rules:` and `train:` as dotted keys (`train.optimizer.learning_rate`)."""
    out = {}

    def flat(prefix, v):
        if isinstance(v, dict):
            for k, w in v.items():
                flat(f"{prefix}.{k}", w)
        else:
            out[prefix] = v

    flat("rules", rep.spec.rules.model_dump(mode="json"))
    flat("train", rep.spec.train.model_dump(mode="json"))
    return out


def _show(key: str, v) -> str:
    if v is None:
        return "-"
    if key in ("output",):
        return dims(v)
    if key in ("rf", "jump", "receptive_field"):
        return axes(v)
    if key == "inputs":
        return ", ".join(v)
    return f"{v:,}" if isinstance(v, int) else str(v)


def _ratio(x, y) -> str:
    if not isinstance(x, int) or not isinstance(y, int) or x == y:
        return ""
    return f"{y - x:+,}" + (f" ({100 * (y - x) / x:+.1f}%)" if x else "")


def text(d: dict, a_name: str, b_name: str) -> str:
    """The diff for people: the changed layers, then the totals side by side."""
    lines = [f"--- {a_name}", f"+++ {b_name}"]
    for entry in d["layers"]:
        name = entry["name"]
        if entry["change"] == "added":
            r = entry["after"]
            lines.append(f"+ {name:<28} {r['keras']:<22} {dims(r['output']):>11} {r['params']:>9,} params "
                         f"rf {axes(r['rf'])}")
        elif entry["change"] == "removed":
            r = entry["before"]
            lines.append(f"- {name:<28} {r['keras']:<22} {dims(r['output']):>11} {r['params']:>9,} params "
                         f"rf {axes(r['rf'])}")
        else:
            what = "; ".join(f"{k} {_show(k, x)} -> {_show(k, y)}" for k, (x, y) in entry["fields"].items())
            lines.append(f"~ {name:<28} {what}")
    if not d["layers"]:
        lines.append("  (no layer differs)")
    for key, (x, y) in d["settings"].items():
        lines.append(f"~ {key:<28} {x} -> {y}")
    lines.append("")
    w = max(len(a_name), len(b_name), 12)
    lines.append(f"{'':<18} {a_name[-w:]:>{w}} {b_name[-w:]:>{w}}  change")
    for key, (x, y) in d["totals"].items():
        if key == "analysis_stopped":
            if x or y:
                lines.append(f"{'analysis stopped':<18} {_show(key, x)[:w]:>{w}} {_show(key, y)[:w]:>{w}}")
            continue
        lines.append(f"{key.replace('_', ' '):<18} {_show(key, x):>{w}} {_show(key, y):>{w}}  {_ratio(x, y)}")
    return "\n".join(lines)
