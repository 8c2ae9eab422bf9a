"""What the figures of a hyperparameter search share (nnlab.figures.search draws the history
and the importances, nnlab.figures.parallel the parallel coordinates): the trial records, the
search space they may be given, which trials count, the params' names and kinds, and the
search metric's label.

A trial lacks the params whose condition did not hold for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from nnlab.common.metrics import LABELS, is_accuracy
from nnlab.common.status import RunStatus

DIRECTIONS = ("maximize", "minimize")


class SpaceParam(Protocol):
    """What the figures read of a searched key (nnlab.sweeps.search.space.Param is one):
    its kind (float, int, choice), range and scale, and its condition."""

    kind: str
    low: float | None
    high: float | None
    log: bool

    def distribution(self) -> Any: ...  # Optuna's distribution of the key

    def condition_text(self) -> str | None: ...  # 'train.optimizer = sgd' (None: always)


Space = Mapping[str, SpaceParam]


@dataclass
class TrialRecord:
    """One trial of a search: its number (0-based, in the order trials were started), its
    sampled params (dotted config key -> value), its status and, for a completed trial, the
    search metric."""

    number: int
    params: dict[str, Any] = field(default_factory=dict)
    status: str = RunStatus.COMPLETED
    value: float | None = None
    did_not_learn: bool = False  # a run of it stayed at chance (nnlab.common.metrics.did_not_learn)
    values: list[float | None] | None = None  # a multi-objective search's: one per objective


def finite(value: Any) -> bool:
    """Whether a value is a finite number (not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def completed(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    """The completed trials that have a finite value, in trial-number order."""
    return sorted(
        (t for t in trials if t.status == RunStatus.COMPLETED and finite(t.value)),
        key=lambda t: t.number,
    )


def check_direction(direction: str) -> None:
    """A ValueError unless ``direction`` is 'maximize' or 'minimize'."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")


def numeric(values: list[Any]) -> bool:
    """Whether a param's values are all numbers (bools and strings make it categorical)."""
    return bool(values) and all(finite(v) for v in values)


def _first_seen(trials: Iterable[TrialRecord]) -> list[str]:
    """Every param any of the trials has, in the trials' own order: a param first seen in a
    later trial (a conditional one, say momentum for sgd only) goes right after the param
    before it in that trial, not at the end."""
    names: list[str] = []
    for t in sorted(trials, key=lambda t: t.number):
        prev = None
        for name in t.params:
            if name not in names:
                names.insert(0 if prev is None else names.index(prev) + 1, name)
            prev = name
    return names


def param_names(trials: Iterable[TrialRecord], space: Space | None) -> list[str]:
    """The params the trials have: the space's order, then any others in the trials' order."""
    seen = _first_seen(trials)
    return [k for k in (space or {}) if k in seen] + [k for k in seen if k not in (space or {})]


def optuna_value(value: Any) -> Any:
    """A param's value as Optuna keeps it: lists (and anything not plain) as their text."""
    plain = value is None or isinstance(value, bool | int | float | str)
    return value if plain else str(value)


def metric_label(metric: str) -> str:
    """'Validation accuracy (%)' for val_acc; the key with spaces for unknown metrics."""
    if metric in LABELS:
        return LABELS[metric]
    label = metric.replace("_", " ")
    return f"{label} (%)" if is_accuracy(metric) else label


def metric_name(metric: str) -> str:
    """The metric's label without its unit: 'Validation accuracy'."""
    return metric_label(metric).removesuffix(" (%)")
