"""Overlaid curves of several runs, one figure per metric: the runs with one label drawn as a
group (the median with an interquartile band), used by ``nnlab plot`` of several runs and by a
sweep's comparison figures."""

from __future__ import annotations

from pathlib import Path

from nnlab.common.metrics import PREFERRED, logged_metrics
from nnlab.common.yamlread import shown
from nnlab.errors import NnlabError
from nnlab.figures import plots


def check_logged(runs: list[tuple[Path, list[dict[str, float]]]], metrics: list[str]) -> None:
    """Every metric asked for is one that every run logs ('loss' and 'accuracy': any split's);
    NnlabError naming the run, the metric and what the run logs otherwise, so that a figure
    is never silently left out."""
    for path, rows in runs:
        logged = logged_metrics(rows)
        for metric in metrics:
            if not set(PREFERRED.get(metric, [metric])) & set(logged):
                raise NnlabError(
                    f"{path}: no metric {shown(metric)} in metrics.csv "
                    f"(it logs {', '.join(logged) or 'nothing yet'})"
                )


def overlay(
    runs: list[tuple[str, Path, list[dict[str, float]]]],
    metrics: list[str],
    out: Path,
    ext: str,
    prefix: str = "",
    title: str = "",
    check: bool = True,
    xscale: str = "linear",
) -> list[Path]:
    """One figure per metric, ``<prefix><metric>.<ext>``: the (label, folder, rows) runs with
    one label are one group, drawn as its median with an interquartile band (a run alone, as
    its curve; nnlab.figures.plots.grouped_curves), a panel per split that every run logs
    ('loss': train, validation and test loss side by side). With ``check``, every run must log
    every metric (:func:`check_logged`)."""
    if check:
        check_logged([(path, rows) for _, path, rows in runs], metrics)
    groups: dict[str, list] = {}
    for label, _, rows in runs:
        groups.setdefault(label, []).append(rows)
    made = [
        plots.grouped_curves(
            list(groups.items()),
            PREFERRED.get(metric, [metric]),
            out / f"{prefix}{metric}.{ext}",
            f"{metric.replace('_', ' ')} — {title or f'{len(runs)} runs'}",
            xscale,
        )
        for metric in metrics
    ]
    return [p for p in made if p is not None]
