"""The second half of `sepspec import`: the imported entries -> a spec a person would write.

`importer` reads the Keras graph into a flat list of entries (`Entry`: a kind, its arguments, the Keras layers it
stands for, the Keras tensors it reads). Here that list becomes the YAML: fork-join regions that are residual blocks
nest as `residual` entries, identical consecutive entries fold into `repeat:`, names are kept where a person chose
them, an entry that does not read the previous one says `from:`, shared arguments move into `defaults:`, and an
entry left with its main argument alone is written short.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import yaml

from ..diagnostics import UserError
from ..spec.fields import NAME_RE
from ..spec.kinds import BLOCKS
from ..spec.load import Rules
from ..spec.source import nodes
from .layerread import keras_default_name

MERGES = ("add", "multiply", "concat")


class ImportError_(UserError):
    """A model that cannot be imported exactly, in one line."""


@dataclass
class Entry:
    kind: str
    args: dict
    last: str  # the Keras layer whose output is the entry's output
    own: str  # the Keras layer whose name the entry carries (its first)
    srcs: list  # the Keras layers whose outputs it reads
    parts: list  # (Keras layer, suffix): the layers it compiles to are <spec name><suffix>
    keras_class: str = ""  # of `own`, to tell Keras's default names from chosen ones
    body: list = field(default_factory=list)  # a residual's
    shortcut: list | None = None  # a residual's written shortcut (None: identity)
    branches: list = field(default_factory=list)  # a parallel block's: lists of entries ([]: the identity)
    named: bool = True  # False: its Keras name is not kept (`import --no-names`)
    groups: list = field(default_factory=list)  # a `split: channels` parallel block's channel groups (entries)


# ------------------------------------------------------------------------------------------ residual blocks
def residuals(entries: list[Entry]) -> list[Entry]:
    """Each Add of a block's input and a chain of entries from it (or of two chains from one input, the shorter the
    shortcut), optionally followed by an Activation only it feeds, as one `residual` entry, innermost first. A chain
    is consecutive entries, each reading only the one before, whose outputs nothing else reads."""
    readers = _readers(entries)
    out: list[Entry] = []
    for e in entries:
        prev = out[-1] if out else None
        if (prev is not None and prev.kind in ("residual", "parallel") and e.kind == "activation"
                and e.srcs == [prev.last] and readers.get(prev.last, 0) == 1 and "activation" not in prev.args):
            prev.args["activation"] = e.args["function"]  # the activation after a block's merge is the block's
            prev.parts.append((e.own, f"_{e.args['function']}"))
            prev.last = e.last
            continue
        out.append(e)
        made = None
        if e.kind == "add" and len(e.srcs) == 2:
            made = _residual(out, readers)
        if made is None and e.kind in MERGES and len(e.srcs) >= 2:
            made = _parallel(out, readers)
        if made is not None:  # the region's reads become the block's one read of its input
            for gone in out[made[0]:]:
                for src in gone.srcs:
                    readers[src] -= 1
            readers[made[1].srcs[0]] = readers.get(made[1].srcs[0], 0) + 1
            out[made[0]:] = [made[1]]
    return out


def _readers(entries: list[Entry]) -> dict[str, int]:
    """How many entries read each Keras layer's output."""
    out: dict[str, int] = {}
    for e in entries:
        for s in e.srcs:
            out[s] = out.get(s, 0) + 1
    return out


def _block_name(out: list[Entry], chains: list, inner) -> str | None:
    """The name of the block that the merge at the end of `out` closes: `<block>` where the merge is named
    `<block>_<merge>`, "" where Keras named it; None where a name a person chose would be lost: the merge's, or a
    chain entry's that does not start with `inner(block, i)` (chain i's prefix in the block, from 1)."""
    merge = out[-1]
    suffix = f"_{merge.kind}"
    name = merge.own[:-len(suffix)] if merge.named and merge.own.endswith(suffix) else ""
    if not name and _kept(merge, "") is not None:
        return None
    if not name and merge.named:  # a merge nobody named (ConvNeXt's `inputs + x`): the block its chains name
        name = _common_block(out, chains, inner, suffix)
    for i, chain in enumerate(chains, 1):  # (a block entry's kept name is its own, not its merge layer's)
        if any(kept is not None and not (name and kept.startswith(inner(name, i)))
               for kept in (_kept(out[k], "") for k in chain)):
            return None
    return name


