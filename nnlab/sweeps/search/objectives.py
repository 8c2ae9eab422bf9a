"""A multi-objective search's objectives: ``search.objectives`` (a list of {metric,
direction}), ``search.pick`` (the rule that names one front member best.yaml's) and where a
trial's value of each objective comes from (docs/sweeps.md, 'Multi-objective search').

Every entry is checked with the constraint vocabulary (:mod:`nnlab.common.constraints`), so
each error is one line naming the key and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnlab.common.constraints import Integer, OneOf, refuse_unknown_keys, require
from nnlab.common.yamlread import shown
from nnlab.errors import ConfigError

# what a run's summary.json holds beside its metric rows: a job entry's ``cost`` in state.json
COSTS = ("n_params", "train_seconds")
VALIDATION = ("val_acc", "val_loss")
OBJECTIVE_METRICS = VALIDATION + COSTS
METRIC = OneOf(OBJECTIVE_METRICS, words="one of " + ", ".join(OBJECTIVE_METRICS))
FIRST = OneOf(VALIDATION, words="val_acc or val_loss (the primary objective)")
DIRECTION = OneOf(("maximize", "minimize"), words="maximize or minimize")
OBJECTIVE_KEYS = OneOf(("metric", "direction"))
PICKS = ("knee", "first")  # or an objective's metric
POPULATION = Integer(2, 100_000, exact=True, words="an integer from 2 to 100000")
NSGA2_POPULATION = 50  # Optuna's population_size


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str

    def to_json(self) -> dict[str, str]:
        return {"metric": self.metric, "direction": self.direction}


def default_direction(metric: str) -> str:
    """maximize for an accuracy, minimize for a loss, a size or a time."""
    return "maximize" if metric.endswith("_acc") else "minimize"


def refuse_test_metric(metric: Any, where: str) -> None:
    if isinstance(metric, str) and metric.startswith("test_"):
        raise ConfigError(
            f"{where} is {metric}, a test metric: a search chooses on validation data, "
            "never on test (use val_acc or val_loss; the summary reports the chosen trial's "
            "test metrics beside it)"
        )


def parse_objectives(raw: dict[str, Any], where: str) -> list[Objective] | None:
    """``search.objectives`` checked (None when the search has one objective): a list of 2
    or more {metric, direction}, the first a validation metric, no metric twice, and not
    beside ``search.metric`` / ``search.direction``."""
    if "objectives" not in raw:
        return None
    items = raw["objectives"]
    both = [k for k in ("metric", "direction") if k in raw]
    if both:
        raise ConfigError(
            f"{where} has both objectives and {' and '.join(both)}: a multi-objective search "
            "names each objective's metric and direction in search.objectives; leave "
            f"{' and '.join(both)} out"
        )
    if not isinstance(items, list) or len(items) < 2:
        raise ConfigError(
            f"{where}.objectives must be a list of 2 or more {{metric, direction}}; got "
            f"{shown(items)} (one objective: use search.metric and search.direction)"
        )
    out: list[Objective] = []
    for k, item in enumerate(items):
        at = f"{where}.objectives[{k}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{at} must be a mapping {{metric, direction}}; got {shown(item)}")
        refuse_unknown_keys(item, OBJECTIVE_KEYS, at)
        metric = item.get("metric")
        refuse_test_metric(metric, f"{at}.metric")
        require(metric, FIRST if k == 0 else METRIC, f"{at}.metric")
        if any(o.metric == metric for o in out):
            raise ConfigError(f"{at}.metric is {metric}, which an earlier objective names")
        direction = require(
            item.get("direction", default_direction(metric)), DIRECTION, f"{at}.direction"
        )
        out.append(Objective(metric, direction))
    return out


def parse_goal(raw: dict[str, Any], metric_values: OneOf, where: str) -> tuple:
    """(metric, direction, objectives): ``search.metric`` and ``search.direction`` (one of
    ``metric_values``; the direction by default maximize for an accuracy), or the first of
    ``search.objectives`` and all of them (None for a single-objective search)."""
    objectives = parse_objectives(raw, where)
    if objectives is not None:
        return objectives[0].metric, objectives[0].direction, objectives
    metric = raw.get("metric", "val_loss")
    refuse_test_metric(metric, f"{where}.metric")
    require(metric, metric_values, f"{where}.metric")
    direction = raw.get("direction", default_direction(metric))
    return metric, require(direction, DIRECTION, f"{where}.direction"), None


def parse_pick(raw: dict[str, Any], objectives: list[Objective] | None, where: str) -> str:
    """``search.pick``: knee (default), first, or one objective's metric; only with
    objectives."""
    if objectives is None:
        if "pick" in raw:
            raise ConfigError(
                f"{where}.pick chooses best.yaml among a multi-objective search's front: it "
                "needs search.objectives"
            )
        return "knee"
    allowed = (*PICKS, *(o.metric for o in objectives))
    return require(raw.get("pick", "knee"), OneOf(allowed), f"{where}.pick")


def parse_population(raw: dict[str, Any], method: str, where: str) -> int:
    """``search.population``: NSGA-II's population size (method nsga2 only)."""
    if "population" in raw and method != "nsga2":
        raise ConfigError(
            f"{where}.population is NSGA-II's population size: it needs method nsga2, not {method}"
        )
    return require(raw.get("population", NSGA2_POPULATION), POPULATION, f"{where}.population")


def refuse_with_objectives(raw: dict[str, Any], pruner: dict[str, Any], where: str) -> None:
    """What a multi-objective search refuses: pruning (a trial behind on one objective may
    be on the front by another, and Optuna's pruners judge one objective) and confirmation
    (its winner rule ranks one metric)."""
    if pruner["kind"] != "none":
        raise ConfigError(
            f"{where.removesuffix('.search')}.pruner is {pruner['kind']}, but a multi-objective "
            "search is never pruned: a trial behind on its first objective may still be on the "
            "Pareto front by another (Optuna's pruners judge one objective); use kind: none"
        )
    if "confirm" in raw:
        raise ConfigError(
            f"{where}.confirm ranks the trials by one metric: it does not apply to a "
            "multi-objective search (leave confirm out; search.pick names best.yaml's trial)"
        )


def entry_value(entry: Any, metric: str) -> float | None:
    """A job's value of an objective: its metric row's (``final``), or for a size or a time
    its ``cost`` (the run's summary.json: n_params, train_seconds). None when missing."""
    if metric in COSTS:
        value = (getattr(entry, "cost", None) or {}).get(metric)
    else:
        value = (entry.final or {}).get(metric)
    return None if value is None else float(value)


def cost_of(summary: Any) -> dict[str, Any]:
    """A run's cost for state.json (``{n_params, train_seconds}`` from its summary; {} before
    it ended)."""
    if summary is None:
        return {}
    return {k: getattr(summary, k) for k in COSTS if getattr(summary, k, None) is not None}
