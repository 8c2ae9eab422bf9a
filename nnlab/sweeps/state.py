"""state.json: a sweep's status and, per job, its status and attempts (docs/run-folder.md,
'Sweep folder' and 'Statuses').

The file is rewritten atomically at every change, so a sweep killed at any moment resumes where
it stopped. Its JSON shape is a contract that other commands (``nnlab report``, ``nnlab runs``)
and people's scripts read; the record and its job entries are typed in
nnlab.runfolder.types (:class:`~nnlab.runfolder.types.SweepRecord`,
:class:`~nnlab.runfolder.types.JobEntry`)::

    {"name": ..., "created": ..., "updated": ..., "status": "running",
     "jobs": {"<job id>": {"overrides": {...}, "status": "pending", "attempts": 0,
                           "run": null, "error": null, "final": {}, "node": null}},
     "plot_error": ..., "pid": 1234, "host": ..., "error": ...}

``node`` appears once an executor has reported on an attempt of the job (null when it cannot
tell where the attempt ran); ``plot_error`` only when the comparison figures failed;
``pid`` and ``host`` name the driver process that last ran the sweep (so that a ``running``
sweep whose driver is gone shows ``running (dead?)``); ``error`` says why an error ended it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from nnlab.common.files import atomic_write_json, json_text, now_iso, overwrite_in_place
from nnlab.common.status import JobStatus, SweepStatus
from nnlab.runfolder.records import read_state
from nnlab.runfolder.types import JobEntry, SweepRecord

RESERVE = ".nnlab-reserve"  # in a running sweep's folder: space kept for state.json
RESERVE_BYTES = 16 * 2**10

DONE = (JobStatus.COMPLETED, JobStatus.DIVERGED, JobStatus.PRUNED)  # results: never run again


class SweepState(SweepRecord):
    """state.json in memory, at ``path``: the record, which :meth:`save` (and
    :meth:`update_job`) rewrite atomically."""

    def __init__(self, path: Path, record: SweepRecord):
        super().__init__(**{f.name: getattr(record, f.name) for f in fields(record)})
        self.path = path

    @classmethod
    def new(cls, folder: Path, name: str, jobs: dict[str, dict[str, Any]]) -> SweepState:
        """A new state.json for sweep ``name`` with every job (id: overrides) pending, written
        at once."""
        entries = {job_id: JobEntry(overrides) for job_id, overrides in jobs.items()}
        state = cls(folder / "state.json", SweepRecord(name, now_iso(), now_iso(), jobs=entries))
        state.save()
        return state

    @classmethod
    def load(cls, folder: Path) -> SweepState:
        """The state.json of a sweep folder; RecordError (one line, naming the file and the
        field) when it is missing, unreadable or not of the shape nnlab writes."""
        return cls(folder / "state.json", read_state(folder))

    def claim(self) -> None:
        """Mark the sweep running under this process (its pid and host), and save."""
        self.status, self.error = SweepStatus.RUNNING, None
        self.pid, self.host = os.getpid(), socket.gethostname()
        self.save()

    def update_job(self, job_id: str, **changes: Any) -> None:
        """Change fields of one job's entry and save."""
        self.jobs[job_id].update(**changes)
        self.save()

    def save(self) -> None:
        """Write state.json atomically. A full disk cannot keep it from recording how the
        sweep stopped: while the sweep runs, a reserve file beside it holds twice its size,
        given up to let a save through when the disk fills; with the reserve spent, state.json
        is rewritten in place where the new text fits in the blocks the file already holds
        (docs/run-folder.md, 'Sweep folder')."""
        self.updated = now_iso()
        data = self.to_json()
        try:
            atomic_write_json(self.path, data)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            if self.release_reserve():
                with contextlib.suppress(OSError):
                    atomic_write_json(self.path, data)
                    return
            if not overwrite_in_place(self.path, json_text(data).encode("utf-8")):
                raise
            return
        self._keep_reserve()

    @property
    def reserve(self) -> Path:
        return self.path.with_name(RESERVE)

    def _keep_reserve(self) -> None:
        """Make the reserve at least twice state.json's size plus RESERVE_BYTES (allocated,
        not sparse); without space for it, go on without."""
        had = self.reserve.exists()
        try:
            want = 2 * self.path.stat().st_size + RESERVE_BYTES
            if had and self.reserve.stat().st_size >= want:
                return
            fd = os.open(self.reserve, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.posix_fallocate(fd, 0, want)
            finally:
                os.close(fd)
        except (OSError, AttributeError):  # a full disk, or no posix_fallocate (macOS)
            if not had:  # a reserve that could not grow keeps what it holds
                self.release_reserve()

    def release_reserve(self) -> bool:
        """Remove the reserve (when the sweep ends, or to free its space); whether it was there."""
        try:
            self.reserve.unlink()
        except OSError:
            return False
        return True


@dataclass
class Sweep:
    """A sweep folder and what happened in it (``state`` in state.json's shape)."""

    path: Path
    state: dict[str, Any]
    tables: list[str] = field(default_factory=list)  # markdown, one per table

    @property
    def status(self) -> str:
        """completed, or failed when a job failed (interrupted sweeps raise instead)."""
        return self.state["status"]

    @property
    def failed(self) -> dict[str, str]:
        """Job id -> error, for every job that failed: empty when the sweep completed."""
        return {
            k: j.get("error") or ""
            for k, j in self.state["jobs"].items()
            if j["status"] == JobStatus.FAILED
        }