def _common_block(out: list[Entry], chains: list, inner, suffix: str) -> str:
    """The longest `<block>` such that every kept name in chain i is `inner(block, i)` + a valid entry name (the
    layers of `convnext_tiny_stage_0_block_0` are `..._depthwise_conv`, `..._layernorm`, ...), where no layer is
    already named `<block><suffix>`, the merge's name in the block; else ""."""
    kept = [(i, own) for i, chain in enumerate(chains, 1) for k in chain if (own := _kept(out[k], "")) is not None]
    if not kept:
        return ""
    first = kept[0][1]
    for cut in range(len(first) - 1, 0, -1):
        block = first[:cut]
        if first[cut] != "_" or not re.match(NAME_RE, block) or any(e.own == block + suffix for e in out):
            continue
        if all(own.startswith(inner(block, i)) and re.match(NAME_RE, own[len(inner(block, i)):]) for i, own in kept):
            return block
    return ""


def _chains(out: list[Entry], readers) -> tuple[list, str] | None:
    """For the merge at the end of `out`: each input followed back while only one entry reads it (a chain of entry
    indices; none for an input that is the fork itself), and the fork where they all stop; None if they do not
    all stop at one fork. Entries that stand between the chains' first and the merge without reading any of them
    (Keras lists the layers of parallel branches interleaved) are moved in front of them, in `out`."""
    merge, j = out[-1], len(out) - 1
    pos = {e.last: i for i, e in enumerate(out[:-1])}
    chains, forks = [], set()
    for x in merge.srcs:
        idx = []
        while x in pos and readers.get(x, 0) == 1:
            e = out[pos[x]]
            if e.kind in MERGES or len(e.srcs) != 1:
                return None
            idx.append(pos[x])
            x = e.srcs[0]
        chains.append(idx[::-1])
        forks.add(x)
    taken = sorted(i for c in chains for i in c)
    if len(forks) != 1:
        return None
    if taken != list(range(taken[0] if taken else j, j)):
        region = {out[i].last for i in taken}
        others = [i for i in range(taken[0], j) if i not in taken]
        if any(set(out[i].srcs) & region for i in others):
            return None
        out[taken[0]:j] = [out[i] for i in others] + [out[i] for i in taken]
        return _chains(out, readers)
    return chains, forks.pop()


def _parallel(out: list[Entry], readers) -> tuple[int, Entry] | None:
    """(where the region starts, the parallel block) for a merge whose inputs are chains from one fork (`split:
    copy`; an input that is the fork itself an empty branch), or chains that each start with a channel group of
    the fork, in order and covering its channels (`split: channels`), when no chosen name is lost: the merge is
    named `<block>_<merge>` (or as Keras names it), branch i's layers `<block>_b<i>_...`, its group
    `<block>_split_<i>`."""
    found = _chains(out, readers)
    if found is None:
        return None
    chains, fork = found
    merge = out[-1]
    groups = [out[c[0]] for c in chains if c and out[c[0]].kind == "channels"]
    if groups and (len(groups) != len(chains) or [g.args["start"] for g in groups] !=
                   [0, *(g.args["stop"] for g in groups[:-1])]):
        return None
    if groups:
        chains = [c[1:] for c in chains]
    name = _block_name(out, chains, lambda block, i: f"{block}_b{i}_")
    if name is None or any(_kept(g, "") not in (None, f"{name}_split_{i}") for i, g in enumerate(groups, 1)):
        return None
    start = min((i for c in found[0] for i in c), default=len(out) - 1)  # all empty: the merge alone
    args = {"merge": merge.kind, **({"name": name} if name else {})}
    if groups:
        sizes = [g.args["stop"] - g.args["start"] for g in groups]
        args.update({"split": "channels", **({"sizes": sizes} if len(set(sizes)) > 1 else {})})
    return start, Entry("parallel", args, merge.last, merge.own, [fork],
                        [(merge.own, f"_{merge.kind}"), *((g.own, f"_split_{i}") for i, g in enumerate(groups, 1))],
                        merge.keras_class, branches=[[out[i] for i in c] for c in chains], groups=groups)


