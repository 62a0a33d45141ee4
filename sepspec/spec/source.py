"""Safe YAML with source positions.

PyYAML composes the file into nodes (which carry line/column marks); we convert the nodes to plain
Python ourselves instead of letting a constructor do it. That buys four things at once:

* no constructor ever runs, and any explicit tag (``!!python/object``, ``!foo``, even ``!!str``) is an
  error, so a tag never runs code;
* scalars are resolved the YAML 1.2 way a person reads them: ``1e-3`` is a float, ``yes``/``off``
  stay strings, only ``true``/``false`` are booleans, ``1_000`` and ``1:20`` are not numbers;
* duplicate keys are errors instead of a silent last-one-wins;
* aliases are followed with a budget (`MAX_NODES`), so a 1 KB "billion laughs" file cannot expand
  into millions of nodes.

The result is the data plus two maps from a path (a tuple of keys and list indices) to a `Pos`:
where each value is written, and where each mapping key is written.
"""

from __future__ import annotations

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


def _scalar(node: yaml.ScalarNode):
    text = node.value
    if node.style is not None:  # quoted or block scalar: always a string
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


class _Loader(yaml.SafeLoader):
    """Composes nodes only; refuses explicit tags before they are resolved."""

    def _refuse_tag(self):
        ev = self.peek_event()
        tag = getattr(ev, "tag", None)
        if tag is not None:
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            m = ev.start_mark
            raise _Located(m.line + 1, m.column + 1, "SEP002", "tag",
                           f"YAML tag {tag!r} is not allowed in a spec (tags are never run)",
                           "remove the tag; specs use plain YAML values only")

    def compose_scalar_node(self, anchor):
        self._refuse_tag()
        return super().compose_scalar_node(anchor)

    def compose_sequence_node(self, anchor):
        self._refuse_tag()
        return super().compose_sequence_node(anchor)

    def compose_mapping_node(self, anchor):
        self._refuse_tag()
        return super().compose_mapping_node(anchor)


class _Located(Exception):
    def __init__(self, line, column, code, rule, message, hint=None):
        super().__init__(message)
        self.args_ = (line, column, code, rule, message, hint)


def parse(text: str, file: str) -> Source:
    """Parse YAML text into a `Source`; raise `SpecError` with positioned diagnostics."""

    def fail(line, column, code, rule, message, hint=None):
        raise SpecError([Diagnostic(code, rule, message, file, line, column, hint=hint)])

    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        fail(1, 1, "SEP004", "size", f"file is larger than {MAX_BYTES} bytes")
    loader = None
    try:
        try:
            loader = _Loader(text)
            root = loader.get_single_node()
        except _Located as e:
            fail(*e.args_)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = " ".join(str(x) for x in (e.context, e.problem) if x)
            fail(line, col, "SEP001", "yaml", f"invalid YAML: {problem}")
        except yaml.YAMLError as e:  # e.g. a reader error on a control character
            fail(1, 1, "SEP001", "yaml", f"invalid YAML: {str(e).splitlines()[0].strip()}")
        except RecursionError:  # PyYAML composes nested collections recursively
            fail(1, 1, "SEP004", "size", f"YAML nested too deeply to read (more than {MAX_DEPTH} levels)")
    finally:
        if loader is not None:
            loader.dispose()

    src = Source(data=None)
    budget = [MAX_NODES]
    seen: set[int] = set()  # nodes already converted: meeting one again means an alias

    def at(node) -> Pos:
        return Pos(file, node.start_mark.line + 1, node.start_mark.column + 1)

    def convert(node, path: Path):
        budget[0] -= 1
        if budget[0] < 0:
            fail(*_pos_tuple(at(node)), "SEP004", "size",
                 f"YAML expands to more than {MAX_NODES} nodes (anchors and aliases included)",
                 "specs are small; use `defaults:` or `extends:` instead of deep aliases" if len(seen) < MAX_NODES
                 else "specs are small; use `repeat:` for repeated layers and `defaults:` for shared arguments")
        if len(path) > MAX_DEPTH:
            fail(*_pos_tuple(at(node)), "SEP004", "size", f"YAML nested more than {MAX_DEPTH} levels deep")
        seen.add(id(node))
        src.values[path] = at(node)
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [convert(item, path + (i,)) for i, item in enumerate(node.value)]
        out: dict = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                fail(*_pos_tuple(at(knode)), "SEP005", "yaml", "a mapping key must be a plain name")
            key = knode.value
            if key == "<<" and knode.style is None:
                fail(*_pos_tuple(at(knode)), "SEP005", "yaml",
                     "YAML merge keys ('<<') are not supported in specs",
                     "use `defaults:` or `extends:`")
            if key in out:
                first = src.keys[path + (key,)]
                fail(*_pos_tuple(at(knode)), "SEP003", "duplicate_key",
                     f"duplicate key {key!r} (first defined at line {first.line})")
            src.keys[path + (key,)] = at(knode)
            out[key] = convert(vnode, path + (key,))
        return out

    src.data = {} if root is None else convert(root, ())
    if root is None:
        src.values[()] = Pos(file, 1, 1)
    return src


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
