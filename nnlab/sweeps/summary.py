"""A sweep's results: summary.csv, summary.md with its pivot tables, and the comparison figures
in plots/ (docs/run-folder.md, 'Sweep folder').

Everything here reads the state as state.json's record
(:class:`~nnlab.runfolder.types.SweepRecord`), so that ``nnlab plot`` and ``nnlab report`` can
redraw them from a sweep folder alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.common.files import atomic_write_text
from nnlab.common.metrics import LABELS, PREFERRED, is_accuracy, is_result, short_key
from nnlab.common.stats import mean_ci
from nnlab.common.status import JobStatus
from nnlab.figures import plots
from nnlab.figures.overlay import overlay
from nnlab.models import Trainer, build, trainer_class
from nnlab.runfolder.records import check_model_files, read_metrics
from nnlab.runfolder.types import JobEntry, SweepRecord
from nnlab.sweeps.search.results import write_search_results
from nnlab.sweeps.search.space import trial_number
from nnlab.sweeps.spec import Job, SweepSpec, format_value
from nnlab.sweeps.state import DONE, Sweep, SweepState

PRETTY = {"relu": "ReLU", "sgd": "SGD", "adam": "Adam"}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return PRETTY.get(value, value[:1].upper() + value[1:])
    return json.dumps(value) if isinstance(value, list | bool) or value is None else str(value)


def config_value(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _axis(job: Job, key: str) -> str:
    """A job's value of ``key`` as a hashable cell coordinate."""
    return json.dumps(config_value(job.config, key))


# -- tables --------------------------------------------------------------------------------


@dataclass
class Pivot:
    """A table's numbers: row and column values (in order of first appearance), per cell the
    metric of every completed job in it, and per cell how many jobs were left out: diverged
    (their last finite row is not a result to average) or completed without the metric;
    ``spread``: the keys that vary among the jobs averaged in a cell (seed, usually)."""

    rows: list[Any]
    cols: list[Any]
    cells: dict[tuple[str, str], list[float]]
    diverged: dict[tuple[str, str], int]
    unlogged: dict[tuple[str, str], int]
    unlearned: dict[tuple[str, str], int] = field(default_factory=dict)  # averaged, flagged
    spread: list[str] = field(default_factory=list)


def pivot(state: SweepRecord, sweep: SweepSpec, table: dict[str, str]) -> Pivot:
    """The numbers of one pivot table (see :class:`Pivot`)."""
    rows_key, cols_key, value = table["rows"], table["cols"], table["value"]
    rows: dict[str, Any] = {}  # serialised value -> value, in order of first appearance
    cols: dict[str, Any] = {}
    out = Pivot([], [], {}, {}, {})
    averaged: dict[tuple[str, str], list[Job]] = {}
    for job in sweep.jobs:
        rk, ck = _axis(job, rows_key), _axis(job, cols_key)
        rows.setdefault(rk, config_value(job.config, rows_key))
        cols.setdefault(ck, config_value(job.config, cols_key))
        entry = state.jobs[job.id]
        metric = entry.final.get(value)
        if entry.status == JobStatus.COMPLETED and metric is not None:
            out.cells.setdefault((rk, ck), []).append(metric)
            averaged.setdefault((rk, ck), []).append(job)
            if entry.did_not_learn:
                out.unlearned[(rk, ck)] = out.unlearned.get((rk, ck), 0) + 1
        elif entry.status in (JobStatus.COMPLETED, JobStatus.DIVERGED):
            left_out = out.unlogged if entry.status == JobStatus.COMPLETED else out.diverged
            left_out[(rk, ck)] = left_out.get((rk, ck), 0) + 1
    out.rows, out.cols = list(rows.values()), list(cols.values())
    for jobs in averaged.values():
        keys = dict.fromkeys(k for job in jobs for k in job.overrides)
        for key in keys:
            if len({_axis(job, key) for job in jobs}) > 1 and key not in out.spread:
                out.spread.append(key)
    return out