def _residual(out: list[Entry], readers) -> tuple[int, Entry] | None:
    """(where the region starts, the residual) for the Add at the end of `out`, or None: its two inputs are chains
    from one fork (`_chains`; an input that is the fork itself is the identity shortcut, the shorter chain else)."""
    found = _chains(out, readers)
    if found is None:
        return None
    (a, b), fork = found
    if any(out[i].kind == "channels" for i in a + b):  # channel groups: a parallel block's
        return None
    add = out[-1]
    name = _block_name(out, [a, b], lambda block, i: f"{block}_")
    if name is None:
        return None

    def written_shortcut(chain):  # named as a residual names its shortcut's layers
        return bool(name) and any(out[i].named and out[i].own.startswith(f"{name}_shortcut_") for i in chain)

    body, shortcut = (a, b) if len(a) >= len(b) else (b, a)  # the body the longer: Keras adds it first
    if written_shortcut(body) != written_shortcut(shortcut):
        body, shortcut = (shortcut, body) if written_shortcut(body) else (body, shortcut)
    if not body:  # the input added to itself: a parallel block of two empty branches
        return None
    return min(a + b), Entry("residual", {"name": name} if name else {}, add.last, add.own, [fork],
                             [(add.own, "_add")], "Add", [out[i] for i in body],
                             [out[i] for i in shortcut] if shortcut else None)


# ------------------------------------------------------------------------------------------------- naming
def _kept(e: Entry, prefix: str) -> str | None:
    """The name an entry keeps: a block's is the prefix of its layers' (`se`, `shuffle`, `residual`), a layer's its
    own; not one that is not a valid spec name, nor the name Keras gives a layer nobody named (`conv2d_3`). Inside a
    block, the block's prefix comes off (the spec adds it back)."""
    kept = e.args.get("name") if e.kind in ("se", "shuffle", "mbconv", "residual", "parallel") else e.own
    if not kept or not e.named or keras_default_name(kept, e.keras_class):
        return None
    if prefix:
        if not kept.startswith(prefix):
            return None
        kept = kept[len(prefix):]
    if not re.match(NAME_RE, kept):
        return None
    return kept


def _form(e: Entry):
    """What the copies of a run share: the kind, the arguments but the name, and the same of every nested entry."""
    return (e.kind, repr({k: v for k, v in e.args.items() if k != "name"}), [_form(x) for x in e.body],
            None if e.shortcut is None else [_form(x) for x in e.shortcut], [[_form(x) for x in b] for b in e.branches])


def _nested(e: Entry):
    for x in [*e.body, *(e.shortcut or []), *(x for b in e.branches for x in b)]:
        yield x
        yield from _nested(x)


def _copied_names(head: Entry, e: Entry, head_name: str, copy: str) -> bool:
    """Do the layers inside block `e` keep their names as a `repeat` copy named `copy` of `head`: none kept, or
    each the head's with the copy's name for the head's (a spec's compiled `repeat`)?"""
    for a, b in zip((_kept(x, "") for x in _nested(head)), (_kept(x, "") for x in _nested(e))):
        if (a is None) != (b is None) or (a is not None and not (
                a.startswith(f"{head_name}_") and b == copy + a[len(head_name):])):
            return False
    return True


def _runs(entries: list[Entry], keep: list) -> list[int]:
    """For each entry, how many copies of it the run it starts holds (0: a later copy, folded into the run before):
    identical consecutive entries (blocks with identical insides, none of them with a kept name), each reading the
    one before, fold into `repeat:` where no kept name is lost: a copy has none, or the one `repeat` gives it
    (`<head>_<r>`, a spec's compiled `repeat`)."""
    readers = _readers(entries)
    out = [1] * len(entries)
    counts: dict[str, int] = {}
    head, head_name = 0, None
    for i, e in enumerate(entries):
        h = entries[head]
        # the head's output must have no other reader: a later reference to the run's name means its last copy
        copy = f"{head_name}_{out[head] + 1}"  # the name `repeat` gives this copy
        if (i > 0 and _form(e) == _form(h) and _copied_names(h, e, head_name, copy)
                and e.kind not in MERGES and e.srcs == [entries[i - 1].last]
                and keep[i] in (None, copy) and out[head] < 100
                and (i - 1 != head or readers.get(h.last, 0) == 1)):
            out[head] += 1
            out[i] = 0
        else:
            head = i
            counts[e.kind] = counts.get(e.kind, 0) + 1
            head_name = keep[i] or f"{e.kind}_{counts[e.kind]}"
    return out


