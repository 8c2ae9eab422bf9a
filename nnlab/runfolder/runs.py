"""Run folders: creating them, recording a run into one, and reading them back.

Layout (docs/run-folder.md, 'Run folder'): ``<runs_dir>/<YYYYmmdd-HHMMSS>-<name>[-<k>]/`` holding
config.yaml, meta.json, metrics.csv, summary.json, the model file and plots/. Files other
commands read are written atomically (nnlab.common.files); metrics.csv is appended row by row.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import platform
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from nnlab.common.files import atomic_write_json, atomic_write_text, now, now_iso
from nnlab.common.metrics import did_not_learn, summarize
from nnlab.common.status import RunStatus
from nnlab.errors import NnlabError
from nnlab.runfolder.records import read_meta, read_metrics, read_run_config, read_summary
from nnlab.runfolder.types import Meta, Summary

RUNS_DIR = Path("runs")  # where runs and sweeps go unless told otherwise


def safe_name(name: str) -> str:
    """A run name made safe as one path component: no separators, no leading dots."""
    cleaned = re.sub(r"[^A-Za-z0-9_.+=,-]+", "_", name).strip("._") or "run"
    return cleaned[:80]


def versions() -> dict[str, str | None]:
    """Versions of nnlab, Python and the numeric libraries, without importing torch."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("nnlab", "numpy", "scikit-learn", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def make_exact_dir(path: Path) -> Path:
    """Make exactly this new folder (its parents as needed); refuse one that exists."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    except FileExistsError:
        raise NnlabError(f"{path} exists already; a run never reuses a folder") from None
    except OSError as exc:
        raise NnlabError(f"cannot create run folder {str(path)!r}: {exc.strerror}") from None
    return path


def _command_line() -> list[str]:
    """The command as the user typed it (``python -m nnlab`` reads as ``nnlab``)."""
    prog = Path(sys.argv[0]).name
    return ["nnlab" if prog == "__main__.py" else prog, *sys.argv[1:]]


def create_run_dir(
    runs_dir: str | Path, name: str, when: datetime | None = None, kind: str = ""
) -> Path:
    """Make a new, empty ``<stamp>-[<kind>-]<name>`` folder; never reuses one (``-1``, ``-2``...
    on a clash).

    ``os.mkdir`` fails if the folder exists, so concurrent processes get distinct folders.
    """
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NnlabError(f"cannot create runs folder {str(runs_dir)!r}: {exc.strerror}") from None
    stem = f"{(when or now()):%Y%m%d-%H%M%S}-{kind + '-' if kind else ''}{safe_name(name)}"
    for k in range(10_000):
        path = runs_dir / (stem if k == 0 else f"{stem}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise NnlabError(
                f"cannot create run folder in {str(runs_dir)!r}: {exc.strerror}"
            ) from None
    raise NnlabError(f"too many runs named {stem!r} in {str(runs_dir)!r}")


class MetricsWriter:
    """Appends metric rows to metrics.csv as they come, so a crash keeps them.

    Each row goes to the file in one ``os.write``; if the disk refuses part of it, the file is
    cut back to the last whole row before the error is raised, so metrics.csv never ends in a
    half row. ``fieldnames`` fixes the columns (rows may leave some empty) and the header is
    written at once, so that a run stopped before its first row still has its metrics.csv;
    without them the columns are the first row's keys. ``rows`` are written first (a resumed
    run's rows so far).
    """

    def __init__(
        self,
        path: Path,
        fieldnames: list[str] | None = None,
        rows: list[dict[str, float]] | None = None,
    ):
        self.path, self.fieldnames = path, fieldnames
        self.rows: list[dict[str, float]] = []
        self._fd: int | None = None
        self._size = 0
        if fieldnames is not None:
            self._open(fieldnames)
        for row in rows or []:
            self(row)

    def _open(self, fieldnames: list[str]) -> None:
        self.fieldnames = fieldnames
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._append(fieldnames)

    def _append(self, values: list[str]) -> None:
        buf = io.StringIO()
        csv.writer(buf).writerow(values)
        data = buf.getvalue().encode("utf-8")
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(errno.EFBIG, "File too large (a partial write)")
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise
        self._size += written

    def __call__(self, row: dict[str, float]) -> None:
        if self._fd is None:
            self._open(list(row))
        self._append([_fmt(row[k]) if k in row else "" for k in self.fieldnames])
        self.rows.append(dict(row))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _fmt(v: float) -> str:
    # repr keeps every bit of a float64, so metrics read back equal what was computed.
    return str(v) if isinstance(v, int) else repr(float(v))


def result_row(summary: Summary | None) -> dict[str, float]:
    """The metrics of the weights a run saved ({} before it ended): with early stopping, the
    best evaluation's row (its weights are the ones kept); else the final row."""
    if summary is None:
        return {}
    kept = summary.early_stopping.row if summary.early_stopping else None
    return dict(kept) if kept else dict(summary.final)


