"""The command line: a thin layer over the stages, one module per command group, and the one boundary where an
expected failure becomes one line and its exit status (`status`). Bad input never produces a traceback."""

from __future__ import annotations

import argparse
import os
import sys

from ..diagnostics import UserError, render
from ..lazy import install_hint
from ..spec.source import SpecError
from ..status import INTERRUPTED, INVALID, OK, USAGE
from ..version import __version__
from . import search_commands, spec_commands, train_commands


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sepspec", description="Architecture specs for separable-convolution "
                                "classifiers: check, show, compile, train.")
    p.add_argument("--version", action="version", version=f"sepspec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (spec_commands, search_commands, train_commands):
        group.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """The one boundary of every command: an expected failure is one line with its documented exit status
    (1 an invalid spec, 2 a problem with options, files or data, 130 interrupted); anything else is a bug
    and keeps its traceback. A closed output pipe (`sepspec show ... | head -1`) ends quietly with 0."""
    args = parser().parse_args(argv)
    try:
        status = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the boundary
        return status
    except BrokenPipeError:  # an OSError: before the general case
        _quiet_stdout()
        return OK
    except SpecError as e:
        print(render(e.diagnostics, "text"), file=sys.stderr)
        return INVALID
    except UserError as e:
        print(f"sepspec {args.command}: {e}", file=sys.stderr)
        return e.status
    except OSError as e:
        where = getattr(e, "filename", None)
        print(f"sepspec {args.command}: {where + ': ' if where else ''}{e.strerror or e}", file=sys.stderr)
        return USAGE
    except ModuleNotFoundError as e:
        hint = install_hint(e.name or "")
        if hint is None:
            raise
        print(f"sepspec {args.command} needs {e.name}, which is not installed: {hint}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def run() -> None:
    """`python -m sepspec`: the command line as a process."""
    from .. import lazy

    lazy.OWN_PROCESS = True
    sys.exit(main())


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that Python's flush at exit does not report the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    run()