class _Writer:
    def __init__(self, out_of: dict, names: dict):
        self.out_of, self.names = out_of, names
        self.name_of: dict[str, str] = {"input": "input"}  # Keras name of an entry's first layer -> its spec name

    def ref(self, keras_name: str) -> str:
        own = self.out_of.get(keras_name, keras_name)
        if own not in self.name_of:
            raise ImportError_(f"{keras_name}: read before any entry writes it")
        return self.name_of[own]

    def entries(self, entries: list[Entry], prefix: str, prev: str) -> list[dict]:
        """The spec entries of one list, its layers named `prefix` + name; `prev`: the list's input's spec name."""
        counts: dict[str, int] = {}
        out: list[dict] = []
        keep = [_kept(e, prefix) for e in entries]
        runs = _runs(entries, keep)
        copy_of, base = 0, ""
        for e, kept, run in zip(entries, keep, runs):
            if run == 0:  # copy r of the run before: named <name>_<r>, as `repeat` names it
                copy_of += 1
                inner = f"{prefix}{base}_{copy_of}_"  # a block's layers: as the copy names them
                if e.kind == "residual":
                    self._residual(e, inner, prev)
                self._groups_read_as(e, prev)
                for i, branch in enumerate(e.branches, 1):
                    self.entries(branch, f"{inner}b{i}_", prev)
                self.name_of[e.own] = prev = f"{base}_{copy_of}"
                self.out_of[e.last] = e.own
                self.names.update({orig: f"{prefix}{base}_{copy_of}{sfx}" for orig, sfx in e.parts})
                continue
            counts[e.kind] = counts.get(e.kind, 0) + 1
            generated = f"{e.kind}_{counts[e.kind]}"
            name = kept if kept != generated else None
            spec_name = name or generated
            copy_of, base = 1, spec_name
            refs = [self.ref(s) for s in e.srcs]
            body = {k: v for k, v in e.args.items() if k != "name"}
            if e.kind == "residual":
                body = self._residual(e, prefix + spec_name + "_", refs[0])
            elif e.kind == "channels":
                raise ImportError_(f"{e.own} (Cropping2D of the channels): a channel group that is not one of a "
                                   f"`parallel` block's `split: channels`")
            elif e.kind == "parallel":
                self._groups_read_as(e, refs[0])
                body = {"branches": [self.entries(b, f"{prefix}{spec_name}_b{i}_", refs[0])
                                     for i, b in enumerate(e.branches, 1)]}
                for key in ("split", "sizes"):
                    if key in e.args:
                        body[key] = e.args[key]
                if e.args["merge"] != "concat":
                    body["merge"] = e.args["merge"]
                if "activation" in e.args:
                    body["activation"] = e.args["activation"]
            if e.kind in MERGES:
                body = {"inputs": refs, "name": name} if name else refs
            else:
                if refs != [prev]:
                    body["from"] = refs[0]
                if run > 1:
                    body["repeat"] = run
                if name:
                    body["name"] = name
            self.name_of[e.own] = spec_name
            self.out_of[e.last] = e.own  # a residual's output is its add's or its activation's
            self.names.update({orig: prefix + spec_name + sfx for orig, sfx in e.parts})
            out.append({e.kind: body})
            prev = spec_name
        return out

    def _groups_read_as(self, e: Entry, fork: str) -> None:
        """A `split: channels` block's branch reads its channel group as its input: the group's name is the fork's."""
        for g in e.groups:
            self.name_of[g.own], self.out_of[g.last] = fork, g.own

    def _residual(self, e: Entry, prefix: str, fork: str) -> dict:
        body: dict = {"body": self.entries(e.body, prefix, fork)}
        if e.shortcut is not None:
            body["shortcut"] = self.entries(e.shortcut, prefix + "shortcut_", fork)
        if "activation" in e.args:
            body["activation"] = e.args["activation"]
        return body


