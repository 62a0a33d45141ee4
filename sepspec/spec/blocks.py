"""Kinds of your own: `blocks:` defines them; each use gets a copy of the body with its arguments written in.

A block is a macro over the spec's data. Where the spec is loaded (`load.normalised`), a use
``- cell: {filters: 48, skip: c1}`` becomes ``- cell: {filters: 48, skip: c1, body: [...]}``: a copy of the
block's body in which every scalar written ``$filters`` is replaced by the use's value, typed as it is written at
the use (filters stay ints, names stay names; nothing else is evaluated). The body then validates and expands like a
residual's (`kinds.Use`), so the rules, the analysis, emit and export see ordinary entries and need no case of their
own. A body value is reported at the body's line with the use's line in a note; a value that an argument filled in
is reported at the use's argument, with the body's line in the note.
"""

from __future__ import annotations

import copy
import difflib
import re

from ..diagnostics import CODES, Diagnostic, Pos, dotted
from .kinds import BLOCKS
from .source import Source, nodes

ARG = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
CONTROL = ("name", "repeat", "from")  # what every use takes, as a built-in kind's entry does
RESERVED = CONTROL + ("body",)
MAX_ENTRIES = 20_000  # entries all uses together may expand to (a block used twice in a block used twice ...)


def definitions(data) -> dict[str, dict]:
    """The spec's block definitions that have the right form (the schema reports the others)."""
    blocks = data.get("blocks") if isinstance(data, dict) else None
    if not isinstance(blocks, dict):
        return {}
    return {k: d for k, d in blocks.items()
            if isinstance(k, str) and k not in BLOCKS and isinstance(d, dict) and isinstance(d.get("body"), list)
            and isinstance(d.get("args", {}), dict)}


def _scalars(data, path=()):
    """(path, value) of every scalar in nested lists and mappings."""
    return [(p, v) for p, v in nodes(data, path) if not isinstance(v, (dict, list))]


def _where(pos: Pos | None) -> str:
    return f"line {pos.line}" if pos else "an unknown line"


def _noted(pos: Pos | None, note: str) -> Pos | None:
    if pos is None:
        return None
    return Pos(pos.file, pos.line, pos.column, note + (f"; {pos.note}" if pos.note else ""))


