"""Pruning a search's bad trials early (docs/sweeps.md, 'Search').

A sweep file's ``pruner:`` names one of Optuna's pruners. A trial's job reports the search
metric to the study at every evaluation (every row that carries it): from the worker process
that runs it through the study's journal file on the local executor, through the driver on a
Ray cluster (whose nodes share no file system); when the pruner says so, the run stops at once
with status ``pruned`` (``StopRun``), keeping its metrics and figures, and the scheduler gives
its slot to the next trial.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnlab.common.constraints import Integer, OneOf, refuse_unknown_keys, require
from nnlab.common.status import RunStatus
from nnlab.errors import ConfigError
from nnlab.models.training.callbacks import StopRun
from nnlab.sweeps.search.journal import journal_storage

KINDS = OneOf(("none", "median", "successive_halving", "hyperband"))
# Each kind's keys: their defaults and what they allow (exact integers).
KEYS: dict[str, dict[str, tuple[int, Integer]]] = {
    "none": {},
    "median": {
        "warmup_steps": (0, Integer(0, exact=True)),
        "startup_trials": (5, Integer(0, exact=True)),
        "interval_steps": (1, Integer(1, exact=True)),
    },
    "successive_halving": {
        "min_resource": (1, Integer(1, exact=True)),
        "reduction_factor": (4, Integer(2, exact=True)),
    },
    "hyperband": {
        "min_resource": (1, Integer(1, exact=True)),
        "reduction_factor": (3, Integer(2, exact=True)),
    },
}


def parse_pruner(raw: Any, where: str) -> dict[str, Any]:
    """``pruner:`` checked and completed with the defaults: ``{"kind": ..., key: int}``."""
    if raw is None:
        return {"kind": "none"}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with kind: {' | '.join(KINDS.choices)}")
    kind = require(raw.get("kind", "median"), KINDS, f"{where}.kind")
    allowed = KEYS[kind]
    others = {k: v for k, v in raw.items() if k != "kind"}
    refuse_unknown_keys(others, OneOf(allowed), where, for_what=f" for kind {kind}")
    out: dict[str, Any] = {"kind": kind}
    for key, (default, values) in allowed.items():
        out[key] = require(raw.get(key, default), values, f"{where}.{key}")
    return out


def make_pruner(spec: dict[str, Any]):
    import optuna

    kind = spec["kind"]
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec["startup_trials"],
            n_warmup_steps=spec["warmup_steps"],
            interval_steps=spec["interval_steps"],
        )
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=spec["min_resource"], reduction_factor=spec["reduction_factor"]
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec["min_resource"], reduction_factor=spec["reduction_factor"]
        )
    return optuna.pruners.NopPruner()


def open_trial(study, number: int):
    """Trial ``number`` of an Optuna study, as the object that reports and asks to prune."""
    import optuna

    storage = study._storage
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.trial.Trial(study, trial_id)


def judge(study, number: int, step: int, value: float) -> bool:
    """Report ``value`` at ``step`` for trial ``number``; whether the study's pruner stops it."""
    trial = open_trial(study, number)
    trial.report(value, step)
    return trial.should_prune()


def _journal_judge(report: dict[str, Any]) -> Callable[[int, float], bool]:
    """Judge through the sweep folder's journal file (a worker on the driver's machine)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = journal_storage(Path(report["journal"]))
    study = optuna.load_study(
        study_name="nnlab", storage=storage, pruner=make_pruner(report["pruner"])
    )
    number = report["trial"]
    return lambda step, value: judge(study, number, step, value)


def reporter(report: dict[str, Any]) -> Callable[[dict[str, float]], None]:
    """The row hook of a trial's job (in the worker): report the metric at every row that
    carries it; stop the run as ``pruned`` when the pruner says so. ``report`` holds the
    trial number, the metric, the pruner spec, and either the journal file (the local
    executor) or ``ask``, a function ``(trial, step, value) -> prune?`` that relays the value
    to the driver (a cluster without a shared file system: nnlab.sweeps.executors.ray)."""
    if "ask" in report:
        ask, number = report["ask"], report["trial"]

        def decide(step: int, value: float) -> bool:
            return ask(number, step, value)

    else:
        decide = _journal_judge(report)
    metric = report["metric"]

    def on_row(row: dict[str, float]) -> None:
        if metric not in row:
            return
        step = int(row["step"])
        if decide(step, row[metric]):
            raise StopRun(
                f"pruned by the {report['pruner']['kind']} pruner at step {step} "
                f"({metric} {row[metric]:.6g})",
                status=RunStatus.PRUNED,
            )

    return on_row