@dataclass
class Run:
    """A run folder read back, or the result of :func:`nnlab.train`."""

    path: Path
    config: dict[str, Any]
    meta: Meta
    summary: Summary | None = None  # None while the run has not ended
    metrics: list[dict[str, float]] = field(default_factory=list)
    reused_from: Path | None = None  # nnlab.train(reuse=...): the completed run taken instead

    @property
    def status(self) -> RunStatus:
        return self.meta.status

    @property
    def error(self) -> str | None:
        return self.meta.error


class RunRecorder:
    """Owns one run folder while it runs: meta.json status, metrics, summary and model."""

    def __init__(
        self,
        path: Path,
        config: dict[str, Any],
        config_text: str,
        metric_columns: list[str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        """Start recording into ``path``, a new empty folder made by the caller; ``extra``
        adds fields to meta.json (the code's provenance)."""
        self.path = path
        atomic_write_text(self.path / "config.yaml", config_text)
        meta = Meta(
            status=RunStatus.RUNNING,
            name=config["name"],
            kind=config["model"]["kind"],
            start_time=now_iso(),
            command=_command_line(),
            versions=versions(),
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        meta.update(**(extra or {}))
        self._open(config, meta, MetricsWriter(self.path / "metrics.csv", metric_columns))

    @classmethod
    def reopen(
        cls,
        path: Path,
        config: dict[str, Any],
        metric_columns: list[str] | None,
        rows: list[dict[str, float]],
    ) -> RunRecorder:
        """Take over an existing run folder to resume it; metrics.csv restarts from ``rows``."""
        self = cls.__new__(cls)
        self.path = path
        meta = read_meta(path)
        meta.update(
            resumed=[*(meta.resumed or []), now_iso()],
            status=RunStatus.RUNNING,
            end_time=None,
            error=None,
            pid=os.getpid(),
            command=_command_line(),
        )
        self._open(config, meta, MetricsWriter(path / "metrics.csv", metric_columns, rows))
        return self

    def _open(self, config: dict[str, Any], meta: Meta, metrics: MetricsWriter) -> None:
        self.config, self.meta, self.metrics = config, meta, metrics
        self._t0 = time.perf_counter()
        atomic_write_json(self.path / "meta.json", self.meta.to_json())

    def finish(
        self,
        status: RunStatus,
        n_params: int,
        train_seconds: float,
        error: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Run:
        """Write summary.json and the final meta.json; return the Run."""
        self.metrics.close()
        final, best = summarize(self.metrics.rows)
        fields = {
            "status": status,
            "final": final,
            "best": best,
            "n_params": n_params,
            "train_seconds": round(train_seconds, 4),
            **(extra or {}),
        }
        flag = did_not_learn(best, fields.get("chance_acc"))
        if flag is not None:
            fields["did_not_learn"] = flag
        summary = Summary.from_json(fields)
        atomic_write_json(self.path / "summary.json", summary.to_json())
        self.meta.update(
            status=status,
            end_time=now_iso(),
            duration_seconds=round(time.perf_counter() - self._t0, 3),
            error=error,
        )
        atomic_write_json(self.path / "meta.json", self.meta.to_json())
        return Run(self.path, self.config, self.meta, summary, self.metrics.rows)


def run_folder(path: str | Path) -> Path:
    """A run folder: the folder itself, or a sweep job folder's last attempt."""
    path = Path(path)
    if (path / "meta.json").exists():
        return path
    attempts = sorted(
        (p for p in path.glob("attempt-*") if p.name.removeprefix("attempt-").isdigit()),
        key=lambda p: int(p.name.removeprefix("attempt-")),
    )
    if attempts and (attempts[-1] / "meta.json").exists():
        return attempts[-1]
    raise NnlabError(f"{path}: not a run folder or a sweep job folder (no meta.json)")


def load_run(path: str | Path) -> Run:
    """Read a run folder back: config, meta, summary (if written) and metrics, each checked
    to be what nnlab writes (nnlab.runfolder.records)."""
    path = Path(path)
    if not path.is_dir():
        raise NnlabError(f"{str(path)!r} is not a folder")
    meta = read_meta(path)
    config = read_run_config(path)
    return Run(path, config, meta, read_summary(path), read_metrics(path / "metrics.csv"))