class Expander:
    """Expands every use in one spec's data, in place, keeping positions; collects the errors it finds."""

    def __init__(self, src: Source, defaults: dict):
        self.src, self.defaults = src, defaults
        self.defs = definitions(src.data)
        self.errors: list[Diagnostic] = []
        self.failed: list[tuple] = []  # the uses not expanded (after an error)
        self.broken: set[str] = set()  # blocks whose body reads an argument they do not have
        self.entries = 0
        self._body_positions: dict[str, list] = {}
        self._check_definitions()

    def _check_definitions(self) -> None:
        blocks = self.src.data.get("blocks") if isinstance(self.src.data, dict) else None
        for kind in blocks if isinstance(blocks, dict) else ():
            if kind in BLOCKS:
                self._error(("blocks", kind), "SEP103", f"blocks.{kind}: `{kind}` is a built-in kind; give your "
                            "block another name", key=True)
        for kind, d in self.defs.items():
            args = d.get("args") or {}
            for a in args:
                if a in RESERVED:
                    self._error(("blocks", kind, "args", a), "SEP103", f"blocks.{kind}.args: `{a}` is what every "
                                "use takes; give the argument another name", key=True)
            for p, v in _scalars(d["body"], ("blocks", kind, "body")):
                m = isinstance(v, str) and ARG.match(v)
                if m and m.group(1) not in args:
                    close = difflib.get_close_matches(m.group(1), list(args), n=1)
                    self.broken.add(kind)
                    self._error(p, "SEP109", f"{dotted(p)}: ${m.group(1)} is not an argument of block "
                                f"{kind!r} (its arguments: {', '.join(args) or 'none'})",
                                hint=f"did you mean ${close[0]}?" if close else f"add it to blocks.{kind}.args")

    def take_defaults(self) -> None:
        """Check `defaults.<kind>` of the kinds of your own and take them out of the data (the `Defaults` model
        knows only the built-in kinds); the uses have been given them."""
        for kind, d in self.defs.items():
            fill = self.defaults.pop(kind, None)
            params = d.get("args") or {}
            for k in fill if isinstance(fill, dict) else ():
                if k not in params:
                    close = difflib.get_close_matches(str(k), list(params), n=1)
                    self._error(("defaults", kind, k), "SEP101", f"defaults.{kind}: block {kind!r} has no argument "
                                f"{k!r}", key=True, hint=f"did you mean {close[0]!r}?" if close else None)

    def _error(self, path, code, message, key=False, hint=None, pos=None):
        rule = CODES[code][0]  # schema for SEP10x, blocks for SEP109 and SEP110
        self.errors.append(Diagnostic.at(pos or self.src.pos(path, key=key), code, rule, message, hint=hint))

    def expand(self, kind: str, value, here: tuple, stack: tuple) -> dict | None:
        """The arguments of the use at `here` (`(..., i, kind)`) with its body written in; None after an error."""
        d = self.defs[kind]
        params = d.get("args") or {}
        src = self.src
        if kind in stack:
            self._error(here, "SEP110", f"{dotted(here)}: block {kind!r} uses itself "
                        f"({' -> '.join(stack[stack.index(kind):] + (kind,))})", key=True)
            return None
        if isinstance(value, dict) and "body" in value:  # expanded already (a resolved spec, a spec edited after)
            return value
        if value is None:
            given = {}
        elif isinstance(value, dict):
            given = dict(value)
        elif params:  # the first argument is the main one: `- cell: 48`
            first = next(iter(params))
            given = {first: value}
            src.values[here + (first,)] = src.values.get(here)
        else:
            self._error(here, "SEP102", f"{dotted(here)}: block {kind!r} takes no arguments, got {value!r}")
            return None
        fill = self.defaults.get(kind)
        for k, v in (fill.items() if isinstance(fill, dict) else ()):
            if k not in given and k in params:
                given[k] = v
                for is_key, p, pos in self._under(("defaults", kind, k)):
                    (src.keys if is_key else src.values)[here + (k,) + p] = pos
        ok = True
        for k in given:
            if k not in params and k not in CONTROL:
                close = difflib.get_close_matches(str(k), list(params) + list(CONTROL), n=1)
                self._error(here + (k,), "SEP101", f"{dotted(here)}: block {kind!r} has no argument {k!r} "
                            f"(its arguments: {', '.join(params) or 'none'})", key=True,
                            hint=f"did you mean {close[0]!r}?" if close else None)
                ok = False
        for k, default in params.items():
            if default is None and given.get(k) is None:
                self._error(here, "SEP104", f"{dotted(here)}: block {kind!r} needs its argument {k!r}")
                ok = False
        if not ok or kind in self.broken:
            return None
        values = {**params, **{k: v for k, v in given.items() if k in params}}
        use_pos = src.pos(here, key=True)
        body = copy.deepcopy(d["body"])
        self.entries += len(_scalars(body))
        if self.entries > MAX_ENTRIES:
            self._error(here, "SEP110", f"{dotted(here)}: the spec's blocks expand to more than {MAX_ENTRIES:,} "
                        "values", key=True)
            return None
        self._place_body(kind, body, values, here, use_pos)
        return {**given, "body": body}

    def _under(self, prefix: tuple) -> list[tuple[bool, tuple, Pos]]:
        """(is a key position, path below `prefix`, position) of everything written under `prefix`."""
        n = len(prefix)
        return [(table is self.src.keys, p[n:], pos) for table in (self.src.values, self.src.keys)
                for p, pos in table.items() if p[:n] == prefix]

    def _place_body(self, kind, body, values, here, use_pos) -> None:
        """Write the arguments into `body` (in place) and give every value of it a position."""
        src = self.src
        frm, to = ("blocks", kind, "body"), here + ("body",)
        if kind not in self._body_positions:
            self._body_positions[kind] = self._under(frm)
        note = f"in block {kind!r} used at {_where(use_pos)}" + (f"; {use_pos.note}" if use_pos and use_pos.note
                                                                 else "")
        for is_key, p, pos in self._body_positions[kind]:
            (src.keys if is_key else src.values)[to + p] = _noted(pos, note)
        args: dict[str, list] = {}
        for p, v in _scalars(body):
            m = isinstance(v, str) and ARG.match(v)
            if not m:
                continue
            arg = m.group(1)
            node = body
            for part in p[:-1]:
                node = node[part]
            node[p[-1]] = copy.deepcopy(values[arg])
            if arg not in args:
                at = here + (arg,) if (here + (arg,)) in src.values else ("blocks", kind, "args", arg)
                args[arg] = self._under(at)
            body_note = f"the argument {arg!r} at {_where(src.values.get(frm + p))} of block {kind!r}"
            for is_key, q, pos in args[arg]:
                (src.keys if is_key else src.values)[to + p + q] = _noted(pos, body_note)
