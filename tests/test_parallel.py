"""`parallel` blocks, grouped 1x1s, `shuffle` and layer norm through the whole compiler: the format (names,
defaults, nesting, errors at their lines), show / compile, a .keras file that plain Keras loads in safe mode,
training on TensorFlow and JAX, and export to int8 LiteRT and ONNX measured after conversion."""
import csv
import importlib.util
import json
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest

import sepspec
from sepspec import analyse, load

from conftest import OFFLINE, run_cli, trained_run

MIXER = """
name: mixer
input: [32, 32, 3]
classes: 10
rules: {separable_only: true}
defaults:
  parallel: {activation: relu}
layers:
  - sepconv: {filters: 16, norm: batch, activation: relu}
  - parallel:
      split: channels
      sizes: [8, 4, 4]
      branches:
        - []
        - [{depthwise: 3}]
        - [{avgpool: {size: 3, stride: 1, padding: same}}, {depthwise: {kernel: 7, dilation: 3}}]
      activation: none
  - layernorm: {}
  - parallel:
      name: glu
      branches: [[pointwise: 24], [pointwise: {filters: 24, activation: sigmoid}]]
      merge: multiply
  - pointwise: {filters: 16, groups: 4, norm: layer}
  - shuffle: 4
  - residual:
      body:
        - parallel: {branches: [[depthwise: 3], [depthwise: 5]], merge: add, repeat: 2}
  - sepconv: {filters: 10, stride: 2}
  - gap: {}
  - activation: softmax
train: {epochs: 1, batch_size: 32}
"""


def _report(write, text=MIXER):
    c = sepspec.check(write("s.yaml", text))
    assert c.ok, [d.text() for d in c.diagnostics]
    return c.report


def test_layers_are_named_and_wired_as_documented(write):
    rep = _report(write)
    names = [r.name for r in rep.rows]
    assert names[3:7] == ["parallel_1_split_1", "parallel_1_split_2", "parallel_1_split_3",
                          "parallel_1_b2_depthwise_1"]
    cat = rep.row("parallel_1_concat")
    assert cat.inputs == ("parallel_1_split_1", "parallel_1_b2_depthwise_1", "parallel_1_b3_depthwise_1")
    assert cat.output == (32, 32, 16) and "parallel_1_relu" not in names  # the block's own `activation: none`
    assert rep.row("glu_multiply").inputs == ("glu_b1_pointwise_1", "glu_b2_pointwise_1_sigmoid")
    assert rep.row("glu_relu") is not None  # defaults.parallel.activation
    g = rep.row("pointwise_1")
    assert (g.layer.groups, g.trainable, g.macs) == (4, 24 // 4 * 16 + 16, 32 * 32 * 16 * 6)
    assert rep.row("pointwise_1_ln").trainable == 32
    assert [r.name for r in rep.rows if r.name.startswith("shuffle_1")] == [
        "shuffle_1_groups", "shuffle_1_transpose", "shuffle_1"]
    assert rep.row("shuffle_1_groups").output == (32, 32, 4, 4) and rep.row("shuffle_1").output == (32, 32, 16)
    # repeat inside a residual's body: the copy is <name>_2, and it takes the first copy's output
    assert rep.row("residual_1_parallel_1_2_add").inputs == ("residual_1_parallel_1_2_b1_depthwise_1",
                                                              "residual_1_parallel_1_2_b2_depthwise_1")
    assert rep.row("residual_1_parallel_1_2_b1_depthwise_1").inputs == ("residual_1_parallel_1_relu",)
    # receptive field: the dilated branch's 21 (3 + 18) on top of the stem's 3 is the union at the concat
    assert rep.row("parallel_1_concat").rf == (3 + 2 + 18, 3 + 2 + 18)


def test_a_channel_shuffle_moves_channel_j_of_group_i_to_j_times_groups_plus_i(write):
    from sepspec.emit.model import keras_model

    rep = _report(write, "name: s\ninput: [2, 2, 6]\nclasses: 6\nlayers:\n  - shuffle: 2\n  - gap: {}\n")
    x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6) * np.ones((1, 2, 2, 6), "float32")
    out = np.asarray(keras_model(rep)(x))[0]
    assert out.tolist() == [0, 3, 1, 4, 2, 5]


