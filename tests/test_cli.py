"""The real commands, run in subprocesses: exit codes, formats, and no traceback for bad input."""
import json
import os
import subprocess
import sys

from sepspec import __version__

from conftest import BASE, MINIMAL, ROOT, run_cli

VALIDATE = os.path.join(ROOT, "tools", "validate")


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"sepspec {__version__}"


def test_check_exit_codes(write):
    good = write("good.yaml", MINIMAL)
    bad = write("bad.yaml", MINIMAL.replace("sepconv: 4", "sepconv: 5"))
    r = run_cli("check", good)
    assert r.returncode == 0 and "1 of 1 spec valid" in r.stdout
    r = run_cli("check", good, bad)
    assert r.returncode == 1
    assert f"{bad}:7:14: error SEP208:" in r.stderr
    r = run_cli("check", bad, "/nonexistent/x.yaml")
    assert r.returncode == 2  # unreadable wins over invalid
    assert "/nonexistent/x.yaml:1:1: error SEP000: cannot read" in r.stderr
    r = run_cli("check")  # usage
    assert r.returncode == 2 and "the following arguments are required: FILE" in r.stderr
    r = run_cli("check", os.path.dirname(good))  # a directory cannot be opened as a spec
    assert r.returncode == 2 and "error SEP000: cannot read: Is a directory" in r.stderr


def test_garbage_input_never_tracebacks(write, tmp_path):
    cases = {"a.yaml": "\x00\x01binary", "b.yaml": "[1, 2", "c.yaml": "- - - -\n", "d.yaml": ": : :\n",
             "e.yaml": "name: !!python/object/apply:os.system ['echo pwned']\n", "f.yaml": "layers: 5\n"}
    paths = [write(k, v) for k, v in cases.items()]
    (tmp_path / "g.yaml").write_bytes(b"\xff\xfe\x00bad")
    paths.append(str(tmp_path / "g.yaml"))
    for cmd in (["check"], ["show"], ["show", "--json"], ["compile", "--to", "python"]):
        for p in paths:
            r = run_cli(*cmd, p)
            assert r.returncode == 1, (cmd, p, r.stderr)
            assert "Traceback" not in r.stderr + r.stdout and "pwned" not in r.stdout
            assert (f'"file": "{p}"' if "--json" in cmd else f"{p}:1:") in r.stderr + r.stdout


def test_formats(write):
    bad = write("bad.yaml", MINIMAL.replace("sepconv: 4", "sepconv: 5"))
    r = run_cli("check", "--format", "json", bad)
    doc = json.loads(r.stdout)
    assert doc[0]["code"] == "SEP208" and doc[0]["line"] == 7 and doc[0]["column"] == 14
    r = run_cli("check", "--format", "github", bad)
    assert r.stdout.startswith(f"::error file={bad},line=7,col=14::SEP208 ")


def test_show_table_and_json():
    r = run_cli("show", BASE)
    assert r.returncode == 0
    assert "params 80,203 (trainable 78,891, non-trainable 1,312)  MACs 17,275,520  receptive field 34" in r.stdout
    doc = json.loads(run_cli("show", "--json", BASE).stdout)
    assert doc["version"] == 1 and doc["name"] == "base" and doc["input"] == [32, 32, 3] and doc["classes"] == 10
    assert doc["params"] == {"total": 80203, "trainable": 78891, "non_trainable": 1312}
    assert doc["macs"] == 17275520 and doc["receptive_field"] == 34 and doc["violations"] == []
    layers = doc["layers"]
    assert len(layers) == 29 and layers[0]["name"] == "sepconv_1" and layers[0]["keras"] == "SeparableConv2D"
    conv7 = [x for x in layers if x["name"] == "sepconv_7"][0]
    assert conv7["output"] == [4, 4, 10] and conv7["rf"] == 34
    assert layers[-2]["output"] == [10] and layers[-1]["rf"] == 34  # after gap: the RF before it


def test_show_memory_and_its_json():
    """The int8 estimate of base.yaml (equal to the converted file and TFLM: tests/test_export.py), as a view and
    in the JSON document, where the layers' and the input stage's flash add up to the total."""
    r = run_cli("show", BASE, "--memory")
    assert r.returncode == 0
    assert "int8: flash 82,893 bytes, activations 147,456 bytes (peak alive 147,456 at sepconv_3)" in r.stdout
    assert "sepconv_1/depthwise" in r.stdout and "DEPTHWISE_CONV_2D" in r.stdout
    doc = json.loads(run_cli("show", BASE, "--json").stdout)
    mem = doc["memory"]
    assert (mem["flash_bytes"], mem["activation_bytes"], mem["peak_at"]) == (82_893, 147_456, "sepconv_3")
    stage = sum(o["flash_bytes"] for o in mem["ops"] if o["layer"] is None)  # the normalisation's constants
    assert sum(layer["flash_bytes"] for layer in doc["layers"]) + stage == mem["flash_bytes"]
    assert max(layer["alive_bytes"] for layer in doc["layers"]) == mem["peak_alive_bytes"]


