"""Property tests: for every spec a person can write, the analysis is exactly what Keras builds, and
broken specs or random YAML produce diagnostics, never another exception.

Longer search: pytest tests/test_properties.py --hypothesis-profile=thorough
"""
import re

import pytest
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

import sepspec
from sepspec.emit import model as emit
from sepspec.lazy import import_keras
from sepspec.spec.source import MAX_DEPTH

from strategies import dump, invalid_specs, targeted_specs, valid_specs, yaml_values

CODE = re.compile(r"^SEP\d{3}$")


def _check_text(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("spec") / "s.yaml"
    p.write_text(text)
    return sepspec.check(str(p))


def _well_formed(c):
    for d in c.diagnostics:
        assert CODE.match(d.code) and d.line >= 1 and d.column >= 1 and "\n" not in d.message, d


@pytest.mark.slow
@given(valid_specs())
def test_analysis_equals_keras_layer_by_layer(tmp_path_factory, spec):
    c = _check_text(tmp_path_factory, dump(spec))
    assert c.ok, [d.text() for d in c.diagnostics]
    rep = c.report
    model = emit.keras_model(rep)
    built = sorted(emit.keras_rows(model))  # matched by name: Keras orders a graph's layers its own way
    expected = sorted((r.name, r.layer.keras, tuple(r.output), r.trainable, r.non_trainable) for r in rep.rows)
    assert built == expected
    assert model.count_params() == rep.params
    assert tuple(model.output.shape[1:]) == (spec["classes"],)
    import_keras().backend.clear_session()


@given(targeted_specs(), st.data())
def test_a_target_is_refused_exactly_when_the_int8_model_exceeds_its_flash_or_ram(tmp_path_factory, spec, data):
    """The part's budgets drawn around the spec's own figures (one byte under, equal, one over), so that both sides of
    the rule are reached: SEP219 exactly when the weights exceed the flash or the arena the RAM, at `target:`."""
    from sepspec.graph.memory import estimate
    from sepspec.targets import TARGETS

    text = dump(spec)
    d = estimate(_check_text(tmp_path_factory, text).report)
    name = spec["rules"]["target"]
    flash = d.flash_bytes + data.draw(st.sampled_from([-1, 0, 1]), label="flash budget - weights")
    ram = d.arena_bytes + data.draw(st.sampled_from([-1, 0, 1]), label="RAM budget - arena")
    saved = TARGETS[name]
    TARGETS[name] = (flash, ram, saved[2])
    try:
        c = _check_text(tmp_path_factory, text)
    finally:
        TARGETS[name] = saved
    _well_formed(c)
    refused = [x for x in c.diagnostics if x.code == "SEP219"]
    event("refused" if refused else "fits")
    assert bool(refused) == (d.flash_bytes > flash or d.arena_bytes > ram), (d.flash_bytes, d.arena_bytes)
    if refused:
        at = next(i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith("target:"))
        assert refused[0].line == at and ("flash" in refused[0].message) == (d.flash_bytes > flash)
        assert ("RAM" in refused[0].message) == (d.arena_bytes > ram)


@given(invalid_specs())
def test_broken_specs_are_rejected_with_diagnostics(tmp_path_factory, case):
    text, how = case
    c = _check_text(tmp_path_factory, text)
    assert not c.ok, (how, text)
    _well_formed(c)
    expected = {"shrink": {"SEP205"}, "classifier": {"SEP207", "SEP208"}, "unknown_key": {"SEP101"},
                "wrong_type": {"SEP102", "SEP103", "SEP104"}, "unknown_kind": {"SEP108"},
                "merge_shape": {"SEP211"}, "projection": {"SEP213"}, "nested_key": {"SEP101"},
                "groups": {"SEP218"}, "branches_differ": {"SEP211", "SEP212"}, "branch_key": {"SEP101"}}[how]
    assert expected & {d.code for d in c.diagnostics}, (how, [d.text() for d in c.diagnostics])


@given(yaml_values())
def test_random_yaml_documents_never_crash(tmp_path_factory, value):
    c = _check_text(tmp_path_factory, yaml.safe_dump(value))
    _well_formed(c)
    if c.report is None:  # it did not load: the loader said why
        assert not c.ok and c.diagnostics
    elif c.report.failure is not None:  # it loaded but cannot be built: a rule reports exactly that, at a line
        assert c.report.failure.code in {d.code for d in c.diagnostics}


@given(st.integers(45, 2000), st.sampled_from(["[", "{a: ", "- "]))
@example(49, "[")  # 50 levels: MAX_DEPTH, allowed
@example(50, "[")  # 51: refused
@example(50, "- ")  # 50: allowed (the dash text below writes depth - 1 dashes)
@example(51, "- ")  # 51: refused
def test_deep_nesting_is_a_diagnostic(tmp_path_factory, depth, opener):
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    text = "a: " + opener * depth + "1" + closer * depth if opener != "- " else \
        "a:\n" + "".join("  " * i + "-\n" for i in range(1, depth))
    levels = 1 + (depth if opener != "- " else depth - 1)  # the top mapping, then the nested collections
    c = _check_text(tmp_path_factory, text)
    _well_formed(c)
    assert not c.ok and (c.diagnostics[0].code == "SEP004") == (levels > MAX_DEPTH), (levels, c.diagnostics[0])


@given(st.text(max_size=200))
def test_random_text_never_crashes(tmp_path_factory, text):
    c = _check_text(tmp_path_factory, text)
    _well_formed(c)
