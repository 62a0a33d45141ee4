"""Safe YAML with source positions.

PyYAML's parser (libyaml's, when PyYAML has it) turns the file into events, which carry line/column marks; we
build plain Python from them ourselves instead of letting a composer and a constructor do it. That buys five
things at once:

* no constructor ever runs, and any explicit tag (``!!python/object``, ``!foo``, even ``!!str``) is an
  error, so a tag never runs code;
* scalars are resolved the YAML 1.2 way a person reads them: ``1e-3`` is a float, ``yes``/``off``
  stay strings, only ``true``/``false`` are booleans, ``1_000`` and ``1:20`` are not numbers;
* duplicate keys are errors instead of a silent last-one-wins;
* aliases are followed with a budget (`MAX_NODES`), so a 1 KB "billion laughs" file cannot expand
  into millions of nodes;
* nesting is limited (`MAX_DEPTH`) without recursion, so a deep document is an error, never a crash.

The result is the data plus two maps from a path (a tuple of keys and list indices) to a `Pos`:
where each value is written, and where each mapping key is written.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import yaml

from ..diagnostics import Diagnostic, Pos

MAX_NODES = 20_000  # expanded nodes (aliases counted every time they are used)
MAX_BYTES = 1_000_000
MAX_DEPTH = 50  # nesting levels of mappings and lists (a spec needs about 10; a deep document is an attack)

Path = tuple


class SpecError(Exception):
    """Raised with every diagnostic found; the CLI prints them, never a traceback."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(d.text() for d in diagnostics))
        self.diagnostics = diagnostics


@dataclass
class Source:
    data: object
    values: dict[Path, Pos] = field(default_factory=dict)  # where each value is written
    keys: dict[Path, Pos] = field(default_factory=dict)  # where each mapping key is written

    def pos(self, path: Path, *, key: bool = False) -> Pos | None:
        """Position of the most specific node on `path` that exists (a key's own position if asked)."""
        path = tuple(path)
        while path:
            table = self.keys if key else self.values
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get(())

    def copy(self) -> "Source":
        """A deep copy: editing it (`sepspec.spec.edit`) leaves this one as it is."""
        import copy

        return Source(copy.deepcopy(self.data), dict(self.values), dict(self.keys))


