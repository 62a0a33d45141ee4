"""`tools/validate`: the CI entry point. Checks every spec under specs/, or only those changed since a
git revision together with the specs that extend them (directly or through other specs)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from .spec_commands import check_files
from .status import OK as EXIT_OK, USAGE as EXIT_USAGE
from ..spec.source import SpecError, read

SPEC_DIR = "specs"


def all_specs(root: str = SPEC_DIR) -> list[str]:
    out = []
    for d, _, files in os.walk(root):
        out.extend(os.path.join(d, f) for f in files if f.endswith((".yaml", ".yml")))
    return sorted(out)


def _parent(path: str) -> str | None:
    """The file a spec extends (None when it extends nothing or does not parse)."""
    try:
        data = read(path).data
    except (OSError, SpecError):
        return None
    ref = data.get("extends") if isinstance(data, dict) else None
    return os.path.normpath(os.path.join(os.path.dirname(path), ref)) if isinstance(ref, str) else None


def with_dependents(changed: set[str], specs: list[str]) -> list[str]:
    """`changed` plus every spec whose `extends` chain reaches one of them."""
    parent = {s: _parent(s) for s in specs}
    out = set(changed)
    grew = True
    while grew:
        grew = False
        for s, p in parent.items():
            if s not in out and p in out:
                out.add(s)
                grew = True
    return sorted(p for p in out if os.path.exists(p))


def changed_since(base: str) -> set[str]:
    """Spec files that differ from `base` in the working tree, untracked ones included."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.split("\n")

    names = git("diff", "--name-only", "--relative", base, "--", SPEC_DIR)
    names += git("ls-files", "--others", "--exclude-standard", "--", SPEC_DIR)
    return {os.path.normpath(n) for n in names if n.endswith((".yaml", ".yml"))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/validate", description="Validate sepspec specs (exit 0 valid, "
                                "1 invalid, 2 unreadable/usage).")
    p.add_argument("paths", nargs="*", metavar="PATH", help="spec files (default: every spec under specs/)")
    p.add_argument("--changed", nargs="?", const="HEAD", metavar="BASE",
                   help="only specs changed since the git revision BASE (default HEAD), and their dependents")
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    a = p.parse_args(argv)
    if a.changed is not None:
        try:
            changed = changed_since(a.changed)
        except (OSError, subprocess.CalledProcessError) as e:
            msg = getattr(e, "stderr", "") or str(e)
            print(f"tools/validate: cannot ask git for changes since {a.changed!r}: {msg.strip()}", file=sys.stderr)
            return EXIT_USAGE
        paths = with_dependents(changed, all_specs())
        if a.paths:
            paths = [x for x in paths if x in {os.path.normpath(q) for q in a.paths}]
        if not paths:
            print(f"no spec changed since {a.changed}")
            return EXIT_OK
    else:
        paths = a.paths or all_specs()
        if not paths:
            print(f"tools/validate: no specs under {SPEC_DIR}/", file=sys.stderr)
            return EXIT_USAGE
    return check_files(paths, a.format)


if __name__ == "__main__":
    sys.exit(main())
