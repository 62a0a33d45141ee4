"""Blocks (residual, mbconv, se) in the format and the analysis: names, nested positions, defaults, schema,
the graph rows, and the two example specs. (Keras equality: test_properties; measured fields:
test_receptive_field; rule codes: test_rules.)"""
import json
import os

import jsonschema
import pytest
import yaml

import sepspec
from sepspec import analyse, load
from sepspec.spec.load import to_yaml as spec_yaml

from conftest import ROOT, run_cli

SCHEMA = json.load(open(os.path.join(ROOT, "specs", "sepspec.schema.json")))
RESIDUAL = os.path.join(ROOT, "specs", "residual.yaml")
MBCONV = os.path.join(ROOT, "specs", "mbconv.yaml")

NAMED = """
name: n
input: [16, 16, 3]
classes: 4
layers:
  - sepconv: 8
  - residual:
      name: res1
      body:
        - sepconv: {filters: 16, stride: 2, norm: batch, activation: relu}
        - sepconv: {filters: 16}
      activation: relu
  - mbconv: {filters: 16, name: mb2, se: 0.25}
  - se: {ratio: 0.5, repeat: 2}
  - residual: {body: [sepconv: 16], shortcut: [avgpool: {size: 1}, pointwise: 16], repeat: 2}
  - sepconv: 4
  - gap: {}
"""


def names(write, text):
    c = sepspec.check(write("n.yaml", text))
    assert c.ok, [d.text() for d in c.diagnostics]
    return c, [r.name for r in c.report.rows]


def test_block_names_follow_the_scheme(write):
    c, got = names(write, NAMED)
    assert got[:3] == ["sepconv_1", "res1_sepconv_1", "res1_sepconv_1_bn"]
    for n in ("res1_sepconv_1_relu", "res1_sepconv_2", "res1_project", "res1_project_bn", "res1_add", "res1_relu",
              "mb2_expand", "mb2_expand_bn", "mb2_expand_relu6", "mb2_dw", "mb2_dw_bn", "mb2_dw_relu6",
              "mb2_se_pool", "mb2_se_squeeze", "mb2_se_excite", "mb2_se_scale", "mb2_project", "mb2_project_bn",
              "mb2_add", "se_1_pool", "se_1_squeeze", "se_1_excite", "se_1_scale", "se_1_2_scale",
              "residual_2_sepconv_1", "residual_2_shortcut_avgpool_1", "residual_2_shortcut_pointwise_1",
              "residual_2_add", "residual_2_2_sepconv_1", "residual_2_2_shortcut_pointwise_1", "residual_2_2_add"):
        assert n in got, n
    assert len(got) == len(set(got))
    rep = c.report
    add = rep.row("res1_add")
    assert add.inputs == ("res1_sepconv_2", "res1_project_bn") and add.output == (8, 8, 16)
    assert rep.row("res1_project").layer.strides == (2, 2)  # the body's total stride
    assert rep.row("mb2_add").inputs == ("mb2_project_bn", "res1_relu")  # skip: stride 1, 16 -> 16
    assert rep.row("mb2_se_squeeze").output == (1, 1, 4)  # max(1, int(16 * 0.25)): of the block's input
    assert rep.row("se_1_squeeze").params == 16 * 8 + 8 and rep.row("se_1_excite").params == 8 * 16 + 16
    assert rep.row("se_1_scale").inputs == ("mb2_add", "se_1_excite")
    # an SE's pooling is not the classifier's: the field is the one before the last gap
    assert rep.rf_row().name == "sepconv_2"


def test_mbconv_without_expansion_or_skip(write):
    _, got = names(write, NAMED.replace("{filters: 16, name: mb2, se: 0.25}",
                                        "{filters: 16, name: mb2, expand: 1, skip: false}"))
    mb = [n for n in got if n.startswith("mb2")]
    assert mb == ["mb2_dw", "mb2_dw_bn", "mb2_dw_relu6", "mb2_project", "mb2_project_bn"]


