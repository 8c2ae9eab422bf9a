"""A sweep folder read back from its own files (sweep.yaml and state.json alone: the sweep file
and its base config may have moved or changed since), and what a resume needs from it: what
changed since, and the jobs that finished while the sweep process was gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnlab.common.constraints import key_text
from nnlab.common.status import JobStatus
from nnlab.config.overrides import flatten
from nnlab.errors import NnlabError
from nnlab.runfolder.records import RecordError, read_sweep_record, resolved_config
from nnlab.runfolder.runs import load_run, result_row
from nnlab.runfolder.types import stayed_at_chance
from nnlab.sweeps.search.space import JOB_ID as search_job_id
from nnlab.sweeps.search.space import SearchSpec, parse_search
from nnlab.sweeps.spec import Job, SweepSpec
from nnlab.sweeps.state import DONE, JobEntry, SweepState


def key_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The dotted keys that differ between two nested mappings: 'k 1 -> 2, ...' (six at most)."""
    a, b = flatten(old), flatten(new)
    keys = sorted(k for k in set(a) | set(b) if k not in a or k not in b or a[k] != b[k])

    def shown(side: dict[str, Any], key: str) -> str:
        return repr(side[key]) if key in side else "(none)"

    return ", ".join(f"{k} {shown(a, k)} -> {shown(b, k)}" for k in keys[:6])


def describe_change(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    if old.get("base_config") != new.get("base_config"):
        changes.append(
            "the base config changed: " + key_changes(old["base_config"], new["base_config"])
        )
    old_jobs, new_jobs = old.get("jobs", {}), new.get("jobs", {})
    added, removed = sorted(set(new_jobs) - set(old_jobs)), sorted(set(old_jobs) - set(new_jobs))
    if added:
        changes.append(f"{len(added)} new jobs ({', '.join(added[:3])}...)")
    if removed:
        changes.append(f"{len(removed)} jobs gone ({', '.join(removed[:3])}...)")
    if old.get("sweep", {}).get("table") != new.get("sweep", {}).get("table"):
        changes.append("the tables changed")
    before, after = old.get("sweep", {}).get("search"), new.get("sweep", {}).get("search")
    if before != after:  # a study's trials were sampled from the space it recorded
        changes.append("the search changed: " + key_changes(before or {}, after or {}))
    return changes


def adopt_finished_attempt(folder: Path, entry: JobEntry) -> None:
    """A job marked running when the sweep died may have finished on its own: take its result
    from the attempt's folder instead of running it again."""
    if entry.status != JobStatus.RUNNING or not entry.run:
        return
    try:
        run = load_run(folder / entry.run)
    except NnlabError:
        entry.update(status=JobStatus.INTERRUPTED)
        return
    if run.status in DONE:
        entry.update(
            status=JobStatus(run.status),
            error=run.error,
            final=result_row(run.summary),
            did_not_learn=stayed_at_chance(run.summary),
            reused=run.meta.reused_from,
        )
    else:
        entry.update(
            status=JobStatus.INTERRUPTED, error="the sweep process stopped during this job"
        )


def open_sweep_folder(folder: Path) -> tuple[dict[str, Any], SweepSpec, SweepState]:
    """A sweep folder read back from its sweep.yaml and state.json alone (the sweep file and
    its base config may have moved or changed since): the sweep.yaml record, the sweep and
    its state. Every config in it is validated; RecordError names the file and field."""
    saved = read_sweep_record(folder)
    state = SweepState.load(folder)
    path, spec = folder / "sweep.yaml", saved["sweep"]
    base = resolved_config(path, "base_config", saved["base_config"])
    sweep = SweepSpec(
        spec["name"],
        Path(spec["base"]),
        spec["overrides"],
        spec["grid"],
        spec["variants"],
        spec["seeds"],
        spec["table"],
        base,
    )
    if spec.get("search"):  # a search's jobs are its trials so far, in state.json
        sweep.search = _recorded_search(path, spec["search"], base)
        for job_id in state.jobs:
            if not search_job_id.fullmatch(job_id):
                raise RecordError(f"{state.path}: jobs[{key_text(job_id)}] is not a trial's job id")
        sweep.jobs = [
            _recorded_job(state.path, f"jobs[{key_text(k)}].overrides", k, e.overrides, base)
            for k, e in state.jobs.items()
        ]
    else:
        for job_id in saved["jobs"]:
            if job_id not in state.jobs:
                raise RecordError(
                    f"{state.path}: jobs has no entry for {key_text(job_id)}, a job of sweep.yaml"
                )
        sweep.jobs = [
            _recorded_job(path, f"jobs[{key_text(k)}]", k, overrides, base)
            for k, overrides in saved["jobs"].items()
        ]
    return saved, sweep, state


def _recorded_job(
    path: Path, where: str, job_id: str, overrides: dict[str, Any], base: dict[str, Any]
) -> Job:
    """A job as a sweep folder recorded it, its config validated (naming file and field)."""
    return Job(job_id, overrides, resolved_config(path, where, base, overrides))


def _recorded_search(path: Path, search: dict[str, Any], base: dict[str, Any]) -> SearchSpec:
    """The search sweep.yaml recorded, validated as the sweep file's was (its keys are checked
    by the base config accepting each value)."""
    raw = {k: v for k, v in search.items() if k not in ("params", "pruner")}
    try:
        return parse_search(
            raw, search.get("params"), path, base, lambda key, where: key, search.get("pruner")
        )
    except NnlabError as exc:
        raise RecordError(str(exc)) from None


def load_sweep_folder(folder: Path) -> tuple[SweepSpec, SweepState]:
    """A sweep folder's sweep and state, read back (:func:`open_sweep_folder`)."""
    _, sweep, state = open_sweep_folder(folder)
    return sweep, state
