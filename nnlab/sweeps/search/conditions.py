"""Conditional params of a search: a ``params:`` entry with ``when: {other key: value}``
applies only to the trials where that other param (one with choices) took that value
(docs/sweeps.md, 'Search'). The checks of the conditions, each a one-line error: the keys
they name, cycles, contradictions."""

from __future__ import annotations

import json
from typing import Any

from nnlab.common.constraints import OneOf, refuse_unknown_keys
from nnlab.common.yamlread import shown
from nnlab.errors import ConfigError

WHEN = "when"  # a params entry's condition: {other key: its value}


def value_text(value: Any) -> str:
    """A param's value as the report and the errors show it: 0.0001, sgd, [30, 10, 2]."""
    if isinstance(value, list | bool) or value is None:
        return json.dumps(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def split_when(key: str, spec: Any, where: str) -> tuple[Any, dict[str, Any]]:
    """An entry without its ``when`` (checked to be a non-empty mapping), and the ``when``."""
    if not isinstance(spec, dict) or WHEN not in spec:
        return spec, {}
    when = spec[WHEN]
    if not isinstance(when, dict) or not when:
        raise ConfigError(
            f"{where}.{key}.when must be a mapping of other params to one of their choices, "
            f"e.g. {{train.optimizer: sgd}}; got {shown(when)}"
        )
    return {k: v for k, v in spec.items() if k != WHEN}, when


def check_condition_key(key: str, other: Any, raws: dict[str, Any], where: str) -> None:
    """A key a condition names: another param of the search, one with choices."""
    if other == key:
        raise ConfigError(f"{where}.{key}.when names {key} itself: a param cannot depend on itself")
    if other not in raws:
        known = [k for k, v in raws.items() if k != key and isinstance(v, dict) and "choices" in v]
        refuse_unknown_keys(
            {other: None},
            OneOf(known),
            f"{where}.{key}.when",
            for_what=" (a condition names another param of the search, one with choices)",
        )
    if not (isinstance(raws[other], dict) and "choices" in raws[other]):
        raise ConfigError(
            f"{where}.{key}.when names {other}, a range: a condition names a param with "
            "choices (its value must be one of them)"
        )


def acyclic(whens: dict[str, dict[str, Any]], where: str) -> list[str]:
    """The params, each after those its condition names; ConfigError naming a cycle."""
    out: list[str] = []
    path: list[str] = []

    def visit(key: str) -> None:
        if key in out:
            return
        if key in path:
            cycle = " -> ".join([*path[path.index(key) :], key])
            raise ConfigError(
                f"{where}: the conditions (when) go round in a cycle: {cycle}; each param's "
                "condition must name params that do not depend on it"
            )
        path.append(key)
        for other in whens[key]:
            visit(other)
        path.pop()
        out.append(key)

    for key in whens:
        visit(key)
    return out


def implied(
    key: str, when: dict[str, Any], given: dict[str, dict[str, Any]], where: str
) -> dict[str, Any]:
    """The values that hold wherever ``key`` applies: its condition's, and those of the
    params its condition names; ConfigError when they contradict (it could never apply)."""
    out: dict[str, Any] = {}
    for other, value in when.items():
        for k, v in {**given[other], other: value}.items():
            if k in out and json.dumps(out[k]) != json.dumps(v):
                raise ConfigError(
                    f"{where}.{key}.when can never hold: it needs {k} = {value_text(out[k])} "
                    f"and {k} = {value_text(v)}"
                )
            out[k] = v
    return out
