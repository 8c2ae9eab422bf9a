"""The explorable part of report.html: curves, layer statistics and a parallel-coordinates view.

Hand-written SVG drawn by a small script (nnlab/reports/report.js: the shared parts and the
curves; panels.js: the layer statistics and the parallel coordinates) that the page carries
inline, from data the page carries inline too: the report stays one self-contained, offline
file (its Content-Security-Policy lets it load nothing), some tens of kilobytes above its PNG
figures. A plotting library inlined would add hundreds of kilobytes to megabytes to every
report for three kinds of chart. The Markdown report stays static.

The data: ``{"charts": [...], "stats": {...} | None, "parallel": {...} | None, "keys": {...},
"notes": [...]}``.
A chart is a family of metrics (loss, accuracy) against the training step, a line per run (a
run's report: per split; a sweep's: per group of jobs that differ only in their seed — the
median over the jobs that logged each step, the band from their 25th to their 75th percentile,
n at each step and its range, as the static figures draw them:
nnlab.figures.plots.seed_band; a search's: per trial), each line with the keys it was run with
(for the page's filter). ``stats`` is the DCN's layer statistics (stats.csv), a series per job,
layer and quantity. The parallel view has an axis per key the jobs vary (not the seed; a
search: per searched key, on the scale the search sampled it) and one for the metric of the
sweep's table (a search: its metric; a loss's on a log axis, as the PNG's), a line per
finished job, and which end of the metric is better. ``keys`` lists each varied key's values,
the filter's suggestions. ``notes``: a line per stats.csv that could not be read (a row cut
short by a kill): that job's layer statistics are left out, the rest of the report stands.
"""

from __future__ import annotations

import html
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from nnlab.common.csvtable import QUANTITIES, STATISTICS, read_stats
from nnlab.common.metrics import LABELS, PREFERRED, is_accuracy, is_loss
from nnlab.common.status import JobStatus
from nnlab.errors import NnlabError
from nnlab.figures.plots import BAND_NOTE, SeedBand, common_metric, seed_band
from nnlab.runfolder.runs import result_row
from nnlab.sweeps.state import DONE
from nnlab.sweeps.summary import group_label, shared_overrides

MAX_POINTS = 400  # per line; longer curves keep every k-th point and the last
FAMILIES = {"loss": "Loss", "accuracy": "Accuracy (%)"}

Stats = list[tuple[str, dict[str, Any], Path]]  # (line name, its keys, the run's stats.csv)


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
    return {"title": FAMILIES[family], "ylabel": FAMILIES[family], "xlabel": "step",
            "percent": family == "accuracy", "log": family == "loss",
            "lines": metric_lines}  # fmt: skip


def run_data(rows: list[dict[str, float]], stats_csv: Path | None = None) -> dict[str, Any]:
    """A run's charts: each family's metrics (test, validation, train) against the step; and
    its layer statistics when ``stats_csv`` holds any."""
    charts = []
    for family, candidates in PREFERRED.items():
        lines = []
        for metric in candidates:
            points = [(r["step"], _finite(r[metric])) for r in rows if metric in r]
            if points:
                x, y = _thin([p[0] for p in points], [p[1] for p in points])
                lines.append({"name": LABELS.get(metric, metric), "x": x, "y": y, "keys": {}})
        chart = _chart(family, lines)
        if chart:
            charts.append(chart)
    stats, notes = stats_data([("run", {}, stats_csv)]) if stats_csv else (None, [])
    return {"charts": charts, "stats": stats, "parallel": None, "keys": {}, "notes": notes}


