"""An annotated drawing of a Report as Graphviz DOT text (`sepspec draw`), in pure Python: one node per Keras
layer with its class, output shape, parameters and receptive field/jump, an edge for every input (shortcuts and
merges included), each block whose layers branch and merge (`residual`, `mbconv`, `se`) a cluster, and the layer
where the int8 arena peaks marked. With `depth=1`, one node per top-level entry of `layers:`. Graphviz (`dot`)
renders it to SVG or PNG."""

from __future__ import annotations

from ..layers import axes, dims
from ..spec.kinds import entry
from .analysis import INPUT, Report
from .memory import estimate

PEAK = "#d62728"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(*lines: str) -> str:
    """A multi-line label: each line escaped, joined by DOT's own line break."""
    return "\\n".join(_quote(line)[1:-1] for line in lines).join('""')


def _entry(row) -> tuple:
    """The top-level entry a row comes from: ('layers', i)."""
    return tuple(row.origin.path[:2])


def dot(rep: Report, depth: int | None = None) -> str:
    """The DOT text of the drawing (`depth`: None, every layer; 1, one node per entry of `layers:`)."""
    s = rep.spec
    peak = estimate(rep).peak_at if rep.failure is None else None
    peak_layer = (peak.layer or peak.name) if peak else None
    title = (f"{s.name}: {rep.params:,} params, {rep.macs:,} MACs, receptive field {axes(rep.receptive_field)}"
             + (f"; int8 arena peaks at {peak_layer}" if peak_layer else ""))
    out = [f"digraph {_quote(s.name)} {{", "  rankdir=TB;",
           '  node [shape=box, style="rounded,filled", fillcolor="#f7f7f7", fontname="Helvetica", fontsize=10];',
           '  edge [color="#555555"];', f"  labelloc=t; label={_label(title)};",
           f"  {_quote(INPUT)} [label={_label('input', dims(s.input))}, shape=ellipse];"]
    if depth == 1:
        return "\n".join(out + _by_entry(rep, peak_layer) + ["}"]) + "\n"
    # an entry whose layers are a graph (a merge of two tensors: residual, mbconv's skip, se) is one cluster
    graphs = {_entry(r) for r in rep.rows if len(r.inputs) > 1}
    blocks: dict[tuple, list] = {}
    for r in rep.rows:
        blocks.setdefault(_entry(r) if _entry(r) in graphs else (), []).append(r)
    for key, rows in blocks.items():
        indent = "  "
        if key:
            kind, named = _kind_and_name(rep, rows)
            out.append(f"  subgraph {_quote('cluster_' + '_'.join(map(str, key)))} {{")
            out.append(f'    label={_label(f"{key[0]}[{key[1]}] {kind}{named}")}; style="rounded,dashed"; '
                       'color="#888888";')
            indent = "    "
        for r in rows:
            fill = f', fillcolor="#fde0dd", color="{PEAK}", penwidth=2' if r.name == peak_layer else ""
            label = _label(r.name, r.layer.keras, f"{dims(r.output)} · {r.params:,} params",
                           f"rf {axes(r.rf)} · jump {axes(r.jump)}")
            out.append(f"{indent}{_quote(r.name)} [label={label}{fill}];")
        if key:
            out.append("  }")
    for r in rep.rows:
        for t in r.inputs:
            out.append(f"  {_quote(t)} -> {_quote(r.name)};")
    if rep.failure is not None:
        out.append(f'  stopped [label={_label("analysis stopped", rep.failure.message[:80])}, color="{PEAK}"];')
    return "\n".join(out + ["}"]) + "\n"


def _kind_and_name(rep: Report, rows) -> tuple[str, str]:
    """The kind of the top-level entry these rows come from, and its name (` stage1`, or nothing)."""
    path = rows[0].origin.path
    kind = path[2] if len(path) > 2 else rows[0].origin.kind
    own = entry(rep.spec.layers[path[1]])[1] if path[0] == "layers" and len(path) > 1 else None
    return kind, (f" {own.name}" if own is not None and own.name else "")


def _by_entry(rep: Report, peak_layer: str | None) -> list[str]:
    """One node per top-level entry: its kind, its last layer's output and figures, its parameters in all."""
    groups: dict[tuple, list] = {}
    for r in rep.rows:
        groups.setdefault(_entry(r), []).append(r)
    node = {}
    out = []
    for key, rows in groups.items():
        name = f"{key[0]}[{key[1]}]"
        kind, named = _kind_and_name(rep, rows)
        last = rows[-1]
        params = sum(r.params for r in rows)
        hot = any(r.name == peak_layer for r in rows)
        fill = f', fillcolor="#fde0dd", color="{PEAK}", penwidth=2' if hot else ""
        label = _label(f"{name} {kind}{named}", f"{len(rows)} Keras layers", f"{dims(last.output)} · {params:,} params",
                       f"rf {axes(last.rf)} · jump {axes(last.jump)}")
        out.append(f"  {_quote(name)} [label={label}{fill}];")
        for r in rows:
            node[r.name] = name
    node[INPUT] = INPUT
    edges = []
    for r in rep.rows:
        for t in r.inputs:
            e = (node[t], node[r.name])
            if e[0] != e[1] and e not in edges:
                edges.append(e)
    return out + [f"  {_quote(a)} -> {_quote(b)};" for a, b in edges]
