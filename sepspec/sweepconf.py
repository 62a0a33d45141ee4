"""Sweep files: which spec every trial starts from, the budget, the pruner, and a search space over spec paths.

Validated like a spec (pydantic, errors at their YAML positions). Every path of the space is also checked
against the spec before anything runs: each value its distribution can produce (every choice; both ends of a
range) is written into the spec, and the result must pass the schema, so a misspelt key or an impossible value
is an error at its line, not a failed trial an hour later. Rules (budgets, receptive field) are not errors here:
a trial that breaks one is pruned without training.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from .diagnostics import Diagnostic, dotted
from .fields import PosInt
from .kinds import BLOCKS, shorthand
from .scale import _copy, classifier_entry, scale_source
from .spec import Spec, _diagnostics, load_source, resolve
from .yamlsrc import Source, SpecError, read

STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
Number = Union[int, float]
Pair = Annotated[list[Number], Field(min_length=2, max_length=2)]


class Choice(BaseModel):
    model_config = STRICT
    choice: Annotated[list, Field(min_length=1)]


class Uniform(BaseModel):
    model_config = STRICT
    uniform: Pair

    @model_validator(mode="after")
    def _ordered(self):
        if not self.uniform[0] < self.uniform[1]:
            raise ValueError("uniform: [low, high] needs low < high")
        return self


class LogUniform(BaseModel):
    model_config = STRICT
    loguniform: Pair

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


_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def parse_path(text: str) -> tuple | None:
    """'layers[2].residual.body[0].sepconv.kernel' -> ('layers', 2, 'residual', 'body', 0, 'sepconv', 'kernel')."""
    out: list = []
    for part in text.split("."):
        if not part:
            return None
        p = 0
        while p < len(part):
            m = _TOKEN.match(part, p)
            if not m or (m.group(1) and p > 0):
                return None
            out.append(m.group(1) if m.group(1) else int(m.group(2)))
            p = m.end()
    return tuple(out) if out and isinstance(out[0], str) else None


def values_of(d: Distribution) -> list:
    """The values to check a distribution with: every choice, or both ends of a range."""
    if isinstance(d, Choice):
        return list(d.choice)
    if isinstance(d, Uniform):
        return list(d.uniform)
    if isinstance(d, LogUniform):
        return list(d.loguniform)
    lo, hi = d.int_
    return [lo, lo + (hi - lo) // d.step * d.step]


def set_value(src: Source, path: tuple, value) -> None:
    """Write `value` at `path` in the resolved (not yet normalised) spec data, creating mappings on the way and
    turning a shorthand entry (`sepconv: 32`) into its mapping. Raises KeyError/IndexError for a path that
    cannot exist (an index past the end of a list, a key under a value)."""
    node = src.data
    for i, key in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                raise IndexError(f"{dotted(path[:i + 1])}: there are {len(node) if isinstance(node, list) else 0} entries")
            child = node[key]
        else:
            if not isinstance(node, dict):
                raise KeyError(f"{dotted(path[:i])} is not a mapping")
            child = node.get(key)
            if key in BLOCKS and not isinstance(child, dict):
                child = shorthand(key, child)
                node[key] = child = dict(child) if isinstance(child, dict) else child
            if child is None:
                child = node[key] = [] if isinstance(nxt, int) else {}
        if isinstance(nxt, str) and not isinstance(child, dict):
            raise KeyError(f"{dotted(path[:i + 1])} is not a mapping")
        node = child
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise IndexError(f"{dotted(path)}: no such entry")
        node[last] = value
    else:
        node[last] = value


def apply(src: Source, params: dict[str, object], keep: tuple | None = None) -> Source:
    """A copy of the resolved spec with the sampled values written in; `width` scales every `filters` (but the
    classifier's, at path `keep`) as `sepspec scale` does, after the other values."""
    out = _copy(src)
    for name, value in params.items():
        if name != "width":
            set_value(out, parse_path(name), value)
    if "width" in params:
        out = scale_source(out, float(params["width"]), keep)
    return out


def load_sweep(path: str) -> tuple[Sweep, Source, Source]:
    """(the sweep, its positioned source, the resolved spec it starts from). Raises SpecError (positions) or OSError."""
    src = read(path)
    if not isinstance(src.data, dict):
        raise SpecError([Diagnostic.at(src.values.get(()), "SEP102", "schema", "a sweep must be a mapping of keys "
                                       "(spec, trials, budget, pruner, space)", file=path)])
    try:
        sweep = Sweep.model_validate(src.data)
    except ValidationError as err:
        raise SpecError(_diagnostics(err, src)) from None
    spec_path = os.path.normpath(os.path.join(os.path.dirname(path), sweep.spec))
    try:
        base = resolve(spec_path)
        load_source(_copy(base))
    except OSError as e:
        raise SpecError([Diagnostic.at(src.pos(("spec",)), "SEP105", "sweep",
                                       f"spec: cannot read {sweep.spec!r}: {e.strerror or e}")]) from None
    except SpecError as e:
        raise SpecError([Diagnostic.at(src.pos(("spec",)), "SEP105", "sweep",
                                       f"spec: {sweep.spec!r} is not a valid spec ({e.diagnostics[0].text()})")]) from None
    keep = classifier_entry(base)
    errors = []
    for name, dist in sweep.space.items():
        where = src.pos(("space", name), key=True)
        if name == "width":
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 16 for v in values_of(dist)):
                errors.append(Diagnostic.at(where, "SEP103", "sweep", "space.width: a multiplier in (0, 16]"))
                continue
        elif parse_path(name) is None:
            errors.append(Diagnostic.at(where, "SEP103", "sweep", f"space: {name!r} is not a spec path (e.g. "
                                        "train.optimizer.learning_rate, layers[2].sepconv.kernel, width)"))
            continue
        for v in values_of(dist):
            try:
                load_source(apply(base, {name: v}, keep))
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
    return sweep, src, base


def spec_for(sweep_base: Source, params: dict, keep: tuple | None) -> tuple[Spec, Source]:
    """The trial's spec, validated (not yet checked against the rules)."""
    s = apply(sweep_base, params, keep)
    return load_source(s), s