def test_identity_shortcut_and_auto_choosing_it(write):
    c, got = names(write, NAMED.replace("      activation: relu\n", "      activation: relu\n"
                                        "  - residual: {name: same, body: [sepconv: 16]}\n"))
    assert "same_project" not in got and c.report.row("same_add").inputs == ("same_sepconv_1", "res1_relu")


def test_errors_inside_bodies_point_at_the_nested_line(write):
    text = NAMED.replace("        - sepconv: {filters: 16}\n", "        - sepconv: {filters: 16, kernal: 3}\n"
                         "        - residual: {body: [sepcov: 3]}\n")
    c = sepspec.check(write("e.yaml", text))
    got = {(d.code, d.line, d.column, d.hint) for d in c.diagnostics}
    assert ("SEP101", 10, 34, "did you mean 'kernel'?") in got
    assert ("SEP108", 11, 29, "did you mean 'sepconv'?") in got
    assert {d.layer for d in c.diagnostics} == {"layers[1].residual.body[1]", "layers[1].residual.body[2].residual.body[0]"}


def test_defaults_reach_bodies_and_their_errors_are_at_the_default(write):
    text = NAMED.replace("layers:\n", "defaults:\n  sepconv: {bias: false}\n  residual: {activation: relu6}\nlayers:\n")
    c, _ = names(write, text)
    assert c.report.row("res1_sepconv_2").layer.use_bias is False
    assert c.report.row("residual_2_relu6") is not None  # defaults.residual
    bad = text.replace("{bias: false}", "{bias: nope}")
    c = sepspec.check(write("d.yaml", bad))
    assert [(d.code, d.line, d.column) for d in c.diagnostics] == [("SEP102", 5, 19)]
    c = sepspec.check(write("b.yaml", text.replace("{activation: relu6}", "{body: [sepconv: 3]}")))
    assert [(d.code, d.line) for d in c.diagnostics] == [("SEP101", 6)]  # defaults.residual may not set body


def test_errors_from_a_parent_spec_are_reported_in_the_parent(write):
    parent = write("parent.yaml", NAMED.replace("sepconv: {filters: 16}", "sepconv: {filters: 0}"))
    child = write("child.yaml", "extends: parent.yaml\ntrain: {epochs: 1}\n")
    c = sepspec.check(child)
    assert [(d.file, d.code, d.line, d.column) for d in c.diagnostics] == [(parent, "SEP103", 10, 30)]


def test_empty_body_and_bad_arguments(write):
    for block, code in (("residual: {body: []}", "SEP103"), ("residual: {}", "SEP104"), ("residual: 3", "SEP102"),
                        ("residual: {body: [sepconv: 8], shortcut: maybe}", "SEP103"),
                        ("mbconv: {filters: 8, se: 1.5}", "SEP103"), ("mbconv: {filters: 8, expand: 0}", "SEP103"),
                        ("se: 0", "SEP103"), ("se: {ratio: 0.5, gate: relu}", "SEP103")):
        c = sepspec.check(write("x.yaml", NAMED.replace("se: {ratio: 0.5, repeat: 2}", block)))
        assert code in {d.code for d in c.diagnostics}, (block, [d.text() for d in c.diagnostics])
        assert all(d.line == 13 for d in c.diagnostics if d.code == code), (block, [d.text() for d in c.diagnostics])


def test_separable_only_looks_inside_blocks(write):
    text = NAMED.replace("classes: 4\n", "classes: 4\nrules: {separable_only: true}\n").replace(
        "sepconv: {filters: 16}", "conv: {filters: 16}")
    c = sepspec.check(write("s.yaml", text))
    assert [(d.code, d.line, d.column) for d in c.diagnostics] == [("SEP202", 11, 11)]


def valid(doc) -> bool:
    """Does the JSON Schema that editors use accept this document?"""
    return not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))


