"""One test per rule: a spec that breaks it, the code, and where it is reported."""
import glob

import pytest

import sepspec
from sepspec.rules import RULES

from conftest import BASE, MINIMAL

BASE_TEXT = open(BASE).read()


def diags(write, text, name="s.yaml"):
    c = sepspec.check(write(name, text))
    return [(d.code, d.line, d.column) for d in c.diagnostics], c.diagnostics


def line_of(text, needle):
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert lines, needle
    return lines[0]


def test_base_is_valid():
    assert sepspec.check(BASE).diagnostics == []


def test_SEP201_receptive_field(write):
    text = BASE_TEXT.replace("min_receptive_field: 32", "min_receptive_field: 35")
    found, d = diags(write, text)
    assert found == [("SEP201", line_of(text, "min_receptive_field"), 3)]
    assert "receptive field 34 < min_receptive_field 35" in d[0].message
    assert diags(write, BASE_TEXT.replace("min_receptive_field: 32", "min_receptive_field: 34"))[0] == []  # equal passes


def test_SEP202_separable_only(write):
    text = BASE_TEXT.replace("  - sepconv: 48", "  - conv: 48")
    found, d = diags(write, text)
    assert found == [("SEP202", line_of(text, "- conv: 48"), 5)]
    assert diags(write, text.replace("separable_only: true", "separable_only: false"))[0] == []


def test_SEP203_max_params_without_allocating(write):
    text = BASE_TEXT.replace("  - sepconv: 160", "  - sepconv: 1000000000")
    found, d = diags(write, text)
    assert found == [("SEP203", line_of(text, "max_params"), 3)]
    assert "> max_params 100,000" in d[0].message and "largest: sepconv_6" in d[0].message


def test_SEP203_has_a_ceiling_when_unset(write):
    text = MINIMAL.replace("filters: 8,", "filters: 1000000000,")
    found, d = diags(write, text)
    assert found == [("SEP203", 7, 5)]  # no max_params key: reported at the largest layer (sepconv_2)


def test_SEP204_max_macs(write):
    text = BASE_TEXT.replace("max_params: 100000", "max_params: 100000\n  max_macs: 17000000")
    found, d = diags(write, text)
    assert found == [("SEP204", line_of(text, "max_macs"), 3)]
    assert "17,275,520 MACs > max_macs 17,000,000" in d[0].message


def test_SEP205_spatial_size_names_the_layer(write):
    text = BASE_TEXT.replace("  - maxpool: 2\n  - sepconv: 128", "  - maxpool: 33\n  - sepconv: 128")
    found, d = diags(write, text)
    assert found == [("SEP205", line_of(text, "maxpool: 33"), 5)]
    assert "maxpool_1" in d[0].message and "window 33x33" in d[0].message and "-> 0x0" in d[0].message


def test_SEP206_needs_an_image(write):
    text = MINIMAL.replace("  - gap: {}\n", "  - gap: {}\n  - maxpool: 2\n")
    found, d = diags(write, text)
    assert found == [("SEP206", 9, 5)]
    # a dropout's noise_shape: one number per axis of its input, each 1 or that axis's size
    for shape, ok in (("[1, 1, 1]", True), ("[16, 16, 1]", True), ("[1, 1]", False), ("[1, 1, 5]", False)):
        text = MINIMAL.replace("  - maxpool: 2\n", f"  - dropout: {{rate: 0.1, noise_shape: {shape}}}\n  - maxpool: 2\n")
        found, d = diags(write, text)
        assert (found == []) if ok else (found == [("SEP206", 6, 5)] and "noise_shape" in d[0].message), (shape, d)


def test_SEP207_classifier_output(write):
    text = MINIMAL.replace("  - gap: {}\n", "")
    found, d = diags(write, text)
    assert found == [("SEP207", 8, 5)]
    assert "[8, 8, 4]" in d[0].message and "expected [4]" in d[0].message


