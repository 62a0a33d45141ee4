"""The command line: a thin layer over the public API. Bad input never produces a traceback.

Exit status: 0 all valid, 1 some spec invalid, 2 usage error or a file that cannot be opened.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from . import __version__, check
from .diagnostics import Diagnostic, UserError, render
from .yamlsrc import SpecError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def check_files(paths: list[str], fmt: str = "text", out=None, err=None) -> int:
    """Check every file and print its diagnostics; the worst exit status wins (2 over 1)."""
    out, err = out or sys.stdout, err or sys.stderr
    status, diags, invalid = EXIT_OK, [], 0
    for path in paths:
        try:
            c = check(path)
        except OSError as e:
            d = Diagnostic("SEP000", "io", f"cannot read: {e.strerror or e}", path)
            diags.append(d)
            status = EXIT_USAGE
            continue
        # a mistake in a parent is also this spec's: say so, so the two reports are told apart
        diags.extend(d if d.file == c.path else replace(d, message=f"{d.message} (inherited by {c.path})")
                     for d in c.diagnostics)
        if not c.ok:
            invalid += 1
            status = max(status, EXIT_INVALID)
    if fmt == "json":
        print(render(diags, "json"), file=out)
    elif diags:
        print(render(diags, fmt), file=out if fmt == "github" else err)
    if fmt == "text":
        n, bad = len(paths), invalid + sum(d.code == "SEP000" for d in diags)
        print(f"{n - bad} of {n} spec{'s' if n != 1 else ''} valid" + (f", {len(diags)} error(s)" if diags else ""),
              file=err if diags else out)
    return status


def _load_checked(path: str):
    """(Checked, status) for one file; prints diagnostics. Status 2 when it cannot be opened."""
    try:
        c = check(path)
    except OSError as e:
        print(Diagnostic("SEP000", "io", f"cannot read: {e.strerror or e}", path).text(), file=sys.stderr)
        return None, EXIT_USAGE
    return c, EXIT_OK if c.ok else EXIT_INVALID


def cmd_check(a) -> int:
    return check_files(a.files, a.format)


def cmd_show(a) -> int:
    from .show import document, memory_table, table

    c, status = _load_checked(a.file)
    if c is None:
        return status
    if a.keras:
        return _show_keras(c)
    if a.json:
        print(json.dumps(document(c), indent=2))
        return status
    if c.report is not None:
        print(memory_table(c) if a.memory else table(c))
    if c.diagnostics:
        print(render(c.diagnostics, "text"), file=sys.stderr)
    return status


def _show_keras(c) -> int:
    if not c.ok:
        print(render(c.diagnostics, "text"), file=sys.stderr)
        return EXIT_INVALID
    from .emit import compare_text

    text, same = compare_text(c.report)
    print(text)
    return EXIT_OK if same else EXIT_INVALID


def cmd_schema(a) -> int:
    from .schema import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def cmd_compile(a) -> int:
    c, status = _load_checked(a.file)
    if c is None:
        return status
    if not c.ok:
        print(render(c.diagnostics, "text"), file=sys.stderr)
        return EXIT_INVALID
    if a.to == "python":
        from .emit import python_source

        sys.stdout.write(python_source(c.report))
        return EXIT_OK
    if not a.output:
        print("sepspec compile: give -o FILE.keras, or --to python", file=sys.stderr)
        return EXIT_USAGE
    if not a.output.endswith(".keras"):
        print(f"sepspec compile: {a.output}: the model file must end in .keras", file=sys.stderr)
        return EXIT_USAGE
    from .emit import save_model

    try:
        save_model(c.report, a.output)
    except OSError as e:
        print(f"sepspec compile: cannot write {a.output}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {a.output}: {c.report.params:,} params")
    return EXIT_OK


def cmd_scale(a) -> int:
    import os

    from .scale import widest
    from .spec import resolve, to_yaml

    if a.max_params < 1 or (a.max_macs is not None and a.max_macs < 1):
        print("sepspec scale: --max-params and --max-macs must be positive", file=sys.stderr)
        return EXIT_USAGE
    c, status = _load_checked(a.file)
    if c is None or c.report is None:
        if c is not None:
            print(render(c.diagnostics, "text"), file=sys.stderr)
        return status if c is None else EXIT_INVALID
    found = widest(resolve(a.file), a.max_params, a.max_macs)
    if found is None:
        print(f"sepspec scale: no width multiplier from 4.00 down to 0.01 fits {a.max_params:,} parameters"
              + (f" and {a.max_macs:,} MACs" if a.max_macs else "") + " and passes every rule", file=sys.stderr)
        return EXIT_INVALID
    m = found.multiplier
    stem = os.path.splitext(a.file)[0]
    out = a.output or f"{stem}-x{m:.2f}.yaml"
    spec = found.spec.model_copy(update={"name": f"{found.spec.name}-x{m:.2f}"})
    from .atomic import write

    write(out, to_yaml(spec, f"{os.path.basename(a.file)} with every width but the classifier's times {m:.2f} "
                             f"(sepspec scale --max-params {a.max_params})"))
    rep = c.report
    print(f"width x{m:.2f}: params {found.params:,} (was {rep.params:,}), MACs {found.macs:,} (was {rep.macs:,}); "
          f"wrote {out}")
    return EXIT_OK


def cmd_sweep(a) -> int:
    if a.check:
        from .sweepconf import load_sweep

        sweep, _, _ = load_sweep(a.file)
        print(f"{a.file}: valid sweep of {sweep.spec}: {len(sweep.space)} paths, {sweep.trials} trials of "
              f"{sweep.budget.epochs} epochs")
        return EXIT_OK
    if a.report:
        from .sweepreport import report

        return report(a.file, a.out, a.storage)
    from .sweep import default_out, run, work

    if a.worker is not None:
        return work(a.file, a.out or default_out(a.file), a.storage, a.data, a.worker)
    if a.workers < 1:
        print("sepspec sweep: --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    return run(a.file, a.out, a.storage, a.data, a.workers)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sepspec", description="Architecture specs for separable-convolution "
                                "classifiers: check, show, compile, train.")
    p.add_argument("--version", action="version", version=f"sepspec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("check", help="validate spec files (exit 0 valid, 1 invalid, 2 unreadable/usage)")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--format", choices=("text", "json", "github"), default="text")
    s.set_defaults(fn=cmd_check)

    s = sub.add_parser("show", help="per-layer table: output, params, receptive field, MACs")
    s.add_argument("file", metavar="FILE")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="print the analysis as a JSON document")
    g.add_argument("--keras", action="store_true", help="build the model; print Keras's summary beside the analysis")
    g.add_argument("--memory", action="store_true", help="the int8 model's ops: weight bytes (flash) and the "
                   "activation bytes alive while each runs")
    s.set_defaults(fn=cmd_show)

    s = sub.add_parser("schema", help="print the JSON Schema of the spec format")
    s.set_defaults(fn=cmd_schema)

    s = sub.add_parser("compile", help="write a .keras model, or print Keras source (--to python)")
    s.add_argument("file", metavar="SPEC")
    s.add_argument("-o", "--output", metavar="FILE.keras")
    s.add_argument("--to", choices=("keras", "python"), default="keras")
    s.set_defaults(fn=cmd_compile)

    s = sub.add_parser("scale", help="the widest variant of a spec under a parameter (and MAC) budget: one "
                       "width multiplier on every filters but the classifier's")
    s.add_argument("file", metavar="SPEC")
    s.add_argument("--max-params", type=int, required=True, metavar="N")
    s.add_argument("--max-macs", type=int, metavar="M")
    s.add_argument("-o", "--output", metavar="OUT.yaml", help="default: SPEC-xM.yaml beside SPEC")
    s.set_defaults(fn=cmd_scale)

    s = sub.add_parser("sweep", help="search over specs on Optuna; candidates that break a rule are pruned "
                       "before any training")
    s.add_argument("file", metavar="SWEEP.yaml")
    s.add_argument("--out", metavar="DIR", help="the sweep's folder (default sweeps/<sweep name>)")
    s.add_argument("--storage", metavar="URL", help="a database URL (e.g. postgresql+psycopg://...) that many "
                   "machines share; default a journal file in the sweep's folder")
    s.add_argument("--data", metavar="PATH", help="where CIFAR-10 is, as for train")
    s.add_argument("--workers", type=int, default=1, metavar="N", help="N trial processes on this machine")
    s.add_argument("--report", action="store_true", help="print the table, write best.yaml and sweep.png")
    s.add_argument("--check", action="store_true", help="validate the sweep file (and every path of its space "
                   "against its spec) and exit, without Optuna or training")
    s.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    s.set_defaults(fn=cmd_sweep)

    try:
        from .train.cli import add_commands
    except ImportError:  # the trainer is not part of this install
        pass
    else:
        add_commands(sub)
    return p


_EXTRAS = {"tensorflow": "tf", "keras": "tf", "numpy": "tf", "matplotlib": "tf", "h5py": "tf", "optuna": "sweep",
           "ai_edge_litert": "export", "onnxruntime": "export", "tf2onnx": "export", "onnx": "export",
           "tflite_micro": "export", "psycopg": "sweep", "sqlalchemy": "sweep", "jax": "jax"}


def main(argv: list[str] | None = None) -> int:
    """The one boundary of every command: an expected failure is one line with its documented exit status
    (1 an invalid spec, 2 a problem with options, files or data, 130 interrupted); anything else is a bug
    and keeps its traceback."""
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except SpecError as e:
        print(render(e.diagnostics, "text"), file=sys.stderr)
        return EXIT_INVALID
    except UserError as e:
        print(f"sepspec {args.command}: {e}", file=sys.stderr)
        return e.status
    except OSError as e:
        where = getattr(e, "filename", None)
        print(f"sepspec {args.command}: {where + ': ' if where else ''}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as e:
        extra = _EXTRAS.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"sepspec {args.command} needs {e.name}, which is not installed: pip install 'sepspec[{extra}]'",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
