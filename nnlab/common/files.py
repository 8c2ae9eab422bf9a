"""Writing nnlab's files safely: one atomic-write helper for every file nnlab writes whole
(nnlab.runfolder.records reads them back).

A file is written to a temporary file in the same folder, flushed to disk (fsync) and renamed
over the target, so a crash or a full disk never leaves a half-written file behind: readers see
the old content or the new, never a mix (docs/run-folder.md, 'Run folder').
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def json_text(data: Any) -> str:
    """Indented JSON as nnlab writes it; NaN and infinity are refused (they are not JSON)."""
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write :func:`json_text` atomically."""
    atomic_write_text(path, json_text(data))


def overwrite_in_place(path: str | Path, data: bytes) -> bool:
    """Rewrite an existing file in place, without allocating: only where ``data`` fits in the
    blocks the file already holds (then a full disk cannot stop it); whether it did. Not
    atomic — a crash mid-write can leave a mix — so only for when an atomic write has
    already failed for space."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        if len(data) > os.fstat(fd).st_blocks * 512:
            return False
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def now() -> datetime:
    """The current local time, with its offset from UTC."""
    return datetime.now(timezone.utc).astimezone()


def now_iso() -> str:
    """:func:`now` as ISO 8601 text to the second, as meta.json and state.json record it."""
    return now().isoformat(timespec="seconds")
