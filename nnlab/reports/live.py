"""What `nnlab serve`'s dashboard shows (nnlab.reports.serve sends it as JSON): the runs
folder's listing, from the runs index, and one run's or sweep's Explore data — the very data
report.html embeds (nnlab.reports.explore), drawn by the same script — each with a version
that changes only when its files do, so that a page that polls gets only what changed.

The listing reads no finished run's metrics.csv: it is `nnlab runs`'s, through the index
(nnlab.runfolder.index). A folder's data is read when the page asks for it; each run's
files are read again only when their signature (inode, size, modification time) changed, so
a sweep whose one job grows re-reads that job's metrics.csv only.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from nnlab.common.metrics import ORDER, is_result, metric_text, status_text
from nnlab.common.status import JobStatus, RunStatus
from nnlab.errors import NnlabError
from nnlab.reports.explore import run_data, sweep_explore
from nnlab.runfolder.entries import Entry, read_entry
from nnlab.runfolder.index import signature
from nnlab.runfolder.query import DEFAULT_COLUMNS, Query, run_query
from nnlab.runfolder.records import read_state
from nnlab.runfolder.render import shown_status
from nnlab.runfolder.runs import Run, load_run
from nnlab.sweeps.folder import load_sweep_folder

RUN_FILES = ("meta.json", "summary.json", "metrics.csv", "stats.csv")  # what a run's view reads


def _stat(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def run_signature(folder: Path) -> str:
    """The identity of the files a run's view is drawn from: it changes with every row
    written to metrics.csv, and with the run's end."""
    return "|".join(_stat(os.path.join(folder, name)) for name in RUN_FILES)