def document(entries: list[Entry], out_of: dict, names: dict, *, name: str, source: str, shape, classes: int,
             params: int = 0, train: dict | None = None, notes: list[str] = (), rules: dict | None = None) -> str:
    """The YAML text of the spec; `names` gets each Keras layer's name -> the layer the spec compiles it to. A
    model of more `params` than a spec may have by default says so in its `rules: max_params` (ConvNeXtLarge).
    `train`: its `train:` section (`recipe`); `notes`: what of the model's training it does not keep, each a
    comment at the top; `rules`: rules the network needs (`classifier_head: false`)."""
    layers = _Writer(out_of, names).entries(residuals(entries), "", "input")
    defaults = _defaults(layers)
    layers, blocks, renamed = own_blocks(layers)
    names.update({k: rename(v, renamed) for k, v in names.items()})
    layers = [_short(e) for e in layers]
    doc = {"name": re.sub(r"[^A-Za-z0-9_.\-]", "_", name)[:64] or "imported",
           "description": f"imported by sepspec from {source or name}",
           "input": list(shape), "classes": classes, **({"defaults": defaults} if defaults else {})}
    rules = dict(rules or {})
    if params > Rules.model_fields["max_params"].default:
        rules["max_params"] = params
    if rules:
        doc["rules"] = rules
    if not re.match(NAME_RE, doc["name"]):
        doc["name"] = "imported"
    head = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120)
    own = "".join(f"  {kind}:\n    args: {_flow(b['args'])}\n    body:\n{_yaml_list(b['body'], 6)}"
                  for kind, b in blocks.items())
    said = "".join(f"# not kept from its training: {note}\n" for note in notes)
    recipe = yaml.safe_dump({"train": train}, sort_keys=False, default_flow_style=None, width=120) if train else ""
    return (f"# imported from {source or name} by sepspec import\n{said}{head}" + (f"blocks:\n{own}" if blocks else "")
            + f"layers:\n{_yaml_list(layers, 2)}{recipe}")


# ------------------------------------------------------------------------------------------ blocks of your own
def _skeleton(v, top: bool = True):
    """The entry with every int written as '#' (and without its own name, `from` and `repeat`): entries of one
    skeleton differ only in numbers; the names inside are part of it."""
    if isinstance(v, dict):
        return {k: _skeleton(x, False) for k, x in v.items() if not (top and k in ("name", "from", "repeat"))}
    if isinstance(v, list):
        return [_skeleton(x, False) for x in v]
    return "#" if type(v) is int else v


def _ints(v):
    """(path, value) of every int in an entry (not its name, from or repeat)."""
    return [(p, x) for p, x in nodes(v) if type(x) is int and not {"name", "from", "repeat"} & set(p)]


def _set(v, path, value):
    for p in path[:-1]:
        v = v[p]
    v[path[-1]] = value


def _lines(e: dict) -> int:
    return _yaml_list([e], 0).count("\n")


def _spec_names(entries: list[dict], prefix: str = "") -> list[str]:
    """The names a list of entries gives its entries: `name:`, else `<kind>_<n>`."""
    counts: dict[str, int] = {}
    out = []
    for e in entries:
        kind, args = next(iter(e.items()))
        counts[kind] = counts.get(kind, 0) + 1
        own = args.get("name") if isinstance(args, dict) and args.get("name") else f"{kind}_{counts[kind]}"
        out.append(prefix + own)
    return out


def _flatten_residual(r: dict) -> list[dict]:
    """A residual's layers as a block's body, named as the residual names them: the body's entries, the shortcut's
    (`shortcut_<entry>`, the first reading the block's input), the add, the activation."""
    out = copy.deepcopy(r["body"])
    last, short = _spec_names(out)[-1], "input"
    if isinstance(r.get("shortcut"), list):
        shortcut = copy.deepcopy(r["shortcut"])
        named = _spec_names(shortcut, "shortcut_")
        for i, (e, n) in enumerate(zip(shortcut, named)):
            kind, args = next(iter(e.items()))
            args = dict(args) if isinstance(args, dict) else {BLOCKS[kind].main: args}
            out.append({kind: {**args, "name": n, **({"from": "input"} if i == 0 else {})}})
        short = named[-1]
    out.append({"add": {"inputs": [last, short], "name": "add"}})
    if r.get("activation"):
        out.append({"activation": {"function": r["activation"], "name": r["activation"]}})
    return out


