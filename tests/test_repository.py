"""The repository stays a product: committed runs are records (the model files behind the README's headline
figures excepted), `results/` stays under its budget, and no committed file names a machine's own paths."""
import os
import re
import subprocess

import pytest

from conftest import ROOT

# the final models behind the README's headline figures (frontier.yaml at 10 epochs over 3 seeds and at 50 over 2,
# and the int8 files of its int8 figures); every other model file under results/ is ignored by .gitignore
HEADLINE_MODELS = {
    *(f"results/frontier-crop1-seed{s}/final.keras" for s in range(3)),
    *(f"results/frontier50-crop4-cutout8-adamw02-seed{s}/final.keras" for s in range(2)),
    "results/frontier-crop1-seed0/export/frontier-int8.tflite",
    "results/frontier50-crop4-cutout8-adamw02-seed0/export/frontier50-adamw02-final-int8.tflite",
}
MODEL_SUFFIXES = (".keras", ".h5", ".npz", ".tflite", ".onnx", ".pb")
BUDGET = 10 * 2**20  # bytes of files under results/
# an absolute path of a machine's own (a home, a checkout, a temporary folder), not a URL's path
MACHINE_PATH = re.compile(r"(?<![\w.~:/-])/(?:work|root|home|Users|tmp|mnt|opt)/[\w.-]")


def _tracked(*paths: str) -> list[str]:
    r = subprocess.run(["git", "ls-files", "-z", "--", *paths], capture_output=True, cwd=ROOT)
    if r.returncode != 0:
        pytest.skip("not a git checkout (an unpacked source distribution)")
    return [p for p in r.stdout.decode().split("\0") if p and os.path.isfile(os.path.join(ROOT, p))]


def test_committed_runs_keep_records_and_only_the_headline_models():
    models = {p for p in _tracked("results") if p.endswith(MODEL_SUFFIXES) or ".tfevents." in p and p.endswith(".v2")}
    assert models <= HEADLINE_MODELS, sorted(models - HEADLINE_MODELS)
    assert models == HEADLINE_MODELS, f"headline models missing: {sorted(HEADLINE_MODELS - models)}"


def test_results_stay_under_their_budget():
    size = sum(os.path.getsize(os.path.join(ROOT, p)) for p in _tracked("results"))
    assert size < BUDGET, f"results/ holds {size:,} bytes of files, over the {BUDGET:,} budget"


def test_new_model_files_under_results_are_ignored_and_the_headline_ones_are_not():
    new = ["results/some-run/checkpoint-0003.keras", "results/some-run/best.keras", "results/some-run/final.keras",
           "results/some-run/ema-0003.npz", "results/some-run/export/m.tflite", "results/some-run/export/m.onnx",
           "results/some-run/tensorboard/events.out.tfevents.1.host.2.0.v2"]
    kept = sorted(HEADLINE_MODELS)
    r = subprocess.run(["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *new, *kept,
                        "results/some-run/run.json", "results/some-run/tensorboard/events.out.tfevents.1.host.2.0"],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode == 128:
        pytest.skip("not a git checkout")
    ignored = {line.split("\t")[1] for line in r.stdout.splitlines() if not line.startswith("::")
               and not line.split("\t")[0].split(":")[-1].startswith("!")}
    assert set(new) <= ignored, sorted(set(new) - ignored)
    assert not ignored & set(kept), sorted(ignored & set(kept))
    assert "results/some-run/run.json" not in ignored


def test_no_committed_file_names_a_machine_path():
    """Records, docs and code name paths relative to the repository or to the run folder (run.json, metrics.json);
    the tests' own inputs (a path that must not exist) are theirs."""
    found = []
    for p in _tracked():
        if p.startswith("tests/") or p.endswith(MODEL_SUFFIXES + (".png", ".svg")) or ".tfevents." in p:
            continue
        try:
            text = open(os.path.join(ROOT, p), encoding="utf-8").read()
        except UnicodeDecodeError:
            continue
        found += [f"{p}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in MACHINE_PATH.finditer(text)]
    assert not found, found[:20]


def test_the_results_page_is_generated_from_the_committed_records(tmp_path):
    """docs/results.md is what `benchmarks/accuracy_plot.py` makes of results/ now: a run added or changed without
    regenerating the page fails here."""
    import sys

    page = tmp_path / "results.md"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "accuracy_plot.py"), "--page-only", str(page)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert page.read_text() == open(os.path.join(ROOT, "docs", "results.md")).read(), \
        "docs/results.md is stale: python benchmarks/accuracy_plot.py"