def test_SEP208_classifier_width(write):
    text = BASE_TEXT.replace("filters: 10, padding: valid", "filters: 12, padding: valid")
    found, d = diags(write, text)
    line = line_of(text, "filters: 12")
    assert ("SEP208", line, 24) in found and ("SEP207", line + 2, 5) in found


def test_SEP209_nothing_between_last_conv_and_gap(write):
    text = BASE_TEXT.replace("dropout: 0, norm: none, activation: none", "dropout: 0, norm: batch, activation: none")
    found, d = diags(write, text)
    line = line_of(text, "filters: 10")
    assert found == [("SEP209", line, 62)]
    assert "sepconv_7_bn" in d[0].message
    assert "rules: {classifier_head: false}" in d[0].hint
    assert diags(write, text.replace("rules:\n", "rules:\n  classifier_head: false\n"))[0] == []  # meant so


def test_SEP210_conv_stride_with_dilation(write):
    text = MINIMAL.replace("  - maxpool: 2\n", "  - conv: {filters: 4, stride: 2, dilation: 2}\n")
    found, d = diags(write, text)
    assert found == [("SEP210", 6, 45)]
    # SeparableConv2D accepts the same combination
    assert diags(write, text.replace("conv: {filters: 4, stride", "sepconv: {filters: 4, stride"))[0] == []


def test_SEP107_duplicate_names(write):
    text = MINIMAL.replace("- maxpool: 2", "- maxpool: {size: 2, name: sepconv_1_bn}")
    found, d = diags(write, text)
    assert found == [("SEP107", 6, 30)]
    assert "'sepconv_1_bn' is already used" in d[0].message
    # a block's generated names count too: a layer named like a residual's merge
    text = MINIMAL.replace("- maxpool: 2", "- residual: {name: r, body: [sepconv: 8]}\n  - maxpool: {size: 2, name: r_add}")
    found, d = diags(write, text)
    assert found == [("SEP107", 7, 30)]


BRANCHY = """
name: b
input: [16, 16, 3]
classes: 4
layers:
  - sepconv: 8
{block}
  - sepconv: 4
  - gap: {{}}
"""


def test_SEP211_merge_shapes_differ(write):
    text = BRANCHY.format(block="  - residual:\n      body: [sepconv: 16]\n      shortcut: identity")
    found, d = diags(write, text)
    assert found == [("SEP211", 8, 17)]  # at the shortcut's value
    assert "identity gives the block's input 16x16x8, the body gives 16x16x16" in d[0].message
    text = BRANCHY.format(block="  - residual: {body: [sepconv: 16], shortcut: [pointwise: 8]}")
    found, d = diags(write, text)
    assert found == [("SEP211", 6, 5)]  # a list shortcut: at the block, naming both branches and shapes
    assert "residual_1_sepconv_1 (16x16x16) and residual_1_shortcut_pointwise_1 (16x16x8)" in d[0].message


def test_SEP220_a_name_not_visible_where_it_is_read(write):
    text = MINIMAL.replace("  - sepconv: 4\n", "  - sepconv: {filters: 4, from: sepconv_l}\n")
    found, d = diags(write, text)
    assert found == [("SEP220", 7, 33)]  # at the name
    assert "no tensor named 'sepconv_l' before this entry; did you mean 'sepconv_1'?" in d[0].message
    text = MINIMAL.replace("  - maxpool: 2\n", "  - maxpool: 2\n  - add: [maxpool_1, sepconv_2]\n")
    found, d = diags(write, text)  # written after: not visible yet
    assert found == [("SEP220", 7, 22)] and "'sepconv_2'" in d[0].message


