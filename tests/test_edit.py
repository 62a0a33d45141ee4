"""The one spec editor (`sepspec.spec.edit`): `--set`, a sweep's values and width scaling never change what they
are given, and an edited spec still reports its errors at a line a user wrote."""
import pytest

import sepspec
from sepspec.diagnostics import Pos, UserError
from sepspec.spec.edit import parse_path, scaled, with_overrides, with_value, with_width
from sepspec.spec.load import load_source, resolve

from conftest import BASE, MINIMAL


def test_load_returns_the_spec_with_its_positions_and_loading_changes_nothing(write):
    p = write("m.yaml", MINIMAL)
    src = resolve(p)
    before = repr(src.data), dict(src.values)
    spec = load_source(src)
    assert repr(src.data) == before[0] and src.values == before[1]  # shorthands were written out in a copy
    assert spec.source.data["layers"][2] == {"sepconv": {"filters": 4}}  # ...which the Spec keeps
    assert spec.source.pos(("layers", 2, "sepconv", "filters")).line == 7
    loaded = sepspec.load(p)
    assert isinstance(loaded, sepspec.Spec) and sepspec.build_model(loaded).count_params() == analyse_params(p)


def analyse_params(path):
    return sepspec.analyse(sepspec.load(path)).params


def test_with_value_writes_a_copy_and_reports_at_the_edit(write):
    src = resolve(write("m.yaml", MINIMAL))
    where = Pos("--set train.epochs", 1, 1)
    out = with_value(src, ("train", "epochs"), 0, where)
    assert "train" not in src.data and out.data["train"] == {"epochs": 0}
    with pytest.raises(sepspec.SpecError) as e:
        load_source(out)
    d = e.value.diagnostics[0]
    assert (d.file, d.line) == ("--set train.epochs", 1) and "train.epochs" in d.message
    # a shorthand entry becomes its mapping; a path that cannot exist is a KeyError or IndexError
    wider = with_value(src, ("layers", 2, "sepconv", "kernel"), 5)
    assert wider.data["layers"][2] == {"sepconv": {"filters": 4, "kernel": 5}} and src.data["layers"][2] == {"sepconv": 4}
    with pytest.raises(IndexError):
        with_value(src, ("layers", 9, "sepconv", "kernel"), 5)
    with pytest.raises(KeyError):
        with_value(src, ("name", "x"), 5)


def test_overrides_are_yaml_values_for_the_train_section_only(write):
    src = resolve(write("m.yaml", MINIMAL))
    out = with_overrides(src, ["train.optimizer.learning_rate=0.02", "train.augment={flip: true}"])
    spec = load_source(out)
    assert spec.train.optimizer.learning_rate == 0.02 and spec.train.augment.flip is True
    for bad, says in (("layers=[]", "expected train.KEY=VALUE"), ("train.epochs", "expected train.KEY=VALUE"),
                      ("train.epochs=!!python/object:os.system x", "tag"), ("train=3", "expected train.KEY")):
        with pytest.raises(UserError) as e:
            with_overrides(src, [bad])
        assert says in str(e.value), (bad, str(e.value))


def test_paths_and_width_scaling():
    assert parse_path("layers[2].residual.body[0].sepconv.kernel") == ("layers", 2, "residual", "body", 0, "sepconv",
                                                                      "kernel")
    assert parse_path("[2].x") is None and parse_path("a..b") is None and parse_path("a[x]") is None
    assert [scaled(f, 0.5) for f in (4, 10, 32, 96)] == [4, 4, 16, 48]
    spec = sepspec.load(BASE)
    before = repr(spec.source.data)
    half = load_source(with_width(spec.source, 0.5, ("layers", 8)))  # base's classifier is its 9th entry
    assert repr(spec.source.data) == before
    widths = [r.layer.filters for r in sepspec.analyse(half).rows if r.layer.keras == "SeparableConv2D"]
    assert widths == [16, 24, 48, 64, 80, 96, 10]  # defaults and shorthands scaled alike; the classifier kept


def test_width_scaling_reaches_into_branches_and_scales_channel_groups(write):
    text = ("name: p\ninput: [16, 16, 3]\nclasses: 4\nlayers:\n  - sepconv: 16\n"
            "  - parallel: {split: channels, sizes: [8, 4, 4], branches: [[], [pointwise: 4], [depthwise: 3]]}\n"
            "  - sepconv: 4\n  - gap: {}\n")
    src = resolve(write("p.yaml", text))
    wide = with_width(src, 2.0, keep=("layers", 2))
    block = wide.data["layers"][1]["parallel"]
    assert block["sizes"] == [16, 8, 8] and block["branches"][1] == [{"pointwise": {"filters": 8}}]
    c = sepspec.check_spec(load_source(wide), "p")
    assert c.ok and c.report.row("parallel_1_concat").output == (16, 16, 32)
    assert src.data["layers"][1]["parallel"]["sizes"] == [8, 4, 4]  # the source is unchanged