def _logged(state: SweepRecord) -> list[str]:
    """The losses and accuracies the completed jobs log."""
    finals = [e.final for e in state.jobs.values() if e.status == JobStatus.COMPLETED]
    return sorted({k for final in finals for k in final if is_result(k)})


@dataclass
class Table:
    """A pivot table ready to render: cells are (text, is_best) pairs."""

    title: str
    header: list[str]
    rows: list[list[tuple[str, bool]]]
    note: str

    def markdown(self) -> str:
        def md(text: str, best: bool = False) -> str:
            text = text.replace("|", "\\|")
            return f"**{text}**" if best else text

        lines = [
            self.title,
            "",
            "| " + " | ".join(md(h) for h in self.header) + " |",
            "|---" * len(self.header) + "|",
        ]
        lines += ["| " + " | ".join(md(t, b) for t, b in row) + " |" for row in self.rows]
        return "\n".join([*lines, "", self.note]) + "\n"


def pivot_table(state: SweepRecord, sweep: SweepSpec, table: dict[str, str]) -> Table:
    """One pivot table: mean (± std and the 95% t-interval of the mean when a cell
    holds several jobs), the best cell marked; jobs left out are counted beside their cell,
    and a metric no completed job logs is named with the ones they do log."""
    numbers = pivot(state, sweep, table)
    value = table["value"]
    percent = is_accuracy(value)
    means = {k: statistics.mean(v) for k, v in numbers.cells.items()}
    best = (max if percent else min)(means.values()) if means else None

    def cell(r: Any, c: Any) -> tuple[str, bool]:
        key = (json.dumps(r), json.dumps(c))
        vals = numbers.cells.get(key)
        note = "".join(
            f" ({n[key]} {what})"
            for n, what in (
                (numbers.unlearned, "did not learn"),
                (numbers.diverged, "diverged"),
                (numbers.unlogged, f"without {value}"),
            )
            if key in n
        )
        if not vals:
            return "—" + note, False
        scale = 100 if percent else 1
        mean = statistics.mean(vals)
        text = f"{mean * scale:.2f}" if percent else f"{mean:.4f}"
        if len(vals) > 1:
            digits = ".2f" if percent else ".4f"
            text += f" ± {statistics.stdev(vals) * scale:{digits}}"
            low, high = mean_ci(vals, metric=value)
            text += f" [{low * scale:{digits}}, {high * scale:{digits}}]"
        return text + note, mean == best

    return Table(
        f"{table['rows']} (rows) × {table['cols']} (columns)",
        [LABELS[value], *(_show(c) for c in numbers.cols)],
        [[(_show(r), False), *(cell(r, c) for c in numbers.cols)] for r in numbers.rows],
        _table_note(state, numbers, value),
    )


def _table_note(state: SweepRecord, numbers: Pivot, value: str) -> str:
    """What the table's marks mean — or, when the completed jobs never log the table's
    metric, that (and what they do log), rather than an empty table that looks unfinished."""
    logged = _logged(state)
    if logged and value not in logged:
        return (
            f"the runs do not log {value}; they log {', '.join(logged)} (set the table's "
            "value to one of those)."
        )
    many = any(len(v) > 1 for v in numbers.cells.values())
    over = "seeds" if numbers.spread == ["seed"] else ", ".join(numbers.spread) or "repeated jobs"
    spread = (
        f"mean ± std [95% t-interval of the mean] over {over} (the completed jobs in each cell); "
        if many
        else ""
    )
    return (
        f"{spread}best cell in bold; — : no completed job with {value}; jobs left out "
        "(diverged, or without the metric) are counted beside the cell, not averaged"
        + (
            "; jobs that did not learn (accuracy at chance) are averaged and counted beside "
            "the cell."
            if numbers.unlearned
            else "."
        )
    )


def table_markdown(state: SweepRecord, sweep: SweepSpec, table: dict[str, str]) -> str:
    return pivot_table(state, sweep, table).markdown()


# -- files ---------------------------------------------------------------------------------


