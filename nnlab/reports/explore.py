"""The explorable part of report.html: curves to hover over and a parallel-coordinates view.

Hand-written SVG drawn by a small script (nnlab/reports/report.js) that the page carries inline,
from data the page carries inline too: the report stays one self-contained, offline file
(its Content-Security-Policy lets it load nothing), a few kilobytes above its PNG figures. A
plotting library inlined would add hundreds of kilobytes to megabytes to every report for
two kinds of chart. The Markdown report stays static.

The data: ``{"charts": [...], "parallel": {...} | None}``. A chart is a family of metrics
(loss, accuracy) against the training step, a line per run (a run's report: per split; a
sweep's: per group of jobs that differ only in their seed — the median over the jobs that
logged each step, the band from their 25th to their 75th percentile, n at each step and its
range, as the static figures draw them: nnlab.figures.plots.seed_band). The parallel view has an
axis per key the jobs vary (not the seed) and one for the metric of the sweep's table (a search:
its metric), a line per finished job.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from nnlab.common.metrics import LABELS, PREFERRED, is_accuracy
from nnlab.figures.plots import BAND_NOTE, SeedBand, common_metric, seed_band

MAX_POINTS = 400  # per line; longer curves keep every k-th point and the last
FAMILIES = {"loss": "Loss", "accuracy": "Accuracy"}


def _thin(*columns: list) -> list[list]:
    """The columns with at most MAX_POINTS rows: every k-th row, and the last."""
    n = len(columns[0])
    if n <= MAX_POINTS:
        return [list(c) for c in columns]
    step = math.ceil(n / MAX_POINTS)
    keep = list(range(0, n, step))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    return [[c[i] for i in keep] for c in columns]


def _finite(v: float) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def _chart(family: str, metric_lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not metric_lines:
        return None
    return {"title": FAMILIES[family], "percent": family == "accuracy",
            "log": family == "loss", "lines": metric_lines}  # fmt: skip


def run_data(rows: list[dict[str, float]]) -> dict[str, Any]:
    """A run's charts: each family's metrics (test, validation, train) against the step."""
    charts = []
    for family, candidates in PREFERRED.items():
        lines = []
        for metric in candidates:
            points = [(r["step"], _finite(r[metric])) for r in rows if metric in r]
            if points:
                x, y = _thin([p[0] for p in points], [p[1] for p in points])
                lines.append({"name": LABELS.get(metric, metric), "x": x, "y": y})
        chart = _chart(family, lines)
        if chart:
            charts.append(chart)
    return {"charts": charts, "parallel": None}


def sweep_data(
    groups: list[tuple[str, list[list[dict[str, float]]]]],
    jobs: list[tuple[str, dict[str, Any], dict[str, float]]],
    metric: str,
) -> dict[str, Any]:
    """A sweep's charts — a line per group (label, the metric rows of each of its jobs): the
    first metric of each family that every job logged — and its parallel view of ``jobs``
    ((id, overrides, final row) of the finished ones) against ``metric``."""
    charts = []
    for family, candidates in PREFERRED.items():
        chosen = common_metric(groups, candidates)
        if chosen is None or not groups:
            continue
        lines = [_group_line(label, seed_band(runs, chosen)) for label, runs in groups]
        chart = _chart(family, lines)
        if chart:
            chart["title"] = LABELS.get(chosen, chosen)
            if any("n" in line for line in lines):
                chart["note"] = BAND_NOTE
            charts.append(chart)
    return {"charts": charts, "parallel": parallel_data(jobs, metric)}


def _group_line(label: str, band: SeedBand) -> dict[str, Any]:
    """A group's line: its median at each step and, for several runs, the band's edges
    (``lo``, ``hi``), n at each step and the range of n over every step (thinned or not)."""
    finite = [[_finite(v) for v in column] for column in (band.median, band.low, band.high)]
    if band.runs == 1:
        x, y = _thin(band.steps, finite[0])
        return {"name": label, "x": x, "y": y}
    x, y, lo, hi, n = _thin(band.steps, *finite, band.n)
    n_range = [min(band.n, default=0), max(band.n, default=0)]
    return {"name": label, "x": x, "y": y, "lo": lo, "hi": hi, "n": n, "n_range": n_range}


def parallel_data(
    jobs: list[tuple[str, dict[str, Any], dict[str, float]]], metric: str
) -> dict[str, Any] | None:
    """An axis per key whose value differs between the jobs (the seed aside) — categorical
    when any value is not a number, else numeric, on a log scale when positive and spanning
    two decades or more — and the metric's axis last; a line per job that has the metric."""
    rows = [(job_id, o, final[metric]) for job_id, o, final in jobs
            if _finite(final.get(metric)) is not None]  # fmt: skip
    keys: list[str] = []
    for _, overrides, _ in rows:
        keys += [k for k in overrides if k != "seed" and k not in keys]
    keys = [k for k in keys if len({json.dumps(o.get(k)) for _, o, _ in rows}) > 1]
    if not rows or not keys:
        return None
    axes = [_axis(k, [o.get(k) for _, o, _ in rows]) for k in keys]
    axes.append({"key": LABELS.get(metric, metric), "kind": "number", "percent":
                 is_accuracy(metric), "log": False})  # fmt: skip
    lines = [{"name": job_id, "values": [_shown(o.get(k)) for k in keys] + [value]}
             for job_id, o, value in rows]  # fmt: skip
    return {"axes": axes, "lines": lines, "metric": metric}


def _shown(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return v if isinstance(v, str) else json.dumps(v)
    return v


def _axis(key: str, values: list[Any]) -> dict[str, Any]:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) == len(values):
        log = min(numbers) > 0 and max(numbers) / min(numbers) >= 100
        return {"key": key, "kind": "number", "percent": False, "log": log}
    order: list[str] = []
    for v in values:
        if _shown(v) not in order:
            order.append(_shown(v))
    return {"key": key, "kind": "category", "values": order}


def script() -> str:
    """The page's script, as shipped in the package."""
    return resources.files("nnlab.reports").joinpath("report.js").read_text(encoding="utf-8")


def html_block(data: dict[str, Any]) -> str:
    """The section of report.html that holds the data and draws it: the data as JSON in a
    script element that does not run (every ``<`` escaped, so no text from a config can end
    it), and the drawing script."""
    payload = json.dumps(data, allow_nan=False).replace("<", "\\u003c")
    return (
        '<section id="explore"><h2>Explore</h2><p class="hint">Hover over a curve or a line '
        'to read its run and values.</p><div id="charts"></div><div id="parallel"></div>'
        '<div id="tip" role="tooltip" hidden></div></section>'
        f'<script type="application/json" id="nnlab-data">{payload}</script>'
        f"<script>{script()}</script>"
    )