def sweep_data(
    groups: list[tuple[str, list[list[dict[str, float]]]]],
    jobs: list[tuple[str, dict[str, Any], dict[str, float]]],
    metric: str,
    *,
    keys: dict[str, dict[str, Any]] | None = None,
    stats: Stats | None = None,
    space: dict[str, str] | None = None,
    better: str | None = None,
) -> dict[str, Any]:
    """A sweep's charts — a line per group (label, the metric rows of each of its jobs;
    ``keys``: label -> the keys the group was run with): the first metric of each family
    that every job logged — its layer statistics (``stats``) and its parallel view of
    ``jobs`` ((id, overrides, final row) of the finished ones) against ``metric`` (``space``
    and ``better`` as :func:`parallel_data` takes them)."""
    charts = []
    for family, candidates in PREFERRED.items():
        chosen = common_metric(groups, candidates)
        if chosen is None or not groups:
            continue
        shown = [chosen] + [m for m in candidates if m != chosen and common_metric(groups, [m])]
        by_metric = [
            [
                _group_line(label, seed_band(runs, metric), (keys or {}).get(label, {}))
                for label, runs in groups
            ]
            for metric in shown
        ]
        chart = _chart(family, by_metric[0])
        if chart:
            chart["title"] = chart["ylabel"] = LABELS.get(chosen, chosen)
            if any("n" in line for line in by_metric[0]):
                chart["note"] = BAND_NOTE
            # the family's other metrics every job logged (train loss beside test loss): the
            # page's metric select draws them
            chart["others"] = [
                {"title": LABELS.get(m, m), "lines": lines}
                for m, lines in zip(shown[1:], by_metric[1:], strict=True)
            ]
            charts.append(chart)
    varied: dict[str, list[Any]] = {}
    for _, overrides, _ in jobs:
        for k, v in overrides.items():
            if _shown(v) not in varied.setdefault(k, []):
                varied[k].append(_shown(v))
    layer_stats, notes = stats_data(stats) if stats else (None, [])
    return {
        "charts": charts,
        "stats": layer_stats,
        "parallel": parallel_data(jobs, metric, space, better),
        "keys": {k: v for k, v in varied.items() if len(v) > 1 or space and k in space},
        "notes": notes,
    }


def _group_line(label: str, band: SeedBand, keys: dict[str, Any]) -> dict[str, Any]:
    """A group's line: its median at each step and, for several runs, the band's edges
    (``lo``, ``hi``), n at each step and the range of n over every step (thinned or not)."""
    finite = [[_finite(v) for v in column] for column in (band.median, band.low, band.high)]
    if band.runs == 1:
        x, y = _thin(band.steps, finite[0])
        return {"name": label, "x": x, "y": y, "keys": keys}
    x, y, lo, hi, n = _thin(band.steps, *finite, band.n)
    n_range = [min(band.n, default=0), max(band.n, default=0)]
    return {"name": label, "x": x, "y": y, "lo": lo, "hi": hi, "n": n, "n_range": n_range,
            "keys": keys}  # fmt: skip


def stats_data(runs: Stats) -> tuple[dict[str, Any] | None, list[str]]:
    """The layer statistics of each run that wrote stats.csv: ``jobs`` (name, keys) and a
    series per job, layer and quantity — the steps and each statistic's values — with the
    layers and quantities found, in the network's order (None when no run has any); and a
    note per stats.csv that cannot be read (its run left out, the others drawn)."""
    jobs: list[dict[str, Any]] = []
    series: dict[tuple[int, str, str], dict[str, list]] = {}
    layers: list[str] = []
    notes: list[str] = []
    for name, keys, path in runs:
        try:
            rows = read_stats(path, NnlabError)
        except NnlabError as exc:  # a row cut short by a kill: this run's statistics only
            notes.append(f"Layer statistics of {name} left out: {exc}")
            continue
        if not rows:
            continue
        jobs.append({"name": name, "keys": keys})
        for r in rows:
            if r["layer"] not in layers:
                layers.append(r["layer"])
            cols = series.setdefault((len(jobs) - 1, r["layer"], r["quantity"]), {"x": []})
            cols["x"].append(r["step"])
            for stat in STATISTICS:
                cols.setdefault(stat, []).append(_finite(r[stat]))
    if not series:
        return None, notes
    found = {q for _, _, q in series}
    quantities = [q for q in QUANTITIES if q in found] + sorted(found - set(QUANTITIES))
    out = []
    for (job, layer, quantity), cols in series.items():
        thinned = _thin(cols["x"], *(cols[s] for s in STATISTICS))
        out.append({"job": job, "layer": layer, "quantity": quantity, "x": thinned[0]}
                   | dict(zip(STATISTICS, thinned[1:], strict=True)))  # fmt: skip
    return {"jobs": jobs, "layers": layers, "quantities": quantities,
            "statistics": list(STATISTICS), "series": out}, notes  # fmt: skip