# YAML 1.2 core schema, as regular expressions over the plain scalar text.
_INT = re.compile(r"^[-+]?[0-9]+$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = {"", "~", "null", "Null", "NULL"}


def _scalar(node):
    """A scalar event's value, resolved the YAML 1.2 way."""
    text = node.value
    if node.style:  # quoted or block scalar: always a string (plain: None from PyYAML's parser, '' from libyaml's)
        return text
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


class _Located(Exception):
    def __init__(self, line, column, code, rule, message, hint=None):
        super().__init__(message)
        self.args_ = (line, column, code, rule, message, hint)


# libyaml's parser when PyYAML has it (it almost always does): four times faster than the pure-Python one, which
# is most of what `check` spends on a spec
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _events(text: str):
    """The parser's events, never composed or constructed by PyYAML (no tag is ever resolved or run)."""
    loader = _Loader(text)
    try:
        while loader.check_event():
            yield loader.get_event()
    finally:
        loader.dispose()


def parse(text: str, file: str) -> Source:
    """Parse YAML text into a `Source`; raise `SpecError` with positioned diagnostics."""

    def fail(line, column, code, rule, message, hint=None):
        raise SpecError([Diagnostic(code, rule, message, file, line, column, hint=hint)])

    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        fail(1, 1, "SEP004", "size", f"file is larger than {MAX_BYTES} bytes")
    try:
        return _build(_events(text), file)
    except _Located as e:
        fail(*e.args_)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        if mark is not None and e.context_mark is not None and mark.line >= len(text.splitlines()):
            mark = e.context_mark  # libyaml marks an unclosed bracket past the end: report where it opens
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if "maximum nesting depth" in str(e.problem):  # libyaml's own limit (1,000), met while it looks ahead
            fail(line, col, "SEP004", "size", f"YAML nested more than {MAX_DEPTH} levels deep")
        problem = " ".join(str(x) for x in (e.context, e.problem) if x)
        fail(line, col, "SEP001", "yaml", f"invalid YAML: {problem}")
    except yaml.YAMLError as e:  # e.g. a reader error on a control character
        fail(1, 1, "SEP001", "yaml", f"invalid YAML: {str(e).splitlines()[0].strip()}")


class _Frame:
    """An open mapping or sequence while its events arrive."""

    __slots__ = ("value", "path", "anchor", "start", "key", "logs")

    def __init__(self, value, path, anchor, logs):
        self.value, self.path, self.anchor, self.key = value, path, anchor, None
        self.start = logs  # where its positions begin in the logs (for an anchor's copy)


def _build(events, file: str) -> Source:
    """Plain data and positions from the events, in one pass without recursion: a depth limit instead of a
    stack overflow, every explicit tag refused, aliases copied within a node budget, duplicate keys refused."""
    src = Source(data=None)
    budget, unique = [MAX_NODES], [0]
    log: list[tuple[str, Path, Pos]] = []  # every position in the order written ("v" value, "k" key)
    anchors: dict[str, tuple] = {}  # name -> (path, data, log slice, nodes, depth)
    stack: list[_Frame] = []
    documents = 0
    root_set = False

    def at(mark) -> Pos:
        return Pos(file, mark.line + 1, mark.column + 1)

    def located(mark, code, rule, message, hint=None):
        return _Located(mark.line + 1, mark.column + 1, code, rule, message, hint)

    def place(value, path):
        nonlocal root_set
        if not stack:
            src.data, root_set = value, True
        elif isinstance(stack[-1].value, list):
            stack[-1].value.append(value)
        else:
            stack[-1].value[path[-1]] = value
            stack[-1].key = None

    def next_path():
        if not stack:
            return ()
        top = stack[-1]
        return top.path + ((len(top.value),) if isinstance(top.value, list) else (top.key,))

    def count(n, mark, alias=False):
        budget[0] -= n
        if not alias:
            unique[0] += 1
        if budget[0] < 0:
            raise located(mark, "SEP004", "size",
                          f"YAML expands to more than {MAX_NODES} nodes (anchors and aliases included)",
                          "specs are small; use `defaults:` or `extends:` instead of deep aliases"
                          if unique[0] < MAX_NODES else
                          "specs are small; use `repeat:` for repeated layers and `defaults:` for shared arguments")

    def remember(anchor, path, value, first, mark):
        if anchor is None:
            return
        if anchor in anchors:
            raise located(mark, "SEP001", "yaml", f"invalid YAML: found duplicate anchor {anchor!r}")
        part = log[first:]
        depth = max((len(p) - len(path) for _, p, _ in part), default=0)
        anchors[anchor] = (path, value, part, len([e for e in part if e[0] == "v"]), depth)

    for ev in events:
        if isinstance(ev, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)):
            continue
        if isinstance(ev, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise located(ev.start_mark, "SEP001", "yaml",
                              "invalid YAML: expected a single document in the stream, but found another document")
            continue
        tag = getattr(ev, "tag", None)
        if tag is not None and not isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            raise located(ev.start_mark, "SEP002", "tag",
                          f"YAML tag {tag!r} is not allowed in a spec (tags are never run)",
                          "remove the tag; specs use plain YAML values only")
        if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = stack.pop()
            place(frame.value, frame.path)
            remember(frame.anchor, frame.path, frame.value, frame.start, ev.start_mark)
            continue
        top = stack[-1] if stack else None
        if top is not None and isinstance(top.value, dict) and top.key is None:  # a mapping key
            if not isinstance(ev, yaml.ScalarEvent):
                raise located(ev.start_mark, "SEP005", "yaml", "a mapping key must be a plain name")
            key = ev.value
            if key == "<<" and not ev.style:
                raise located(ev.start_mark, "SEP005", "yaml", "YAML merge keys ('<<') are not supported in specs",
                              "use `defaults:` or `extends:`")
            if key in top.value:
                first = src.keys[top.path + (key,)]
                raise located(ev.start_mark, "SEP003", "duplicate_key",
                              f"duplicate key {key!r} (first defined at line {first.line})")
            src.keys[top.path + (key,)] = pos = at(ev.start_mark)
            log.append(("k", top.path + (key,), pos))
            top.key = key
            top.value[key] = None  # holds the key's place (and its order) until the value arrives
            continue
        path = next_path()
        if len(path) > MAX_DEPTH:
            raise located(ev.start_mark, "SEP004", "size", f"YAML nested more than {MAX_DEPTH} levels deep")
        if isinstance(ev, yaml.AliasEvent):
            if ev.anchor not in anchors:
                raise located(ev.start_mark, "SEP001", "yaml", f"invalid YAML: found undefined alias {ev.anchor!r}")
            base, value, part, nodes, depth = anchors[ev.anchor]
            count(nodes, ev.start_mark, alias=True)
            if len(path) + depth > MAX_DEPTH:
                raise located(ev.start_mark, "SEP004", "size", f"YAML nested more than {MAX_DEPTH} levels deep")
            for kind, p, pos in part:
                q = path + p[len(base):]
                (src.values if kind == "v" else src.keys)[q] = pos
                log.append((kind, q, pos))
            place(copy.deepcopy(value), path)
            continue
        count(1, ev.start_mark)
        src.values[path] = pos = at(ev.start_mark)
        first = len(log)
        log.append(("v", path, pos))
        if isinstance(ev, yaml.ScalarEvent):
            value = _scalar(ev)
            place(value, path)
            remember(ev.anchor, path, value, first, ev.start_mark)
        else:
            stack.append(_Frame({} if isinstance(ev, yaml.MappingStartEvent) else [], path, ev.anchor, first))
    if not root_set:
        src.data = {}
        src.values[()] = Pos(file, 1, 1)
    return src


def nodes(data, path: Path = ()):
    """(path, value) of `data` and of everything inside it, depth first: the paths the position tables use."""
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from nodes(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from nodes(v, path + (i,))


def _pos_tuple(p: Pos) -> tuple[int, int]:
    return p.line, p.column


def read(path: str, display: str | None = None) -> Source:
    """Read and parse a file. OSError (missing, unreadable) propagates: the caller decides the exit code."""
    with open(path, "rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    name = display or path
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError([Diagnostic("SEP001", "yaml", f"file is not UTF-8 text (byte {e.start})",
                                    name)]) from None
    return parse(text, name)