def _summary_csv(sweep: SweepSpec, jobs: dict[str, JobEntry]) -> str:
    """summary.csv: one row per job — id, the varying keys, status, attempts, run, error,
    reused (the run its folder was copied from, if it was) and every final metric any job
    has."""
    metric_keys: list[str] = []
    for e in jobs.values():
        metric_keys += [k for k in e.final if k not in metric_keys]
    buffer = io.StringIO(newline="")
    w = csv.writer(buffer)
    head = ["job", *sweep.varying, "status", "attempts", "run", "error", "reused"]
    w.writerow([*head, *metric_keys])
    for job in sweep.jobs:
        e = jobs[job.id]
        varying = (
            json.dumps(job.overrides[k])
            if isinstance(job.overrides.get(k), list)
            else job.overrides.get(k, "")
            for k in sweep.varying
        )
        w.writerow(
            [
                job.id,
                *varying,
                e.status.value,
                e.attempts,
                e.run or "",
                e.error or "",
                e.reused or "",
                *(e.final.get(k, "") for k in metric_keys),
            ]
        )
    return buffer.getvalue()


def _summary_md(sweep: SweepSpec, state: SweepState, tables: list[str]) -> str:
    counts = state.counts()
    lines = [
        f"# Sweep {sweep.name}",
        "",
        f"Base config: `{sweep.base_path.name}`; varying: "
        + ", ".join(f"`{k}`" for k in sweep.varying)
        + f"; {len(sweep.jobs)} jobs: "
        + ", ".join(f"{v} {k}" for k, v in counts.items() if v),
        "",
    ]
    if reused := sum(1 for e in state.jobs.values() if e.reused):  # sources: state.json
        lines += [f"{reused} of {len(state.jobs)} jobs reused a completed run's folder", ""]
    for t in tables:
        lines += [t, ""]
    failed = {k: e for k, e in state.jobs.items() if e.status == JobStatus.FAILED}
    if failed:
        lines += ["## Failed jobs", ""] + [f"- `{k}`: {e.error}" for k, e in failed.items()] + [""]
    return "\n".join(lines)


def write_summary(folder: Path, sweep: SweepSpec, state: SweepState) -> list[str]:
    """summary.csv, summary.md and the comparison figures; returns the tables. A figure that
    fails is recorded as ``plot_error`` in state.json: the tables are never lost over it."""
    atomic_write_text(folder / "summary.csv", _summary_csv(sweep, state.jobs))
    tables = [table_markdown(state, sweep, t) for t in sweep.tables]
    if sweep.search is not None:
        tables.insert(0, write_search_results(folder, sweep, state))
    atomic_write_text(folder / "summary.md", _summary_md(sweep, state, tables))
    try:
        comparison_plots(folder, sweep, state)
    except Exception as exc:  # figures are extras
        state.plot_error = f"{type(exc).__name__}: {exc}"
        state.save()
    return tables


def sweep_summary_text(sweep: Sweep) -> str:
    """What the CLI prints at the end: the tables, then failed jobs with their errors."""
    parts = list(sweep.tables)
    for job, error in sweep.failed.items():
        parts.append(f"failed: {job}: {error}")
    return "\n".join(parts)


# -- figures -------------------------------------------------------------------------------


def finished_jobs(folder: Path, sweep: SweepSpec, state: SweepRecord) -> list[tuple[Job, Path]]:
    """The sweep's finished jobs (completed, diverged or pruned) and their run folders."""
    done = []
    for job in sweep.jobs:
        e = state.jobs[job.id]
        if e.status in DONE and e.run:
            done.append((job, folder / e.run))
    return done


def _without_seed(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in overrides.items() if k != "seed"}


def _label(overrides: dict[str, Any]) -> str:
    """What tells a job apart in a legend: 'activation=tanh lr_decay=step'."""
    return " ".join(f"{short_key(k)}={format_value(v)}" for k, v in overrides.items())


def shared_overrides(overrides: list[dict[str, Any]]) -> dict[str, Any]:
    """The overrides (the seed aside) that every one of two or more jobs has alike — a grid
    key given one value, e.g. ``train.log_schedule: [log]`` —, said once in a figure's title
    rather than in every legend entry; none when the jobs differ only in their seed."""
    if len(overrides) < 2:
        return {}
    first = _without_seed(overrides[0])
    shared = {k: v for k, v in first.items() if all(k in o and o[k] == v for o in overrides[1:])}
    return {} if shared == first else shared  # one group (seeds only): its label says it all