def test_show_json_lists_violations(write):
    doc = json.loads(run_cli("show", "--json", write("b.yaml", MINIMAL.replace("sepconv: 4", "sepconv: 5"))).stdout)
    assert [(v["code"], v["rule"], v["line"], v["column"], v["layer"]) for v in doc["violations"]] == \
        [("SEP208", "classifier_width", 7, 14, "sepconv_2"), ("SEP207", "classifier_output", 9, 5, "activation_1")]


def test_schema_matches_committed_copy():
    r = run_cli("schema")
    assert r.returncode == 0
    with open(os.path.join(ROOT, "specs", "sepspec.schema.json")) as f:
        assert r.stdout == f.read(), "run: sepspec schema > specs/sepspec.schema.json"
    for name in os.listdir(os.path.join(ROOT, "specs")):
        if name.endswith(".yaml"):
            with open(os.path.join(ROOT, "specs", name)) as f:
                assert f.readline().startswith("# yaml-language-server: $schema=sepspec.schema.json")


def test_check_does_not_import_tensorflow():
    code = ("import sys, sepspec; from sepspec.cli import main; rc = main(['check', %r]);"
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; print(rc, bad)") % BASE
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip().endswith("0 []"), r.stdout + r.stderr


def _validate(*args, cwd=ROOT):
    return subprocess.run([sys.executable, VALIDATE, *args], capture_output=True, text=True, cwd=cwd)


def test_validate_all_specs_in_repo():
    r = _validate()
    assert r.returncode == 0, r.stderr


def _spec_repo(tmp_path, *, other: bool = True, empty_first: bool = True):
    """A git repository whose last commit holds specs/base.yaml, a child that extends it and (`other`) MINIMAL."""
    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "base.yaml").write_text(open(BASE).read())
    (tmp_path / "specs" / "child.yaml").write_text("extends: base.yaml\ntrain: {epochs: 2}\n")
    if other:
        (tmp_path / "specs" / "other.yaml").write_text(MINIMAL)
    git("init", "-q")
    if empty_first:
        git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x", "--allow-empty")
    git("add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "specs")


def test_validate_changed_and_dependents(tmp_path):
    _spec_repo(tmp_path)
    r = _validate("--changed", cwd=tmp_path)
    assert r.returncode == 0 and "no spec changed" in r.stdout
    text = open(BASE).read().replace("min_receptive_field: 32", "min_receptive_field: 40")
    (tmp_path / "specs" / "base.yaml").write_text(text)
    r = _validate("--changed", "--format", "github", cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and all(x.startswith("::error file=specs/base.yaml,line=9,col=3::SEP201") for x in lines)
    assert "(inherited by specs/child.yaml)" in lines[1]
    r = _validate("--changed", "HEAD~1", cwd=tmp_path)  # everything is new since the empty commit
    assert r.returncode == 1 and "1 of 3 specs valid" in r.stderr
    r = _validate("--changed", "no-such-rev", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cannot ask git for changes since 'no-such-rev'" in r.stderr


def test_a_closed_pipe_ends_quietly_with_status_0(write):
    """`sepspec show --json SPEC | head -1`: Unix tools stop quietly when the reader goes away (the document, 170 KB,
    is larger than a pipe holds, so the writer does meet the closed pipe)."""
    deep = write("deep.yaml", MINIMAL.replace("  - maxpool: 2\n", "  - sepconv: {filters: 8, repeat: 100}\n"))
    r = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m sepspec show --json {deep} | head -1"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout == "{\n" and r.stderr == "", r.stderr


def test_compile_to_python_writes_the_file_given_with_o(tmp_path):
    out = tmp_path / "model.py"
    r = run_cli("compile", BASE, "--to", "python", "-o", str(out))
    assert r.returncode == 0 and r.stdout.startswith(f"wrote {out}"), r.stderr
    text = out.read_text()
    assert text.startswith('"""base: generated by sepspec') and "model = keras.Model(" in text
    assert run_cli("compile", BASE, "--to", "python").stdout == text  # without -o: the same, on standard output


def test_validate_changed_diff_shows_what_the_change_does(tmp_path):
    _spec_repo(tmp_path, other=False, empty_first=False)
    (tmp_path / "specs" / "base.yaml").write_text(open(BASE).read().replace("  - sepconv: 48\n", "  - sepconv: 64\n"))
    (tmp_path / "specs" / "new.yaml").write_text(MINIMAL)
    r = _validate("--changed", "--diff", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "--- HEAD:specs/base.yaml" in out and "--- HEAD:specs/child.yaml" in out  # the child inherits it
    assert "~ sepconv_2                    output 32x32x48 -> 32x32x64" in out and "filters 48 -> 64" in out
    params = next(x for x in out.splitlines() if x.startswith("params "))
    assert params.split() == ["params", "80,203", "82,459", "+2,256", "(+2.8%)"]
    assert "specs/new.yaml: new (not in HEAD)" in out
    r = _validate("--diff", cwd=tmp_path)
    assert r.returncode == 2 and "--diff needs --changed" in r.stderr


def test_diff_of_two_specs_text_and_json(write):
    wide = write("wide.yaml", MINIMAL.replace("sepconv: {filters: 8", "sepconv: {filters: 16").replace(
        "  - maxpool: 2\n", "  - maxpool: 2\n  - dropout: 0.1\n") + "train: {epochs: 3}\n")
    small = write("small.yaml", MINIMAL)
    r = run_cli("diff", small, wide)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == [f"--- {small}", f"+++ {wide}"]
    assert any(x.startswith("+ dropout_1 ") and "Dropout" in x for x in lines)
    assert any(x.startswith("~ sepconv_1 ") and "filters 8 -> 16" in x for x in lines)
    assert any(x.startswith("~ train.epochs") and "50 -> 3" in x for x in lines)
    doc = json.loads(run_cli("diff", small, wide, "--json").stdout)
    assert {e["name"]: e["change"] for e in doc["layers"]}["dropout_1"] == "added"
    before, after = doc["totals"]["params"]
    assert before == sepspec_params(small) and after == sepspec_params(wide) and before < after
    assert set(doc["totals"]) >= {"params", "macs", "receptive_field", "flash_bytes", "arena_bytes"}
    assert json.loads(run_cli("diff", wide, small, "--json").stdout)["layers"][0] == {
        "name": "dropout_1", "change": "removed", "before": next(e for e in doc["layers"] if e["name"] == "dropout_1")["after"]}
    # a change that breaks a rule is still shown, with its diagnostics and exit 1
    broken = write("broken.yaml", MINIMAL.replace("  - sepconv: 4\n", "  - sepconv: 5\n"))
    r = run_cli("diff", small, broken)
    assert r.returncode == 1 and "SEP208" in r.stderr and "~ sepconv_2" in r.stdout
    r = run_cli("diff", small, str(tmp_missing(write)))
    assert r.returncode == 2 and "cannot read" in r.stderr


def sepspec_params(path):
    import sepspec

    return sepspec.analyse(sepspec.load(path)).params


def tmp_missing(write):
    return os.path.join(os.path.dirname(write("x.yaml", MINIMAL)), "nowhere.yaml")


def test_show_plot_draws_the_receptive_field_without_tensorflow(write, tmp_path):
    deep = write("deep.yaml", MINIMAL.replace("  - maxpool: 2\n", "  - sepconv: {filters: 8, repeat: 20}\n"))
    out = tmp_path / "rf.png"
    code = ("import sys; from sepspec.cli import main; rc = main(['show', sys.argv[1], '--plot', sys.argv[2]]); "
            "print('TF', [m for m in ('tensorflow', 'keras') if m in sys.modules], rc)")
    r = subprocess.run([sys.executable, "-c", code, deep, str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip().endswith("TF [] 0") and f"wrote {out}" in r.stdout, r.stdout + r.stderr
    assert "SEP217" in r.stderr  # the unproductive layers it marks
    import matplotlib.image

    picture = matplotlib.image.imread(str(out))
    assert open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and picture.shape[0] > 300 and picture.shape[1] > 500
    red = ((abs(picture[..., 0] - 0.84) < 0.05) & (picture[..., 1] < 0.25) & (picture[..., 2] < 0.25)).sum()
    assert red > 50  # the unproductive markers (tab:red)
    r = run_cli("show", deep, "--plot", str(tmp_path / "rf.svg"))
    assert r.returncode == 2 and "a PNG file" in r.stderr and r.stdout == ""


def test_show_memory_gives_macs_per_op_and_the_one_line_total_for_a_spec_and_for_a_tflite_file(tmp_path):
    """`show SPEC --memory`: MACs per op adding up to the analysis's, and the `macc=, weights=, activations=` line
    (text and --json); `show FILE.tflite --memory` reads an exported file with the same planner; a file that is not
    a model is one line."""
    import sepspec
    from sepspec.graph.memory import estimate

    d = estimate(sepspec.analyse(sepspec.load(BASE)))
    r = run_cli("show", BASE, "--memory")
    assert r.returncode == 0 and "macc=17,275,520, weights=82,893 B, activations=147,456 B" in r.stdout, r.stderr
    r = run_cli("show", BASE, "--memory", "--json")
    doc = json.loads(r.stdout)
    assert doc["macs"] == sum(o["macs"] for o in doc["ops"]) == 17_275_520 and doc["summary"] == d.summary()
    fixture = os.path.join(ROOT, "tests", "fixtures", "mbconv-int8-xnnpack-refuses.tflite")
    r = run_cli("show", fixture, "--memory", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["macs"] > 0 and doc["flash_bytes"] > 0 and doc["activation_bytes"] >= doc["peak_alive_bytes"] > 0
    assert doc["ops"][0]["op"] == "INPUT" and any(o["op"] == "DEPTHWISE_CONV_2D" and o["macs"] for o in doc["ops"])
    r = run_cli("show", fixture, "--memory")
    assert r.returncode == 0 and f"macc={doc['macs']:,}, weights={doc['flash_bytes']:,} B" in r.stdout
    bad = tmp_path / "x.tflite"
    bad.write_text("not a model")
    for args in ((str(bad), "--memory"), (fixture,)):
        r = run_cli("show", *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
