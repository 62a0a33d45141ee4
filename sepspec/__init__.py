"""sepspec: a declarative architecture-spec compiler for small separable-convolution classifiers.

The public API. The checker (`load`, `analyse`, `check`) is pure Python and never imports TensorFlow;
`build_model` and `fit` import Keras only when they are called. (`fit`, not `train`: `sepspec.train` is the
trainer's package.) The stages live in the subpackages, in pipeline order: `spec` (text -> Spec), `graph`
(Spec -> Report), `rules`, `emit`, `train`, `deploy`, `search`, `cli` (docs/architecture.md).
"""

from __future__ import annotations

from .checked import Checked, check, check_spec
from .diagnostics import Diagnostic
from .graph.analysis import Report, analyse
from .spec.load import Spec, load
from .spec.source import Source, SpecError
from .version import __version__

__all__ = ["__version__", "Checked", "Diagnostic", "Report", "Source", "Spec", "SpecError", "analyse", "from_keras",
           "build_model", "check", "check_spec", "fit", "fit_seeds", "load"]


def build_model(spec: Spec | Report):
    """The Keras model of a spec, or of its analysis (imports Keras). Raises SpecError when the spec breaks a
    rule that the analysis finds (a shape that cannot be built): the same refusal as `sepspec compile`."""
    from .emit.model import keras_model
    from .rules import violations

    report = spec if isinstance(spec, Report) else analyse(spec)
    if report.failure is not None:
        raise SpecError([d for d in violations(report) if d.code == report.failure.code])
    return keras_model(report)


def from_keras(model, keep_names: bool = True, training: dict | None = None, notes: list | None = None) -> str:
    """The spec (YAML text) of a Keras model, exact or refused (`sepspec import`; imports Keras). `keep_names=False`:
    the spec names its layers itself (`import --no-names`), so every block is recognised. Its `train:` comes from
    `training` (a compile configuration; by default the model's own, if compiled); `notes`, a list, gets what of
    its training the spec does not keep."""
    from .emit.importer import from_keras as decompile

    return decompile(model, keep_names=keep_names, training=training, notes=notes)


def fit(spec: str | Spec, **options):
    """Train a spec (a file, or a loaded Spec) with the shared trainer, as `sepspec train` does (imports
    TensorFlow). Raises SpecError when the spec breaks a rule.

    `options` are the command's: epochs, batch_size, data, out, train_limit, val_limit, seed, overrides (a list
    of "train.key=value"), strategy, precision, jit_compile. Returns the `Result`: `status` ("finished", "nan",
    "interrupted") and `run`, the run directory.
    """
    from .train.options import Options
    from .train.trainer import train, training_report

    opts = Options(spec=spec if isinstance(spec, str) else None, **options)
    result = train(training_report(opts, None if isinstance(spec, str) else spec), opts)
    return result


def fit_seeds(spec: str | Spec, seeds: list[int], out: str, **options):
    """Train several seeds of a spec together in one process and one compiled step, as `sepspec train SPEC --seeds
    K,K --stacked` does: each seed is an ordinary run `OUT/seedK`. `options` as for `fit` (no seed, no out).
    Returns each seed's `Result`, in the order of `seeds`."""
    from .train.options import Options
    from .train.stacked import train_stacked
    from .train.trainer import training_report

    opts = Options(spec=spec if isinstance(spec, str) else None, **options)
    return train_stacked(training_report(opts, None if isinstance(spec, str) else spec), opts, list(seeds), out)