@pytest.mark.parametrize("text, code, where, words", [
    # an unknown kind inside a branch: at its own line, with a suggestion
    ("  - parallel:\n      branches:\n        - [depthwse: 3]\n        - []\n", "SEP108", (8, 12), "did you mean 'depthwise'"),
    # an unknown key inside a branch's entry, two blocks deep
    ("  - residual:\n      body:\n        - parallel:\n            branches: [[], [depthwise: {kernal: 3}]]\n",
     "SEP101", (9, 41), "did you mean 'kernel'"),
    ("  - parallel: {branches: [[]]}\n", "SEP103", (6, 26), "at least 2 items"),
    ("  - parallel: {branches: [[], []], merge: max}\n", "SEP103", (6, 43), "'concat', 'add' or 'multiply'"),
    ("  - parallel: {branches: [[], []], split: half}\n", "SEP103", (6, 43), "'copy' or 'channels'"),
])
def test_errors_inside_blocks_are_reported_at_their_lines(write, text, code, where, words):
    spec = f"name: p\ninput: [16, 16, 4]\nclasses: 4\nlayers:\n  - sepconv: 8\n{text}  - sepconv: 4\n  - gap: {{}}\n"
    c = sepspec.check(write("p.yaml", spec))
    found = [(d.code, (d.line, d.column)) for d in c.diagnostics]
    assert found == [(code, where)], [d.text() for d in c.diagnostics]
    assert words in c.diagnostics[0].text()


def test_defaults_may_set_split_merge_and_activation_but_not_branches(write):
    base = "name: p\ninput: [16, 16, 4]\nclasses: 4\ndefaults:\n  parallel: {X}\nlayers:\n" \
           "  - parallel: {branches: [[depthwise: 3], []]}\n  - sepconv: 4\n  - gap: {}\n"
    rep = _report(write, base.replace("{X}", "{split: channels, merge: add, activation: relu}"))
    assert [r.name for r in rep.rows][:4] == ["parallel_1_split_1", "parallel_1_split_2", "parallel_1_b1_depthwise_1",
                                              "parallel_1_add"]
    for key in ("branches: [[], []]", "sizes: [2, 2]", "name: x"):
        c = sepspec.check(write("d.yaml", base.replace("{X}", "{" + key + "}")))
        assert [(d.code, d.line) for d in c.diagnostics] == [("SEP101", 5)], key


def test_separable_only_allows_the_new_kinds_and_refuses_conv_inside_a_branch(write):
    assert sepspec.check(write("ok.yaml", MIXER)).ok
    text = MIXER.replace("[{depthwise: 3}]", "[{conv: {filters: 4, kernel: 3}}]")
    c = sepspec.check(write("bad.yaml", text))
    assert [(d.code, d.line, d.column) for d in c.diagnostics] == [("SEP202", 14, 13)]
    assert "layers[1].parallel.branches[1][0]: `conv` is not allowed" in c.diagnostics[0].message


def test_show_json_and_table_name_every_input(write):
    path = write("s.yaml", MIXER)
    r = run_cli("show", path, "--json")
    assert r.returncode == 0, r.stderr
    rows = {x["name"]: x for x in json.loads(r.stdout)["layers"]}
    assert rows["parallel_1_concat"]["inputs"] == ["parallel_1_split_1", "parallel_1_b2_depthwise_1",
                                                    "parallel_1_b3_depthwise_1"]
    assert rows["parallel_1_split_2"]["keras"] == "Cropping2D"
    r = run_cli("show", path)
    line = next(x for x in r.stdout.splitlines() if " glu_multiply " in x)
    assert line.rstrip().endswith("glu_b1_pointwise_1, glu_b2_pointwise_1_sigmoid")


