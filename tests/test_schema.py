"""The JSON Schema that editors use accepts what sepspec accepts (shorthands, short extends variants) and
rejects what it rejects; and a resolved spec written back out is the same spec (round trip)."""
import json
import os

import jsonschema
import pytest
import yaml

from sepspec import analyse, load
from sepspec.spec.load import to_yaml as spec_yaml

from conftest import BASE, MINIMAL, ROOT

SCHEMA = json.load(open(os.path.join(ROOT, "specs", "sepspec.schema.json")))


def valid(doc) -> bool:
    return not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))


def test_schema_accepts_specs_shorthands_and_extends_variants():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert valid(yaml.safe_load(open(BASE)))
    assert valid(yaml.safe_load(MINIMAL))
    assert valid({"extends": "base.yaml", "train": {"epochs": 5}})
    assert valid({"extends": "base.yaml", "rules": {"max_params": 200000}, "layers": [{"sepconv": 32}, {"gap": None}]})
    assert valid({"name": "d", "input": 32, "classes": 2, "defaults": {"sepconv": {"filters": 8}},
                  "layers": [{"sepconv": {}}, {"gap": {}}]})


@pytest.mark.parametrize("doc", [
    {"name": "x", "classes": 10, "layers": [{"gap": {}}]},                   # no input, no extends
    {"extends": "base.yaml", "unknown": 1},
    {"extends": "base.yaml", "layers": [{"sepcov": 3}]},
    {"extends": "base.yaml", "layers": [{"sepconv": {"filters": 8, "kernal": 3}}]},
    {"extends": "base.yaml", "layers": [{"sepconv": 8, "maxpool": 2}]},
    {"extends": "base.yaml", "train": {"optimizer": {"name": "adamm"}}},
    {"extends": "base.yaml", "rules": {"separable_only": "yes"}},
])
def test_schema_rejects_what_the_checker_rejects(doc):
    assert not valid(doc)


def test_resolved_spec_round_trips(tmp_path):
    spec = load(BASE)
    p = tmp_path / "resolved.yaml"
    p.write_text(spec_yaml(spec))
    again = load(str(p))
    # the same spec, with `defaults` already applied to the layers that used them
    assert again.model_dump(exclude={"defaults"}) == spec.model_dump(exclude={"defaults"})
    assert again.model_dump()["defaults"] == {k: None for k in spec.model_dump()["defaults"]}
    a, b = analyse(spec), analyse(again)
    assert [(r.name, r.output, r.params, r.rf) for r in a.rows] == [(r.name, r.output, r.params, r.rf) for r in b.rows]
