"""The spec format: the pydantic model of a whole spec file, and loading with `extends` and `defaults` resolved.

The models are the single source of the schema (types, defaults, constraints; ``extra="forbid"``,
strict types so ``filters: true`` is not 1): value types in `fields`, layer kinds in `kinds`, the `train:`
section in `trainconf`. Loading happens in three steps on the positioned data from `yamlsrc`, so every
error can be reported where its value is written:

1. `extends` is resolved by deep-merging this file's mappings over the parent's (lists replace whole);
   each value keeps the position (and file) it was written at;
2. shorthands (``sepconv: 32``) become mappings and ``defaults.<kind>`` fills what a layer leaves out,
   with the default's own position, in nested block bodies too;
3. the whole result is validated once by `Spec`, and pydantic's error locations become YAML positions.

The analysis then expands the layer entries (`kinds.expand_entries`) into Keras layers.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from ..diagnostics import Diagnostic, dotted, ordered
from ..targets import TARGETS
from .blocks import Expander, definitions
from .fields import STRICT, InputShape, Name, PosInt
from .kinds import BLOCKS, USER_KINDS, Defaults, LayerEntry, is_entry, nested_lists, shorthand
from .source import Source, SpecError, nodes, read
from .trainconf import SGD, Adam, AdamW, Augment, Constant, Cosine, InverseTime, OneCycle, ReduceOnPlateau, Step, Train


class Rules(BaseModel):
    model_config = STRICT
    separable_only: bool = False
    max_params: PosInt = 100_000_000  # a ceiling even when a spec sets none: nothing absurd gets allocated
    max_macs: Optional[PosInt] = None
    min_receptive_field: Optional[PosInt] = None
    max_flash_bytes: Optional[PosInt] = None  # int8 weight buffers of the exported model (sepspec.deploy)
    max_activation_bytes: Optional[PosInt] = None  # its activation arena at batch 1 (sepspec.deploy)
    # a named microcontroller (sepspec/targets.py): its flash must hold the int8 weights and its RAM the arena
    target: Optional[Literal[tuple(TARGETS)]] = None
    # a warning (SEP217) for a layer whose window only sees padding: its input already sees this many times the
    # image's side before global pooling; null: no warning
    unproductive_ratio: Optional[Annotated[float, Field(ge=1)]] = 2.0
    # SEP209: nothing between the last convolution and the classifier's gap (the class scores reach it unchanged);
    # false: a network that normalises or activates them there, as SqueezeNet's and Network in Network's ReLU
    classifier_head: bool = True



class BlockDef(BaseModel):
    """A kind of your own: its arguments (each with its default; null: required at every use) and its body,
    entries as in a residual's body where a scalar `$arg` stands for an argument's value (`sepspec.spec.blocks`)."""

    model_config = STRICT
    args: dict[Name, Any] = Field({}, description="each argument with its default (null: required at every use)")
    body: Annotated[list[Any], Field(min_length=1, description="layer entries; `$arg` is an argument's value")]


class Spec(BaseModel):
    """A whole spec, after `extends` is resolved."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True, allow_inf_nan=False,
                              title="sepspec spec")
    extends: Optional[str] = Field(None, description="a parent spec, relative to this file")
    name: Name
    description: str = ""
    input: InputShape = Field(description="[height, width, channels]")
    classes: PosInt
    rules: Rules = Rules()
    defaults: Defaults = Defaults()  # type: ignore[valid-type]
    blocks: dict[Name, BlockDef] = Field({}, description="kinds of your own, used like the built-in ones")
    layers: Annotated[list[LayerEntry], Field(min_length=1)]
    train: Train = Train()
    _source: Optional[Source] = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _with_user_kinds(cls, data, handler):
        """Entries of a kind defined under `blocks:` validate as uses (`kinds.Use`) while this spec validates."""
        blocks = data.get("blocks") if isinstance(data, dict) else None
        token = USER_KINDS.set(frozenset(blocks) if isinstance(blocks, dict) else frozenset())
        try:
            return handler(data)
        finally:
            USER_KINDS.reset(token)

    @property
    def source(self) -> Source:
        """Where each value of the spec is written (empty for a Spec made in code)."""
        return self._source if self._source is not None else Source({})


# ------------------------------------------------------------------------------------- loading
def _deep_merge(parent, child):
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for k, v in child.items():
            out[k] = _deep_merge(parent[k], v) if k in parent else v
        return out
    return child


