"""Diagnostics: one record per mistake, rendered the way compilers and linters do.

Every stage (YAML, schema, rules) reports through `Diagnostic`, so the CLI, `tools/validate` and
`show --json` print the same records in text, JSON or GitHub-annotation form.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


class UserError(Exception):
    """A problem with what the user gave (options, files, data), told in one line; exit status 2.

    Every command line has one boundary (`sepspec.cli.main`) that prints these, `SpecError`'s diagnostics and
    OSErrors as one line each; anything else is a bug and keeps its traceback."""

    status = 2


def cause(e: BaseException) -> str:
    """An exception from a library as one line of a `UserError`: its class and its message's first line."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def dotted(path) -> str:
    """A path in the spec data as a person writes it: `layers[2].residual.body[0]` (`spec` for the root)."""
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s or "spec"


@dataclass(frozen=True)
class Pos:
    """A place in a source file: 1-based line and column."""

    file: str
    line: int
    column: int
    note: str = ""  # where else the value comes into play: a block's use, or the body line an argument fills


@dataclass(frozen=True)
class Diagnostic:
    code: str  # stable, e.g. SEP201
    rule: str  # short name of the rule or check, e.g. min_receptive_field
    message: str  # one line, with the numbers
    file: str
    line: int = 1
    column: int = 1
    layer: str | None = None  # the spec layer (or Keras layer) it concerns
    hint: str | None = None
    severity: str = "error"

    @classmethod
    def at(cls, pos: Pos | None, code: str, rule: str, message: str, *, file: str = "",
           layer: str | None = None, hint: str | None = None, severity: str = "error") -> "Diagnostic":
        if pos is None:
            return cls(code, rule, message, file, 1, 1, layer, hint, severity)
        if pos.note:
            message += f" ({pos.note})"
        return cls(code, rule, message, pos.file, pos.line, pos.column, layer, hint, severity)

    def text(self) -> str:
        s = f"{self.file}:{self.line}:{self.column}: {self.severity} {self.code}: {self.message}"
        if self.hint:
            s += f" (hint: {self.hint})"
        return s

    def github(self) -> str:
        def esc(v: str) -> str:  # GitHub's workflow-command escaping
            return v.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

        msg = f"{self.code} {self.message}" + (f" (hint: {self.hint})" if self.hint else "")
        f = esc(self.file).replace(":", "%3A").replace(",", "%2C")
        return f"::{self.severity} file={f},line={self.line},col={self.column}::{esc(msg)}"

    def as_dict(self) -> dict:
        return asdict(self)


def render(diags: list[Diagnostic], fmt: str) -> str:
    """All diagnostics in one of the formats `text`, `json`, `github` (no trailing newline)."""
    if fmt == "json":
        return json.dumps([d.as_dict() for d in diags], indent=2)
    if fmt == "github":
        return "\n".join(d.github() for d in diags)
    return "\n".join(d.text() for d in diags)


def ordered(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Deduplicated and in source order, as a compiler prints them."""
    return sorted(dedupe(diags), key=lambda d: (d.file, d.line, d.column, d.code))


def dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per place and code (a bad default used by several layers is one mistake)."""
    seen: set = set()
    out = []
    for d in diags:
        key = (d.file, d.line, d.column, d.code, d.message.split(": ", 1)[-1])  # without the path prefix
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


# Codes of the loading stages (the rules register theirs in `sepspec.rules.RULES`).
CODES: dict[str, tuple[str, str]] = {
    "SEP000": ("io", "a file cannot be opened or read (exit status 2)"),
    "SEP001": ("yaml", "not valid YAML (or not UTF-8 text)"),
    "SEP002": ("tag", "a YAML tag (`!!python/...`, `!foo`, any tag): refused, nothing is run"),
    "SEP003": ("duplicate_key", "the same key twice in one mapping"),
    "SEP004": ("size", "the file is over 1 MB, or its anchors/aliases expand to more than 20,000 nodes"),
    "SEP005": ("yaml", "YAML that specs do not use: merge keys (`<<`), complex keys"),
    "SEP101": ("schema", "an unknown key (with a did-you-mean suggestion)"),
    "SEP102": ("schema", "a value of the wrong type (`filters: true`, `bias: yes`, `epochs: 1.5`)"),
    "SEP103": ("schema", "a value out of range or not among the allowed names"),
    "SEP104": ("schema", "a required key is missing"),
    "SEP105": ("extends", "the spec named by `extends:` cannot be read"),
    "SEP106": ("extends", "`extends:` cycle"),
    "SEP108": ("schema", "a layer entry that is not a one-key mapping `kind: value` of a known kind"),
    "SEP109": ("blocks", "a block's body reads `$name`, which is not one of the block's arguments"),
    "SEP110": ("blocks", "a block uses itself (directly or through other blocks), or blocks expand to more "
                         "than 20,000 entries"),
}
