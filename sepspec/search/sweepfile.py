"""Sweep files: which spec every trial starts from, the budget, the pruner, and a search space over spec paths.

Validated like a spec (pydantic, errors at their YAML positions). Every path of the space is also checked
against the spec before anything runs: each value its distribution can produce (every choice; both ends of a
range) is written into the spec, and the result must pass the schema, so a misspelt key or an impossible value
is an error at its line, not a failed trial an hour later. Rules (budgets, receptive field) are not errors here:
a trial that breaks one is pruned without training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, model_validator

from ..diagnostics import Diagnostic
from ..graph.analysis import analyse
from ..spec.edit import parse_path, with_value, with_width
from ..spec.fields import STRICT, Bounds, PosInt
from ..spec.load import Spec, load_source, resolve, schema_errors
from ..spec.source import Source, SpecError, read
from .scale import classifier_entry


class Choice(BaseModel):
    model_config = STRICT
    choice: Annotated[list, Field(min_length=1)]


class Uniform(BaseModel):
    model_config = STRICT
    uniform: Bounds

    @model_validator(mode="after")
    def _ordered(self):
        if not self.uniform[0] < self.uniform[1]:
            raise ValueError("uniform: [low, high] needs low < high")
        return self


class LogUniform(BaseModel):
    model_config = STRICT
    loguniform: Bounds

    @model_validator(mode="after")
    def _ordered(self):
        lo, hi = self.loguniform
        if not 0 < lo < hi:
            raise ValueError("loguniform: [low, high] needs 0 < low < high")
        return self


class IntRange(BaseModel):
    model_config = STRICT
    int_: Annotated[list[int], Field(alias="int", min_length=2, max_length=2)]
    step: PosInt = 1

    @model_validator(mode="after")
    def _ordered(self):
        if not self.int_[0] <= self.int_[1]:
            raise ValueError("int: [low, high] needs low <= high")
        return self

    @property
    def high(self) -> int:
        """The largest value the range can produce (`high` itself only when the steps reach it)."""
        lo, hi = self.int_
        return lo + (hi - lo) // self.step * self.step


_KINDS = ("choice", "uniform", "loguniform", "int")


def _kind(v):
    if isinstance(v, dict):
        return next((k for k in _KINDS if k in v), None)
    return next((k for k, c in zip(_KINDS, (Choice, Uniform, LogUniform, IntRange)) if isinstance(v, c)), None)


Distribution = Annotated[Union[Annotated[Choice, Tag("choice")], Annotated[Uniform, Tag("uniform")],
                               Annotated[LogUniform, Tag("loguniform")], Annotated[IntRange, Tag("int")]],
                         Discriminator(_kind, custom_error_type="distribution",
                                       custom_error_message="expected one of choice: [...], uniform: [low, high], "
                                       "loguniform: [low, high], int: [low, high] (with step: N)")]


class Budget(BaseModel):
    model_config = STRICT
    epochs: PosInt = 3
    train_limit: Optional[PosInt] = None
    val_limit: Optional[PosInt] = None


class Pruner(BaseModel):
    model_config = STRICT
    name: Literal["median", "successive_halving", "none"] = "median"
    warmup_epochs: Annotated[int, Field(ge=0)] = 1  # median: epochs reported before a trial can be stopped
    min_epochs: PosInt = 1  # successive_halving: the first rung


class Sweep(BaseModel):
    model_config = STRICT
    spec: str  # relative to the sweep file
    trials: Annotated[int, Field(gt=0, le=100_000)]
    budget: Budget = Budget()
    pruner: Pruner = Pruner(name="none")
    space: dict[str, Distribution]
    validation: Annotated[float, Field(gt=0, lt=1)] = 0.1  # held out of the training set; never the test set
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    max_rule_pruned: Optional[PosInt] = None  # candidates in a row that break a rule before giving up (20 x trials)


def values_of(d: Distribution) -> list:
    """The values to check a distribution with: every choice, or both ends of a range."""
    if isinstance(d, Choice):
        return list(d.choice)
    if isinstance(d, Uniform):
        return list(d.uniform)
    if isinstance(d, LogUniform):
        return list(d.loguniform)
    return [d.int_[0], d.high]


@dataclass(frozen=True)
class SweepFile:
    """A validated sweep file: the sweep, its positioned source, and the spec every trial starts from."""

    sweep: Sweep
    source: Source
    base: Source  # the spec every trial starts from, resolved (`extends`), as written
    keep: tuple | None  # the classifier's entry, whose width `width` leaves alone

    def candidate(self, params: dict) -> Spec:
        """The trial's spec, validated (not yet checked against the rules): the sampled values written in at the
        sweep file's lines; `width` scales every `filters` (but the classifier's) after the other values."""
        src = self.base
        for name, value in params.items():
            if name != "width":
                src = with_value(src, parse_path(name), value, self.source.pos(("space", name), key=True))
        if "width" in params:
            src = with_width(src, float(params["width"]), self.keep)
        return load_source(src)


def load_sweep(path: str) -> SweepFile:
    """The sweep file, every path of its space checked against its spec. Raises SpecError (positions) or OSError."""
    src = read(path)
    if not isinstance(src.data, dict):
        raise SpecError([Diagnostic.at(src.values.get(()), "SEP102", "schema", "a sweep must be a mapping of keys "
                                       "(spec, trials, budget, pruner, space)", file=path)])
    try:
        sweep = Sweep.model_validate(src.data)
    except ValidationError as err:
        raise SpecError([d for _, d in schema_errors(err, src)]) from None
    spec_path = os.path.normpath(os.path.join(os.path.dirname(path), sweep.spec))
    try:
        base = resolve(spec_path)
        spec = load_source(base)
    except OSError as e:
        raise SpecError([Diagnostic.at(src.pos(("spec",)), "SEP105", "sweep",
                                       f"spec: cannot read {sweep.spec!r}: {e.strerror or e}")]) from None
    except SpecError as e:
        why = e.diagnostics[0].text()
        raise SpecError([Diagnostic.at(src.pos(("spec",)), "SEP105", "sweep",
                                       f"spec: {sweep.spec!r} is not a valid spec ({why})")]) from None
    file = SweepFile(sweep, src, base, classifier_entry(analyse(spec)))
    errors = []
    for name, dist in sweep.space.items():
        where = src.pos(("space", name), key=True)
        if name == "width":
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 16
                       for v in values_of(dist)):
                errors.append(Diagnostic.at(where, "SEP103", "sweep", "space.width: a multiplier in (0, 16]"))
                continue
        elif parse_path(name) is None:
            errors.append(Diagnostic.at(where, "SEP103", "sweep", f"space: {name!r} is not a spec path (e.g. "
                                        "train.optimizer.learning_rate, layers[2].sepconv.kernel, width)"))
            continue
        for v in values_of(dist):
            try:
                file.candidate({name: v})
            except (KeyError, IndexError) as e:
                errors.append(Diagnostic.at(where, "SEP101", "sweep", f"space.{name}: {str(e).strip(chr(39))}"))
                break
            except SpecError as e:
                d = e.diagnostics[0]
                msg = d.message.split(": ", 1)[-1] if ": " in d.message else d.message
                errors.append(Diagnostic.at(where, d.code, "sweep", f"space.{name}: the value {v!r} gives a spec "
                                            f"that fails: {msg}", hint=d.hint))
                break
    if sweep.pruner.name == "successive_halving" and sweep.pruner.min_epochs > sweep.budget.epochs:
        errors.append(Diagnostic.at(src.pos(("pruner", "min_epochs")), "SEP103", "sweep",
                                    "pruner.min_epochs: more than budget.epochs"))
    if errors:
        raise SpecError(errors)
    return file