def _has(data, path) -> bool:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def resolve(path: str, display: str | None = None, _stack: tuple = ()) -> Source:
    """Read `path` and everything it `extends`, merged into one positioned `Source`."""
    src = read(path, display)
    data = src.data
    if not isinstance(data, dict):
        raise SpecError([Diagnostic.at(src.values.get(()), "SEP102", "schema",
                                       "a spec must be a mapping of keys (name, input, layers, ...)",
                                       file=display or path)])
    if "name" not in data:  # the name is not inherited: a variant is named after its own file
        data["name"] = os.path.splitext(os.path.basename(path))[0]
    parent_ref = data.pop("extends", None)
    if parent_ref is None:
        return src
    here = src.values[("extends",)]
    if not isinstance(parent_ref, str):
        raise SpecError([Diagnostic.at(here, "SEP102", "extends", "extends: expected a file name")])
    parent_path = os.path.normpath(os.path.join(os.path.dirname(path), parent_ref))
    parent_display = os.path.normpath(os.path.join(os.path.dirname(display or path), parent_ref))
    key = os.path.realpath(path)
    if os.path.realpath(parent_path) in _stack + (key,):
        raise SpecError([Diagnostic.at(here, "SEP106", "extends",
                                       f"extends cycle: {parent_ref} extends this file again")])
    try:
        parent = resolve(parent_path, parent_display, _stack + (key,))
    except OSError as e:
        raise SpecError([Diagnostic.at(here, "SEP105", "extends",
                                       f"cannot read parent spec {parent_ref!r}: {e.strerror or e}")]) from None
    merged = _deep_merge(parent.data, data)
    out = Source(merged)
    for p, _ in nodes(merged):
        mine = _has(data, p)
        table_v, table_k = (src.values, src.keys) if mine else (parent.values, parent.keys)
        if p in table_v:
            out.values[p] = table_v[p]
        if p in table_k:
            out.keys[p] = table_k[p]
    return out


def _copy_positions(src: Source, frm: tuple, to: tuple) -> None:
    for table in (src.values, src.keys):
        for p, pos in list(table.items()):
            if p[:len(frm)] == frm:
                table[to + p[len(frm):]] = pos


def normalised(src: Source) -> Source:
    """A copy of a resolved source with shorthands written out and `defaults` applied (see `_normalise`)."""
    out = src.copy()
    expander = _normalise(out)
    if expander.errors:
        raise SpecError(ordered(expander.errors))
    return out


def _normalise(src: Source) -> Expander:
    """Shorthands become mappings; `defaults.<kind>` fills what each layer leaves out (in place), in every list
    of layer entries (`layers`, a residual's `body`/`shortcut`, a parallel block's branches, however deeply
    nested); each use of a kind of your own gets its body (`blocks`). The defaults of kinds of your own are
    consumed here (the `Defaults` model knows only the built-in kinds)."""
    data = src.data
    defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
    expander = Expander(src, defaults)
    _normalise_list(src, data.get("layers"), ("layers",), defaults, expander, ())
    expander.take_defaults()
    return expander


def _normalise_list(src: Source, entries, path: tuple, defaults: dict, expander: Expander, stack: tuple) -> None:
    if not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        if not (isinstance(entry, dict) and len(entry) == 1):
            continue
        kind, value = next(iter(entry.items()))
        here = path + (i, kind)
        if kind in expander.defs:
            use = expander.expand(kind, value, here, stack)
            if use is None:
                expander.failed.append(here)
            else:
                entry[kind] = use
                _normalise_list(src, use["body"], here + ("body",), defaults, expander, stack + (kind,))
            continue
        if kind not in BLOCKS:
            continue
        args = shorthand(kind, value)
        if not isinstance(args, dict):
            continue
        if args is not value and value is not None:
            src.values[here + (BLOCKS[kind].main,)] = src.values[here]
        fill = defaults.get(kind)
        if isinstance(fill, dict):
            args = dict(args)
            for k, v in fill.items():
                if k not in args and k not in BLOCKS[kind].not_defaults:
                    args[k] = v
                    _copy_positions(src, ("defaults", kind, k), here + (k,))
        entry[kind] = args
        for where, entries in nested_lists(args):
            _normalise_list(src, entries, here + where, defaults, expander, stack)


_CODES = {"extra_forbidden": "SEP101", "missing": "SEP104", "layer_entry": "SEP108",
          "union_tag_invalid": "SEP103", "literal_error": "SEP103", "string_pattern_mismatch": "SEP103",
          "greater_than": "SEP103", "greater_than_equal": "SEP103", "less_than": "SEP103",
          "less_than_equal": "SEP103", "too_short": "SEP103", "too_long": "SEP103"}
def _keys(model) -> list[str]:
    """The keys a spec writes for a model's fields (`from`, not the field's Python name `source`)."""
    return [fi.alias or name for name, fi in model.model_fields.items()]


_VOCAB = sorted({f for m in (Spec, Rules, Train, Adam, AdamW, SGD, Augment, *BLOCKS.values(),
                             Constant, InverseTime, Step, Cosine, OneCycle, ReduceOnPlateau)
                 for f in _keys(m)} | set(BLOCKS))


def _data_path(data, loc) -> tuple:
    """Map a pydantic error location onto a path in the data, skipping union tags and member names."""
    path: tuple = ()
    for part in loc:
        if isinstance(data, dict) and part in data:
            data, path = data[part], path + (part,)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data, path = data[part], path + (part,)
    return path


