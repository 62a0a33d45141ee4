"""The JSON Schema of spec files, generated from the pydantic models.

A spec *file* is looser than a resolved `Spec` in three ways that editors must accept: a file with
`extends:` may leave out anything its parent gives, `defaults.<kind>` may supply what a layer
does not write (even `filters`), and a use of a kind of your own writes its arguments, not the body it expands to.
So the generated schema is adjusted for exactly these three points.
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
    # a use of a kind of your own: one key, not a built-in kind, with its arguments (checked against `blocks:`
    # when the spec is loaded: JSON Schema cannot read the keys of `blocks`)
    schema["$defs"].pop("Use", None)
    schema["$defs"]["UseEntry"] = {
        "description": "A use of a kind of your own (defined under `blocks:`): `<kind>: <arguments>`.",
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "propertyNames": {"not": {"enum": list(BLOCKS)}},
        "additionalProperties": {"anyOf": [{"type": "object"}, {"type": ["string", "number", "boolean", "array",
                                                                          "null"]}]}}
    # ... and where this file defines no blocks, an unknown kind is a mistake, not a use (a file that uses the blocks
    # of the spec it extends without defining any is flagged by an editor, though the checker takes it)
    use_free = _without_uses(schema)
    schema["allOf"] = [{"if": schema.pop("if"), "then": schema.pop("then")},
                       {"if": {"not": {"required": ["blocks"]}}, "then": {"properties": {"layers": use_free}}}]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _without_uses(schema: dict) -> dict:
    """The `layers` schema with no use of a kind of your own at any depth; adds the `...Strict` copies of the
    definitions it needs to `$defs`."""
    defs, use = schema["$defs"], "#/$defs/UseEntry"
    reach = {use}
    while True:  # the definitions from which a use can be reached
        more = {f"#/$defs/{k}" for k, d in defs.items() if any(f"\"{r}\"" in json.dumps(d) for r in reach)} - reach
        if not more:
            break
        reach |= more

    def strip(node):
        if isinstance(node, list):
            return [strip(v) for v in node if v != {"$ref": use}]
        if isinstance(node, dict):
            return {k: (v + "Strict" if k == "$ref" and v in reach else strip(v)) for k, v in node.items()}
        return node

    for ref in sorted(reach - {use}):
        name = ref.rsplit("/", 1)[1]
        defs[name + "Strict"] = strip(defs[name])
    return strip(schema["properties"]["layers"])


def schema_text() -> str:
    return json.dumps(file_schema(), indent=2, sort_keys=False) + "\n"
