"""A spec file through the whole checker (load, analyse, rules) as one record, which every command reads."""

from __future__ import annotations

from dataclasses import dataclass

from .diagnostics import Diagnostic, ordered
from .graph.analysis import Report, analyse
from .rules import violations
from .spec.load import Spec, load
from .spec.source import SpecError


@dataclass
class Checked:
    """Everything the checker learned about one spec; `spec`/`report` are None when it did not load."""

    path: str
    spec: Spec | None
    report: Report | None
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def raise_errors(self) -> "Checked":
        """Self when nothing is wrong, else SpecError with every diagnostic (for callers that cannot go on)."""
        if not self.ok:
            raise SpecError(self.diagnostics)
        return self


def check(path: str, display: str | None = None) -> Checked:
    """Load, analyse and check one spec file. OSError (missing or unreadable file) propagates."""
    try:
        spec = load(path, display)
    except SpecError as e:
        return Checked(display or path, None, None, e.diagnostics)
    return check_spec(spec, display or path)


def check_spec(spec: Spec, path: str) -> Checked:
    """Analyse and check a loaded (or edited) spec; `path` names it in messages."""
    report = analyse(spec)
    return Checked(path, spec, report, ordered(violations(report)))
