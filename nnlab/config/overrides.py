"""Dotted keys: ``-s train.epsilon=0.005`` overrides parsed and set into a nested config, nested
configs flattened to dotted keys and back, and the file names among them made absolute.

Below the model kinds (nnlab.models.bounds flattens configs); no key is validated here — that
is :mod:`nnlab.config.resolve`'s.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nnlab.common.yamlread import clip, parse_yaml, shown
from nnlab.errors import ConfigError

PATH_KEYS = (("data", "path"),)  # file names in a config: relative to the config file


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.epsilon=0.005", ...]`` into ``{"train.epsilon": 0.005, ...}``.

    Values are parsed as YAML scalars or lists, so ``model.layers=[2,5,2]`` is a list.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"override {shown(item)} is not of the form KEY=VALUE (e.g. -s train.epsilon=0.005)"
            )
        out[key] = parse_yaml(value, f"override {clip(key)}") if value.strip() else None
    return out


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of the raw nested config with dotted-key overrides set."""
    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        node = out
        parts = dotted.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(
                    f"override {clip(dotted)}: {clip(where)} is {shown(child)}, "
                    "not a section of keys"
                )
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return out


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: ``{"train": {"epsilon": 0.1}}`` -> ``{"train.epsilon":
    0.1}`` (no validation; for comparing and labelling configs)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys as a nested config: the inverse of :func:`flatten`."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        *sections, leaf = dotted.split(".")
        node = out
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return out


def anchor_overrides(overrides: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Dotted overrides with relative file names made absolute against ``base`` (a sweep
    file's folder, for the values its grid and variants give)."""
    out = dict(overrides)
    for section, key in PATH_KEYS:
        value = out.get(f"{section}.{key}")
        if isinstance(value, str) and value:
            out[f"{section}.{key}"] = _absolute(value, base)
    return out


def _absolute(path: str, base: Path) -> str:
    """``path`` made absolute against ``base`` (if relative) and normalised: no "configs/../"."""
    return os.path.abspath(base / Path(path).expanduser())


def anchor_paths(raw: Any, base: Path) -> None:
    """Make relative file names absolute: those a config file gives against its folder, those
    given as overrides or in a mapping against the working directory — so config.yaml
    repeats the run from anywhere."""
    for section, key in PATH_KEYS:
        node = raw.get(section) if isinstance(raw, dict) else None
        if isinstance(node, dict) and isinstance(node.get(key), str) and node[key]:
            node[key] = _absolute(node[key], base)