def test_schema_reaches_nested_entries():
    assert valid(yaml.safe_load(open(RESIDUAL))) and valid(yaml.safe_load(open(MBCONV)))
    assert valid(yaml.safe_load(NAMED))
    assert valid({"extends": "b.yaml", "layers": [{"residual": {"body": [{"sepconv": {}}]}}]})  # defaults may fill
    assert not valid({"extends": "b.yaml", "layers": [{"residual": {"body": [{"sepconv": {"kernal": 3}}]}}]})
    assert not valid({"extends": "b.yaml", "layers": [{"residual": {"shortcut": "identity"}}]})  # body required
    assert not valid({"extends": "b.yaml", "layers": [{"residual": {"body": [{"residual": {"body": [{"x": 1}]}}]}}]})
    assert not valid({"extends": "b.yaml", "defaults": {"residual": {"body": []}}})


@pytest.mark.parametrize("path, params", [(RESIDUAL, 72_539), (MBCONV, 78_249)])
def test_example_specs_are_separable_and_within_the_seeds_budget(path, params):
    c = sepspec.check(path)
    assert c.ok, [d.text() for d in c.diagnostics]
    assert c.spec.rules.separable_only and c.report.params == params <= 80_203
    assert min(c.report.receptive_field) >= 32
    # the resolved spec (as a run directory records it) is the same spec
    spec = load(path)
    again = sepspec.spec.load.load_source(sepspec.spec.source.parse(spec_yaml(spec), "resolved"))
    a, b = analyse(spec), analyse(again)
    assert [(r.name, r.inputs, r.output, r.params, r.span) for r in a.rows] == \
        [(r.name, r.inputs, r.output, r.params, r.span) for r in b.rows]


def test_show_prints_the_graph_and_json_gives_inputs():
    r = run_cli("show", RESIDUAL)
    assert r.returncode == 0
    head = r.stdout.splitlines()[1]
    assert head.rstrip().endswith("from")
    add = next(line for line in r.stdout.splitlines() if " stage2_add " in line)
    assert add.rstrip().endswith("stage2_sepconv_2_bn, stage2_project_bn")
    doc = json.loads(run_cli("show", RESIDUAL, "--json").stdout)
    layers = {x["name"]: x for x in doc["layers"]}
    assert layers["stage2_add"]["inputs"] == ["stage2_sepconv_2_bn", "stage2_project_bn"]
    assert layers["sepconv_1"]["inputs"] == ["input"] and layers["stage2_project"]["inputs"] == ["stage1b_relu"]
    assert doc["params"]["total"] == 72_539 and doc["receptive_field"] == 61


def test_classifier_rules_look_through_the_graph(write):
    # a residual's merge feeds the gap: SEP208/SEP209 do not apply, SEP207 (the output shape) still does
    text = NAMED.replace("  - sepconv: 4\n  - gap: {}\n", "  - residual: {body: [sepconv: 5]}\n  - gap: {}\n")
    c = sepspec.check(write("c.yaml", text))
    assert [d.code for d in c.diagnostics] == ["SEP207"]
    # an mbconv's projection (with its batch norm) feeding the gap is a convolution: SEP209 at the block
    text = NAMED.replace("  - sepconv: 4\n  - gap: {}\n", "  - mbconv: {filters: 4, skip: false}\n  - gap: {}\n")
    c = sepspec.check(write("m.yaml", text))
    assert [(d.code, d.line, d.layer) for d in c.diagnostics] == [("SEP209", 15, "mbconv_2_project_bn")]
    # through dropout to a sepconv with the wrong width: SEP208 at its filters
    text = NAMED.replace("  - sepconv: 4\n  - gap: {}\n", "  - sepconv: 6\n  - dropout: 0.1\n  - gap: {}\n")
    c = sepspec.check(write("d.yaml", text))
    assert ("SEP208", 15, 14) in [(d.code, d.line, d.column) for d in c.diagnostics]