def test_SEP221_an_output_nothing_reads(write):
    text = MINIMAL.replace("  - sepconv: 4\n", "  - sepconv: {filters: 4, from: sepconv_1}\n")
    found, d = diags(write, text)
    assert found == [("SEP221", 6, 5)]  # the maxpool, jumped past
    assert "maxpool_1" in d[0].message and "never read" in d[0].message
    text = MINIMAL.replace("  - sepconv: 4\n", "  - sepconv: {filters: 8, from: sepconv_1}\n  - add: [maxpool_1, input]\n"
                           "  - sepconv: 4\n")
    assert diags(write, text)[0][0][0] != "SEP221"  # read by a merge (which then fails on the shapes: SEP211)


def test_SEP222_a_reshape_that_moves_pixels_or_values(write):
    text = MINIMAL.replace("  - gap: {}\n", "  - reshape: [16, 4, 4]\n  - gap: {}\n")
    found, d = diags(write, text)
    assert found == [("SEP222", 8, 14)] and "moves pixels" in d[0].message  # at the target
    text = MINIMAL.replace("  - activation: softmax\n", "  - reshape: [1, 1, 5]\n")
    found, d = diags(write, text)
    assert found[0][0] == "SEP222" and "cannot view 4 (4 values) as 1x1x5" in d[0].message
    text = MINIMAL.replace("  - gap: {}\n  - activation: softmax\n", "  - gap: {keepdims: true}\n  - reshape: [4]\n")
    assert diags(write, text)[0] == []  # one pixel's channels


def test_SEP223_a_per_channel_constant_of_another_length(write):
    text = MINIMAL.replace("layers:\n", "layers:\n  - rescale: {scale: [1.0, 2.0], offset: -1.0}\n")
    found, d = diags(write, text)
    assert found == [("SEP223", 5, 5)] and "scale has 2 values for an input of 3 channels" in d[0].message
    text = MINIMAL.replace("  - maxpool: 2\n", "  - maxpool: 2\n  - normalize: {mean: [0, 1, 2], variance: 1.0}\n")
    found, d = diags(write, text)
    assert found[0][0] == "SEP223" and "mean has 3 values for an input of 8 channels" in d[0].message
    ok = MINIMAL.replace("layers:\n", "layers:\n  - rescale: {scale: [1.0, 2.0, 3.0], offset: -1.0}\n")
    assert diags(write, ok + "train: {normalize: pixels}\n")[0] == []  # (its pixels its own: no SEP224)


def test_SEP212_merge_jumps_differ(write):
    # same shape (8x8x8), but the body strides by 2 while the shortcut's valid 9x9 pooling strides by 1
    text = BRANCHY.format(block="  - residual: {body: [sepconv: {filters: 8, stride: 2}], "
                                "shortcut: [avgpool: {size: 9, stride: 1}]}")
    found, d = diags(write, text)
    assert found == [("SEP212", 6, 5)]
    assert "jump 2" in d[0].message and "jump 1" in d[0].message


def test_SEP213_projection_cannot_match(write):
    body = "[sepconv: {filters: 16, padding: valid}]"
    found, d = diags(write, BRANCHY.format(block=f"  - residual: {{body: {body}}}"))
    assert found == [("SEP213", 6, 5)]  # auto chose the projection: at the entry
    assert "turns the input 16x16x8 into 16x16x16, the body gives 14x14x16" in d[0].message
    found, d = diags(write, BRANCHY.format(block=f"  - residual: {{body: {body}, shortcut: project}}"))
    assert found == [("SEP213", 6, 74)]  # asked for: at the shortcut's value


