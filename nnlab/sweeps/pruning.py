"""Pruning a search's bad trials early (docs/design.md, 'Search').

A sweep file's ``pruner:`` names one of Optuna's pruners. A trial's job reports the search
metric to the study at every evaluation (every row that carries it) from the worker process
that runs it, through the study's journal file; when the pruner says so, the run stops at once
with status ``pruned`` (``StopRun``), keeping its metrics and figures, and the scheduler gives
its slot to the next trial.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
        raise ConfigError(f"{where}.kind must be one of {', '.join(KINDS)}; got {kind!r}")
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
            raise ConfigError(f"{where}.{key} must be an integer >= {low}; got {value!r}")
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


def reporter(report: dict[str, Any]) -> Callable[[dict[str, float]], None]:
    """The row hook of a trial's job (in the worker): report the metric at every row that
    carries it; stop the run as ``pruned`` when the pruner says so. ``report`` holds the
    journal file, the trial number, the metric and the pruner spec."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from nnlab.models.base import StopRun

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(Path(report["journal"]))))
    study = optuna.load_study(
        study_name="nnlab", storage=storage, pruner=make_pruner(report["pruner"])
    )
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, report["trial"])
    trial = optuna.trial.Trial(study, trial_id)
    metric = report["metric"]

    def on_row(row: dict[str, float]) -> None:
        if metric not in row:
            return
        step = int(row["step"])
        trial.report(row[metric], step)
        if trial.should_prune():
            raise StopRun(
                f"pruned by the {report['pruner']['kind']} pruner at step {step} "
                f"({metric} {row[metric]:.6g})",
                status="pruned",
            )

    return on_row
