"""A cache of what `nnlab runs` reads from each folder: SQLite, beside the folders it lists.

The folders stay the source of truth. Every query stats the files a folder's entry is read
from (a run's meta.json, summary.json and config.yaml; a sweep's state.json) and compares
them — inode, size, modification time — with the signature stored with the entry: an entry
whose files changed is read again, one whose folder is gone is dropped, a new folder is read
and added. Nothing whose status is still changing (a running run or sweep) or that could not
be read is stored: those are read every time. An index that cannot be opened, read or
written (a read-only runs folder, a damaged file, a format from another nnlab version) is
rebuilt or set aside and the folders are read instead: the answer is the same, only slower.
The index is never required.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

NAME = ".nnlab-index.sqlite"  # in the listed folder
FORMAT = 3  # of the stored entries; an index of another format is rebuilt
RUN_SOURCES = ("meta.json", "summary.json", "config.yaml")  # what a run's entry is read from
SWEEP_SOURCE = "state.json"  # and a sweep's
Record = dict[str, Any]


def signature(folder: str) -> str:
    """The identity of the files a folder's entry is read from — ``inode:size:mtime_ns`` of
    a run's meta.json, summary.json and config.yaml ('-' for one that is missing), or of a
    sweep's state.json — or '' when the folder is neither a run nor a sweep. (Plain string
    joins: this runs for every folder of every query.)"""
    try:
        st = os.stat(folder + "/meta.json")
    except OSError:
        try:
            st = os.stat(folder + "/" + SWEEP_SOURCE)
        except OSError:
            return ""
        return f"sweep|{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    parts = ["run", f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"]
    for name in RUN_SOURCES[1:]:
        try:
            st = os.stat(folder + "/" + name)
        except OSError:
            parts.append("-")
        else:
            parts.append(f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


class Index:
    """The index file of one listed folder; every method fails quietly (see the module)."""

    def __init__(self, folder: Path):
        self.path = folder / NAME
        self.db: sqlite3.Connection | None = None
        self.problem: str | None = None  # why the index was set aside, if it was

    def open(self, retry: bool = True) -> dict[str, str] | None:
        """The stored signatures, folder (relative) -> signature; None when the index cannot
        be used."""
        try:
            self.db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version != FORMAT:
                self.db.executescript(
                    "DROP TABLE IF EXISTS entries;"
                    "CREATE TABLE entries (folder TEXT PRIMARY KEY, signature TEXT NOT NULL,"
                    " record TEXT NOT NULL);"
                    f"PRAGMA user_version = {FORMAT};"
                )
            return dict(self.db.execute("SELECT folder, signature FROM entries").fetchall())
        except (sqlite3.OperationalError, OSError):  # read-only, locked too long, not a file
            self._close()
            return None
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one: start afresh
            self._close()
            return self.open(retry=False) if retry and self._set_aside(exc) else None

    def load(self, where: tuple[str, list[Any]] | None) -> tuple[dict[str, str] | None, bool]:
        """The stored records (as JSON) of the rows for which the SQL condition ``where``
        (text, parameters) holds — every row when there is none, or when it cannot be
        evaluated — and whether it was applied; None when nothing can be read."""
        if self.db is None:
            return None, False
        try:
            if where is not None:
                sql, params = where
                rows = self.db.execute(f"SELECT folder, record FROM entries WHERE {sql}", params)
                return dict(rows.fetchall()), True
        except sqlite3.Error:  # an SQLite without its JSON functions: filter in Python
            pass
        try:
            return dict(self.db.execute("SELECT folder, record FROM entries").fetchall()), False
        except sqlite3.Error:
            return None, False

    def _set_aside(self, exc: Exception) -> bool:
        """Remove a damaged index file, so that the next open builds a new one."""
        try:
            self.path.unlink()
        except OSError:
            return False
        self.problem = f"{self.path} was damaged ({exc}); rebuilt"
        return True

    def _close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def store(self, changed: Iterable[tuple[str, str, Record]], gone: Iterable[str]) -> None:
        """Write the entries read again and drop those whose folders are gone, in one
        transaction (a concurrent `nnlab runs` waits for it, or finds the index unused)."""
        rows, gone = [], list(gone)
        for folder, sig, record in changed:
            with contextlib.suppress(ValueError):  # not JSON (a NaN): read again next time
                rows.append((folder, sig, json.dumps(record, allow_nan=False)))
        if self.db is None or not (rows or gone):
            self._close()
            return
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("DELETE FROM entries WHERE folder = ?", [(g,) for g in gone])
                self.db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)
        except (sqlite3.Error, OSError):  # read-only, full, locked: read the folders next time
            pass
        self._close()


def records(
    folder: Path,
    signatures: dict[str, str],
    read: Callable[[Path], Record],
    usable: Callable[[Record], bool],
    cacheable: Callable[[Record], bool],
    where: tuple[str, list[Any]] | None = None,
    damage: Callable[[Record], str | None] = lambda record: None,
) -> tuple[dict[str, Record], str | None]:
    """The record of each folder in ``signatures`` (relative to ``folder`` -> its
    :func:`signature`): the stored one where its signature matches and ``usable`` accepts
    it, else ``read(path)`` — stored again when ``cacheable``. ``where`` is an SQL condition
    on a stored row's ``record`` (JSON) that every record the caller could want satisfies —
    and every damaged one too: an unchanged folder whose stored record fails it is left out,
    unread and undecoded. Records read afresh are all returned. A stored record that is not
    JSON, not a mapping, or that ``damage`` finds fault with (its reason) means the index was
    written by something else: every folder is read again and the index rebuilt. Returns the
    records and why the index was rebuilt, if it was."""
    index = Index(folder)
    stored = index.open() or {}
    unchanged = {rel for rel, sig in signatures.items() if stored.get(rel) == sig}
    texts, filtered = index.load(where) if unchanged else ({}, False)
    texts = texts or {}
    kept: dict[str, Record] = {}
    for rel in unchanged:
        if rel not in texts:
            continue
        record, why = _decoded(texts[rel], damage)
        if why is not None:  # a row with a valid signature but not a record nnlab stores
            index.problem = (
                f"{index.path}: the stored entry of {rel!r} was damaged ({why}); "
                "rebuilt from the folders"
            )
            kept, unchanged, filtered = {}, set(), False
            break
        kept[rel] = record
    out: dict[str, Record] = {}
    changed: list[tuple[str, str, Record]] = []
    for rel, sig in signatures.items():
        record = kept.get(rel)
        if record is not None and usable(record):
            out[rel] = record
            continue
        if record is None and filtered and rel in unchanged:
            continue  # its stored record cannot match
        record = read(folder / rel)
        if cacheable(record):
            changed.append((rel, sig, record))
        out[rel] = record
    gone = list(stored) if index.problem else [rel for rel in stored if rel not in signatures]
    index.store(changed, gone)
    return out, index.problem


def _decoded(text: Any, damage: Callable[[Record], str | None]) -> tuple[Any, str | None]:
    """A stored record and, when it is not one nnlab stores, what is wrong with it."""
    if not isinstance(text, str | bytes):
        return None, f"a record of SQLite type {type(text).__name__}, not JSON text"
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None, "not JSON"
    if not isinstance(record, dict):
        return None, "not a mapping"
    return record, damage(record)