def test_SEP214_too_many_layers_for_keras(write):
    import time

    text = "name: d\ninput: 8\nclasses: 2\nlayers:\n" + "  - sepconv: {filters: 2, repeat: 100}\n" * 100 + "  - gap: {}\n"
    t = time.perf_counter()
    found, d = diags(write, text)
    assert time.perf_counter() - t < 5
    assert found == [("SEP214", 14, 35)]  # the entry whose copies pass 900 layers, at its repeat
    # a stopped analysis's last gap may be a squeeze-and-excitation's: the classifier's rules wait for the whole
    pooled = ("name: d\ninput: 8\nclasses: 3\nlayers:\n  - sepconv: 2\n" + "  - sepconv: {filters: 2, repeat: 100}\n" * 8
              + "  - batchnorm: {repeat: 98}\n  - gap: {}\n  - reshape: [1, 1, 2]\n  - sepconv: 3\n  - gap: {}\n")
    assert [x[0] for x in diags(write, pooled)[0]] == ["SEP214"]
    assert "more than 900 Keras layers" in d[0].message
    ok = "name: d\ninput: 8\nclasses: 2\nlayers:\n" + "  - sepconv: {filters: 2, repeat: 100}\n" * 4 + "  - gap: {}\n"
    found, d = diags(write, ok)
    assert {x.code for x in d} == {"SEP217"} and all(x.severity == "warning" for x in d)  # 401 layers: they build
    # (the 400 3x3 windows on an 8x8 image are mostly unproductive: warned, not refused)
    # the limit is on depth: four branches of 151 layers side by side (607 layers, 153 deep) build in Keras
    branch = "[pointwise: {filters: 2, repeat: 100}, pointwise: {filters: 2, repeat: 51}]"
    wide = ("name: w\ninput: 8\nclasses: 2\nlayers:\n  - pointwise: 2\n"
            f"  - parallel: {{branches: [{', '.join([branch] * 4)}], merge: add}}\n  - gap: {{}}\n")
    c = sepspec.check(write("wide.yaml", wide))
    assert c.ok and len(c.report.rows) == 607, [x.text() for x in c.diagnostics]
    from sepspec.emit import model as emit

    assert emit.keras_model(c.report).count_params() == c.report.params


def test_SEP215_max_flash_bytes(write):
    """base.yaml's int8 weight buffers are 82,893 bytes (equal to the converted file's: docs/deployment.md)."""
    text = BASE_TEXT.replace("max_params: 100000", "max_params: 100000\n  max_flash_bytes: 82892")
    found, d = diags(write, text)
    assert found == [("SEP215", line_of(text, "max_flash_bytes"), 3)]
    assert "82,893 bytes of int8 weights > max_flash_bytes 82,892 (largest: sepconv_6, 33,568)" in d[0].message  # 1,440 + 640 + 30,720 + 768
    assert diags(write, text.replace("82892", "82893"))[0] == []


def test_SEP216_max_activation_bytes(write):
    """base.yaml's activations need 147,456 bytes (its third sepconv's 48- and 96-channel 32x32 tensors)."""
    text = BASE_TEXT.replace("max_params: 100000", "max_params: 100000\n  max_activation_bytes: 147455")
    found, d = diags(write, text)
    assert found == [("SEP216", line_of(text, "max_activation_bytes"), 3)]
    assert "147,456 bytes of int8 activations > max_activation_bytes 147,455 (peak while sepconv_3 runs" in d[0].message
    assert diags(write, text.replace("147455", "147456"))[0] == []


def test_SEP219_target_names_a_part_whose_flash_and_ram_must_hold_the_model(write):
    """base.yaml: 82,893 bytes of weights, 147,456 of activations: too much RAM for an STM32F446 (128 KB), enough
    for an nRF52840 (256 KB); an RP2040-sized flash budget is not the limit here; unknown parts are listed."""
    from sepspec.targets import TARGETS

    text = BASE_TEXT.replace("max_params: 100000", "max_params: 100000\n  target: cortex-m4-stm32f446")
    found, d = diags(write, text)
    assert found == [("SEP219", line_of(text, "target"), 3)]
    assert "147,456 bytes of activations > its 128 KB RAM" in d[0].message and "weights" not in d[0].message
    assert "STM32F446RE" in d[0].hint
    assert diags(write, text.replace("cortex-m4-stm32f446", "cortex-m4-nrf52840"))[0] == []
    flash, ram, _ = TARGETS["cortex-m4-nrf52840"]
    assert (flash, ram) == (1024 * 1024, 256 * 1024)
    found, d = diags(write, text.replace("cortex-m4-stm32f446", "cortex-m4"))
    assert found[0][0] == "SEP103" and "cortex-m4-nrf52840" in d[0].message


