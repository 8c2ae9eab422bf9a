"""The config's JSON Schema and the README's config reference, generated from the one schema
(nnlab.config.options's Options). An editor validates and completes a config with the JSON
Schema as it is typed: the YAML language server reads a config's first line
``# yaml-language-server: $schema=nnlab.schema.json``.

Each dotted key becomes a nested property with its type, bounds, choices, default and doc;
unknown keys are refused at every level, as nnlab refuses them. A key's values are described
once, by its option's constraint (:mod:`nnlab.common.constraints`), which writes the key's JSON
Schema here and is also what nnlab checks a value against
(:func:`nnlab.config.options.check_value`): the schema and the loader agree by construction, and
tests/config/test_schema.py's property test generates configs to show that they do. Both read values
as JSON does: ``100.0`` is the integer 100, and no number is infinite. Rules between keys
(Nesterov needs momentum, a layer size that fits the data, ...) are nnlab's to check when it
runs (:func:`nnlab.config.resolve.resolve`, after :func:`nnlab.config.resolve.check_keys`).
"""

from __future__ import annotations

from typing import Any

import yaml

from nnlab.config.options import Option
from nnlab.config.resolve import schema_of
from nnlab.models import kinds

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "nnlab.schema.json"  # beside the shipped configs (configs/)
DEFAULT_KIND = "mlp"  # a config without model.kind


def _property(opt: Option) -> dict[str, Any]:
    return opt.allowed.json_schema() | {"default": opt.default_value(), "description": opt.doc}


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


def reference_markdown(names: tuple[str, ...] = ("mlp", "dcn")) -> str:
    """The README's config reference table for nnlab's own kinds, generated from their
    schemas: a row per key; where the kinds differ, each kind's default, values or words."""

    def show(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()

    def per_kind(texts: dict[str, str], wrap=lambda t: t, sep: str = "; ") -> str:
        if len(set(texts.values())) == 1:
            return wrap(next(iter(texts.values())))
        return sep.join(f"{k}: {wrap(t)}" for k, t in texts.items())

    schemas = {name: schema_of(name) for name in names}
    keys = list(dict.fromkeys(k for s in schemas.values() for k in s))
    order = ["name", "seed", "data.", "model.", "train."]
    keys.sort(key=lambda k: next(i for i, p in enumerate(order) if k.startswith(p)))
    lines = ["| key | models | default | allowed | meaning |", "|---|---|---|---|---|"]
    for key in keys:
        opts = {name: s[key] for name, s in schemas.items() if key in s}
        defaults = {name: show(o.default) for name, o in opts.items()}
        if len(set(defaults.values())) == 1:
            default = f"`{next(iter(defaults.values()))}`"
        else:
            default = " / ".join(f"`{d}` ({k})" for k, d in defaults.items())
        allowed = per_kind({name: str(o.allowed) for name, o in opts.items()})
        doc = per_kind({name: o.doc for name, o in opts.items()})
        lines.append(f"| `{key}` | {', '.join(opts)} | {default} | {allowed} | {doc} |")
    return "\n".join(lines) + "\n"
