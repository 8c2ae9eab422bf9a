"""Loading a config and resolving it against its model kind's options (docs/design.md,
'Config').

A config file (or mapping) is read, its ``-s`` overrides set, and validated before any work
starts: every key known to its kind, every value what its option allows, then the rules
between keys; every error names the dotted key, what was given and what is allowed. Above the
model kinds: the keys a config may hold are the kinds' schemas.
"""

from __future__ import annotations

import copy
import difflib
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from nnlab.common.constraints import OneOf
from nnlab.common.yamlread import clip, read_yaml_file, shown
from nnlab.config.options import COMMON, Option, check_value
from nnlab.config.overrides import (
    PATH_KEYS,
    anchor_paths,
    apply_overrides,
    nest,
    parse_overrides,
)
from nnlab.data.catalog import CATALOG, default_test_size
from nnlab.errors import ConfigError
from nnlab.models import check_loadable, get_kind, kinds

# Keys from which resolve derives others — the schema (model.kind), data.test_size's default
# (data.name), the name's default, absolute file names: a variant setting one is resolved whole.
DERIVING_KEYS = frozenset(
    {"name", "model.kind", "data.name", "data.test_size", *(f"{s}.{k}" for s, k in PATH_KEYS)}
)


def schema_of(kind: str) -> dict[str, Option]:
    """Every key a config of this model kind has, in the order config.yaml lists them:
    name, seed, the data keys, model.kind, the other model keys, the training keys."""
    own = get_kind(kind).schema
    out = {k: COMMON[k] for k in ("name", "seed")}
    out.update((k, o) for k, o in own.items() if k.startswith("data."))
    out["model.kind"] = COMMON["model.kind"].but(allowed=OneOf(kinds()))
    out.update((k, o) for k, o in own.items() if not k.startswith("data."))
    out["train.threads"] = COMMON["train.threads"]
    return out


def all_schemas() -> dict[str, dict[str, Option]]:
    """Every known kind's schema, by kind."""
    return {name: schema_of(name) for name in kinds()}


def _owners(schemas: Mapping[str, Mapping[str, Option]]) -> dict[str, list[str]]:
    """Every key of the given schemas -> the kinds that have it."""
    out: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        for key in schema:
            out.setdefault(key, []).append(name)
    return out


def known_keys() -> list[str]:
    """The dotted keys some kind's config may hold."""
    return list(_owners(all_schemas()))


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def suggest(key: str) -> str:
    """A " (did you mean X?)" hint for an unknown dotted key, or "": first a key of the same
    leaf name, then a key that declares the leaf among its aliases (each preferring the
    given section), then the closest spelling."""
    schemas = all_schemas()
    keys = list(_owners(schemas))
    section, _, leaf = key.lower().rpartition(".")

    def near(candidates: list[str]) -> list[str]:
        same = [k for k in candidates if section and k.startswith(section + ".")]
        return same or candidates

    candidates = near([k for k in keys if _leaf(k) == leaf])
    if not candidates:
        aliased = {k for s in schemas.values() for k, o in s.items() if leaf in o.aliases}
        candidates = near([k for k in keys if k in aliased])
    if not candidates:
        candidates = difflib.get_close_matches(key.lower(), keys, n=1, cutoff=0.6)
    if not candidates:
        leaves = {_leaf(k): k for k in keys}
        close = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.75)
        candidates = [leaves[c] for c in close]
    return f" (did you mean {candidates[0]}?)" if candidates else ""


