"""The analysis against the seed's own figures and hand-worked cases."""
from sepspec import analyse, load

from conftest import BASE


def report_of(path):
    spec = load(path)
    return analyse(spec)


def test_base_figures_are_the_seeds():
    r = report_of(BASE)
    assert (r.params, r.trainable, r.non_trainable) == (80_203, 78_891, 1_312)  # the seed's model.summary()
    assert r.macs == 17_275_520
    assert r.rf_row().name == "sepconv_7" and r.rf_row().output == (4, 4, 10)
    assert r.receptive_field == (34, 34)
    assert r.output == (10,)
    # the seed's per-layer summary, in order (Dropout/Activation/pooling: 0)
    seed = [123, 0, 128, 0, 1824, 0, 192, 0, 5040, 0, 384, 0, 0, 13152, 0, 512, 0, 21632, 0, 640, 0, 0,
            32160, 0, 768, 0, 3648, 0, 0]
    assert [row.params for row in r.rows] == seed
    # the seed's hand-written RF comments: 3 5 7 8 12 16 18 26 34 (after each conv/pool)
    windowed = [row.rf[0] for row in r.rows if row.layer.window()]
    assert windowed == [3, 5, 7, 8, 12, 16, 18, 26, 34]


def test_non_square_dilated_strided(write):
    p = write("n.yaml", """
        name: n
        input: [20, 31, 2]
        classes: 3
        layers:
          - sepconv: {filters: 6, kernel: [3, 5], stride: [1, 2], dilation: [2, 1], padding: valid, depth_multiplier: 2}
          - avgpool: {size: [2, 3], stride: 1, padding: same}
          - depthwise: {kernel: 3, padding: same, stride: 2}
          - pointwise: 3
          - gap: {}
        """)
    r = report_of(p)
    sep, pool, dw, pw, gap = r.rows
    # k_eff = (5, 5); valid: (20-5)//1+1 = 16, (31-5)//2+1 = 14
    assert sep.output == (16, 14, 6)
    assert sep.params == 3 * 5 * 2 * 2 + 2 * 2 * 6 + 6
    assert sep.rf == (5, 5) and sep.jump == (1, 2)
    assert pool.output == (16, 14, 6) and pool.rf == (6, 9) and pool.jump == (1, 2)
    assert dw.output == (8, 7, 6) and dw.rf == (8, 13) and dw.jump == (2, 4)
    assert pw.params == 6 * 3 + 3 and pw.macs == 8 * 7 * 6 * 3
    assert r.receptive_field == (8, 13)
    assert gap.output == (3,)


def test_dense_head_counts_and_flatten(write):
    p = write("d.yaml", """
        name: d
        input: [8, 8, 1]
        classes: 5
        layers:
          - conv: {filters: 4, kernel: 3, padding: valid, norm: batch}
          - flatten: {}
          - dense: {units: 5, bias: false, activation: softmax}
        """)
    r = report_of(p)
    conv, bn, flat, dense, act = r.rows
    assert conv.params == 3 * 3 * 1 * 4 + 4 and conv.macs == 6 * 6 * 4 * 9
    assert (bn.trainable, bn.non_trainable) == (8, 8)
    assert flat.output == (144,) and dense.params == 144 * 5 and dense.macs == 144 * 5
    assert r.receptive_field == (3, 3)
