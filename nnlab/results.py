"""Reading results back: re-rendering figures, overlaying runs, listing a runs folder.

Nothing here trains: figures come from the files of a run or sweep folder (metrics.csv,
stats.csv, the saved model and the data its config describes).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nnlab.config import flatten
from nnlab.errors import NnlabError
from nnlab.metrics import COUNTERS, LISTED, PREFERRED, metric_text, short_key
from nnlab.records import read_meta, read_metrics, read_state, read_summary
from nnlab.runs import Run, load_run, result_row

FORMATS = ("png", "pdf", "svg")  # what `nnlab plot --format` renders (nnlab.plots)


def folder_kind(path: Path) -> str:
    """'run' or 'sweep'; NnlabError naming the folder otherwise."""
    if (path / "state.json").is_file():
        return "sweep"
    if (path / "meta.json").is_file():
        return "run"
    if not path.is_dir():
        raise NnlabError(f"{path}: no such folder")
    raise NnlabError(f"{path}: not a run or sweep folder (no meta.json or state.json)")


def load_run_with_metrics(path: Path) -> Run:
    run = load_run(path)
    if not run.metrics:
        raise NnlabError(f"{path}: metrics.csv has no rows")
    return run


def replot(path: Path, out: Path | None = None, ext: str = "png") -> list[Path]:
    """Re-render every figure of a run or sweep folder, without training."""
    if folder_kind(path) == "sweep":
        from nnlab.sweeps import comparison_plots, load_sweep_folder

        sweep, state = load_sweep_folder(path)
        return comparison_plots(path, sweep, state.data, out, ext)
    from nnlab.config import load_config
    from nnlab.models import build

    run = load_run_with_metrics(path)
    cfg = load_config(path / "config.yaml")
    trainer = build(cfg)
    try:
        trainer.load_model(path)
    except FileNotFoundError as exc:
        raise NnlabError(f"{path}: no saved model ({Path(exc.filename).name})") from None
    except Exception as exc:
        raise NnlabError(f"{path}: the saved model cannot be read: {exc}") from None
    return trainer.figures(run.metrics, out or path / "plots", path, ext)


def differing_labels(configs: list[dict[str, Any]]) -> list[str]:
    """For each config, the keys in which the configs differ: 'optimizer=sgd epsilon=0.01'."""
    flats = [flatten(c) for c in configs]
    keys = [k for k in flats[0] if k != "name" and len({json.dumps(f.get(k)) for f in flats}) > 1]
    keys += [k for f in flats for k in f if k not in flats[0] and k not in keys]
    if not keys:
        keys = ["name"] if len({f.get("name") for f in flats}) > 1 else []

    def show(v: Any) -> str:
        return json.dumps(v).replace(" ", "") if isinstance(v, list) else f"{v}"

    return [
        " ".join(f"{short_key(k)}={show(f.get(k))}" for k in keys) or f.get("name", "run")
        for f in flats
    ]


def compare(
    runs: list[Run], out: Path, metrics: list[str] | None = None, ext: str = "png"
) -> list[Path]:
    """Curves of several runs overlaid, one figure per metric, labelled by differing keys."""
    from nnlab import plots

    labels = differing_labels([r.config for r in runs])
    made = []
    for metric in metrics or list(PREFERRED):
        candidates = PREFERRED.get(metric, [metric])
        if metric not in PREFERRED:
            for run in runs:
                available = sorted({k for row in run.metrics for k in row} - set(COUNTERS))
                if not any(metric in row for row in run.metrics):
                    raise NnlabError(
                        f"{run.path}: no metric {metric!r} in metrics.csv "
                        f"(it has {', '.join(available)})"
                    )
        curves = list(zip(labels, (r.metrics for r in runs), strict=True))
        made.append(
            plots.overlaid_curves(
                curves,
                candidates,
                out / f"compare_{metric}.{ext}",
                f"{metric.replace('_', ' ')} — {len(runs)} runs",
            )
        )
    return [p for p in made if p is not None]


@dataclass
class Listing:
    """One line of `nnlab runs`."""

    path: Path
    name: str
    kind: str
    status: str
    started: str
    duration: float | None
    metrics: str
    meta: dict[str, Any] = field(default_factory=dict)  # a run's meta.json, as recorded
    problem: str | None = None  # why the folder could not be read (status "unreadable")


def _duration(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def _sweep_listing(path: Path) -> Listing:
    state = read_state(path)
    counts: dict[str, int] = {}
    for job in state["jobs"].values():
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    return Listing(
        path,
        state["name"],
        "sweep",
        state["status"],
        state["created"],
        _duration(state["created"], state["updated"]),
        f"{len(state['jobs'])} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
    )


def _run_listing(path: Path) -> Listing:
    meta, summary = read_meta(path), read_summary(path)
    final = result_row(summary) or next(reversed(read_metrics(path / "metrics.csv")), {})
    shown_metrics = [f"{k} {metric_text(k, final[k])}" for k in LISTED if k in final]
    return Listing(
        path,
        meta["name"],
        meta["kind"],
        meta["status"],
        meta["start_time"],
        meta.get("duration_seconds"),
        "  ".join(shown_metrics[:2]),
        meta,
    )


def _listing(path: Path) -> Listing:
    """A folder's line; a folder whose files cannot be read is listed as unreadable, with
    the reason, so that it never hides the others."""
    try:
        return _sweep_listing(path) if folder_kind(path) == "sweep" else _run_listing(path)
    except NnlabError as exc:
        return Listing(path, path.name, "?", "unreadable", "", None, "", problem=str(exc))


def list_runs(runs_dir: Path, status: str | None = None, name: str | None = None) -> list[Listing]:
    """The runs and sweeps directly under ``runs_dir``, newest first."""
    if not runs_dir.is_dir():
        raise NnlabError(f"{runs_dir}: no such runs folder")
    found = [
        _listing(p)
        for p in runs_dir.iterdir()
        if (p / "meta.json").exists() or (p / "state.json").exists()
    ]
    found = [
        f
        for f in found
        if (status is None or f.status == status)
        and (name is None or fnmatch.fnmatch(f.name, name))
    ]
    return sorted(found, key=lambda f: (f.started, f.path.name), reverse=True)


COLUMNS = ("started", "name", "kind", "status", "time", "results", "folder")
WIDEST = {"name": 40, "kind": 12, "status": 24, "results": 60, "folder": 120}  # cut with …


def shown_status(entry: Listing) -> str:
    """What the status column of `nnlab runs` says of a run or sweep: the one place that
    decides it (the status recorded in its files, or 'unreadable')."""
    return entry.status


def _cells(entry: Listing) -> tuple[str, ...]:
    took = "" if entry.duration is None else f"{entry.duration:.1f}s"
    started = entry.started.replace("T", " ")[:19]
    return (started, entry.name, entry.kind, shown_status(entry), took, entry.metrics,
            entry.path.name)  # fmt: skip


def _cell(text: str, widest: int) -> str:
    """Text as one table cell: control characters escaped (a name never splits a row) and cut
    to ``widest`` characters (a long name never widens every row)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= widest else text[: widest - 1] + "…"


def runs_table(entries: list[Listing]) -> list[str]:
    """The lines of `nnlab runs`: a header, then a row per entry, in aligned columns."""
    table = [COLUMNS] + [
        tuple(_cell(c, WIDEST.get(k, 40)) for k, c in zip(COLUMNS, _cells(e), strict=True))
        for e in entries
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
