"""sepspec: a declarative architecture-spec compiler for small separable-convolution classifiers.

The checker (`load`, `analyse`, `check`) is pure Python and never imports TensorFlow; `build_model`
imports Keras only when it is called.
"""

from __future__ import annotations

from dataclasses import dataclass

from .analysis import Report, analyse
from .diagnostics import Diagnostic, ordered
from .spec import Spec, load
from .yamlsrc import Source, SpecError

__version__ = "0.1.0"
__all__ = ["__version__", "Checked", "Diagnostic", "Report", "Spec", "SpecError", "analyse", "build_model",
           "check", "load"]


@dataclass
class Checked:
    """Everything `check` learned about one file; `spec`/`report` are None when it did not load."""

    path: str
    spec: Spec | None
    source: Source | None
    report: Report | None
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def check(path: str, display: str | None = None) -> Checked:
    """Load, analyse and check one spec file. OSError (missing or unreadable file) propagates."""
    from .rules import check as run_rules

    try:
        spec, src = load(path, display)
    except SpecError as e:
        return Checked(display or path, None, None, None, e.diagnostics)
    report = analyse(spec)
    return Checked(display or path, spec, src, report, ordered(run_rules(report, src)))


def build_model(spec: Spec):
    """The Keras model of a spec (imports Keras)."""
    from .emit import build_model as _build

    return _build(spec)
