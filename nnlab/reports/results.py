"""Reading results back: re-rendering figures, overlaying runs (`nnlab runs`:
nnlab.runfolder.query).

Nothing here trains: figures come from the files of a run or sweep folder (metrics.csv,
stats.csv, the saved model and the data its config describes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nnlab.common.metrics import PREFERRED, short_key
from nnlab.config.overrides import flatten
from nnlab.errors import NnlabError
from nnlab.figures import plots
from nnlab.figures.overlay import check_logged, overlay
from nnlab.models import build
from nnlab.runfolder.records import check_model_files
from nnlab.runfolder.runs import Run, load_run
from nnlab.sweeps.folder import load_sweep_folder
from nnlab.sweeps.search.results import search_figures, trial_records
from nnlab.sweeps.summary import comparison_plots, config_value, finished_jobs


def folder_kind(path: Path) -> str:
    """'run' or 'sweep'; NnlabError naming the folder otherwise."""
    if (path / "state.json").exists():
        return "sweep"
    if (path / "meta.json").exists():
        return "run"
    if not path.is_dir():
        raise NnlabError(f"{path}: no such folder")
    raise NnlabError(f"{path}: not a run or sweep folder (no meta.json or state.json)")


def load_run_with_metrics(path: Path) -> Run:
    run = load_run(path)
    if not run.metrics:
        raise NnlabError(f"{path}: metrics.csv has no rows")
    return run


def check_out(out: Path, what: str = "--out") -> Path:
    """``out`` if figures can go there — a folder, or a path whose nearest existing part is a
    folder that may be written to (it is made when the first figure is written); NnlabError
    naming ``what`` otherwise, before anything is drawn, so a file there is never touched."""
    if out.exists() and not out.is_dir():
        raise NnlabError(f"{what} {out}: is a file, not a folder; name a folder for the figures")
    existing = next((p for p in (out, *out.parents) if p.exists()), Path.cwd())
    if not existing.is_dir():
        raise NnlabError(
            f"{what} {out}: not a folder and cannot be made one ({existing} is a file)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NnlabError(f"{what} {out}: cannot be written ({existing} is not writable)")
    return out


def replot(
    path: Path, out: Path | None = None, ext: str = "png", metrics: list[str] | None = None
) -> list[Path]:
    """Re-render every figure of a run or sweep folder, without training; with ``metrics``,
    only the curves of those metrics (the jobs overlaid, for a sweep)."""
    target = check_out(out, "--out") if out else check_out(path / "plots", "plots folder")
    if folder_kind(path) == "sweep":
        sweep, state = load_sweep_folder(path)
        made = comparison_plots(path, sweep, state, target, ext, metrics)
        if sweep.search is not None and not metrics:  # and the search's own figures
            made += search_figures(target, sweep, trial_records(sweep, state), ext)
        return made
    run = load_run_with_metrics(path)
    if metrics:
        check_logged([(path, run.metrics)], metrics)
        title = str(run.config["name"])
        return [plots.metric_curve(run.metrics, m, target / f"{m}.{ext}", title) for m in metrics]
    return _run_figures(run, target, ext)


def _run_figures(run: Run, out: Path, ext: str) -> list[Path]:
    """A run's own figures, from its saved model and the data its config describes."""
    trainer = build(run.config)
    check_model_files(run.path)
    try:
        trainer.load_model(run.path)
    except FileNotFoundError as exc:
        raise NnlabError(f"{run.path}: no saved model ({Path(exc.filename).name})") from None
    except Exception as exc:
        raise NnlabError(f"{run.path}: the saved model cannot be read: {exc}") from None
    return trainer.figures(run.metrics, out, run.path, ext)


def differing_labels(configs: list[dict[str, Any]], ignore: tuple[str, ...] = ()) -> list[str]:
    """For each config, the keys in which the configs differ: 'optimizer=sgd epsilon=0.01'
    (leaving out the keys in ``ignore``)."""
    flats = [{k: v for k, v in flatten(c).items() if k not in ignore} for c in configs]
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
    runs: list[Run],
    out: Path,
    metrics: list[str] | None = None,
    ext: str = "png",
    sources: list[str | None] | None = None,
) -> list[Path]:
    """Curves of several runs, one figure per metric: a line per group of runs that differ
    only in their seed (the median and interquartile band), labelled by differing keys.
    ``sources`` names the sweep each run came from (None: a run of its own); runs of
    different sweeps are told apart by ``sweep=<name>`` when their configs are alike."""
    given = sources or [None] * len(runs)
    sources = [s if s is not None else sweep_of(r) for r, s in zip(runs, given, strict=True)]
    # a sweep's job is named after its job (seed included): its sweep stands for it here, so
    # that the jobs that differ only in their seed stay one group
    configs = [r.config if s is None else {"sweep": s, **r.config, "name": s}
               for r, s in zip(runs, sources, strict=True)]  # fmt: skip
    labels = differing_labels(configs, ("seed",))
    curves = [(label, r.path, r.metrics) for label, r in zip(labels, runs, strict=True)]
    logged = all(config_value(r.config, "train.log_schedule") == "log" for r in runs)
    return overlay(curves, metrics or list(PREFERRED), check_out(out), ext, "compare_",
                   xscale="symlog" if logged else "linear")  # fmt: skip


def sweep_of(run: Run) -> str | None:
    """The sweep a run is a job of — its folder is an attempt in a sweep folder's
    ``jobs/<job id>/`` and its name is ``SWEEP / JOB`` (nnlab.runfolder.types.job_name) — or
    None for a run of its own."""
    name, path = str(run.config.get("name", "")), run.path.resolve()
    jobs = path.parent.parent
    if " / " in name and jobs.name == "jobs" and (jobs.parent / "state.json").is_file():
        return name.split(" / ", 1)[0]
    return None


def sweep_runs(path: Path) -> tuple[str, list[Run]]:
    """A sweep folder's name and the runs of its finished jobs (completed, diverged or
    pruned), read back."""
    sweep, state = load_sweep_folder(path)
    runs = [load_run_with_metrics(folder) for _, folder in finished_jobs(path, sweep, state)]
    if not runs:
        raise NnlabError(f"{path}: the sweep has no finished jobs to draw")
    return sweep.name, runs
