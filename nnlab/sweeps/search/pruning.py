"""Pruning a search's bad trials early (docs/design.md, 'Search').

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

from nnlab.common.status import RunStatus
from nnlab.common.yamlread import shown
from nnlab.errors import ConfigError

KINDS = ("none", "median", "successive_halving", "hyperband")
# Each kind's keys and their defaults (all integers >= their lower bound).
KEYS: dict[str, dict[str, tuple[int, int]]] = {
    "none": {},
    "median": {"warmup_steps": (0, 0), "startup_trials": (5, 0), "interval_steps": (1, 1)},
    "successive_halving": {"min_resource": (1, 1), "reduction_factor": (4, 2)},
    "hyperband": {"min_resource": (1, 1), "reduction_factor": (3, 2)},
}


def parse_pruner(raw: Any, where: str) -> dict[str, Any]:
    """``pruner:`` checked and completed with the defaults: ``{"kind": ..., key: int}``."""
    if raw is None:
        return {"kind": "none"}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with kind: {' | '.join(KINDS)}")
    kind = raw.get("kind", "median")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind must be one of {', '.join(KINDS)}; got {shown(kind)}")
    out: dict[str, Any] = {"kind": kind}
    allowed = KEYS[kind]
    for key, value in raw.items():
        if key == "kind":
            continue
        if key not in allowed:
            keys = ", ".join(allowed) or "no other keys"
            raise ConfigError(f"{where}: unknown key {key} for kind {kind}; allowed: {keys}")
        low = allowed[key][1]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{where}.{key} must be an integer >= {low}; got {shown(value)}")
    for key, (default, _) in allowed.items():
        out[key] = raw.get(key, default)
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
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(Path(report["journal"]))))
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
    from nnlab.models.base import StopRun

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
