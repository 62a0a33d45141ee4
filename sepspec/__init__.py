"""sepspec: a declarative architecture-spec compiler for small separable-convolution classifiers.

The checker (`load`, `analyse`, `check`) is pure Python and never imports TensorFlow; `build_model` and
`fit` import Keras only when they are called. (`fit`, not `train`: `sepspec.train` is the trainer's package.)
"""

from __future__ import annotations

from dataclasses import dataclass

from .analysis import Report, analyse
from .diagnostics import Diagnostic, ordered
from .spec import Spec, load
from .yamlsrc import Source, SpecError

__version__ = "0.1.0"
__all__ = ["__version__", "Checked", "Diagnostic", "Report", "Spec", "SpecError", "analyse", "build_model",
           "check", "fit", "load"]


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
    from .rules import violations

    try:
        spec, src = load(path, display)
    except SpecError as e:
        return Checked(display or path, None, None, None, e.diagnostics)
    report = analyse(spec)
    return Checked(display or path, spec, src, report, ordered(violations(report, src)))


def build_model(spec: Spec | Report):
    """The Keras model of a spec, or of its analysis (imports Keras). Raises SpecError when the spec breaks a
    rule that the analysis finds (a shape that cannot be built): the same refusal as `sepspec compile`."""
    from .emit import keras_model
    from .rules import violations

    report = spec if isinstance(spec, Report) else analyse(spec)
    if report.failure is not None:
        raise SpecError([d for d in violations(report, Source({})) if d.code == report.failure.code])
    return keras_model(report)


def fit(spec_path: str, **options) -> tuple[int, str]:
    """Train a spec with the shared trainer, as `sepspec train` does (imports TensorFlow).

    `options` are the command's: epochs, batch_size, data, out, train_limit, val_limit, seed, overrides (a list
    of "train.key=value"), strategy, precision, jit_compile. Returns (exit status, run directory); 0 means finished.
    """
    from .train.trainer import Options, train as _train

    return _train(Options(spec=spec_path, **options))