def group_label(overrides: dict[str, Any], shared: Collection[str] = ()) -> str:
    """A job's group in the comparison figures: the jobs that differ only in their seed share
    it (one group, one line); ``shared`` keys (:func:`shared_overrides`) are left out."""
    return _label({k: v for k, v in _without_seed(overrides).items() if k not in shared}) or (
        "all seeds"
    )


def trial_label(job: Job) -> str:
    """A search job's group in the comparison figures: its trial, numbered, with its params
    to 3 digits ('trial 7: epsilon=0.00303 activation=tanh'); its seeds and its confirmation
    runs share it."""
    params = ", ".join(
        f"{short_key(k)}={f'{v:.3g}' if isinstance(v, float) else format_value(v)}"
        for k, v in _without_seed(job.overrides).items()
    )
    return f"trial {trial_number(job.id)}" + (f": {params}" if params else "")


def comparison_plots(
    folder: Path,
    sweep: SweepSpec,
    state: SweepRecord,
    out: Path | None = None,
    ext: str = "png",
    metrics: list[str] | None = None,
) -> list[Path]:
    """Curves of every finished job — a line per group of jobs that differ only in their
    seed, the median with an interquartile band, n per step, a panel per split — and, when
    every model can draw its decision boundary (2-D data), a grid of them laid out like the
    first table, and the kind's own figures (Trainer.sweep_figures); with ``metrics``, only
    the curves of those (each must be one every finished job logs)."""
    done = finished_jobs(folder, sweep, state)
    if not done:
        return []
    out = out or folder / "plots"
    search = sweep.search is not None
    if search:  # a panel per trial (its confirmation runs with it), in trial order
        done = sorted(done, key=lambda pair: trial_number(pair[0].id))
    shared = {} if search else shared_overrides([job.overrides for job in sweep.jobs])
    labels = {job.id: trial_label(job) if search else group_label(job.overrides, shared)
              for job, _ in done}  # fmt: skip
    runs = [(labels[job.id], path, read_metrics(path / "metrics.csv")) for job, path in done]
    title = f"sweep {sweep.name}" + (f" ({_label(shared)})" if shared else "")
    xscale = "symlog" if all(_log_schedule(job) for job, _ in done) else "linear"
    made = overlay(
        runs, metrics or list(PREFERRED), out, ext, title=title, check=bool(metrics), xscale=xscale
    )
    if not metrics:
        made.append(_boundary_grid(done, sweep, state, out / f"decision_boundaries.{ext}"))
        made += _kind_figures(done, out, ext, title, labels, _best_trials(sweep, state, done))
    return [p for p in made if p is not None]


def _log_schedule(job: Job) -> bool:
    """Whether the job logs rows at log-spaced steps (train.log_schedule: log)."""
    return config_value(job.config, "train.log_schedule") == "log"


KIND_GROUPS = 8  # a search's trials in its kind's figures (a line each): the best ones


def _best_trials(sweep: SweepSpec, state: SweepRecord, done: list[tuple[Job, Path]]):
    """A search's KIND_GROUPS best trials by its metric, as the search ranks them: a trial's
    value is the mean over its completed jobs' final values (its seeds; the confirmation runs,
    pruned and diverged jobs do not count), and how many trials have a value; None for a
    sweep that is not a search."""
    if sweep.search is None:
        return None
    values: dict[int, list[float]] = {}
    for job, _ in done:
        entry = state.jobs[job.id]
        value = (entry.final or {}).get(sweep.search.metric)
        if (
            job.id.startswith("trial-")
            and entry.status == JobStatus.COMPLETED
            and isinstance(value, int | float)
            and math.isfinite(value)
        ):
            values.setdefault(trial_number(job.id), []).append(float(value))
    sign = -1.0 if sweep.search.direction == "maximize" else 1.0
    ranked = sorted(values, key=lambda t: sign * statistics.fmean(values[t]))
    return set(ranked[:KIND_GROUPS]), len(ranked)