def version(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _row(e: Entry) -> dict[str, Any]:
    f = e["fields"]
    started = str(f.get("started") or "").replace("T", " ")[:19]
    return {"folder": f["folder"], "name": f["name"], "kind": f["kind"],
            "status": shown_status(e), "started": started, "time": f.get("time"),
            "results": f.get("results") or ""}  # fmt: skip


def _signatures(root: Path) -> dict[str, str] | None:
    """Each folder's index signature in a runs folder (None for a sweep folder: its jobs are
    listed from its state.json, which the query reads)."""
    try:
        if (root / "state.json").is_file():
            return None
        with os.scandir(root) as found:
            return {item.name: signature(item.path) for item in found
                    if item.is_dir() and not item.name.startswith(".")}  # fmt: skip
    except OSError:  # gone or unreadable: the query says so in one line
        return None


class Listing:
    """The runs and sweeps of ``root``, newest first, as `nnlab runs` lists them — through
    the index, so no finished run's metrics.csv is read — and the version of that list.
    Between two calls whose folders' signatures are all the same, the entries are kept and
    only the running ones read again (their results and liveness change without their
    meta.json), so a page that polls a folder of 10,000 runs costs their stats, not their
    index entries decoded again."""

    def __init__(self, root: Path):
        self.root = root
        self.kept: tuple[dict[str, str], list[Entry], list[str]] | None = None
        self.lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        with self.lock:
            sigs = _signatures(self.root)
            if self.kept is not None and sigs is not None and self.kept[0] == sigs:
                _, entries, warnings = self.kept
                for i, e in enumerate(entries):
                    if e["fields"]["status"] == RunStatus.RUNNING:
                        entries[i] = read_entry(e["path"], False)
                        entries[i]["fields"]["folder"] = e["fields"]["folder"]
                        entries[i]["path"] = e["path"]
            else:
                entries, _, warnings = run_query(self.root, Query(where=[], sort=[], columns=[]))
                if sigs is not None:
                    self.kept = (sigs, entries, warnings)
            runs = [_row(e) for e in entries]
        return {"version": version(runs, warnings), "runs": runs, "notes": warnings,
                "columns": [c for c in DEFAULT_COLUMNS if c != "folder"]}  # fmt: skip


class Folders:
    """The runs folder ``root`` as the dashboard reads it: each run read again only when its
    files changed (kept between requests; thread-safe)."""

    def __init__(self, root: Path):
        self.root = root
        self.resolved = root.resolve()
        self.runs: dict[Path, tuple[str, Run]] = {}
        self.lock = threading.Lock()

    def path_of(self, rel: str) -> Path:
        """The folder ``rel`` names inside the runs folder; NnlabError for one outside it or
        missing."""
        path = (self.root / rel).resolve()
        if not rel or not path.is_relative_to(self.resolved) or not path.is_dir():
            raise NnlabError(f"{rel!r}: no run or sweep folder of that name in {self.root}")
        return path

    def _run(self, path: Path, sig: str | None = None) -> Run:
        sig = sig or run_signature(path)
        kept = self.runs.get(path)
        if kept is not None and kept[0] == sig:
            return kept[1]
        try:
            run = load_run(path)
        except NnlabError:  # caught mid-write (a row cut short): what was read last, if any
            if kept is None:
                raise
            return kept[1]
        self.runs[path] = (sig, run)
        return run

    def folder_version(self, path: Path) -> str:
        """What changes when anything the folder's view is drawn from changes."""
        if not (path / "state.json").is_file():
            return version("run", run_signature(path))
        state = read_state(path)
        jobs = [run_signature(path / e.run) if e.run else "" for e in state.jobs.values()]
        return version("sweep", _stat(str(path / "state.json")), jobs)

    def view(self, rel: str, since: str | None = None) -> dict[str, Any]:
        """A folder's view: ``{"version", "folder", "kind", "name", "status", "data"
        (report.html's Explore data), "jobs" (a sweep's table: header and rows)}``, or only
        ``{"version", "unchanged": true}`` when ``since`` is its version still."""
        path = self.path_of(rel)
        with self.lock:
            now = self.folder_version(path)
            if since == now:
                return {"version": now, "unchanged": True}
            view = self._sweep(path) if (path / "state.json").is_file() else self._single(path)
        return {"version": now, "folder": rel, **view}

    def _single(self, path: Path) -> dict[str, Any]:
        run = self._run(path)
        return {"kind": run.meta.kind, "name": run.meta.name, "status": run.status.value,
                "data": run_data(run.metrics, path / "stats.csv"), "jobs": None}  # fmt: skip

    def _sweep(self, path: Path) -> dict[str, Any]:
        sweep, state = load_sweep_folder(path)
        runs, notes = {}, []
        for job_id, entry in state.jobs.items():
            if not entry.run or not (path / entry.run / "meta.json").is_file():
                continue
            try:
                run = self._run(path / entry.run)
            except NnlabError as exc:
                notes.append(f"{job_id} left out: {exc}")
                continue
            if run.metrics:  # a job that has not logged a row yet draws nothing
                runs[job_id] = run
        data = sweep_explore(sweep, state, runs, live=True)
        data["notes"] = notes + data["notes"]
        return {"kind": "sweep", "name": sweep.name, "status": state.status.value,
                "data": data, "jobs": jobs_table(state)}  # fmt: skip


def jobs_table(state: Any) -> dict[str, Any]:
    """A sweep's jobs as report.html's Jobs table shows them: job, status, attempts and the
    final metrics each has (from state.json; a running job's is empty until it ends)."""
    keys = [k for k in ORDER if is_result(k) and any(k in e.final for e in state.jobs.values())]
    rows = [
        [job_id, status_text(e.status.value, e.did_not_learn), e.attempts,
         *(metric_text(k, e.final[k]) if k in e.final else "—" for k in keys)]
        for job_id, e in state.jobs.items()
    ]  # fmt: skip
    counts = {s.value: sum(e.status == s for e in state.jobs.values()) for s in JobStatus}
    return {"header": ["job", "status", "attempts", *keys], "rows": rows,
            "counts": {k: v for k, v in counts.items() if v}}  # fmt: skip
