"""Kinds of your own (`blocks:`): a use is its body with the arguments written in, named and repeated as a built-in
block; errors at the body's line and the use's; extends, defaults, nesting, the dump, width scaling, the schema, and
Keras building the same graph (random blocks: test_properties through the strategy)."""
import json
import os
import subprocess
import sys

import jsonschema
import pytest
import yaml

import sepspec
from sepspec.spec.edit import with_width
from sepspec.spec.load import load_source, to_yaml
from sepspec.spec.source import parse

from conftest import ROOT

SCHEMA = json.load(open(os.path.join(ROOT, "specs", "sepspec.schema.json")))

CELLS = """
name: cells
input: [32, 32, 3]
classes: 10
blocks:
  cell:
    args: {filters: 32, skip: null}   # skip: required at every use
    body:
      - sepconv: {filters: $filters, name: a}
      - sepconv: {filters: $filters, from: $skip, name: b}
      - add: [a, b]
layers:
  - sepconv: {filters: 32, name: stem}
  - cell: {filters: 32, skip: stem, name: c1}
  - cell: {skip: c1, repeat: 3}
  - concat: [stem, c1, cell_2]
  - sepconv: 10
  - gap:
"""

# the same network written out by hand: the names a use gives are `<use>_<body entry>`, copies `<use>_<r>_...`
WRITTEN_OUT = """
name: cells
input: [32, 32, 3]
classes: 10
layers:
  - sepconv: {filters: 32, name: stem}
  - sepconv: {filters: 32, name: c1_a}
  - sepconv: {filters: 32, from: stem, name: c1_b}
  - add: {inputs: [c1_a, c1_b], name: c1_add_1}
""" + "".join(f"""  - sepconv: {{filters: 32, name: cell_2{r}_a}}
  - sepconv: {{filters: 32, from: c1_add_1, name: cell_2{r}_b}}
  - add: {{inputs: [cell_2{r}_a, cell_2{r}_b], name: cell_2{r}_add_1}}
""" for r in ("", "_2", "_3")) + """  - concat: {inputs: [stem, c1_add_1, cell_2_3_add_1], name: concat_1}
  - sepconv: {filters: 10, name: sepconv_2}
  - gap: {name: gap_1}
"""