def parallel_data(
    jobs: list[tuple[str, dict[str, Any], dict[str, float]]],
    metric: str,
    space: dict[str, str] | None = None,
    better: str | None = None,
) -> dict[str, Any] | None:
    """An axis per key whose value differs between the jobs (the seed aside) and the metric's
    axis last; a line per job that has the metric. ``space`` (a search's: key -> "log",
    "linear" or "categorical", the scale words of :meth:`SearchSpec.info`) gives the axes,
    in its order, and their scales; a job without a key (a conditional param) has no value
    there (null). Without it an axis is categorical when any value is not a number, else
    numeric, on a log scale when positive and spanning two decades or more. The metric's
    axis is on a log scale when it is no accuracy and every value is positive (a loss), as
    the PNG's (nnlab.figures.parallel). A numeric axis spans the values seen (not a search's
    declared low and high). ``better``: "low" or "high", which end of the metric is better
    (default: a loss's low end, an accuracy's high end)."""
    rows = [(job_id, o, final[metric]) for job_id, o, final in jobs
            if _finite(final.get(metric)) is not None]  # fmt: skip
    keys: list[str] = []
    for _, overrides, _ in rows:
        keys += [k for k in overrides if k != "seed" and k not in keys]
    if space is not None:
        keys = [k for k in space if k in keys]
    else:
        keys = [k for k in keys if len({json.dumps(o.get(k)) for _, o, _ in rows}) > 1]
    if not rows or not keys:
        return None
    axes = [_axis(k, [o[k] for _, o, _ in rows if k in o], (space or {}).get(k)) for k in keys]
    for axis in axes:
        axis["unset"] = any(axis["key"] not in o for _, o, _ in rows)
    log = not is_accuracy(metric) and min(value for _, _, value in rows) > 0
    axes.append({"key": LABELS.get(metric, metric), "kind": "number", "percent":
                 is_accuracy(metric), "log": log, "unset": False})  # fmt: skip
    lines = [
        {
            "name": job_id,
            "values": [_shown(o[k]) if k in o else None for k in keys] + [value],
            "keys": {k: _shown(v) for k, v in o.items()},
        }
        for job_id, o, value in rows
    ]
    better = better or ("low" if is_loss(metric) else "high")
    return {"axes": axes, "lines": lines, "metric": metric, "better": better}


