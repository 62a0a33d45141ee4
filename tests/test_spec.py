"""The spec format: shorthands, defaults, repeat, names, extends, strict types and error positions."""
import pytest

import sepspec
from sepspec import analyse, load
from sepspec.spec.source import SpecError

from conftest import BASE, MINIMAL


def errors(path):
    c = sepspec.check(path)
    return [(d.code, d.line, d.column) for d in c.diagnostics], c.diagnostics


def test_base_layers_and_names():
    spec = load(BASE)
    names = [r.name for r in analyse(spec).rows]
    assert names[:4] == ["sepconv_1", "sepconv_1_dropout", "sepconv_1_bn", "sepconv_1_relu"]
    assert names[-3:] == ["sepconv_7", "gap_1", "activation_1"]
    assert len(names) == 29
    assert spec.train.optimizer.learning_rate == 0.01 and spec.train.schedule.decay_rate == 0.319


def test_shorthand_defaults_repeat_and_names(write):
    p = write("r.yaml", """
        name: r
        input: 16
        classes: 4
        defaults:
          sepconv: {kernel: [3, 1], norm: batch, activation: relu}
        layers:
          - sepconv: {filters: 8, name: conv3, repeat: 3}
          - sepconv: {filters: 4, norm: none, activation: none}
          - gap:
        """)
    spec = load(p)
    names = [r.name for r in analyse(spec).rows]
    assert names == ["conv3", "conv3_bn", "conv3_relu", "conv3_2", "conv3_2_bn", "conv3_2_relu",
                     "conv3_3", "conv3_3_bn", "conv3_3_relu", "sepconv_2", "gap_1"]
    assert analyse(spec).rows[0].layer.kernel == (3, 1)
    assert list(spec.input) == [16, 16, 3]


def test_bad_default_is_reported_once_at_the_default(write):
    p = write("b.yaml", MINIMAL.replace("layers:", "defaults:\n  sepconv: {bias: yes, kernal: 3}\nlayers:"))
    found, d = errors(p)
    assert found == [("SEP102", 5, 19), ("SEP101", 5, 24)]
    assert "true/false" in d[0].hint
    assert "did you mean 'kernel'" in d[1].hint


@pytest.mark.parametrize("line, code, where", [
    ("  - sepconv: true", "SEP102", (5, 14)),           # filters: true is not 1
    ("  - sepconv: {filters: 8.0}", "SEP102", (5, 24)),  # nor is 8.0
    ("  - sepconv: -3", "SEP103", (5, 14)),
    ("  - sepconv: {filters: 8, padding: vaild}", "SEP103", (5, 36)),
    ("  - sepconv: {filters: 8, strid: 2}", "SEP101", (5, 27)),
    ("  - sepcov: 8", "SEP108", (5, 5)),
    ("  - 8", "SEP108", (5, 5)),
    ("  - {sepconv: 8, maxpool: 2}", "SEP108", (5, 5)),
    ("  - sepconv: {kernel: [3, 3, 3], filters: 8}", "SEP103", (5, 23)),
    ("  - dropout: 1.5", "SEP103", (5, 14)),
])
def test_wrong_values_are_reported_at_the_value(write, line, code, where):
    text = MINIMAL.replace("  - sepconv: {filters: 8, norm: batch, activation: relu}", line)
    found, _ = errors(write("w.yaml", text))
    assert (code, *where) in found


def test_missing_required_and_unknown_top_level(write):
    found, d = errors(write("m.yaml", "name: m\nclases: 10\nlayers: [{gap: {}}]\n"))
    assert ("SEP101", 2, 1) in found
    assert [x.message for x in d if x.code == "SEP104"] == ["spec: missing required key 'input'",
                                                             "spec: missing required key 'classes'"]
    assert any(x.hint == "did you mean 'classes'?" for x in d)


