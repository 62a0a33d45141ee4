"""The one way to change a spec before it is validated: `train --set`, a sweep's sampled values and width scaling
all go through here.

Every function returns a new `Source` and leaves the one it is given as it was. Positions stay with the values
they describe; a value an edit writes is reported where the edit was asked for (`--set train.epochs`, a sweep
file's line), so an error in an edited spec still points at something the user wrote.
"""

from __future__ import annotations

import re

from ..diagnostics import Pos, UserError, dotted
from .blocks import definitions
from .kinds import BLOCKS, nested_lists, shorthand
from .load import normalised
from .source import Source, SpecError, parse

_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def parse_path(text: str) -> tuple | None:
    """'layers[2].residual.body[0].sepconv.kernel' -> ('layers', 2, 'residual', 'body', 0, 'sepconv', 'kernel');
    None for text that is not a path."""
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


def with_value(src: Source, path: tuple, value, where: Pos | None = None) -> Source:
    """A copy with `value` at `path`: mappings are created on the way and a shorthand entry (`sepconv: 32`)
    becomes its mapping. `where`, if given, is where the new value is reported (what was written beneath
    `path` before is forgotten). Raises KeyError/IndexError for a path that cannot exist (an index past the
    end of a list, a key under a value)."""
    out = src.copy()
    node = out.data
    own = definitions(out.data)  # the kinds of your own, whose first argument is their main one
    for i, key in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                n = len(node) if isinstance(node, list) else 0
                raise IndexError(f"{dotted(path[:i + 1])}: there are {n} entries")
            child = node[key]
        else:
            if not isinstance(node, dict):
                raise KeyError(f"{dotted(path[:i])} is not a mapping")
            child = node.get(key)
            if key in BLOCKS and not isinstance(child, dict):
                child = shorthand(key, child)
                node[key] = child = dict(child) if isinstance(child, dict) else child
            elif key in own and not isinstance(child, dict) and isinstance(nxt, str):  # a use's shorthand
                args = own[key].get("args") or {}
                node[key] = child = {} if child is None else ({next(iter(args)): child} if args else child)
            elif key in own and isinstance(child, dict) and "body" in child and nxt != "body":
                node[key] = child = {k: v for k, v in child.items() if k != "body"}  # expanded: expand it again
            if child is None:
                child = node[key] = [] if isinstance(nxt, int) else {}
        if isinstance(nxt, str) and not isinstance(child, dict):
            raise KeyError(f"{dotted(path[:i + 1])} is not a mapping")
        node = child
    last = path[-1]
    if isinstance(last, int) and (not isinstance(node, list) or last >= len(node)):
        raise IndexError(f"{dotted(path)}: no such entry")
    node[last] = value
    if where is not None:
        for table in (out.values, out.keys):
            for p in [p for p in table if p[:len(path)] == path]:
                del table[p]
        out.values[path] = out.keys[path] = where
    return out


def with_overrides(src: Source, items: list[str]) -> Source:
    """`train --set train.KEY=VALUE ...`: each VALUE read as YAML, as safely as a spec, and reported at its
    `--set`. Only the `train:` section may be changed this way (the network is the file's)."""
    for item in items:
        key, eq, text = item.partition("=")
        path = parse_path(key) if eq else None
        if path is None or path[0] != "train" or len(path) < 2:
            raise UserError(f"--set {item!r}: expected train.KEY=VALUE (e.g. train.optimizer.learning_rate=0.02)")
        where = Pos(f"--set {key}", 1, 1)
        try:
            src = with_value(src, path, parse(text, where.file).data, where)
        except (KeyError, IndexError) as e:
            raise UserError(f"--set {item!r}: {str(e).strip(chr(39))}") from None
        except SpecError as e:
            raise UserError(f"--set {item!r}: {e.diagnostics[0].message}") from None
    return src


def scaled(f: int, m: float) -> int:
    """A width times m, in multiples of 4 (as vector units like them), at least 4."""
    return max(4, int(round(f * m / 4)) * 4)


def with_width(src: Source, m: float, keep: tuple | None = None) -> Source:
    """A copy with every `filters` times m (`scaled`), except the entry at path `keep` (the classifier's, whose
    width is the number of classes). Shorthands, `defaults` and blocks are written out first, so every width
    counts (a use's body is scaled, its arguments stay as written)."""
    out = normalised(src)

    def walk(entries, path):
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if not (isinstance(entry, dict) and len(entry) == 1):
                continue
            kind, args = next(iter(entry.items()))
            if not isinstance(args, dict):
                continue
            here = path + (i,)
            f = args.get("filters")
            if kind in BLOCKS and here != keep and isinstance(f, int) and not isinstance(f, bool):
                entry[kind] = args = {**args, "filters": scaled(f, m)}
            sizes = args.get("sizes")
            if kind == "parallel" and isinstance(sizes, list) and all(type(v) is int for v in sizes):
                entry[kind] = args = {**args, "sizes": [scaled(v, m) for v in sizes]}
            for where, entries in nested_lists(args):
                walk(entries, here + (kind, *where))

    walk(out.data.get("layers") if isinstance(out.data, dict) else None, ("layers",))
    return out
