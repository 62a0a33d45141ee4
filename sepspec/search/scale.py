"""Width scaling: one multiplier on every `filters` of a spec except the classifier's, and the widest variant
under a budget (`sepspec scale`), found by the static analysis alone. The sweep's `width` uses the same scaling
(`sepspec.spec.edit.with_width`).

The figures are not monotonic in m (an `auto` shortcut switches between identity and projection as widths
cross), so the search tries every m on a 0.01 grid from the top down and takes the first that passes every rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph.analysis import Report, analyse
from ..rules import violations
from ..spec.edit import with_width
from ..spec.load import Spec, load_source
from ..spec.source import SpecError


def classifier_entry(report: Report) -> tuple | None:
    """The path of the entry whose convolution feeds the classifier's pooling (its width is `classes`)."""
    row = report.rf_row()
    return row.origin.path if row is not None and report.classifier_pool() is not None else None


@dataclass
class Scaled:
    multiplier: float
    spec: Spec
    params: int
    macs: int


def widest(spec: Spec, max_params: int, max_macs: int | None = None, top: float = 4.0) -> Scaled | None:
    """The largest m (0.01 steps, from `top` down to 0.01) whose scaled spec passes every rule and the budget."""
    keep = classifier_entry(analyse(spec))
    budget = {"max_params": max_params, **({"max_macs": max_macs} if max_macs is not None else {})}
    for k in range(int(round(top * 100)), 0, -1):
        m = k / 100
        try:
            wider = load_source(with_width(spec.source, m, keep))
        except SpecError:
            continue
        wider = wider.model_copy(update={"rules": wider.rules.model_copy(update=budget)})
        rep = analyse(wider)
        if rep.params > max_params or (max_macs is not None and rep.macs > max_macs) or violations(rep):
            continue
        return Scaled(m, wider, rep.params, rep.macs)
    return None
