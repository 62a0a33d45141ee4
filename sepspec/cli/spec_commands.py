"""`sepspec check | show | diff | draw | schema | compile`: the checker's commands (no TensorFlow, except
`show --keras` and `compile`, which build the model)."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace

from ..atomic import writable_folder, write
from ..checked import check
from ..diagnostics import Diagnostic, UserError, cause, render
from ..status import INVALID, OK, USAGE


def add_commands(sub) -> None:
    s = sub.add_parser("check", help="validate spec files (exit 0 valid, 1 invalid, 2 unreadable/usage)")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--format", choices=("text", "json", "github"), default="text")
    s.set_defaults(fn=lambda a: check_files(a.files, a.format))

    s = sub.add_parser("show", help="per-layer table: output, params, receptive field, MACs")
    s.add_argument("file", metavar="FILE", help="a spec, or (with --memory) an exported .tflite file")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="print the analysis (with --memory: the ops) as JSON")
    g.add_argument("--keras", action="store_true", help="build the model; print Keras's summary beside the analysis")
    s.add_argument("--memory", action="store_true", help="the int8 model's ops: MACs, weight bytes (flash) and the "
                   "activation bytes alive while each runs, and the totals (macc=, weights=, activations=); of a "
                   ".tflite file, read from the file")
    s.add_argument("--plot", metavar="FILE.png", help="also draw receptive field and jump per layer against the "
                   "image's side (needs matplotlib: the tf extra)")
    s.set_defaults(fn=cmd_show)

    s = sub.add_parser("diff", help="what changes between two specs: layers added, removed and changed (by name), "
                       "and the totals side by side")
    s.add_argument("before", metavar="A.yaml")
    s.add_argument("after", metavar="B.yaml")
    s.add_argument("--json", action="store_true", help="the same as a JSON document")
    s.set_defaults(fn=cmd_diff)

    s = sub.add_parser("draw", help="an annotated drawing of the network (Graphviz): every layer with its shape, "
                       "parameters and receptive field, every input edge, blocks as clusters, the int8 arena's peak")
    s.add_argument("file", metavar="SPEC")
    s.add_argument("-o", "--output", required=True, metavar="FILE.svg|.png|.dot",
                   help=".dot: the DOT text (pure Python); .svg/.png: rendered by Graphviz's dot")
    s.add_argument("--depth", type=int, choices=(1,), help="1: one node per entry of layers: (blocks collapsed)")
    s.set_defaults(fn=cmd_draw)

    s = sub.add_parser("schema", help="print the JSON Schema of the spec format")
    s.set_defaults(fn=cmd_schema)

    s = sub.add_parser("compile", help="write a .keras model, or Keras source (--to python)")
    s.add_argument("file", metavar="SPEC")
    s.add_argument("-o", "--output", metavar="FILE", help="the .keras file; with --to python, the script "
                   "(default: standard output)")
    s.add_argument("--to", choices=("keras", "python"), default="keras")
    s.add_argument("--weights", metavar="FILE.weights.h5", help="load these weights (e.g. from `sepspec import "
                   "--weights`) into the model before it is written")
    s.set_defaults(fn=cmd_compile)

    s = sub.add_parser("import", help="a Keras model -> a spec that compiles back to the same network")
    s.add_argument("source", metavar="MODEL", help="a .keras or .h5 file (loaded in safe mode; Keras 2's .h5 too), "
                   "keras.applications.NAME, or module:function returning a model")
    s.add_argument("--args", metavar="YAML", help="keyword arguments for keras.applications.NAME or your function, "
                   "as a YAML mapping (e.g. '{input_shape: [32, 32, 3], classes: 10}'; weights default to none)")
    s.add_argument("-o", "--output", metavar="FILE", help="the spec (default: standard output)")
    s.add_argument("--weights", metavar="FILE.weights.h5", help="also write the model's weights under the spec's "
                   "layer names (`sepspec compile SPEC --weights FILE` puts them back)")
    s.add_argument("--no-names", action="store_true", help="name the layers as the spec would, not as the model "
                   "does: every residual and parallel block is recognised and alike ones fold into repeat:")
    s.add_argument("--input", metavar="HxW[xC]", help="the image size to import the model at, for a model built "
                   "for any size (Input((None, None, 3))) or not built yet; its channels unless given")
    s.set_defaults(fn=cmd_import)


def check_files(paths: list[str], fmt: str = "text", out=None, err=None) -> int:
    """Check every file and print its diagnostics; the worst exit status wins (2 over 1)."""
    out, err = out or sys.stdout, err or sys.stderr
    status, diags, invalid = OK, [], 0
    for path in paths:
        try:
            c = check(path)
        except OSError as e:
            diags.append(Diagnostic("SEP000", "io", f"cannot read: {e.strerror or e}", path))
            status = USAGE
            continue
        # a mistake in a parent is also this spec's: say so, so the two reports are told apart
        diags.extend(d if d.file == c.path else replace(d, message=f"{d.message} (inherited by {c.path})")
                     for d in c.diagnostics)
        if not c.ok:
            invalid += 1
            status = max(status, INVALID)
    if fmt == "json":
        print(render(diags, "json"), file=out)
    elif diags:
        print(render(diags, fmt), file=out if fmt == "github" else err)
    if fmt == "text":
        n, bad = len(paths), invalid + sum(d.code == "SEP000" for d in diags)
        errors = sum(d.severity == "error" for d in diags)
        counts = [f"{k} {word}(s)" for k, word in ((errors, "error"), (len(diags) - errors, "warning")) if k]
        print(f"{n - bad} of {n} spec{'s' if n != 1 else ''} valid" + "".join(f", {c}" for c in counts),
              file=err if diags else out)
    return status


def checked_or_status(path: str):
    """(Checked, status) for one file; an unreadable file is one line and (None, 2)."""
    try:
        c = check(path)
    except OSError as e:
        print(Diagnostic("SEP000", "io", f"cannot read: {e.strerror or e}", path).text(), file=sys.stderr)
        return None, USAGE
    return c, OK if c.ok else INVALID


def valid_or_status(path: str):
    """(Checked, None) for a valid spec, else (None, status) with its diagnostics printed."""
    c, status = checked_or_status(path)
    if c is not None and not c.ok:
        print(render(c.diagnostics, "text"), file=sys.stderr)
        return None, INVALID
    return c, (None if c is not None else status)


def cmd_show(a) -> int:
    from ..graph.memory import estimate
    from ..graph.render import document, memory_table, ops_document, table

    if a.plot and not a.plot.endswith(".png"):
        raise UserError(f"--plot {a.plot}: the picture is a PNG file (FILE.png)")
    if a.memory and a.keras:
        raise UserError("--memory and --keras are two different tables: give one")
    if a.file.endswith(".tflite"):
        return _show_file(a)
    c, status = checked_or_status(a.file)
    if c is None:
        return status
    if a.keras:
        return _show_keras(c)
    if a.json and a.memory and c.report is not None:
        print(json.dumps({"file": c.path, "name": c.report.spec.name, **ops_document(estimate(c.report))}, indent=2))
    elif a.json:
        print(json.dumps(document(c.path, c.report, c.diagnostics), indent=2))
    elif c.report is not None:
        print(memory_table(c.report, c.path) if a.memory else table(c.report, c.path))
    if a.plot and c.report is not None:
        _plot(c, a.plot, sys.stderr if a.json else sys.stdout)
    if c.diagnostics and not a.json:
        print(render(c.diagnostics, "text"), file=sys.stderr)
    return status


def _show_file(a) -> int:
    """`show FILE.tflite --memory`: the same table for an exported file, read from the file (a model sepspec did
    not make too)."""
    from ..deploy.tflite_file import deployment
    from ..graph.render import ops_document, ops_table

    if not a.memory or a.keras or a.plot:
        raise UserError(f"{a.file}: of a .tflite file, show prints its ops with --memory (and --json)")
    d = deployment(a.file)
    if a.json:
        print(json.dumps({"file": a.file, **ops_document(d)}, indent=2))
    else:
        print(ops_table(d, f"{a.file}: its ops as the file lists them, batch 1"))
    return OK


def cmd_diff(a) -> int:
    """Exit 0 when both specs are valid, 1 when either breaks a rule (the diff is still shown if both analyse:
    a change that breaks a budget is what a review wants to see), 2 when one cannot be read."""
    from ..graph.diff import diff, text

    checked = []
    for path in (a.before, a.after):
        c, status = checked_or_status(path)
        if c is None:
            return status
        checked.append(c)
    bad = [d for c in checked for d in c.diagnostics]
    if bad:
        print(render(bad, "text"), file=sys.stderr)
    if all(c.report is not None for c in checked):
        d = diff(checked[0].report, checked[1].report)
        print(json.dumps({"before": a.before, "after": a.after, **d}, indent=2) if a.json
              else text(d, a.before, a.after))
    return OK if all(c.ok for c in checked) else INVALID


def cmd_draw(a) -> int:
    import shutil
    import subprocess

    from ..graph.draw import dot

    fmt = a.output.rsplit(".", 1)[-1] if "." in a.output else ""
    if fmt not in ("dot", "svg", "png"):
        raise UserError(f"-o {a.output}: the drawing is a .dot, .svg or .png file")
    c, status = checked_or_status(a.file)
    if c is None or c.report is None:
        if c is not None:
            print(render(c.diagnostics, "text"), file=sys.stderr)
        return status
    text = dot(c.report, a.depth)
    if fmt == "dot":
        write(a.output, text)
    else:
        exe = shutil.which("dot")
        if exe is None:
            raise UserError(f"-o {a.output} needs Graphviz's dot, which is not installed (Debian/Ubuntu: apt-get "
                            "install graphviz; macOS: brew install graphviz); -o FILE.dot needs nothing")
        r = subprocess.run([exe, f"-T{fmt}"], input=text.encode(), capture_output=True)
        if r.returncode != 0:
            raise UserError(f"Graphviz's dot failed: {r.stderr.decode(errors='replace').strip()[:200]}")
        write(a.output, r.stdout)
    print(f"wrote {a.output}: {len(c.report.rows)} layers")
    if c.diagnostics:
        print(render(c.diagnostics, "text"), file=sys.stderr)
    return status


def _plot(c, out: str, say) -> None:
    from ..graph.plot import rf_plot

    unproductive = {d.layer for d in c.diagnostics if d.code == "SEP217"}
    write(out, rf_plot(c.report, f"{c.report.spec.name}: receptive field per layer ({c.path})", unproductive))
    print(f"wrote {out}", file=say)


def _show_keras(c) -> int:
    if not c.ok:
        print(render(c.diagnostics, "text"), file=sys.stderr)
        return INVALID
    from ..emit.model import compare_text

    text, same = compare_text(c.report)
    print(text)
    return OK if same else INVALID


def cmd_schema(a) -> int:
    from ..spec.schema import schema_text

    sys.stdout.write(schema_text())
    return OK


def cmd_compile(a) -> int:
    c, status = valid_or_status(a.file)
    if c is None:
        return status
    if a.output:  # told before Keras is imported
        writable_folder(a.output)
    if a.to == "python":
        from ..emit.script import python_source

        text = python_source(c.report)
        if not a.output:
            sys.stdout.write(text)
            return OK
        write(a.output, text)
        print(f"wrote {a.output}: {c.report.params:,} params")
        return OK
    if not a.output:
        print("sepspec compile: give -o FILE.keras, or --to python", file=sys.stderr)
        return USAGE
    if not a.output.endswith(".keras"):
        print(f"sepspec compile: {a.output}: the model file must end in .keras", file=sys.stderr)
        return USAGE
    from ..atomic import save_model as atomic_save
    from ..emit.model import keras_model

    model = keras_model(c.report)
    if a.weights:
        _load_weights(model, a.weights)
    atomic_save(model, a.output)
    print(f"wrote {a.output}: {c.report.params:,} params" + (f", weights from {a.weights}" if a.weights else ""))
    return OK


def _load_weights(model, path: str) -> None:
    import os

    if not path.endswith(".weights.h5"):
        raise UserError(f"--weights {path}: expected a .weights.h5 file")
    if not os.path.isfile(path):
        raise UserError(f"--weights {path}: no such file")
    try:
        model.load_weights(path)
    except Exception as e:  # another network's weights
        raise UserError(f"--weights {path}: not this spec's weights ({cause(e)})") from None


def cmd_import(a) -> int:
    import yaml

    from ..emit.importer import at_input, from_keras, load_keras

    try:
        args = yaml.safe_load(a.args) if a.args else {}
    except yaml.YAMLError as e:
        raise UserError(f"--args: not YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(args, dict):
        raise UserError(f"--args: expected a mapping such as '{{classes: 10}}', got {a.args!r}")
    if a.weights and not (a.output and a.weights.endswith(".weights.h5")):
        raise UserError("--weights FILE.weights.h5 goes with -o SPEC (the weights are named by the spec's layers)")
    shape = None
    if a.input:
        if not re.fullmatch(r"[1-9]\d*(x[1-9]\d*){1,2}", a.input):
            raise UserError(f"--input {a.input!r}: expected HxW or HxWxC, such as 32x32")
        shape = tuple(int(v) for v in a.input.split("x"))
    from ..emit.recipe import compile_config, of_model

    model, names, notes = load_keras(a.source, args), {}, []
    # a file's saved compile() (the model is loaded without it), or a function's compiled model's, before --input
    training = compile_config(a.source) if a.source.endswith((".keras", ".h5", ".hdf5")) else of_model(model)
    if shape:
        model = at_input(model, shape)
    text = from_keras(model, a.source, names, keep_names=not a.no_names, training=training, notes=notes)
    for note in notes:  # also at the top of the spec
        print(f"note: not kept from its training: {note}", file=sys.stderr)
    if not a.output:
        sys.stdout.write(text)
        return OK
    if a.weights:  # written first: a failure leaves neither file
        from ..atomic import save_weights
        from ..emit.importer import checked, transfer_weights
        from ..emit.model import keras_model

        compiled = keras_model(checked(text, a.output).report)
        transfer_weights(model, compiled, names)
        save_weights(compiled, a.weights)
    write(a.output, text)
    print(f"wrote {a.output}: {len(text.splitlines())} lines" + (f"; {a.weights}" if a.weights else ""))
    return OK