def test_SEP217_unproductive_layers_are_a_warning(write):
    """20 3x3 convolutions on a 16x16 image: from the 17th on, each one's input already sees 33x33 pixels (over twice
    the image), so its window adds only padding. A warning, once per entry; the spec stays valid."""
    text = ("name: deep\ninput: 16\nclasses: 4\nlayers:\n  - sepconv: {filters: 8, repeat: 20}\n"
            "  - maxpool: 2\n  - sepconv: 4\n  - gap: {}\n")
    found, d = diags(write, text)
    assert found == [("SEP217", 5, 5), ("SEP217", 6, 5), ("SEP217", 7, 5)]  # the repeated entry once; then every window
    assert d[0].severity == "warning" and d[0].layer == "sepconv_1_17" and sepspec.check(write("s.yaml", text)).ok
    assert "sees 33x33 pixels of a 16x16 image (2.1x, unproductive_ratio 2)" in d[0].message
    fewer = diags(write, text.replace("repeat: 20", "repeat: 15"))[0]  # the 15th conv's output sees 31x31: below 32
    assert fewer == [("SEP217", 7, 5)]  # only the last conv, after the pool (its input sees 33x33)
    off = text.replace("layers:", "rules: {unproductive_ratio: null}\nlayers:")
    assert diags(write, off)[0] == []
    for spec in glob.glob(f"{BASE.rsplit('/', 1)[0]}/*.yaml"):  # none of the shipped specs has such a layer
        assert not [x for x in sepspec.check(spec).diagnostics if x.code == "SEP217"], spec


def test_SEP224_a_network_that_rescales_pixels_the_trainer_normalised_is_a_warning(write):
    """The trap of a Keras model's `Rescaling(1/255)` under the trainer's own normalisation: warned at the rescale
    (or at `train.normalize` where it is written), once; `normalize: pixels` or a rescale further in is silent."""
    text = ("name: pre\ninput: 8\nclasses: 2\nlayers:\n  - rescale: 0.00392156862745098\n  - sepconv: 2\n"
            "  - gap: {}\n")
    found, d = diags(write, text)
    assert found == [("SEP224", 5, 5)] and d[0].severity == "warning" and d[0].layer == "rescale_1", found
    assert "rescale_1 (rescale) rescales the pixels the trainer already normalised (train.normalize: per_channel:" \
        in d[0].message and "train: {normalize: pixels}" in d[0].hint and sepspec.check(write("s.yaml", text)).ok
    found, d = diags(write, text + "train:\n  normalize: none\n")
    assert found == [("SEP224", 9, 14)] and "the model gets x / 255)" in d[0].message, found
    assert diags(write, text + "train: {normalize: pixels}\n")[0] == []
    assert diags(write, text.replace("  - rescale: 0.00392156862745098\n  - sepconv: 2\n",
                                     "  - sepconv: 2\n  - rescale: 0.5\n"))[0] == []
    for spec in glob.glob(f"{BASE.rsplit('/', 1)[0]}/*.yaml"):  # none of the shipped specs does it
        assert not [x for x in sepspec.check(spec).diagnostics if x.code == "SEP224"], spec


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_rule_has_a_test(code):
    """A test named for the code that expects that code (not only a function with a fitting name)."""
    import inspect

    tests = [fn for name, fn in globals().items() if name.startswith(f"test_{code}_")]
    assert tests, f"no test_{code}_... in {__file__}"
    assert any(f'"{code}"' in inspect.getsource(fn) for fn in tests), f"test_{code}_... never expects {code}"


