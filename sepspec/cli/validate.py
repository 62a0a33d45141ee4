"""`tools/validate`: the CI entry point. Checks every spec under specs/, or only those changed since a
git revision together with the specs that extend them (directly or through other specs)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ..spec.source import SpecError, read
from ..status import OK as EXIT_OK
from ..status import USAGE as EXIT_USAGE
from .spec_commands import check_files

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


def print_diffs(paths: list[str], base: str, out=None) -> None:
    """For each spec that existed at `base`: what the change does to it (`sepspec diff`, old against new). The old
    versions of every spec are written to a temporary folder first, so that `extends` resolves as it did then."""
    import tempfile

    from ..checked import check
    from ..graph.diff import diff, text

    out = out or sys.stdout
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, check=True).stdout

    with tempfile.TemporaryDirectory(prefix="sepspec-base-") as tmp:
        for name in git("ls-tree", "-r", "--name-only", base, "--", SPEC_DIR).decode().split("\n"):
            if name.endswith((".yaml", ".yml")):
                os.makedirs(os.path.join(tmp, os.path.dirname(name)), exist_ok=True)
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(git("show", f"{base}:./{name}"))
        for path in paths:
            old_path = os.path.join(tmp, path)
            if not os.path.isfile(old_path):
                print(f"{path}: new (not in {base})", file=out)
                continue
            old, new = check(old_path, f"{base}:{path}"), check(path)
            if old.report is None or new.report is None:
                print(f"{path}: no diff (it does not load {'at ' + base if old.report is None else 'now'})", file=out)
                continue
            print(text(diff(old.report, new.report), f"{base}:{path}", path) + "\n", file=out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/validate", description="Validate sepspec specs (exit 0 valid, "
                                "1 invalid, 2 unreadable/usage).")
    p.add_argument("paths", nargs="*", metavar="PATH", help="spec files (default: every spec under specs/)")
    p.add_argument("--changed", nargs="?", const="HEAD", metavar="BASE",
                   help="only specs changed since the git revision BASE (default HEAD), and their dependents")
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument("--diff", action="store_true", help="with --changed: also print what the change does to each "
                   "spec (layers added, removed, changed; the totals against BASE's version)")
    a = p.parse_args(argv)
    if a.diff and a.changed is None:
        print("tools/validate: --diff needs --changed [BASE]", file=sys.stderr)
        return EXIT_USAGE
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
        status = check_files(paths, a.format)
        if a.diff:
            try:
                print_diffs(paths, a.changed)
            except (OSError, subprocess.CalledProcessError) as e:
                msg = getattr(e, "stderr", b"") or str(e)
                msg = msg.decode(errors="replace") if isinstance(msg, bytes) else msg
                print(f"tools/validate: cannot read the specs at {a.changed!r}: {msg.strip()}", file=sys.stderr)
                return EXIT_USAGE
        return status
    paths = a.paths or all_specs()
    if not paths:
        print(f"tools/validate: no specs under {SPEC_DIR}/", file=sys.stderr)
        return EXIT_USAGE
    return check_files(paths, a.format)


if __name__ == "__main__":
    sys.exit(main())
