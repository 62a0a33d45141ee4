"""Width scaling: one multiplier on every `filters` of a spec except the classifier's, and the widest variant
under a budget (`sepspec scale`), found by the static analysis alone. The sweep's `width` uses the same scaling.

A scaled width is ``max(4, round(f * m / 4) * 4)``: multiples of 4, as vector units like them. The figures are
not monotonic in m (an `auto` shortcut switches between identity and projection as widths cross), so the search
tries every m on a 0.01 grid from the top down and takes the first that passes every rule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from . import analyse
from .kinds import BLOCKS, ENTRY_LISTS, shorthand
from .rules import violations
from .spec import Spec, _normalise, load_source
from .yamlsrc import Source, SpecError


def scaled(f: int, m: float) -> int:
    return max(4, int(round(f * m / 4)) * 4)


def classifier_entry(src: Source) -> tuple | None:
    """The path of the entry whose convolution feeds the classifier's pooling (its width is `classes`)."""
    spec = load_source(_copy(src))
    rep = analyse(spec)
    row = rep.rf_row()
    return row.origin.path if row is not None and rep.classifier_pool() is not None else None


def scale_source(src: Source, m: float, keep: tuple | None = None) -> Source:
    """A copy of the (resolved) spec source with every `filters` times m, except the entry at path `keep`."""
    out = _copy(src)
    _normalise(out)  # shorthands -> mappings, so that every width is a `filters` key

    def walk(entries, path):
        if not isinstance(entries, list):
            return
        for i, entry in enumerate(entries):
            if not (isinstance(entry, dict) and len(entry) == 1):
                continue
            kind, args = next(iter(entry.items()))
            args = shorthand(kind, args)
            if not isinstance(args, dict) or kind not in BLOCKS:
                continue
            here = path + (i,)
            if here != keep and isinstance(args.get("filters"), int) and not isinstance(args.get("filters"), bool):
                args = {**args, "filters": scaled(args["filters"], m)}
            entry[kind] = args
            for key in ENTRY_LISTS:
                if key in args:
                    walk(args[key], here + (kind, key))

    walk(out.data.get("layers"), ("layers",))
    return out


def _copy(src: Source) -> Source:
    c = Source(copy.deepcopy(src.data))
    c.values, c.keys = dict(src.values), dict(src.keys)
    return c


@dataclass
class Scaled:
    multiplier: float
    spec: Spec
    source: Source
    params: int
    macs: int


def widest(src: Source, max_params: int, max_macs: int | None = None, top: float = 4.0) -> Scaled | None:
    """The largest m (0.01 steps, from `top` down to 0.01) whose scaled spec passes every rule and the budget."""
    keep = classifier_entry(src)
    for k in range(int(round(top * 100)), 0, -1):
        m = k / 100
        s = scale_source(src, m, keep)
        try:
            spec = load_source(s)
        except SpecError:
            continue
        spec = spec.model_copy(update={"rules": spec.rules.model_copy(update={"max_params": max_params, **(
            {"max_macs": max_macs} if max_macs is not None else {})})})
        rep = analyse(spec)
        if rep.params > max_params or (max_macs is not None and rep.macs > max_macs):
            continue
        if violations(rep, s):
            continue
        return Scaled(m, spec, s, rep.params, rep.macs)
    return None
