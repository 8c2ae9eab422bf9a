"""The config's JSON Schema, generated from the one schema (nnlab.config's Options), so that an
editor validates and completes a config as it is typed: the YAML language server reads a
config's first line ``# yaml-language-server: $schema=nnlab.schema.json``.

Each dotted key becomes a nested property with its type, bounds, choices, default and doc;
unknown keys are refused at every level, as nnlab refuses them. Rules between keys (Nesterov
needs momentum, a layer size that fits the data, ...) are nnlab's to check when it runs, and
so is one thing JSON cannot say: that ``1.0`` is not a count (JSON Schema's integers include
it).
"""

from __future__ import annotations

from typing import Any

from nnlab.config import Option, schema_of

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "nnlab.schema.json"  # beside the shipped configs (configs/)
DEFAULT_KIND = "mlp"  # a config without model.kind


def _bounded(opt: Option, out: dict[str, Any]) -> dict[str, Any]:
    if opt.low is not None:
        out["exclusiveMinimum" if opt.low_open else "minimum"] = opt.low
    if opt.high is not None:
        out["exclusiveMaximum" if opt.high_open else "maximum"] = opt.high
    return out


COLUMN = {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]}


def _value(opt: Option) -> dict[str, Any]:
    """The JSON Schema of one option's values (without null, default or doc)."""
    if opt.choices:
        return {"enum": list(opt.choices)}
    if opt.type == "str":
        return {"type": "string"}
    if opt.type == "bool":
        return {"type": "boolean"}
    if opt.type == "int":
        return _bounded(opt, {"type": "integer"})
    if opt.type == "float":
        return _bounded(opt, {"type": "number"})
    if opt.type == "int_list":
        return {"type": "array", "items": _bounded(opt, {"type": "integer"}),
                "minItems": opt.min_len}  # fmt: skip
    if opt.type == "size":
        fraction = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
        return {"anyOf": [{"type": "integer", "minimum": 0}, fraction]}
    if opt.type == "column":
        return COLUMN
    if opt.type == "column_list":
        return {"type": "array", "items": COLUMN, "minItems": 1}
    raise ValueError(f"no JSON Schema for option type {opt.type!r}")


def _property(opt: Option) -> dict[str, Any]:
    value = _value(opt)
    if opt.nullable:
        value = {"anyOf": [value, {"type": "null"}]}
    return value | {"default": opt.default_value(), "description": opt.doc}


def kind_schema(kind: str) -> dict[str, Any]:
    """A config of one model kind: nested objects, no unknown keys at any level."""
    root: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    for key, opt in schema_of(kind).items():
        node, *parents, leaf = [root, *key.split(".")]
        for part in parents:
            node = node["properties"].setdefault(
                part, {"type": "object", "properties": {}, "additionalProperties": False}
            )
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
        is_kind = {"properties": {"kind": {"const": name}}, "required": ["kind"]}
        branch = {
            "if": {"properties": {"model": is_kind}, "required": ["model"]},
            "then": {"$ref": f"#/$defs/{name}"},
            "else": branch,
        }
    return head | branch | {"$defs": {name: kind_schema(name) for name in names}}
