"""Memoized runs: finding a completed run with a given fingerprint under a runs folder, through
the index of `nnlab runs` (nnlab.runfolder.entries), and copying it into a new run folder
(docs/sweeps.md, 'Reusing runs').

Only a run whose meta.json says ``completed`` (a sweep job: whose state.json entry says so
too) and whose fingerprint matches is taken; failed, interrupted, diverged, pruned and
running runs never are. A copy, not a link: the job folder must stand alone when the source
is deleted, moved or archived, and nnlab writes into run folders later (report.md, plots)
without touching another run's files.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from nnlab.common.files import atomic_write_json, atomic_write_text
from nnlab.common.status import RunStatus
from nnlab.errors import NnlabError
from nnlab.runfolder.entries import read_entries
from nnlab.runfolder.records import read_meta, read_summary
from nnlab.runfolder.runs import Run, load_run

NOT_COPIED = ("meta.json", "config.yaml", "heartbeat", "report.md", "report.html")


class _SameFingerprint:
    """A condition of the index's prefilter (nnlab.runfolder.entries.Condition): the stored
    entries with this fingerprint (and every sweep, whose jobs are matched one by one)."""

    key = "fingerprint"

    def __init__(self, sha256: str):
        self.sha256 = sha256

    def sql(self) -> tuple[str, list[Any]]:
        return "json_extract(record, '$.fields.fingerprint') = ?", [self.sha256]


def _still_matches(path: Path, sha256: str) -> bool:
    """The folder's own files say it completed with this fingerprint (the index may lag)."""
    try:
        meta = read_meta(path)
        summary = read_summary(path)
    except NnlabError:
        return False
    return (
        meta.status == RunStatus.COMPLETED
        and summary is not None
        and summary.status == RunStatus.COMPLETED
        and (meta.fingerprint or {}).get("sha256") == sha256
    )


def find_completed(runs_dir: str | Path, sha256: str, exclude: Path | None = None) -> Path | None:
    """A completed run (or sweep job's attempt) under ``runs_dir`` with fingerprint
    ``sha256`` — the first one started, copies last — or None; never one inside
    ``exclude`` (the folder about to be made)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return None
    try:
        entries, _, _ = read_entries(root, conditions=[_SameFingerprint(sha256)], jobs=True)
    except NnlabError:
        return None
    found = [
        e
        for e in entries
        if e["fields"].get("fingerprint") == sha256 and e["fields"]["status"] == RunStatus.COMPLETED
    ]
    found.sort(key=lambda e: (bool(e["fields"].get("reused_from")), e["fields"]["started"]))
    for entry in found:
        path = Path(entry["path"])
        if exclude is not None and path.resolve().is_relative_to(exclude.resolve()):
            continue
        if _still_matches(path, sha256):
            return path
    return None


def copy_run(source: Path, dest: Path, name: str, config_text: str) -> Run:
    """Make ``dest`` (a new folder) a copy of the completed run ``source``, named ``name``:
    its files as they are, config.yaml written again (``config_text``: the same config with
    this run's name), and meta.json — last, so that a folder without it is no run — with the
    name and ``reused_from`` (the source's absolute path)."""
    source = source.resolve()
    meta = read_meta(source)
    try:
        shutil.copytree(source, dest, ignore=lambda d, _: NOT_COPIED if Path(d) == source else ())
    except FileExistsError:
        raise NnlabError(f"{dest} exists already; a run never reuses a folder") from None
    atomic_write_text(dest / "config.yaml", config_text)
    meta.update(name=name, reused_from=str(source))
    atomic_write_json(dest / "meta.json", meta.to_json())
    return load_run(dest)
