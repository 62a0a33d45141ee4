"""Named tensors: `from: NAME` and the standalone merges (`add`, `multiply`, `concat`) over names: what a name
means where it is written (the scope), the graph and spans they make, their errors at their lines, the schema,
and Keras building the same model (random ones: test_properties)."""
import json
import os

import jsonschema
import pytest
import yaml

import sepspec
from sepspec.spec.load import to_yaml as spec_yaml

from conftest import ROOT

SCHEMA = json.load(open(os.path.join(ROOT, "specs", "sepspec.schema.json")))

CELL = """
name: cells
input: [16, 16, 3]
classes: 4
rules: {separable_only: true}
layers:
  - sepconv: {filters: 8, name: stem, activation: relu}
  - sepconv: {filters: 8, name: a}
  - sepconv: {filters: 8, from: stem, kernel: 5, name: b}
  - add: [a, b]
  - concat: [add_1, stem, input]
  - residual:
      name: cell
      body:
        - sepconv: 19
        - multiply: [sepconv_1, input]      # inside a body `input` is the block's input
        - concat: [multiply_1, stem]        # an enclosing list's name
        - sepconv: {filters: 19, repeat: 2}
      shortcut: identity
  - sepconv: {filters: 4, from: cell}
  - gap: {}
"""


def check(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text.lstrip())
    return sepspec.check(str(p))


def test_names_read_earlier_entries_enclosing_lists_and_the_lists_input(tmp_path):
    c = check(tmp_path, CELL)
    assert c.ok, [d.text() for d in c.diagnostics]
    rows = {r.name: r for r in c.report.rows}
    assert rows["b"].inputs == ("stem_relu",)  # an entry's name is its output: the tail's last layer
    assert rows["add_1"].inputs == ("a", "b")
    assert rows["concat_1"].inputs == ("add_1", "stem_relu", "input") and rows["concat_1"].output == (16, 16, 19)
    assert rows["cell_multiply_1"].inputs == ("cell_sepconv_1", "concat_1")  # the body's input
    assert rows["cell_concat_1"].inputs == ("cell_multiply_1", "stem_relu")  # an enclosing list's, inside the body
    assert rows["cell_sepconv_2"].inputs == ("cell_concat_1",)
    assert rows["cell_sepconv_2_2"].inputs == ("cell_sepconv_2",)  # a repeat goes on from its copy
    assert rows["sepconv_4"].inputs == ("cell_add",)  # a block by its name: its output
    # a merge's span is the union of its inputs' (a: start -2, rf 5; b after stem: start -3, rf 7)
    assert (rows["add_1"].start, rows["add_1"].rf) == ((-3, -3), (7, 7))
    assert c.report.params == sum(r.params for r in c.report.rows)


@pytest.mark.parametrize("edit, code, where, says", [
    (("from: cell}", "from: stme}"), "SEP220", "from", "no tensor named 'stme' before this entry; did you mean 'stem'?"),
    (("add: [a, b]", "add: [a, later]"), "SEP220", "later", "no tensor named 'later'"),
    (("name: a}", "name: a}\n  - sepconv: {filters: 8, name: dead}"), "SEP221", "dead", "never read"),
    (("add: [a, b]", "add: [a, stem, b]\n  - sepconv: {filters: 8, name: later}"), "SEP221", "later", "never read"),
    (("concat: [add_1, stem, input]", "add: [add_1, input]"), "SEP211", "add: [add_1, input]", "add"),
    (("sepconv: {filters: 8, name: a}", "sepconv: {filters: 8, name: a, stride: 2}"), "SEP211", "add: [a, b]",
     "add"),
    (("add: [a, b]", "add: [a]"), "SEP103", "add: [a]", "at least 2"),
])
def test_broken_names_are_errors_at_their_lines(tmp_path, edit, code, where, says):
    text = CELL
    assert edit[0] in text
    text = text.replace(edit[0], edit[1], 1)
    c = check(tmp_path, text)
    found = [d for d in c.diagnostics if d.code == code]
    assert found, [d.text() for d in c.diagnostics]
    d = found[0]
    assert says in d.message, d.text()
    line = text.lstrip().splitlines()[d.line - 1]
    assert where in line, (d.text(), line)


def test_a_body_entry_is_not_visible_outside_by_its_short_name(tmp_path):
    c = check(tmp_path, CELL.replace("from: cell}", "from: multiply_1}"))
    assert [d.code for d in c.diagnostics] == ["SEP220"]
    c = check(tmp_path, CELL
              .replace("  - sepconv: {filters: 4, from: cell}", "  - add: [cell, cell_multiply_1]\n  - sepconv: 4"))
    assert c.ok, [d.text() for d in c.diagnostics]  # ...but by its full Keras name


def test_from_is_written_back_as_from_and_in_the_schema(tmp_path):
    c = check(tmp_path, CELL)
    again = yaml.safe_load(spec_yaml(c.spec))
    assert again["layers"][2] == {"sepconv": {"filters": 8, "kernel": 5, "from": "stem", "name": "b"}} or \
        again["layers"][2]["sepconv"]["from"] == "stem"
    jsonschema.validate(yaml.safe_load(CELL), SCHEMA)
    for bad in ({"add": ["a"]}, {"sepconv": {"filters": 1, "from": "no/slash"}}, {"concat": "a"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**yaml.safe_load(CELL), "layers": [bad]}, SCHEMA)


def test_keras_builds_the_same_graph(tmp_path):
    from sepspec.emit import model as emit

    rep = check(tmp_path, CELL).report
    m = emit.keras_model(rep)
    assert sorted(emit.keras_rows(m)) == sorted((r.name, r.layer.keras, tuple(r.output), r.trainable, r.non_trainable)
                                                for r in rep.rows)
    by_name = {layer.name: layer for layer in m.layers}
    assert [t.name for t in by_name["concat_1"].input] == ["add_1", "stem_relu", "input"] or \
        len(by_name["concat_1"].input) == 3
