"""Fuzzing the command lines: random and adversarial files and options never reach the user as a traceback.

Every command's one boundary (`sepspec.cli.main`) is driven in-process with what Hypothesis draws: spec files
made of random YAML documents, deep nesting, long lists, tags, aliases, binary junk, non-UTF-8 bytes, folders
and missing paths; and options: out-of-range seeds and epochs, `--set` paths and values, bad formats, run
folders and data paths that are not what they claim. Whatever happens, the result is an exit status of 0, 1,
2 (or argparse's 2 for a malformed command line) and no traceback: an exception escaping `main` fails the test.
"""
import contextlib
import io
import os
import re

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sepspec.cli import main

from strategies import dump, invalid_specs, valid_specs, yaml_values

ADVERSARIAL = st.sampled_from([
    "a: " + "[" * 400 + "]" * 400,
    "layers:\n" + "  - sepconv: 4\n" * 12_000,
    "name: x\ninput: 8\nclasses: 2\nlayers:\n" + "  - sepconv: {filters: 2, repeat: 100}\n" * 30 + "  - gap: {}\n",
    "!!python/object/apply:os.system ['echo hacked']",
    "a: &a [1,2,3,4,5,6,7,8,9]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
    "name: x\ninput: [99999999999, 1, 1]\nclasses: 2\nlayers: [gap: {}]\n",
    "name: x\ninput: 32\nclasses: 10\nlayers:\n  - sepconv: {filters: 1000000000}\n  - gap: {}\n",
    "name: x\ninput: 32\nclasses: 10\nlayers:\n  - residual: {body: [residual: {body: [residual: {body: [sepconv: 3]}]}]}\n",
    "name: x\ninput: 32\nclasses: 10\nlayers:\n  - residual: {body: [sepconv: 10], shortcut: [flatten: {}]}\n  - gap: {}\n",
    "name: x\ninput: 32\nclasses: 10\nlayers:\n  - se: 1.0\n  - mbconv: {filters: 10, se: 1}\n  - gap: {}\n",
    "name: x\ninput: 32\nclasses: 10\nlayers:\n  - gap: {}\n  - se: 0.5\n  - residual: {body: [dense: 10]}\n",
    "extends: x.yaml\n",
    "extends: /dev/zero\n",
    "train: {seed: 99999999999999999999}\n",
    "\x00\x01\x02",
    "\ufeff\u202e name: x",
    "- - - - - -",
    "",
])


def _files():
    return st.one_of(yaml_values().map(lambda v: yaml.safe_dump(v)),
                     valid_specs().map(dump),
                     invalid_specs().map(lambda case: case[0]),
                     ADVERSARIAL,
                     st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                     st.text(max_size=300))


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:  # argparse: a malformed command line
            status = e.code
    assert "Traceback" not in err.getvalue() + out.getvalue()
    assert status in (0, 1, 2), (argv, status, err.getvalue()[-500:])
    return status, out.getvalue() + err.getvalue()


@settings(max_examples=60)
@given(text=_files(), command=st.sampled_from([["check"], ["check", "--format", "json"], ["check", "--format", "github"],
                                                ["show"], ["show", "--json"], ["show", "--memory"],
                                                ["compile", "--to", "python"], ["scale", "--max-params", "50000"],
                                                ["scale", "--max-params", "3000", "--max-macs", "100000"]]))
def test_checker_commands_never_show_a_traceback(tmp_path_factory, text, command):
    d = tmp_path_factory.mktemp("fuzz")
    p = d / "spec.yaml"
    p.write_bytes(text.encode("utf-8", "surrogatepass"))
    status, said = _run([*command, str(p)])
    if status == 1:  # an invalid spec says why, with a code (in every format); scale also when nothing fits
        assert re.search(r"SEP\d{3}", said) or (command[0] == "scale" and "no width multiplier from 4.00 down to "
                                                                        "0.01 fits" in said), said


SPEC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs", "base.yaml")


@settings(max_examples=40)
@given(args=st.lists(st.one_of(
    st.sampled_from(["--seed", "--epochs", "--batch-size", "--train-limit", "--val-limit", "--set", "--data", "--out",
                     "--resume", "--strategy", "--precision", "--jit-compile", "-1", "0", "4294967296", "1e3",
                     "train.epochs=0", "train.seed=-3", "train.x=1", "train.optimizer={name: sgdd}",
                     "train.augment.crop=99", "train.normalize=pixel", "train.normalize=pixels", "train.=1", "model.layers=[]", "train.epochs=!!python/name:os.system",
                     "/nonexistent", "/dev/null", "/tmp/sepspec-fuzz-none", SPEC]),
    st.text(max_size=20)), max_size=6),
    command=st.sampled_from(["train", "evaluate", "runs", "bench"]))
def test_trainer_commands_never_show_a_traceback(tmp_path_factory, args, command):
    """Options drawn at random; no data is reachable (an empty Keras cache, offline; bench is given a --data
    that is not there), so nothing trains."""
    d = tmp_path_factory.mktemp("home")
    env = {"SEPSPEC_OFFLINE": "1", "KERAS_HOME": str(d), "SEPSPEC_DATA": None}
    saved = {k: os.environ.get(k) for k in env}
    try:
        for k, v in env.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        argv = [command, *args] if command != "train" or "--resume" in args else [command, SPEC, *args]
        if command == "bench":
            argv = [command, SPEC, *args, "--data", "/nonexistent"]
        _run(argv)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


SWEEP_KEYS = st.sampled_from(["width", "train.optimizer.learning_rate", "defaults.sepconv.dropout", "layers[0].sepconv",
                              "layers[2].sepconv.kernel", "layers[99].sepconv.kernel", "layers[0]", "train",
                              "rules.max_params", "layers.sepconv", "a..b", "[0]", "layers[-1].x", "x" * 300])


def _distributions():
    return st.one_of(st.fixed_dictionaries({"choice": st.lists(yaml_values(), max_size=4)}),
                     st.fixed_dictionaries({"uniform": st.lists(st.floats(allow_nan=True), max_size=3)}),
                     st.fixed_dictionaries({"loguniform": st.lists(st.floats(-1, 10), max_size=3)}),
                     st.fixed_dictionaries({"int": st.lists(st.integers(-10, 10**12), max_size=3)},
                                           optional={"step": st.integers(-2, 5)}),
                     yaml_values())


@settings(max_examples=60)
@given(doc=st.one_of(
    st.fixed_dictionaries({"spec": st.sampled_from([SPEC, "missing.yaml", "/dev/zero", ".", SPEC + "x"]),
                           "trials": st.one_of(st.integers(-1, 10**6), yaml_values()),
                           "space": st.dictionaries(SWEEP_KEYS, _distributions(), max_size=4)},
                          optional={"budget": yaml_values(), "pruner": st.fixed_dictionaries(
                              {"name": st.sampled_from(["median", "successive_halving", "none", "hyperband"])},
                              optional={"min_epochs": st.integers(-1, 100), "warmup_epochs": yaml_values()}),
                              "validation": yaml_values(), "seed": st.integers(-5, 2**40)}),
    yaml_values()))
def test_sweep_files_never_show_a_traceback(tmp_path_factory, doc):
    """`sweep --check` loads and checks a sweep file (every path against its spec) without starting anything."""
    p = tmp_path_factory.mktemp("sweep") / "sweep.yaml"
    p.write_text(yaml.safe_dump(doc))
    status, said = _run(["sweep", str(p), "--check"])
    if status == 1:
        assert re.search(r"SEP\d{3}", said), said
