"""The config's JSON Schema, generated from the one schema (nnlab.config.options's
Options), so that an editor validates and completes a config as it is typed: the YAML language
server reads a config's first line ``# yaml-language-server: $schema=nnlab.schema.json``.

Each dotted key becomes a nested property with its type, bounds, choices, default and doc;
unknown keys are refused at every level, as nnlab refuses them. A key's values are described
once, by :func:`nnlab.config.options.value_schema`, which is also what nnlab checks a value against
(:func:`nnlab.config.options.check_value`): the schema and the loader agree by construction, and
tests/test_schema.py's property test generates configs to show that they do. Both read values
as JSON does: ``100.0`` is the integer 100, and no number is infinite. Rules between keys
(Nesterov needs momentum, a layer size that fits the data, ...) are nnlab's to check when it
runs (:func:`nnlab.config.options.resolve`, after :func:`nnlab.config.options.check_keys`).
"""

from __future__ import annotations

from typing import Any

from nnlab.config.options import Option, schema_of, value_schema

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "nnlab.schema.json"  # beside the shipped configs (configs/)
DEFAULT_KIND = "mlp"  # a config without model.kind


def _property(opt: Option) -> dict[str, Any]:
    return value_schema(opt) | {"default": opt.default_value(), "description": opt.doc}


def _section() -> dict[str, Any]:
    """A section of keys: nnlab reads a section left empty (null) as none of its keys given."""
    return {"type": ["object", "null"], "properties": {}, "additionalProperties": False}


def kind_schema(kind: str) -> dict[str, Any]:
    """A config of one model kind: nested objects, no unknown keys at any level."""
    root = _section()  # an empty file is a config of defaults
    for key, opt in schema_of(kind).items():
        node, *parents, leaf = [root, *key.split(".")]
        for part in parents:
            node = node["properties"].setdefault(part, _section())
        node["properties"][leaf] = _property(opt)
    kind_prop = root["properties"]["model"]["properties"]["kind"]
    kind_prop["enum"] = [kind]
    if kind != DEFAULT_KIND:  # only the default kind may leave model.kind out
        root["required"] = ["model"]
        root["properties"]["model"]["required"] = ["kind"]
    return root


def json_schema(kind: str | None = None) -> dict[str, Any]:
    """The schema of one kind's configs, or of any config: model.kind picks the kind's
    schema (the default kind's when it is absent)."""
    from nnlab.models import kinds

    head = {"$schema": DRAFT, "title": "nnlab experiment config"}
    if kind is not None:
        return head | {"title": f"nnlab {kind} config"} | kind_schema(kind)
    names = sorted(kinds(), key=lambda k: k == DEFAULT_KIND)  # the default kind last
    branch: dict[str, Any] = {"$ref": f"#/$defs/{names[-1]}"}
    for name in reversed(names[:-1]):
        is_kind = {"type": "object", "properties": {"kind": {"const": name}}, "required": ["kind"]}
        branch = {  # "type": "object" in the test: a null model section picks the default kind
            "if": {"type": "object", "properties": {"model": is_kind}, "required": ["model"]},
            "then": {"$ref": f"#/$defs/{name}"},
            "else": branch,
        }
    return head | branch | {"$defs": {name: kind_schema(name) for name in names}}
