"""state.json: a sweep's status and, per job, its status and attempts (docs/run-folder.md,
'Sweep folder' and 'Statuses').

The file is rewritten atomically at every change, so a sweep killed at any moment resumes where
it stopped. Its JSON shape is a contract that other commands (``nnlab report``, ``nnlab runs``)
and people's scripts read::

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

import errno
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnlab.common.files import atomic_write_json, now_iso
from nnlab.runfolder.records import JOB_STATUSES, read_state

RESERVE = ".nnlab-reserve"  # in a running sweep's folder: space kept for state.json
RESERVE_BYTES = 16 * 2**10

if TYPE_CHECKING:
    from nnlab.sweeps.spec import SweepSpec

DONE = ("completed", "diverged", "pruned")  # results: never run again


@dataclass
class JobEntry:
    """One job's line in state.json."""

    overrides: dict[str, Any]
    status: str = "pending"
    attempts: int = 0
    run: str | None = None  # the latest attempt's folder, relative to the sweep folder
    error: str | None = None
    final: dict[str, Any] = field(default_factory=dict)  # the attempt's final metric row
    node: str | None = None  # where the attempt ran, when the executor knows
    did_not_learn: bool = False  # its accuracy stayed at chance (written only when true)
    # Whether state.json holds "node" for this job: once an executor reported on an attempt.
    has_node: bool = field(default=False, repr=False, compare=False)

    def update(self, **changes: Any) -> None:
        for key, value in changes.items():
            if key not in _JOB_KEYS:
                raise TypeError(f"JobEntry has no field {key!r}")
            setattr(self, key, value)
        if "node" in changes:
            self.has_node = True

    def to_json(self) -> dict[str, Any]:
        out = {
            "overrides": self.overrides,
            "status": self.status,
            "attempts": self.attempts,
            "run": self.run,
            "error": self.error,
            "final": self.final,
        }
        if self.has_node:
            out["node"] = self.node
        if self.did_not_learn:
            out["did_not_learn"] = True
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobEntry:
        """A job entry read back (checked by nnlab.runfolder.records; keys it does not know are
        dropped)."""
        return cls(**{k: data[k] for k in _JOB_KEYS if k in data}, has_node="node" in data)


_JOB_KEYS = tuple(f.name for f in fields(JobEntry) if f.name != "has_node")


class SweepState:
    """state.json in memory: the sweep's status and a typed entry per job; :meth:`save`
    (and :meth:`update`) rewrite the file atomically."""

    def __init__(
        self,
        path: Path,
        name: str,
        jobs: dict[str, JobEntry],
        created: str | None = None,
        updated: str | None = None,
        status: str = "running",
        plot_error: str | None = None,
        pid: int | None = None,
        host: str | None = None,
        error: str | None = None,
    ):
        self.path, self.name, self.jobs = path, name, jobs
        self.created = created or now_iso()
        self.updated = updated or now_iso()
        self.status = status
        self.plot_error = plot_error  # why the comparison figures could not be drawn
        # the driver process that last ran the sweep (nnlab.runfolder.liveness: is it alive?)
        self.pid, self.host = pid, host
        self.error = error  # why the sweep stopped, when an error ended it

    @classmethod
    def new(cls, folder: Path, sweep: SweepSpec) -> SweepState:
        """A new state.json with every job pending, written at once."""
        jobs = {j.id: JobEntry(j.overrides) for j in sweep.jobs}
        state = cls(folder / "state.json", sweep.name, jobs)
        state.save()
        return state

    @classmethod
    def load(cls, folder: Path) -> SweepState:
        """The state.json of a sweep folder; RecordError (one line, naming the file and the
        field) when it is missing, unreadable or not of the shape nnlab writes."""
        data = read_state(folder)
        jobs = {job_id: JobEntry.from_json(entry) for job_id, entry in data["jobs"].items()}
        return cls(
            folder / "state.json",
            data["name"],
            jobs,
            data["created"],
            data["updated"],
            data["status"],
            data.get("plot_error"),
            data.get("pid"),
            data.get("host"),
            data.get("error"),
        )

    def to_json(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "created": self.created,
            "updated": self.updated,
            "status": self.status,
            "jobs": {job_id: entry.to_json() for job_id, entry in self.jobs.items()},
        }
        if self.plot_error is not None:
            out["plot_error"] = self.plot_error
        if self.pid is not None:
            out["pid"], out["host"] = self.pid, self.host
        if self.error is not None:
            out["error"] = self.error
        return out

    def claim(self) -> None:
        """Mark the sweep running under this process (its pid and host), and save."""
        import os
        import socket

        self.status, self.error = "running", None
        self.pid, self.host = os.getpid(), socket.gethostname()
        self.save()

    @property
    def data(self) -> dict[str, Any]:
        """A snapshot in state.json's shape (what pivot tables and figures read); changing it
        changes nothing here."""
        return self.to_json()

    def update(self, job_id: str, **changes: Any) -> None:
        """Change fields of one job's entry and save."""
        self.jobs[job_id].update(**changes)
        self.save()

    def save(self) -> None:
        """Write state.json atomically. A full disk cannot keep it from recording how the
        sweep stopped: while the sweep runs, a reserve file beside it holds twice its size,
        given up to let a save through when the disk fills (docs/run-folder.md, 'Sweep folder')."""
        self.updated = now_iso()
        data = self.to_json()
        try:
            atomic_write_json(self.path, data)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not self.release_reserve():
                raise
            atomic_write_json(self.path, data)
            return
        self._keep_reserve()

    @property
    def reserve(self) -> Path:
        return self.path.with_name(RESERVE)

    def _keep_reserve(self) -> None:
        """Make the reserve at least twice state.json's size plus RESERVE_BYTES (allocated,
        not sparse); without space for it, go on without."""
        try:
            want = 2 * self.path.stat().st_size + RESERVE_BYTES
            if self.reserve.exists() and self.reserve.stat().st_size >= want:
                return
            fd = os.open(self.reserve, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.posix_fallocate(fd, 0, want)
            finally:
                os.close(fd)
        except (OSError, AttributeError):  # a full disk, or no posix_fallocate (macOS)
            self.release_reserve()

    def release_reserve(self) -> bool:
        """Remove the reserve (when the sweep ends, or to free its space); whether it was there."""
        try:
            self.reserve.unlink()
        except OSError:
            return False
        return True

    def counts(self) -> dict[str, int]:
        """How many jobs have each status, every status listed."""
        out = dict.fromkeys(JOB_STATUSES, 0)
        for entry in self.jobs.values():
            out[entry.status] += 1
        return out