def own_blocks(layers: list[dict]) -> tuple[list[dict], dict, dict]:
    """Residual entries that differ only in numbers (widths, strides), three lines or more saved: one block of
    your own whose arguments are the numbers that vary (one argument per pattern of values across its uses), each
    entry a use of it; and {old name: new name} of the entries whose generated names this changes (a use is named
    `<block>_<n>`, and the residuals left count anew). A named residual's layers keep their names: the block's
    body is the residual's layers, named as the residual names them."""
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(layers):
        kind, args = next(iter(e.items()))
        if kind == "residual" and isinstance(args.get("body"), list):
            groups.setdefault(repr(_skeleton(args)), []).append(i)
    blocks: dict[str, dict] = {}
    out = list(layers)
    for members in groups.values():
        if len(members) < 2:
            continue
        entries = [next(iter(layers[i].values())) for i in members]
        values: dict[tuple, list] = {}
        for args in entries:
            for path, v in _ints(args):
                values.setdefault(path, []).append(v)
        varying = {path: vs for path, vs in values.items() if len(set(vs)) > 1 and len(vs) == len(entries)}
        params: dict[tuple, str] = {}  # a pattern of values across the uses -> its argument
        arg_of: dict[tuple, str] = {}
        for path, vs in varying.items():
            key = tuple(vs)
            if key not in params:
                word = next((p for p in reversed(path) if isinstance(p, str)), "value")
                taken = set(params.values())
                params[key] = word if word not in taken else next(f"{word}_{n}" for n in range(2, 99)
                                                                  if f"{word}_{n}" not in taken)
            arg_of[path] = params[key]
        template = copy.deepcopy(entries[0])
        for path, arg in arg_of.items():
            _set(template, path, f"${arg}")
        body = [_short(e) for e in _flatten_residual(template)]
        kind = f"residual_{chr(ord('a') + len(blocks))}" if len(blocks) < 26 else f"residual_{len(blocks)}"
        use_lines = sum(_lines(layers[i]) for i in members)
        block_lines = 3 + _yaml_list(body, 0).count("\n")
        if use_lines - len(members) - block_lines < 3:
            continue
        blocks[kind] = {"args": {arg: None for arg in params.values()}, "body": body}
        for n, (i, args) in enumerate(zip(members, entries)):
            use = {arg: vs[n] for vs, arg in params.items()}
            use.update({k: args[k] for k in ("from", "repeat", "name") if k in args})
            out[i] = {kind: use}
    renamed = {a: b for a, b in zip(_spec_names(layers), _spec_names(out)) if a != b}
    return _renamed_refs(out, renamed), blocks, renamed


def _owner(name: str, renamed: dict) -> str | None:
    """The renamed entry a spec name belongs to: itself, a `repeat` copy of it or one of its layers."""
    return next((old for old in sorted(renamed, key=len, reverse=True) if name == old or name.startswith(f"{old}_")),
                None)


def rename(name: str, renamed: dict) -> str:
    old = _owner(name, renamed)
    return name if old is None else renamed[old] + name[len(old):]


def _renamed_refs(v, renamed: dict):
    """The entries with every reference (`from:`, a merge's inputs) to a renamed entry renamed."""
    if not renamed:
        return v
    if isinstance(v, dict):
        return {k: (rename(x, renamed) if k == "from" and isinstance(x, str) else
                    [rename(n, renamed) if isinstance(n, str) else n for n in x] if k == "inputs" or
                    (k in MERGES and isinstance(x, list)) else _renamed_refs(x, renamed)) for k, x in v.items()}
    if isinstance(v, list):
        return [_renamed_refs(x, renamed) for x in v]
    return v


def _flow(v) -> str:
    text = yaml.safe_dump(v, default_flow_style=True, sort_keys=False, width=10**6)
    return text.strip().removesuffix("\n...").strip()