def test_docs_list_every_code_and_the_code_uses_only_listed_ones():
    import re

    from sepspec.diagnostics import CODES

    from conftest import ROOT

    readme = open(f"{ROOT}/docs/diagnostics.md").read()
    codes = {**CODES, **RULES}
    for code, (rule, _) in codes.items():
        assert f"| {code} | {rule} |" in readme, code
    used = set()
    for path in glob.glob(f"{ROOT}/sepspec/**/*.py", recursive=True):
        used |= set(re.findall(r"SEP\d{3}", open(path).read()))
    assert used <= set(codes), used - set(codes)


def test_SEP212_also_when_auto_sees_equal_shapes(write):
    """Found by the thorough Hypothesis profile: on a 1x1 image a strided body keeps the shape but not the jump;
    `auto` (identity when the shapes match) then merges pixels that do not line up, and says so."""
    text = ("name: r\ninput: [8, 8, 1]\nclasses: 1\nlayers:\n  - sepconv: {filters: 1, stride: 8}\n"
            "  - residual: {body: [maxpool: {size: 2, padding: same}]}\n  - sepconv: 1\n  - gap: {}\n")
    found, d = diags(write, text)
    assert found == [("SEP212", 6, 5)]
    found, _ = diags(write, text.replace("padding: same}]}", "padding: same}], shortcut: project}"))
    assert found == []


def test_SEP218_channel_groups(write):
    # equal groups that do not divide the channels: at the block's `split`
    text = BRANCHY.format(block="  - parallel: {split: channels, branches: [[], [], []]}")
    found, d = diags(write, text)
    assert found == [("SEP218", 6, 23)]
    assert "3 equal channel groups do not divide the input's 8 channels" in d[0].message
    # sizes that do not sum to the channels: at `sizes`
    text = BRANCHY.format(block="  - parallel:\n      split: channels\n      sizes: [4, 2]\n      branches: [[], []]")
    found, d = diags(write, text)
    assert found == [("SEP218", 8, 14)]
    assert "sizes [4, 2] must be one group per branch (2) summing to the input's 8 channels (they sum to 6)" in d[0].message
    # sizes without split: channels
    found, d = diags(write, BRANCHY.format(block="  - parallel: {sizes: [4, 4], branches: [[], []]}"))
    assert found == [("SEP218", 6, 23)] and "copies its input" in d[0].message
    # a grouped pointwise whose groups do not divide the filters: at the entry
    found, d = diags(write, BRANCHY.format(block="  - pointwise: {filters: 6, groups: 4}"))
    assert found == [("SEP218", 6, 5)]
    assert "groups 4 must divide both the input's 8 channels and the 6 filters" in d[0].message
    # a shuffle that does not divide the channels: at its value
    found, d = diags(write, BRANCHY.format(block="  - shuffle: 3"))
    assert found == [("SEP218", 6, 14)] and "shuffle groups 3 do not divide the input's 8 channels" in d[0].message
    # each fixed: valid
    for block in ("  - parallel: {split: channels, branches: [[], []]}",
                  "  - parallel: {split: channels, sizes: [6, 2], branches: [[], [depthwise: 3]]}",
                  "  - pointwise: {filters: 12, groups: 4}", "  - shuffle: 4"):
        assert diags(write, BRANCHY.format(block=block))[0] == [], block


def test_SEP211_parallel_branches_differ(write):
    text = BRANCHY.format(block="  - parallel:\n      branches:\n        - [sepconv: {filters: 8, stride: 2}]\n"
                                "        - []\n      merge: concat")
    found, d = diags(write, text)
    assert found == [("SEP211", 6, 5)]
    assert ("cannot concatenate parallel_1_b1_sepconv_1 (8x8x8) and sepconv_1 (16x16x8): their sizes (all but the "
            "channels) differ") in d[0].message
    text = BRANCHY.format(block="  - parallel: {branches: [[pointwise: 4], []], merge: add}")
    found, d = diags(write, text)
    assert found == [("SEP211", 6, 5)] and "cannot add" in d[0].message
    assert diags(write, text.replace("merge: add", "merge: concat"))[0] == []  # concat takes different widths