def _kind_figures(
    done: list[tuple[Job, Path]],
    out: Path,
    ext: str,
    title: str,
    labels: dict[str, str],
    best: tuple[set[int], int] | None,
) -> list[Path]:
    """The model kind's own sweep figures (a DCN's layer statistics by group and weight
    distributions; Trainer.sweep_figures), when every finished job is of one kind: a group
    per line of the curves (``labels``: job id -> its group); a search's best trials only."""
    kinds = {trainer_class(job.config) for job, _ in done}
    if len(kinds) != 1:
        return []
    if best is not None:
        kept, ranked = best
        done = [(job, path) for job, path in done if trial_number(job.id) in kept]
        if ranked > len(kept):
            title = f"{title} — the {len(kept)} best of {ranked} trials"
    groups: dict[str, list[Path]] = {}
    for job, path in done:
        groups.setdefault(labels[job.id], []).append(path)
    return kinds.pop().sweep_figures(list(groups.items()), out, ext, title) if groups else []


def _predictor(job: Job, run_path: Path) -> tuple | None:
    """(predict, data) from the job's saved model, or None when its model cannot draw a
    decision boundary (its inputs are not 2-D)."""
    if trainer_class(job.config).predictor is Trainer.predictor:
        return None  # the kind never draws one: do not load its data and model to learn it
    trainer = build(job.config)
    check_model_files(run_path)
    trainer.load_model(run_path)
    return trainer.predictor()


def _panel_title(job: Job, loss: float) -> str:
    model = job.config.get("model", {})
    if "layers" in model and "activation" in model:
        head = f"{model['layers']} {model['activation']}"
    else:
        head = _label(job.overrides) or job.id
    return f"{head}\nloss {loss:.4f}"


PANELS_PER_ROW = 3  # of a decision-boundary grid that is not laid out like a table


def _boundary_grid(
    done: list[tuple[Job, Path]], sweep: SweepSpec, state: SweepRecord, path: Path
) -> Path | None:
    """The decision boundaries of the first seed's finished jobs, placed like the first table
    when it has several rows and columns, else in order, PANELS_PER_ROW to a row (a strip of
    five would leave each too small to read); None when one of their models cannot draw
    one."""
    first_seed = sweep.seeds[0] if sweep.seeds else None
    shown = [(j, p) for j, p in done if first_seed is None or j.overrides.get("seed") == first_seed]
    pairs: dict[str, tuple] = {}
    for job, run_path in [done[0], *shown]:  # the first finished job decides, as do those shown
        if job.id not in pairs:
            pair = _predictor(job, run_path)
            if pair is None:
                return None
            pairs[job.id] = pair
    place: dict[str, tuple[int, int]] = {}
    shape = (0, 0)
    if sweep.tables:
        t = sweep.tables[0]
        rows = list(dict.fromkeys(_axis(j, t["rows"]) for j in sweep.jobs))
        cols = list(dict.fromkeys(_axis(j, t["cols"]) for j in sweep.jobs))
        if len(rows) > 1 and len(cols) > 1:  # a real table: its layout
            place = {
                j.id: (rows.index(_axis(j, t["rows"])), cols.index(_axis(j, t["cols"])))
                for j, _ in shown
            }
            shape = (len(rows), len(cols))
    if not place:  # a strip of one row or column: wrapped, PANELS_PER_ROW to a row
        ncols = min(PANELS_PER_ROW, len(shown))
        place = {j.id: divmod(i, ncols) for i, (j, _) in enumerate(shown)}
        shape = (math.ceil(len(shown) / ncols), ncols)
    panels = []
    for job, _ in shown:
        predict, data = pairs[job.id]
        loss = state.jobs[job.id].final.get("train_loss", float("nan"))
        panels.append((place[job.id], predict, data, _panel_title(job, loss)))
    return plots.decision_boundary_grid(
        panels, shape, path, f"Decision boundaries — sweep {sweep.name}"
    )