@pytest.mark.slow
def test_compiled_model_and_source_equal_the_analysis_and_load_in_plain_keras(tmp_path, write):
    from sepspec.emit import model as emit

    path = write("s.yaml", MIXER)
    rep = analyse(load(path))
    out = tmp_path / "m.keras"
    assert run_cli("compile", path, "-o", str(out)).returncode == 0
    # a fresh interpreter that imports only Keras, safe mode on, no custom objects
    probe = ("import sys, keras, numpy as np; m = keras.saving.load_model(sys.argv[1], safe_mode=True); "
             "print(m.count_params(), 'sepspec' in sys.modules, sorted({type(l).__name__ for l in m.layers}))")
    r = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True, text=True, cwd=str(tmp_path),
                       env={**os.environ, "PYTHONPATH": ""})
    assert r.returncode == 0, r.stderr
    count, imported, classes = r.stdout.strip().split(" ", 2)
    assert int(count) == rep.params and imported == "False"
    assert all(c in classes for c in ("Cropping2D", "Concatenate", "LayerNormalization", "Reshape", "Permute"))
    src = run_cli("compile", path, "--to", "python").stdout
    (tmp_path / "model.py").write_text(src)
    assert emit.differences(rep, runpy.run_path(str(tmp_path / "model.py"))["model"]) == []
    assert "x = layers.Concatenate(name='parallel_1_concat', axis=-1)([t['parallel_1_split_1'], " in src
    assert "# concatenate of parallel_1_split_1 (rin=3, jin=1), parallel_1_b2_depthwise_1 (rin=5, jin=1) and " in src
    r = run_cli("show", "--keras", path)
    assert r.returncode == 0 and "analysis and Keras agree on every layer" in r.stdout


ENV = OFFLINE


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    return trained_run(tmp_path_factory, MIXER, data)


@pytest.mark.slow
def test_trains_and_exports_to_int8_and_onnx_measured_after_conversion(tmp_path, trained, data):
    from ai_edge_litert import schema_py_generated as fb

    from sepspec.data.read import load_data
    from sepspec.deploy.runtime import scores
    from sepspec.train import rundir
    from sepspec.train.pipeline import normalize
    from sepspec.train.predict import probabilities

    m = json.load(open(os.path.join(trained, "metrics.json")))
    assert m["status"] == "finished" and m["params"] == analyse(load(os.path.join(trained, "spec.yaml"))).params
    x = load_data(data).x_test
    stats = m["normalization"]
    want = probabilities(rundir.load_model(os.path.join(trained, "best.keras")), normalize(x, stats["mean"], stats["std"]))
    q, o = str(tmp_path / "q.tflite"), str(tmp_path / "m.onnx")
    for fmt, f in (("litert-int8", q), ("onnx", o)):
        r = run_cli("export", trained, "--format", fmt, "-o", f, "--calibration", "32", env=ENV)
        assert r.returncode == 0, r.stderr
    assert np.abs(scores(o, x) - want).max() < 1e-4
    assert np.abs(scores(q, x) - want).max() < 0.1  # int8: layer norm and a gate on top of the convolutions
    with open(q, "rb") as fh:
        mm = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(fh.read()), 0))
    codes = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    ops = {codes[max(mm.operatorCodes[op.opcodeIndex].builtinCode, mm.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)]
           for op in mm.subgraphs[0].operators}
    assert {"STRIDED_SLICE", "CONCATENATION", "RSQRT", "TRANSPOSE", "SPACE_TO_BATCH_ND"} <= ops
    assert not ops & {"DEQUANTIZE", "NEG", "CUSTOM", "FLEX_DELEGATE"}, ops  # layer norm is all int8


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed (the dev extra has it)")
def test_trains_on_jax(tmp_path, data):
    spec = tmp_path / "mixer.yaml"
    spec.write_text(MIXER.lstrip())
    out = str(tmp_path / "run")
    r = run_cli("train", str(spec), "--data", data, "--out", out, "--train-limit", "128", "--val-limit", "64",
                env={**ENV, "KERAS_BACKEND": "jax"})
    assert r.returncode == 0, r.stderr
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["backend"] == "jax" and m["status"] == "finished"
    with open(os.path.join(out, "history.csv")) as f:
        assert np.isfinite(float(list(csv.DictReader(f))[-1]["loss"]))
