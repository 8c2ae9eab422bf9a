"""Reading results back: re-rendering figures, overlaying runs, listing a runs folder.

Nothing here trains: figures come from the files of a run or sweep folder (metrics.csv,
stats.csv, the saved model and the data its config describes).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nnlab.config import flatten
from nnlab.errors import NnlabError
from nnlab.liveness import DEAD, shown_status
from nnlab.metrics import COUNTERS, LISTED, PREFERRED, metric_text, short_key
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


def _duration(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def _listing(path: Path) -> Listing:
    try:
        if folder_kind(path) == "sweep":
            state = json.loads((path / "state.json").read_text(encoding="utf-8"))
            counts: dict[str, int] = {}
            for job in state["jobs"].values():
                counts[job["status"]] = counts.get(job["status"], 0) + 1
            return Listing(
                path,
                state["name"],
                "sweep",
                shown_status(state, path),
                state.get("created", ""),
                _duration(state.get("created"), state.get("updated")),
                f"{len(state['jobs'])} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
            )
        run = load_run(path)
        final = result_row(run.summary) or (run.metrics[-1] if run.metrics else {})
        shown = [f"{k} {metric_text(k, final[k])}" for k in LISTED if k in final]
        return Listing(
            path,
            run.meta.get("name", path.name),
            run.meta.get("kind", "?"),
            shown_status(run.meta, path),
            run.meta.get("start_time", ""),
            run.meta.get("duration_seconds"),
            "  ".join(shown[:2]),
        )
    except (NnlabError, KeyError, TypeError, ValueError) as exc:
        return Listing(path, path.name, "?", "unreadable", "", None, str(exc)[:60])


def list_runs(runs_dir: Path, status: str | None = None, name: str | None = None) -> list[Listing]:
    """The runs and sweeps directly under ``runs_dir``, newest first; ``status`` filters on the
    stored status (a run shown ``running (dead?)`` is a ``running`` one)."""
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
        if (status is None or f.status.removesuffix(DEAD) == status)
        and (name is None or fnmatch.fnmatch(f.name, name))
    ]
    return sorted(found, key=lambda f: (f.started, f.path.name), reverse=True)