def _did_you_mean(word: str, path: tuple, user_kinds=()) -> str | None:
    if is_entry(path[:-1]):
        choices = list(BLOCKS) + list(user_kinds)  # an unknown kind
    elif is_entry(path[:-2]) and path[-2] in BLOCKS:
        choices = _keys(BLOCKS[path[-2]])
    elif len(path) == 3 and path[0] == "defaults" and path[1] in BLOCKS:
        choices = [k for k in _keys(BLOCKS[path[1]]) if k not in ("name", "repeat", "from")]
    elif len(path) == 1:
        choices = list(Spec.model_fields)
    else:
        choices = _VOCAB
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _show(v) -> str:
    s = repr(v) if not isinstance(v, bool) else str(v).lower()
    return s if len(s) <= 40 else s[:37] + "..."


def schema_errors(err: ValidationError, src: Source) -> list[tuple[tuple, Diagnostic]]:
    """(path in the data, diagnostic) of each of pydantic's errors."""
    out = []
    for e in err.errors():
        path = _data_path(src.data, e["loc"])
        etype = e["type"]
        code = _CODES.get(etype, "SEP102")
        hint = None
        entry = next((path[:n] for n in range(len(path), 1, -1) if is_entry(path[:n])), None)
        layer = dotted(entry) if entry else None
        if etype == "extra_forbidden":
            word = path[-1]
            if is_entry(path[:-1]):  # an unknown kind is reported by the entry
                continue
            msg = f"{dotted(path)}: unknown key {word!r}"
            hint = _did_you_mean(word, path)
            pos = src.pos(path, key=True)
        elif etype == "layer_entry":
            entry = e["input"]
            if isinstance(entry, dict) and len(entry) == 1:
                kind = next(iter(entry))
                msg = f"{dotted(path)}: unknown layer kind {kind!r}"
                user = list(definitions(src.data))
                hint = _did_you_mean(kind, path + (kind,), user) or f"kinds: {', '.join(list(BLOCKS) + user)}"
                pos = src.pos(path + (kind,), key=True)
            else:
                msg = f"{dotted(path)}: {e['msg']}, got {_show(entry)}"
                pos = src.pos(path)
        elif etype == "union_tag_invalid":
            tag, expected = e["ctx"]["tag"], e["ctx"]["expected_tags"]
            msg = f"{dotted(path)}: unknown name {tag!r} (expected one of {expected})"
            close = difflib.get_close_matches(tag, [t.strip(" '") for t in expected.split(",")], n=1)
            hint = f"did you mean {close[0]!r}?" if close else None
            pos = src.pos(path + ("name",))
        elif etype == "union_tag_not_found":  # a mapping of one of several forms, told apart by a key it lacks
            missing = e["ctx"]["discriminator"].strip("'")
            msg = f"{dotted(path)}: missing required key {missing!r}"
            pos = src.pos(path)
        elif etype == "missing":
            missing = e["loc"][-1]
            msg = f"{dotted(path)}: missing required key {missing!r}"
            pos = src.pos(path)
        else:
            text = e["msg"].removeprefix("Value error, ")  # a validator's own sentence
            msg = f"{dotted(path)}: {text[0].lower() + text[1:]}"
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg += f", got {_show(e['input'])}"
            if etype == "bool_type" and isinstance(e.get("input"), str):
                hint = "YAML booleans are true/false"
            if etype == "literal_error" and isinstance(e.get("input"), str):  # a misspelt choice
                close = difflib.get_close_matches(e["input"], re.findall(r"'([^']*)'", e["ctx"]["expected"]), n=1)
                hint = f"did you mean {close[0]!r}?" if close else None
            pos = src.pos(path)
        out.append((path, Diagnostic.at(pos, code, "schema", msg, layer=layer, hint=hint)))
    return out


def load_source(src: Source) -> Spec:
    """Validate a resolved source (it is not changed). The Spec keeps the positioned source it was validated
    from (`Spec.source`: shorthands written out, defaults applied), so that rules report at their lines."""
    src = src.copy()
    expander = _normalise(src)
    try:
        spec = Spec.model_validate(src.data)
    except ValidationError as err:  # what a use that could not be expanded lacks is said by its own error
        errors = [d for e, d in schema_errors(err, src) if not any(e[:len(f)] == f for f in expander.failed)]
        raise SpecError(ordered(expander.errors + errors)) from None
    if expander.errors:
        raise SpecError(ordered(expander.errors))
    spec._source = src
    return spec


def load(path: str, display: str | None = None) -> Spec:
    """Load a spec file (with what it `extends`). Raises SpecError or OSError."""
    return load_source(resolve(path, display))



def to_yaml(spec: Spec, comment: str = "a fully resolved spec (defaults applied, extends merged)") -> str:
    """The fully resolved spec as a standalone spec file (it passes `sepspec check` as it is)."""
    import yaml

    # a use of a kind of your own is dumped with the body it expanded to, which a load takes as it is; the blocks
    # stay because they make the use's kind known
    exclude = {"extends", "defaults"} | (set() if spec.blocks else {"blocks"})
    data = spec.model_dump(mode="json", exclude_none=True, exclude=exclude, by_alias=True)
    return f"# {comment}\n" + yaml.safe_dump(data, sort_keys=False)
