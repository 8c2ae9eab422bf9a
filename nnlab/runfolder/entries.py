"""The entries `nnlab runs` lists (nnlab.runfolder.query): each run, sweep or sweep job folder
read into flat fields, through the index (nnlab.runfolder.index).

An entry is ``{"fields": {...}, "config": {...} or None, "problem": ...}``. Its fields:
``folder``, ``name``, ``kind``, ``status``, ``started``, ``time`` (seconds), ``host``,
``results`` (the listing's two metrics), the final metrics (the row of the weights a run
kept: ``test_acc``, ``train_loss``, ``step``, ...), ``best.<metric>``, ``n_params``,
``train_seconds``, ``chance_acc``, ``did_not_learn``, ``error``, ``fingerprint`` (its
SHA-256) and ``reused_from`` (a copy's source); a sweep adds ``jobs``; a
sweep's job ``job`` and ``sweep`` (and is named after them, with the status state.json gives
it). Every dotted key of the run's config.yaml (``model.activation``, ``train.epsilon``) and
``seed`` are its config, read only when a query names one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from nnlab.common.metrics import LISTED, metric_text
from nnlab.common.status import RunStatus
from nnlab.common.yamlread import clip, read_yaml_file
from nnlab.config.overrides import flatten
from nnlab.errors import NnlabError
from nnlab.runfolder.index import records, signature
from nnlab.runfolder.records import read_meta, read_metrics, read_state, read_summary
from nnlab.runfolder.records import shown as shown_value
from nnlab.runfolder.runs import result_row
from nnlab.runfolder.types import SweepRecord, job_name

SUMMARY_KEYS = ("n_params", "train_seconds", "images_per_second", "eval_seconds", "chance_acc",
                "did_not_learn")  # fmt: skip
ADDED = ("folder", "job", "sweep")  # fields given to an entry as it is listed, not stored
JOB_FIELDS = ("name", "status", *ADDED)  # a job's, from its sweep's state.json
Entry = dict[str, Any]


class Condition(Protocol):
    """What the index's prefilter needs of a query's condition (nnlab.runfolder.query)."""

    key: str

    def sql(self) -> tuple[str, list[Any]] | None: ...


# -- reading folders -------------------------------------------------------------------------


def _duration(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def _run_fields(path: Path) -> dict[str, Any]:
    meta, summary = read_meta(path), read_summary(path)
    final = result_row(summary) or next(reversed(read_metrics(path / "metrics.csv")), {})
    shown = [f"{k} {metric_text(k, final[k])}" for k in LISTED if k in final]
    fields = {
        "name": meta.name, "kind": meta.kind, "status": meta.status.value,
        "started": meta.start_time, "time": meta.duration_seconds,
        "host": meta.host, "pid": meta.pid, "results": "  ".join(shown[:2]),
        **final,
        **{f"best.{k}": v for k, v in ((summary and summary.best) or {}).items()},
    }  # fmt: skip
    written = summary.to_json() if summary else {}
    for key in SUMMARY_KEYS:
        if key in written:
            fields[key] = written[key]
    if meta.error:
        fields["error"] = meta.error
    if meta.fingerprint and isinstance(meta.fingerprint.get("sha256"), str):
        fields["fingerprint"] = meta.fingerprint["sha256"]
    if meta.reused_from:
        fields["reused_from"] = meta.reused_from
    return fields


def _sweep_fields(path: Path) -> dict[str, Any]:
    state = read_state(path)
    counts: dict[str, int] = {}
    for job in state.jobs.values():
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
    return {
        "name": state.name, "kind": "sweep", "status": state.status.value,
        "started": state.created, "time": _duration(state.created, state.updated),
        "host": state.host, "pid": state.pid, "jobs": len(state.jobs),
        "results": f"{len(state.jobs)} jobs: "
        + ", ".join(f"{n} {s}" for s, n in counts.items()),
    }  # fmt: skip


def _config_fields(path: Path) -> dict[str, Any]:
    """The run's config.yaml as dotted keys; {} when it cannot be read (the listing still
    shows the run; a query on a config key does not match it)."""
    try:
        config = read_yaml_file(path / "config.yaml", what="run config", pipes=False)
    except NnlabError:
        return {}
    if not isinstance(config, dict):
        return {}
    return {k: v for k, v in flatten(config).items() if k not in ("name", "model.kind")}


def read_entry(path: Path, with_config: bool) -> Entry:
    """A folder's entry: ``{"fields": {...}, "config": {...} or None, "problem": ...}``; a
    folder whose files cannot be read is an entry with status 'unreadable' and the reason,
    so that it never hides the others."""
    try:
        if (path / "state.json").exists():
            return {"fields": _sweep_fields(path), "config": {}, "problem": None}
        fields = _run_fields(path)
    except NnlabError as exc:
        fields = {"name": path.name, "kind": "?", "status": "unreadable", "started": ""}
        return {"fields": fields, "config": {}, "problem": str(exc)}
    return {"fields": fields, "config": _config_fields(path) if with_config else None,
            "problem": None}  # fmt: skip


def _folders(root: Path) -> tuple[dict[str, str], dict[str, str], SweepRecord | None]:
    """The folders to list under ``root`` with their signatures, the job id of each and the
    sweep's state when ``root`` is a sweep folder (its jobs' last attempts) rather than a
    runs folder."""
    if (root / "state.json").is_file():
        state = read_state(root)
        jobs = {job.run: job_id for job_id, job in state.jobs.items() if job.run}
        sigs = {rel: signature(os.path.join(root, rel)) for rel in jobs}
        return {rel: s for rel, s in sigs.items() if s}, jobs, state
    sigs = {}
    with os.scandir(root) as found:
        for item in found:
            if item.is_dir() and not item.name.startswith("."):
                sig = signature(item.path)
                if sig:
                    sigs[item.name] = sig
    return sigs, {}, None


def read_entries(
    root: Path,
    with_config: bool = False,
    conditions: Iterable[Condition] = (),
    jobs: bool = False,
) -> tuple[list[Entry], str | None, int]:
    """The entries under ``root`` (a runs folder or a sweep folder), through the index;
    with ``with_config``, each run's config keys too; with ``jobs``, every sweep's jobs in
    place of the sweep (:func:`_job_entries`). Given ``conditions``, entries that cannot
    satisfy them may be left out (the index filters what it stores); the caller still
    checks each. Returns the entries, a note when the index had to be rebuilt, and the
    number of entries there are, none left out."""
    if not root.is_dir():
        raise NnlabError(f"{root}: no such runs folder")
    sigs, by_run, state = _folders(root)
    if state is not None:  # a job's name and status are its sweep's, set after reading
        conditions = [c for c in conditions if c.key not in JOB_FIELDS]
        jobs = False

    def read(path: Path) -> Entry:
        return read_entry(path, with_config)

    def usable(entry: Entry) -> bool:
        return not with_config or entry.get("config") is not None

    def cacheable(entry: Entry) -> bool:
        return entry["problem"] is None and entry["fields"]["status"] != RunStatus.RUNNING

    where = _prefilter(conditions, with_config, keep_sweeps=jobs)
    found, note = records(root, sigs, read, usable, cacheable, where, _damage)
    entries, total = [], len(sigs)
    for rel, entry in found.items():
        entry["fields"]["folder"] = rel
        entry["path"] = root / rel
        if jobs and entry["fields"]["kind"] == "sweep" and entry["problem"] is None:
            found_jobs, job_note, count = _job_entries(root, rel, with_config, conditions)
            entries += found_jobs
            total += count - 1
            note = note or job_note
            continue
        if state is not None:
            _as_job(entry["fields"], state, by_run[rel])
        entries.append(entry)
    if state is not None:  # the jobs without a run folder: pending, or refused before one
        ran = {by_run[rel] for rel in sigs}
        entries += [_unrun_job(root, state, job_id) for job_id in state.jobs if job_id not in ran]
        total = len(state.jobs)
    return entries, note, total


def _as_job(fields: dict[str, Any], state: SweepRecord, job_id: str) -> None:
    """A job's entry: named after its sweep and job (nnlab.runfolder.types.job_name), with
    the status (and error) state.json gives the job."""
    job = state.jobs[job_id]
    fields.update(job=job_id, sweep=state.name, name=job_name(state.name, job_id),
                  status=job.status.value)  # fmt: skip
    if job.error:
        fields["error"] = job.error


def _unrun_job(root: Path, state: SweepRecord, job_id: str) -> Entry:
    """The entry of a job without a run folder: what state.json says of it (a ``running``
    one lives as long as its sweep's process)."""
    fields: dict[str, Any] = {"kind": "", "started": "", "results": "", "folder": "",
                              "pid": state.pid, "host": state.host,
                              **state.jobs[job_id].final}  # fmt: skip
    _as_job(fields, state, job_id)
    return {"fields": fields, "config": {}, "problem": None, "path": root}


def _job_entries(
    root: Path, rel: str, with_config: bool, conditions: Iterable[Condition]
) -> tuple[list[Entry], str | None, int]:
    """The jobs of the sweep folder ``root/rel``, read through its own index as
    ``--runs-dir SWEEP`` reads them, their folders relative to ``root``."""
    try:
        entries, note, count = read_entries(root / rel, with_config, conditions)
    except NnlabError as exc:  # its state.json cannot be read (any more)
        fields = {"name": rel, "kind": "sweep", "status": "unreadable", "started": "",
                  "folder": rel}  # fmt: skip
        return [{"fields": fields, "config": {}, "problem": str(exc), "path": root / rel}], None, 1
    for entry in entries:
        fields = entry["fields"]
        fields["folder"] = f"{rel}/{fields['folder']}" if fields["folder"] else rel
        entry["path"] = root / fields["folder"]
    return entries, note, count


TEXT_FIELDS = ("name", "kind", "status", "started")  # every stored entry's fields have
SCALAR = str | int | float | bool | None
# the stored rows _damage finds fault with, in SQL: a query's prefilter keeps them, so that a
# damaged row is always seen (and the index rebuilt) rather than silently left out
DAMAGED_SQL = (
    "NOT COALESCE("
    + " AND ".join(f"json_type(record, '$.fields.{k}') = 'text'" for k in TEXT_FIELDS)
    + " AND NOT EXISTS (SELECT 1 FROM json_each(record, '$.fields') AS f"
    " WHERE f.type IN ('object', 'array'))"
    " AND COALESCE(json_type(record, '$.config'), 'null') IN ('null', 'object')"
    " AND COALESCE(json_type(record, '$.problem'), 'null') = 'null', 0)"
)


def _damage(entry: Entry) -> str | None:
    """What makes a stored entry one nnlab did not store (a damaged index row), or None."""
    fields, config = entry.get("fields"), entry.get("config")
    if not isinstance(fields, dict):
        return "its fields are not a mapping"
    for key in TEXT_FIELDS:
        if not isinstance(fields.get(key), str):
            return f"its {key} is {shown_value(fields.get(key))}, not text"
    for key, v in fields.items():
        if not isinstance(v, SCALAR):
            return f"its {clip(key)} is not a single value"
    if config is not None and not isinstance(config, dict):
        return "its config is not a mapping"
    if entry.get("problem") is not None:
        return "it stores a problem"
    return None


def _prefilter(
    conditions: Iterable[Condition], with_config: bool, keep_sweeps: bool = False
) -> tuple[str, list] | None:
    """The SQL condition every stored record that could match ``conditions`` satisfies —
    records stored without their config keys are always read, when a query needs them;
    with ``keep_sweeps``, every sweep (its jobs are matched, not the sweep)."""
    parts = [sql for c in conditions if (sql := c.sql()) is not None]
    if not parts:
        return None
    text = " AND ".join(f"({p})" for p, _ in parts)
    params = [x for _, ps in parts for x in ps]
    if with_config:
        text = f"json_type(record, '$.config') = 'null' OR ({text})"
    if keep_sweeps:
        text = f"json_extract(record, '$.fields.kind') = 'sweep' OR ({text})"
    return f"{DAMAGED_SQL} OR ({text})", params


def value(entry: Entry, key: str) -> Any:
    """``key``'s value in an entry; KeyError when it has none."""
    fields = entry["fields"]
    if key in fields:
        return fields[key]
    return (entry.get("config") or {})[key]


def has(entry: Entry, key: str) -> bool:
    return key in entry["fields"] or key in (entry.get("config") or {})


def needs_config(keys: Iterable[str]) -> bool:
    """Whether any of ``keys`` is a config key (dotted, not ``best.``; or ``seed``)."""
    return any(k == "seed" or ("." in k and not k.startswith("best.")) for k in keys)