def _flatten(raw: dict[str, Any], sections: set[str], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr_decay": {"kind": "step"}}}`` -> ``{"train.lr_decay.kind": "step"}``,
    refusing sections that are not mappings (keys are checked against the kind later)."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if dotted in sections:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted} must be a section of keys, got {shown(value)}")
            flat.update(_flatten(value, sections, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _sections(keys: Iterable[str]) -> set[str]:
    """Every dotted prefix that names a section of keys: data, model, train, train.lr_decay."""
    return {".".join(k.split(".")[:i]) for k in keys for i in range(1, k.count(".") + 1)}


def _kind_dependent(schemas: Mapping[str, Mapping[str, Option]], kind: str) -> dict[str, str]:
    """Each key of ``kind`` -> the kind, where its choices depend on the kind (its errors
    name it), else ""."""
    owners = _owners(schemas)
    return {
        key: kind if len({schemas[k][key].choices for k in owners[key]}) > 1 else ""
        for key in schemas[kind]
    }


def check_keys(raw: Any) -> tuple[str, dict[str, Any]]:
    """The half of :func:`resolve` that the JSON Schema states too (nnlab.config.schema): the
    config is a mapping, each section a mapping (or null), every key known to its model kind
    and every value what its option allows. Returns the kind and the config as dotted keys,
    each key's value checked and normalised or its default."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of keys, got {type(raw).__name__}")
    schemas = all_schemas()
    owners = _owners(schemas)
    given = _flatten(raw, _sections(owners))
    any_kind = next(iter(schemas.values()))["model.kind"]
    given_kind = given.get("model.kind", any_kind.default)
    if isinstance(given_kind, str):
        check_loadable(given_kind)
    kind = check_value("model.kind", any_kind, given_kind)
    schema = schemas[kind]
    for key in given:
        if key not in owners:
            raise ConfigError(f"unknown key {clip(key)}{suggest(key)}")
        if key not in schema:
            raise ConfigError(
                f"{key} applies only to model.kind {' or '.join(owners[key])}, "
                f"and this config's model.kind is {kind}"
            )
    for_kind = _kind_dependent(schemas, kind)
    flat = {}
    for key, opt in schema.items():
        value = given[key] if key in given else opt.default_value()
        flat[key] = check_value(key, opt, value, for_kind[key])
    return kind, flat


def resolve(raw: Any, default_name: str = "run") -> dict[str, Any]:
    """Validate a raw nested config and fill in every default.

    Returns the fully resolved nested dict ``{"name", "seed", "data": {...}, ...}`` holding the
    keys of its model kind — the form that is saved as config.yaml and that the trainers
    read. Each key is checked on its own first (:func:`check_keys`), then the rules between
    keys (the data set's test split, the kind's ``check_config``).
    """
    kind, flat = check_keys(raw)
    schema = schema_of(kind)
    if flat["name"] is None:
        flat["name"] = default_name
    if "data.test_size" in flat:
        data_name, test_size = flat["data.name"], flat["data.test_size"]
        if data_name in CATALOG and CATALOG[data_name].own_test:
            if test_size is not None:
                raise ConfigError(
                    f"data.test_size does not apply to {data_name}, which has its own test "
                    "files; leave it out (or null)"
                )
        elif test_size is None:
            flat["data.test_size"] = default_test_size(data_name)
    cfg = nest(flat)
    get_kind(kind).check_config(cfg)
    return applicable(cfg, schema)


def applicable(cfg: dict[str, Any], schema: Mapping[str, Option]) -> dict[str, Any]:
    """``cfg`` without the keys that do not apply to its data set (an Option's
    ``data_sets``): a breast-cancer run's config holds no ``data.noise``."""
    data = cfg.get("data", {})
    for key, opt in schema.items():
        if opt.data_sets and data.get("name") not in opt.data_sets:
            data.pop(key.removeprefix("data."), None)
    return cfg


def _raw_config(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | Iterable[str] | None,
) -> tuple[dict[str, Any], str]:
    """The raw nested config with its overrides applied and its file names made absolute,
    and the name it defaults to: everything :func:`resolve` then validates."""
    if isinstance(source, Mapping):
        raw, default_name = copy.deepcopy(dict(source)), "run"
    else:
        raw, default_name = read_yaml_file(source), Path(source).stem
        anchor_paths(raw, Path(source).parent)
    if overrides:
        if not isinstance(overrides, Mapping):
            overrides = parse_overrides(overrides)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"a config must be a mapping of keys, got {type(raw).__name__}")
        raw = apply_overrides(raw, overrides)
    anchor_paths(raw, Path.cwd())
    return raw, default_name


def load_config(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> dict[str, Any]:
    """Load, override and validate a config.

    ``source`` is a YAML file path or an already-parsed mapping. ``overrides`` is a mapping of
    dotted keys to values, or a list of ``"key=value"`` strings as given to ``-s``.
    """
    return resolve(*_raw_config(source, overrides))


class BaseConfig:
    """A config read and validated once, from which variants that override a few keys are
    resolved cheaply: a sweep's jobs, thousands of which must not each re-read the file and
    re-validate every key. ``variant(overrides)`` is ``load_config(source, {**overrides of
    the base, **overrides})``, checking only the keys the variant sets — unless it sets a
    key others are derived from (:data:`DERIVING_KEYS`) or one its kind lacks, which is
    resolved in full (with resolve's error)."""

    def __init__(
        self,
        source: str | Path | Mapping[str, Any],
        overrides: Mapping[str, Any] | Iterable[str] | None = None,
    ):
        self._raw, self._default_name = _raw_config(source, overrides)
        self.config = resolve(copy.deepcopy(self._raw), self._default_name)
        self._frozen = pickle.dumps(self.config)
        self._kind = self.config["model"]["kind"]
        schemas = all_schemas()
        self._schema = schemas[self._kind]
        self._for_kind = _kind_dependent(schemas, self._kind)

    def variant(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The resolved config with ``overrides`` (dotted keys) applied."""
        if DERIVING_KEYS.intersection(overrides) or not set(overrides) <= set(self._schema):
            raw = apply_overrides(self._raw, overrides)
            anchor_paths(raw, Path.cwd())
            return resolve(raw, self._default_name)
        cfg = pickle.loads(self._frozen)  # noqa: S301 - our own bytes: a fresh copy, fast
        for key, opt in self._schema.items():  # in schema order, as resolve reports them
            if key in overrides:
                *sections, leaf = key.split(".")
                node = cfg
                for section in sections:
                    node = node[section]
                node[leaf] = check_value(key, opt, overrides[key], self._for_kind[key])
        get_kind(self._kind).check_config(cfg)
        return applicable(cfg, self._schema)


class _FlowListDumper(yaml.SafeDumper):
    """Dumps lists inline (``layers: [2, 3, 2]``) and mappings in block style."""


_FlowListDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


def dump_config(cfg: Mapping[str, Any]) -> str:
    """The YAML text of a resolved config, keys in schema order."""
    return yaml.dump(dict(cfg), Dumper=_FlowListDumper, sort_keys=False)