def _shown(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return v if isinstance(v, str) else json.dumps(v)
    return v


def _axis(key: str, values: list[Any], scale: str | None) -> dict[str, Any]:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(values) and scale != "categorical":
        if scale is None:
            log = min(numbers) > 0 and max(numbers) / min(numbers) >= 100
        else:
            log = scale == "log" and min(numbers) > 0
        return {"key": key, "kind": "number", "percent": False, "log": log}
    order: list[str] = []
    for v in values:
        if _shown(v) not in order:
            order.append(_shown(v))
    return {"key": key, "kind": "category", "values": order}


def sweep_explore(
    sweep: Any, state: Any, runs: dict[str, Any], live: bool = False
) -> dict[str, Any]:
    """The Explore section's data of a sweep, from its jobs' runs (``runs``: job id -> Run):
    a line per group of finished jobs — with ``live`` (`nnlab serve`), of running ones too,
    their curves as far as they got — (a search: per trial, and per confirmed finalist), the
    layer statistics of each finished job, and the completed jobs' varied keys against the
    metric the sweep ranks by (a search's, on the scales of its space; else its first
    table's)."""
    search = sweep.search
    groups: dict[str, list] = {}
    keys: dict[str, dict[str, Any]] = {}
    jobs, stats = [], []
    shared = {} if search else shared_overrides([e.overrides for e in state.jobs.values()])
    drawn = (*DONE, JobStatus.RUNNING) if live else DONE
    for job_id, entry in state.jobs.items():
        run = runs.get(job_id)
        if run is None or entry.status not in drawn:
            continue
        name = job_id.split(",")[0] if search is not None else group_label(entry.overrides, shared)
        groups.setdefault(name, []).append(run.metrics)
        keys.setdefault(name, {k: _shown(v) for k, v in entry.overrides.items() if k != "seed"})
        if "seed" in entry.overrides:  # a group's seeds: the filter keeps it for any of them
            keys[name].setdefault("seed", []).append(entry.overrides["seed"])
        stats.append((job_id, {k: _shown(v) for k, v in entry.overrides.items()},
                      run.path / "stats.csv"))  # fmt: skip
        if entry.status == JobStatus.COMPLETED:
            jobs.append((job_id, entry.overrides, result_row(run.summary) or entry.final))
    if search is not None:
        metric = search.metric
        space = {k: info["scale"] for k, info in search.info().items()}
        better = "high" if search.direction == "maximize" else "low"
    else:
        metric = sweep.tables[0]["value"] if sweep.tables else None
        space, better = None, None
    return sweep_data(list(groups.items()), jobs if metric else [], metric or "", keys=keys,
                      stats=stats, space=space, better=better)  # fmt: skip


SCRIPTS = ("report.js", "panels.js")  # the shared parts and the curves; the other panels


def script() -> str:
    """The page's script, as shipped in the package: its files joined into the one inline
    script of the page (report.js draws once the page is parsed, panels.js registered)."""
    files = resources.files("nnlab.reports")
    return "\n".join(files.joinpath(name).read_text(encoding="utf-8") for name in SCRIPTS)


HINT = (
    "Hover over a curve or a line to read its run and values. Legend: click an entry to hide "
    "or show its line, double-click (or Alt-click) to show only that one. Drag a box to zoom, "
    "Shift-drag to pan, double-click the chart to reset. The buttons switch an axis between "
    "linear and log. Smoothing is an exponential moving average (0: raw). Filter: "
    "key=value (also !=, <, >), several joined by ';', or any text of a run's name."
)


STYLE = """#controls{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1.4rem;margin:.6rem 0;
font-size:.9rem;position:sticky;top:0;background:#fff;padding:.3rem 0;z-index:1}#filter.bad{
outline:2px solid #d62728}.filter-note{color:#b00;font-size:.85rem}#smoothing{vertical-align:
middle}.toolbar{display:flex;gap:.4rem;margin:.2rem 0}.toolbar button{font-size:.75rem;padding:
.1rem .5rem;border:1px solid #aaa;background:#f6f6f6;border-radius:3px;cursor:pointer}
.toolbar button[aria-pressed=true]{background:#2b6cb0;color:#fff;border-color:#2b6cb0}
.legend li{cursor:pointer;user-select:none;white-space:nowrap}.legend li.off{opacity:.35}
.legend li.filtered{opacity:.2;text-decoration:line-through}svg.swatch{width:28px;height:8px;
margin-right:.35rem;vertical-align:middle}.raw{fill:none;stroke-width:1;stroke-opacity:.3}
.zoombox{fill:#2b6cb022;stroke:#2b6cb0;stroke-dasharray:3 2}.frame{fill:none;stroke:#999}
svg.curves,svg.stats{cursor:crosshair;user-select:none}.xlabel,.ylabel{font-size:12px}
.stats-controls{display:flex;gap:1rem;font-size:.9rem}.job.best{stroke-width:3.2;
stroke-opacity:1}.explore-note{color:#b00;font-size:.85rem}"""


def html_block(data: dict[str, Any]) -> str:
    """The section of report.html that holds the data and draws it: the data as JSON in a
    script element that does not run (every ``<`` escaped, so no text from a config can end
    it), the notes on what could not be read, and the drawing script."""
    payload = json.dumps(data, allow_nan=False).replace("<", "\\u003c")
    notes = "".join(f'<p class="explore-note">{html.escape(n)}</p>' for n in data.get("notes", []))
    return (
        f'<section id="explore"><style>{STYLE}</style><h2>Explore</h2><p class="hint">{HINT}</p>'
        '<div id="controls"></div><div id="charts"></div><div id="stats"></div>'
        f'{notes}<div id="parallel"></div><div id="tip" role="tooltip" hidden></div></section>'
        f'<script type="application/json" id="nnlab-data">{payload}</script>'
        f"<script>{script()}</script>"
    )