def check(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(text.lstrip())
    return sepspec.check(str(p))


def rows(c):
    return [(r.name, r.layer.keras, r.inputs, r.output, r.params, r.span, r.macs) for r in c.report.rows]


def test_a_use_is_its_body_with_the_arguments_written_in(tmp_path):
    c = check(tmp_path, CELLS)
    assert c.ok, [d.text() for d in c.diagnostics]
    assert rows(c) == rows(check(tmp_path, WRITTEN_OUT, "out.yaml"))
    by = {r.name: r for r in c.report.rows}
    assert by["cell_2_2_a"].inputs == ("cell_2_add_1",)  # repeat repeats the whole body, each copy after the last
    assert by["cell_2_3_b"].inputs == ("c1_add_1",)  # `skip: c1` is the use c1's output: its body's last entry
    assert by["concat_1"].output == (32, 32, 96)


def test_the_main_argument_shorthand_defaults_and_extends(tmp_path):
    parent = CELLS.replace("  - cell: {skip: c1, repeat: 3}\n", "")
    (tmp_path / "parent.yaml").write_text(parent.lstrip())
    child = """
extends: parent.yaml
defaults:
  cell: {skip: stem}
  sepconv: {activation: relu}
layers:
  - sepconv: {filters: 16, name: stem}
  - cell: 24
  - cell: {filters: 8, skip: cell_1}
  - sepconv: {filters: 10, activation: none}
  - gap:
"""
    c = check(tmp_path, child, "child.yaml")
    assert c.ok, [d.text() for d in c.diagnostics]
    by = {r.name: r for r in c.report.rows}
    assert by["cell_1_a"].output == (32, 32, 24)  # `cell: 24` gives the first argument, filters
    assert by["cell_1_b"].inputs == ("stem_relu",)  # skip from defaults.cell
    assert "cell_1_a_relu" in by  # defaults.sepconv reaches into the body
    assert by["cell_2_b"].inputs == ("cell_1_add_1",) and by["cell_2_b"].output == (32, 32, 8)
    bad = check(tmp_path, child.replace("cell: {skip: stem}", "cell: {skip: nosuch}"), "bad.yaml")
    d = [x for x in bad.diagnostics if x.code == "SEP220"]
    assert d and d[0].line == 3 and "the argument 'skip' at line 9 of block 'cell'" in d[0].message  # at the default


def test_blocks_use_blocks_and_a_use_takes_from(tmp_path):
    text = """
name: nested
input: [16, 16, 3]
classes: 4
blocks:
  unit:
    args: {width: null, act: relu}
    body:
      - sepconv: {filters: $width, activation: $act}
  pair:
    args: {width: 8}
    body:
      - unit: {width: $width, name: first}
      - unit: {width: $width, act: swish}
layers:
  - sepconv: {filters: 8, name: stem}
  - pair: {width: 12, name: p}
  - pair: {from: stem}
  - concat: [p, pair_2]
  - sepconv: 4
  - gap:
"""
    c = check(tmp_path, text)
    assert c.ok, [d.text() for d in c.diagnostics]
    names = [r.name for r in c.report.rows]
    assert names[1:5] == ["p_first_sepconv_1", "p_first_sepconv_1_relu", "p_unit_2_sepconv_1",
                          "p_unit_2_sepconv_1_swish"]
    by = {r.name: r for r in c.report.rows}
    assert by["pair_2_first_sepconv_1"].inputs == ("stem",) and by["pair_2_first_sepconv_1"].output == (16, 16, 8)
    bad = check(tmp_path, text.replace("activation: $act}", "activation: $act, kernal: 3}"))
    assert "in block 'unit' used at line 12; in block 'pair' used at line 16" in bad.diagnostics[0].message


# (the edit on CELLS, the code, the line of the error, what its message says)
BROKEN = [
    (("{filters: $filters, name: a}", "{filters: $filtrs, name: a}"), "SEP109", 8, "$filtrs is not an argument"),
    (("skip: c1, repeat: 3}", "skip: c1, repeat: 3, filtres: 4}"), "SEP101", 14, "did you mean 'filters'"),
    (("{skip: c1, repeat: 3}", "{repeat: 3}"), "SEP104", 14, "needs its argument 'skip'"),
    (("name: a}", "name: a, kernal: 3}"), "SEP101", 8, "in block 'cell' used at line 13"),
    (("{filters: 32, skip: stem, name: c1}", "{filters: true, skip: stem, name: c1}"), "SEP102", 13,
     "the argument 'filters' at line 8 of block 'cell'"),
    (("- add: [a, b]", "- add: [a, b]\n      - cell: {skip: a}"), "SEP110", 11, "block 'cell' uses itself"),
    (("  cell:\n", "  sepconv:\n"), "SEP103", 5, "a built-in kind"),
    (("    args: {filters: 32, skip: null}", "    args: {filters: 32, skip: null, name: x}"), "SEP103", 6,
     "what every use takes"),
    (("  - cell: {skip: c1, repeat: 3}", "  - cel: {skip: c1, repeat: 3}"), "SEP108", 14, "did you mean 'cell'"),
    (("{skip: c1, repeat: 3}", "{skip: c9, repeat: 3}"), "SEP220", 14, "the argument 'skip' at line 9 of block 'cell'"),
]


@pytest.mark.parametrize("edit, code, line, says", BROKEN, ids=[b[1] + "-" + b[3][:20] for b in BROKEN])
def test_errors_are_at_the_body_line_and_name_the_use(tmp_path, edit, code, line, says):
    assert edit[0] in CELLS
    c = check(tmp_path, CELLS.replace(edit[0], edit[1], 1))
    found = [d for d in c.diagnostics if d.code == code]
    assert found, [d.text() for d in c.diagnostics]
    assert found[0].line == line and says in found[0].text(), found[0].text()


def test_separable_only_refuses_a_conv_inside_a_block_at_its_line(tmp_path):
    text = CELLS.replace("name: cells\n", "name: cells\nrules: {separable_only: true}\n").replace(
        "- sepconv: {filters: $filters, name: a}", "- conv: {filters: $filters, name: a}")
    c = check(tmp_path, text)
    bad = [d for d in c.diagnostics if d.code == "SEP202"]
    assert bad and {d.line for d in bad} == {9}, [d.text() for d in c.diagnostics]
    assert "used at line" in bad[0].message
    assert check(tmp_path, CELLS.replace("name: cells\n", "name: cells\nrules: {separable_only: true}\n")).ok


def test_the_dump_loads_again_to_the_same_spec_and_widths_scale_inside_bodies(tmp_path):
    c = check(tmp_path, CELLS)
    text = to_yaml(c.spec)
    again = load_source(parse(text, "again.yaml"))
    assert again.model_dump() == c.spec.model_dump()
    assert yaml.safe_load(text)["layers"][1]["cell"]["skip"] == "stem"  # a use is dumped with its arguments
    wide = load_source(with_width(c.spec.source, 1.5))
    widths = {r.name: r.output[-1] for r in sepspec.analyse(wide).rows}
    assert widths["c1_a"] == 48 and widths["cell_2_3_b"] == 48


def test_the_schema_takes_blocks_and_still_refuses_unknown_kinds_without_them():
    jsonschema.validate(yaml.safe_load(CELLS), SCHEMA)
    plain = {"name": "x", "input": [8, 8, 3], "classes": 2, "layers": [{"sepcov": 3}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plain, SCHEMA)
    nested = {**plain, "layers": [{"residual": {"body": [{"sepcov": 3}]}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(nested, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):  # a block needs a body
        jsonschema.validate({**yaml.safe_load(CELLS), "blocks": {"cell": {"args": {}}}}, SCHEMA)


def test_keras_builds_the_same_graph_and_the_cli_reports_in_one_line(tmp_path):
    from sepspec.emit import model as emit

    rep = check(tmp_path, CELLS).report
    m = emit.keras_model(rep)
    assert sorted(emit.keras_rows(m)) == sorted((r.name, r.layer.keras, tuple(r.output), r.trainable, r.non_trainable)
                                                for r in rep.rows)
    bad = tmp_path / "bad.yaml"
    bad.write_text(CELLS.lstrip().replace("{skip: c1, repeat: 3}", "{repeat: 3}"))
    run = subprocess.run([sys.executable, "-m", "sepspec", "check", str(bad)], capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr + run.stdout
    assert f"{bad}:14:11: error SEP104: layers[2].cell: block 'cell' needs its argument 'skip'\n" in run.stderr


def test_mixgate_with_its_block_is_the_written_out_network_in_half_the_lines():
    from sepspec.graph.diff import diff

    old = os.path.join(ROOT, "tests", "fixtures", "mixgate-written-out.yaml")
    new = os.path.join(ROOT, "specs", "mixgate.yaml")
    d = diff(sepspec.check(old).report, sepspec.check(new).report)
    assert d["layers"] == [] and d["settings"] == {}, d
    assert all(a == b for a, b in d["totals"].values()) and d["totals"]["layers"][0] == 80
    written_out = len(open(old).read().splitlines()) - 1  # less the fixture's own comment line
    assert written_out == 92 and len(open(new).read().splitlines()) <= written_out // 2


def test_set_reaches_a_uses_argument_written_short(tmp_path):
    """`train --set layers[1].cell.filters=48` on `- cell: 32`: the shorthand's argument is the block's first."""
    from sepspec.spec.edit import with_value
    from sepspec.spec.load import resolve

    p = tmp_path / "s.yaml"
    p.write_text(CELLS.lstrip().replace("  - cell: {skip: c1, repeat: 3}\n", "  - cell: {skip: c1}\n").replace(
        "  - cell: {filters: 32, skip: stem, name: c1}", "  - cell: 32\n  - sepconv: {filters: 32, name: c1}"))
    src = resolve(str(p))
    spec = load_source(with_value(src, ("layers", 1, "cell", "skip"), "stem"))
    spec = load_source(with_value(spec.source, ("layers", 1, "cell", "filters"), 48))
    widths = {r.name: r.output[-1] for r in sepspec.analyse(spec).rows}
    assert widths["cell_1_a"] == 48 and widths["cell_2_a"] == 32
