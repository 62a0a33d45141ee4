"""Safe YAML with positions: what a person reads is what the spec means, and nothing runs."""
import pytest

from sepspec.spec.source import MAX_NODES, SpecError, parse


def codes(text):
    with pytest.raises(SpecError) as e:
        parse(text, "x.yaml")
    return [(d.code, d.line, d.column) for d in e.value.diagnostics], e.value.diagnostics


def test_yaml_12_scalars():
    d = parse("a: 1e-3\nb: yes\nc: off\nd: true\ne: 1_000\nf: 1:20\ng: 0x10\nh: '3'\ni: ~\nj: 2.5\nk: -4\n", "x").data
    assert d == {"a": 0.001, "b": "yes", "c": "off", "d": True, "e": "1_000", "f": "1:20", "g": 16, "h": "3",
                 "i": None, "j": 2.5, "k": -4}
    assert isinstance(d["a"], float)


def test_positions_of_values_and_keys():
    src = parse("name: a\nlayers:\n  - sepconv: 32\n  - maxpool: {size: 2}\n", "x.yaml")
    assert (src.values[("layers", 0, "sepconv")].line, src.values[("layers", 0, "sepconv")].column) == (3, 14)
    assert (src.keys[("layers", 1, "maxpool", "size")].line, src.keys[("layers", 1, "maxpool", "size")].column) == (4, 15)
    assert src.values[("layers", 1)].column == 5


@pytest.mark.parametrize("text", [
    "x: !!python/object/apply:os.system ['touch {marker}']\n",
    "x: !!python/object/new:os.system ['touch {marker}']\n",
    "!!python/name:os.system\n",
    "x: !custom 3\n",
    "x: !!str 3\n",
    "x: !!map {{a: 1}}\n",
])
def test_any_tag_is_refused_and_nothing_runs(tmp_path, text):
    marker = tmp_path / "ran"
    found, _ = codes(text.format(marker=marker))
    assert found[0][0] == "SEP002"
    assert not marker.exists()


def test_duplicate_key_reports_second_with_first_line():
    found, d = codes("name: a\nclasses: 3\nname: b\n")
    assert found == [("SEP003", 3, 1)]
    assert "line 1" in d[0].message


def test_syntax_error_has_its_line():
    found, _ = codes("name: a\nlayers: [\n  - x\n")
    assert found[0][0] == "SEP001" and found[0][1] >= 3


def test_alias_expansion_is_capped():
    lines = ["a: &a [1,1,1,1,1,1,1,1,1]"]
    for prev, cur in zip("abcdefg", "bcdefgh"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(lines) + "\n"
    assert len(text) < 1024  # a 1 KB file that would expand to 43 million nodes
    found, d = codes(text)
    assert found[0][0] == "SEP004" and str(MAX_NODES) in d[0].message


def test_small_aliases_are_fine():
    assert parse("a: &k [3, 3]\nb: *k\n", "x").data == {"a": [3, 3], "b": [3, 3]}


def test_merge_keys_are_refused():
    found, _ = codes("a: &a {x: 1}\nb:\n  <<: *a\n")
    assert found == [("SEP005", 3, 3)]


def test_empty_file_is_an_empty_mapping():
    assert parse("", "x").data == {}


@pytest.mark.parametrize("text", ["a: " + "[" * 500 + "]" * 500,  # flow: deeper than PyYAML can compose
                                  "a:\n" + "".join("  " * i + "-\n" for i in range(1, 120)),  # block style
                                  "{a: " * 60 + "1" + "}" * 60])
def test_deep_nesting_is_an_error_not_a_crash(text):
    assert len(text) < 16_000
    found, d = codes(text)
    assert found[0][0] == "SEP004" and "nested" in d[0].message


def test_a_long_list_is_not_told_about_aliases():
    text = "layers:\n" + "  - sepconv: 4\n" * 10_001
    found, d = codes(text)
    assert found[0][0] == "SEP004" and "repeat" in d[0].hint and "alias" not in d[0].hint