def _yaml_list(entries: list[dict], indent: int) -> str:
    """One entry per line; a residual as a mapping over lines with its body and shortcut as nested lists."""
    pad, out = " " * indent, []
    for e in entries:
        kind, value = next(iter(e.items()))
        if kind not in ("residual", "parallel"):
            out.append(f"{pad}- {kind}: {_flow(value)}\n")
            continue
        out.append(f"{pad}- {kind}:\n")
        for key, v in value.items():
            if key in ("body", "shortcut") and isinstance(v, list):
                out.append(f"{pad}    {key}:\n{_yaml_list(v, indent + 6)}")
            elif key == "branches":  # a branch a line, an empty one the identity
                out.append(f"{pad}    branches:\n" + "".join(f"{pad}      - {_flow(b)}\n" for b in v))
            else:
                out.append(f"{pad}    {key}: {_flow(v)}\n")
    return "".join(out)


# ------------------------------------------------------------------------------------ defaults and shorthand
TAIL_KEYS = ("bias", "dropout", "norm", "bn_momentum", "bn_epsilon", "bn_scale", "bn_center", "activation", "padding")


def _default_of(kind: str, key: str):
    """A kind's default for `key` as a spec writes it (`kernel: 3`, `kernel_init: glorot_uniform`)."""
    d = BLOCKS[kind].model_fields[key].default
    d = getattr(d, "root", d)  # a value type of its own (KernelInit): what it holds
    return d[0] if isinstance(d, list) and len(set(d)) == 1 else d


def _every(entries: list[dict]):
    """Every entry's (kind, arguments), inside residual bodies and shortcuts too."""
    for e in entries:
        kind, args = next(iter(e.items()))
        yield kind, args
        if kind == "residual":
            for key in ("body", "shortcut"):
                if isinstance(args.get(key), list):
                    yield from _every(args[key])
        elif kind == "parallel":
            for branch in args["branches"]:
                yield from _every(branch)


def _defaults(entries: list[dict]) -> dict:
    """Arguments most entries of a kind share (any but its main one, the tail's first), moved into
    `defaults.<kind>` (in place): a value held by at least
    two thirds of three or more entries of the kind; the others then say their own value, the kind's default
    included. Arguments equal to the kind's default are dropped first."""
    by_kind: dict[str, list[dict]] = {}
    for kind, args in _every(entries):
        if isinstance(args, dict) and kind not in ("residual", "parallel"):
            for k in [k for k, v in args.items() if k in BLOCKS[kind].model_fields and v == _default_of(kind, k)]:
                del args[k]
            by_kind.setdefault(kind, []).append(args)
    out: dict = {}
    for kind, group in by_kind.items():
        if len(group) < 3:
            continue
        block = BLOCKS[kind]
        for key in [*TAIL_KEYS, *(k for k in block.model_fields if k not in TAIL_KEYS)]:
            if key not in block.model_fields or key in (block.main, "source", *block.not_defaults):
                continue
            values = [a.get(key, _default_of(kind, key)) for a in group]
            best = max(set(map(repr, values)), key=lambda r: sum(repr(v) == r for v in values))
            value = next(v for v in values if repr(v) == best)
            if value == _default_of(kind, key) or sum(repr(v) == best for v in values) * 3 < 2 * len(group):
                continue
            out.setdefault(kind, {})[key] = value
            for a in group:
                unnormed = key.startswith("bn_") and "norm" in block.model_fields and \
                    a.get("norm", out[kind].get("norm", _default_of(kind, "norm"))) == "none"
                if a.get(key, _default_of(kind, key)) == value or unnormed:  # a norm it has not: no need to say
                    a.pop(key, None)
                else:
                    a[key] = a.get(key, _default_of(kind, key))
    return out


def _short(e: dict) -> dict:
    """`kind: value` where only the main argument is left (inside residuals too)."""
    kind, args = next(iter(e.items()))
    if kind == "residual":
        for key in ("body", "shortcut"):
            if isinstance(args.get(key), list):
                args[key] = [_short(x) for x in args[key]]
        return e
    if kind == "parallel":
        args["branches"] = [[_short(x) for x in b] for b in args["branches"]]
        return e
    if kind not in BLOCKS:  # a use of a block of your own
        return e
    main = BLOCKS[kind].main
    if isinstance(args, dict) and main and list(args) == [main]:
        return {kind: args[main]}
    return e