def test_train_section_is_validated(write):
    text = MINIMAL + "train:\n  epochs: 0\n  optimizer: {name: adamm, learning_rate: 1e-3}\n  schedule: {name: step, every: 1.5}\n"
    found, d = errors(write("t.yaml", text))
    assert ("SEP103", 11, 11) in found
    assert ("SEP103", 12, 21) in found and "did you mean 'adam'" in [x.hint for x in d if x.line == 12][0]
    assert ("SEP102", 13, 33) in found


def test_train_numbers_like_1e_minus_3_are_numbers(write):
    spec = load(write("t.yaml", MINIMAL + "train: {optimizer: {name: sgd, learning_rate: 1e-3, nesterov: true}}\n"))
    assert spec.train.optimizer.learning_rate == 0.001 and spec.train.optimizer.momentum == 0.9


def test_extends_merges_mappings_and_replaces_lists(write):
    write("specs/base.yaml", open(BASE).read())
    p = write("specs/variants/wide.yaml", """
        extends: ../base.yaml
        rules: {max_params: 200000}
        train: {epochs: 5}
        """)
    spec = load(p)
    src = spec.source
    assert spec.name == "wide"  # the name is the variant's own
    assert spec.rules.max_params == 200000 and spec.rules.separable_only is True
    assert spec.train.epochs == 5 and spec.train.batch_size == 256
    assert len(spec.layers) == 11
    assert src.values[("layers", 0, "sepconv")].file.endswith("base.yaml")
    assert src.values[("train", "epochs")].file.endswith("wide.yaml")


def test_inherited_value_is_reported_in_the_parent_file(write):
    write("parent.yaml", MINIMAL.replace("  - sepconv: 4\n", "  - sepconv: 5\n"))
    p = write("child.yaml", "extends: parent.yaml\nname: child\n")
    found, d = errors(p)
    assert ("SEP208", 7, 14) in found
    assert d[0].file.endswith("parent.yaml")


def test_extends_missing_and_cycle(write):
    found, d = errors(write("a.yaml", "name: a\nextends: nope.yaml\n"))
    assert found == [("SEP105", 2, 10)]
    write("c1.yaml", "extends: c2.yaml\n")
    write("c2.yaml", "extends: c1.yaml\n")
    found, d = errors(write("c0.yaml", "extends: c1.yaml\n"))
    assert found[0][0] == "SEP106" and "cycle" in d[0].message
    found, _ = errors(write("self.yaml", "extends: self.yaml\n"))
    assert found == [("SEP106", 1, 10)]


def test_not_a_mapping(write):
    found, _ = errors(write("l.yaml", "- 1\n- 2\n"))
    assert found == [("SEP102", 1, 1)]


def test_load_raises_for_library_users(write):
    with pytest.raises(SpecError):
        load(write("x.yaml", "name: [\n"))


def test_a_number_is_finite_wherever_a_spec_takes_one(write):
    """`.nan` and `.inf` are YAML numbers; no spec value, train: setting or kernel option takes one (a NaN learning
    rate or penalty would only show as a NaN loss an epoch later)."""
    p = write("nan.yaml", """\
name: nan
input: 32
classes: 10
layers:
  - conv: {filters: 4, bn_momentum: .nan, norm: batch, l2: .inf}
  - conv: {filters: 4, kernel_init: {name: random_normal, mean: .nan}}
  - leaky_relu: .inf
  - gap: {}
train: {optimizer: {name: sgd, learning_rate: .inf}}
""")
    with pytest.raises(SpecError) as e:
        load(p)
    found = sorted((d.line, d.column, d.message.split(":")[0]) for d in e.value.diagnostics)
    assert found == [(5, 37, "layers[0].conv.bn_momentum"), (5, 60, "layers[0].conv.l2"),
                     (6, 65, "layers[1].conv.kernel_init.mean"), (7, 17, "layers[2].leaky_relu.negative_slope"),
                     (9, 47, "train.optimizer.learning_rate")], found
    assert all("finite number" in d.message for d in e.value.diagnostics)
