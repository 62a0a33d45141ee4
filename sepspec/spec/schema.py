"""The JSON Schema of spec files, generated from the pydantic models.

A spec *file* is looser than a resolved `Spec` in two ways that editors must accept: a file with
`extends:` may leave out anything its parent gives, and `defaults.<kind>` may supply what a layer
does not write (even `filters`). So the generated schema is adjusted for exactly these two points.
"""

from __future__ import annotations

import json

from .kinds import BLOCKS
from .load import Spec

SCHEMA_FILE = "specs/sepspec.schema.json"  # the committed copy that specs point at


def file_schema() -> dict:
    schema = Spec.model_json_schema()
    required = schema.pop("required", [])
    required = [r for r in required if r != "name"]  # the name defaults to the file's name
    schema["if"] = {"not": {"required": ["extends"]}}
    schema["then"] = {"required": required}
    for block in BLOCKS.values():  # what defaults may supply is not required (a residual's body still is)
        d = schema["$defs"][block.__name__]
        keep = [r for r in d.pop("required", []) if r in block.not_defaults]
        if keep:
            d["required"] = keep
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    return json.dumps(file_schema(), indent=2, sort_keys=False) + "\n"