def test_bn_momentum_reaches_every_batch_norm_a_block_adds(write):
    from sepspec.emit import model as emit

    text = NAMED.replace("layers:\n", "defaults:\n  sepconv: {bn_momentum: 0.9}\n  mbconv: {bn_momentum: 0.8}\n"
                         "  residual: {bn_momentum: 0.7}\nlayers:\n")
    c, _ = names(write, text)
    model = emit.keras_model(c.report)
    got = {layer.name: layer.momentum for layer in model.layers if type(layer).__name__ == "BatchNormalization"}
    assert got["res1_sepconv_1_bn"] == 0.9 and got["res1_project_bn"] == 0.7
    assert got["mb2_expand_bn"] == got["mb2_dw_bn"] == got["mb2_project_bn"] == 0.8
    assert set(got.values()) == {0.9, 0.8, 0.7}


def bn_gammas(model) -> dict:
    """Each batch norm's scale in a built model, by layer name."""
    import numpy as np

    return {layer.name: np.asarray(layer.gamma) for layer in model.layers
            if type(layer).__name__ == "BatchNormalization"}


def test_bn_gamma_zeros_starts_a_residual_body_as_its_shortcut(write):
    """`bn_gamma: zeros` on a body's last batch norm: the built model's scale starts at zero there (so the block
    gives its shortcut), everywhere else at one; the Python script writes the same layer."""
    import keras
    import numpy as np

    from sepspec.emit import model as emit
    from sepspec.emit import script

    text = NAMED.replace("        - sepconv: {filters: 16}\n",
                         "        - sepconv: {filters: 16, norm: batch, bn_gamma: zeros}\n")
    c, _ = names(write, text)
    model = emit.keras_model(c.report)
    gammas = bn_gammas(model)
    assert not gammas["res1_sepconv_2_bn"].any() and gammas["res1_sepconv_2_bn"].shape == (16,)
    assert all((g == 1).all() for n, g in gammas.items() if n != "res1_sepconv_2_bn")
    body = model.get_layer("res1_sepconv_2_bn").output
    probe = keras.Model(model.input, body)
    assert not np.asarray(probe(np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32))).any()
    assert "gamma_initializer='zeros'" in script.python_source(c.report)
    assert spec_yaml(load(write("z.yaml", text))).count("bn_gamma: zeros") == 1


def test_zero_scale_on_an_mbconv_projection_and_a_batchnorm_layer(write):
    """`project_gamma: zeros` starts an mbconv with its skip as its input (the block adds nothing yet), and a
    `batchnorm` layer's `gamma: zeros` gives zeros; the other batch norms start at one."""
    import keras
    import numpy as np

    from sepspec.emit import model as emit

    text = NAMED.replace("  - mbconv: {filters: 16, name: mb2, se: 0.25}\n",
                         "  - mbconv: {filters: 16, name: mb2, se: 0.25, project_gamma: zeros}\n"
                         "  - batchnorm: {name: zbn, gamma: zeros}\n")
    c, _ = names(write, text)
    model = emit.keras_model(c.report)
    gammas = bn_gammas(model)
    assert not gammas["mb2_project_bn"].any() and not gammas["zbn"].any()
    assert all((g == 1).all() for n, g in gammas.items() if n not in ("mb2_project_bn", "zbn"))
    probe = keras.Model(model.input, [model.get_layer("res1_relu").output, model.get_layer("mb2_add").output,
                                       model.get_layer("zbn").output])
    before, after, zeroed = probe(np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32))
    assert np.asarray(before).any() and np.array_equal(np.asarray(after), np.asarray(before))
    assert not np.asarray(zeroed).any()
    resolved = spec_yaml(load(write("z.yaml", text)))
    assert "project_gamma: zeros" in resolved and "gamma: zeros" in resolved.replace("project_gamma", "")
    assert valid(yaml.safe_load(text)) and not valid(
        yaml.safe_load(text.replace("project_gamma: zeros", "project_gamma: half")))
