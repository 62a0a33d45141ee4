"""`sepspec draw`: the DOT text in pure Python (every layer with its figures, every input edge, blocks as clusters,
the int8 arena's peak), rendered by the real Graphviz and looked at in a real headless browser."""
import os
import re
import shutil
import subprocess
import sys

import pytest

import sepspec
from sepspec.graph.draw import dot
from sepspec.graph.memory import estimate

from conftest import ROOT, run_cli

SPECS = [os.path.join(ROOT, "specs", f"{n}.yaml") for n in ("residual", "mbconv", "base")]


def parsed(text):
    pydot = pytest.importorskip("pydot")
    (graph,) = pydot.graph_from_dot_data(text)
    nodes = {n.get_name().strip('"'): (n.get("label") or "").strip('"') for n in graph.get_nodes()}
    for sub in graph.get_subgraphs():
        nodes.update({n.get_name().strip('"'): (n.get("label") or "").strip('"') for n in sub.get_nodes()})
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in graph.get_edges()}
    return graph, nodes, edges


@pytest.mark.parametrize("path", SPECS)
def test_every_layer_appears_with_its_figures_and_every_input_as_an_edge(path):
    rep = sepspec.analyse(sepspec.load(path))
    graph, nodes, edges = parsed(dot(rep))
    assert set(nodes) - {"node", "edge", "graph"} == {r.name for r in rep.rows} | {"input"}
    for r in rep.rows:
        label = nodes[r.name]
        assert r.layer.keras in label and f"{r.params:,} params" in label and "x".join(map(str, r.output)) in label
        assert f"rf {r.rf[0]}" in label and f"jump {r.jump[0]}" in label
        assert {(t, r.name) for t in r.inputs} <= edges
    text = dot(rep)
    blocks = {int(i) for i in re.findall(r'subgraph "cluster_layers_(\d+)"', text)}
    assert blocks == {r.origin.path[1] for r in rep.rows if len(r.inputs) > 1}  # each branching entry one cluster
    assert bool(blocks) == (not path.endswith("base.yaml"))
    peak = estimate(rep).peak_at
    assert 'color="#d62728"' in dot(rep).split(f'"{peak.layer or peak.name}" [', 1)[1].split("\n", 1)[0]


def test_depth_1_is_one_node_per_entry():
    rep = sepspec.analyse(sepspec.load(SPECS[0]))
    _, nodes, edges = parsed(dot(rep, 1))
    assert set(nodes) - {"node", "edge", "graph"} == {"input"} | {f"layers[{i}]" for i in range(len(rep.spec.layers))}
    assert ("input", "layers[0]") in edges and ("layers[2]", "layers[3]") in edges
    assert "residual stage2" in nodes["layers[3]"] and "9 Keras layers" in nodes["layers[3]"]


def test_the_command_writes_dot_without_graphviz_and_refuses_other_suffixes(tmp_path):
    code = ("import sys; from sepspec.cli import main; rc = main(['draw', sys.argv[1], '-o', sys.argv[2]]); "
            "print('TF', [m for m in ('tensorflow', 'keras') if m in sys.modules], rc)")
    out = tmp_path / "r.dot"
    r = subprocess.run([sys.executable, "-c", code, SPECS[0], str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip().endswith("TF [] 0") and "wrote" in r.stdout, r.stderr
    assert out.read_text() == dot(sepspec.analyse(sepspec.load(SPECS[0])))
    r = run_cli("draw", SPECS[0], "-o", str(tmp_path / "r.jpg"))
    assert r.returncode == 2 and ".dot, .svg or .png" in r.stderr and not (tmp_path / "r.jpg").exists()
    r = run_cli("draw", SPECS[0], "-o", str(tmp_path / "r.svg"), env={"PATH": "/nonexistent"})
    assert r.returncode == 2 and "apt-get install graphviz" in r.stderr and not (tmp_path / "r.svg").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_the_rendered_svg_is_what_a_browser_shows(tmp_path):
    svg = tmp_path / "residual.svg"
    r = run_cli("draw", SPECS[0], "-o", str(svg))
    assert r.returncode == 0, r.stderr
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE"))
    png = tmp_path / "residual.png"
    assert run_cli("draw", SPECS[0], "-o", str(png), "--depth", "1").returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium to look at the SVG with (apt-get install chromium)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run(flags + ["--dump-dom", svg.as_uri()], capture_output=True, text=True, timeout=120).stdout
    rep = sepspec.analyse(sepspec.load(SPECS[0]))
    for r in rep.rows:  # the browser parsed the picture and holds every layer's name as text
        assert f">{r.name}<" in dom, r.name
    shot = tmp_path / "shot.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=800,1200", svg.as_uri()], capture_output=True,
                   timeout=120)
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    dark = (pixels[..., :3].mean(axis=-1) < 0.3).mean()
    assert pixels.shape[:2] == (1200, 800) and 0.005 < dark < 0.5  # drawn text and lines, not a blank page
