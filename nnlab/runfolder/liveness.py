"""Whether a run or sweep marked ``running`` still has a live process behind it.

A status of ``running`` is written when the work starts and replaced when it ends, so a
process killed outright (SIGKILL, the OOM killer, a power cut) leaves it ``running`` for ever.
Three facts tell a live one from a dead one (docs/reliability.md, 'Liveness'):

- the process id and host (meta.json's ``pid`` and ``host``; for a sweep, the heartbeat's);
- on this host, whether that process exists (a zombie does not count);
- a heartbeat: the file ``heartbeat`` in the folder, whose modification time a thread of the
  running process renews every :data:`BEAT_SECONDS`, which works across hosts too. One older
  than :data:`STALE_SECONDS` means the process is gone (or stopped, or its pid was reused).

``running (dead?)`` is only shown (``nnlab runs``): the stored status never changes here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab.common.files import atomic_write_text
from nnlab.common.signals import HeldSignals
from nnlab.common.status import RunStatus
from nnlab.common.yamlread import read_file
from nnlab.errors import NnlabError
from nnlab.runfolder.types import Meta, SweepRecord

HEARTBEAT = "heartbeat"  # the file in a run or sweep folder
HEARTBEAT_BYTES = 2**16  # far above the pid and host it holds
BEAT_SECONDS = 5.0  # how often a running process renews it
STALE_SECONDS = 60.0  # a heartbeat older than this: the process is gone
DEAD = " (dead?)"  # what `nnlab runs` adds to a `running` whose process is gone


@dataclass(frozen=True)
class Owner:
    """The process a ``running`` folder names: its pid, its host, and the age of its last
    heartbeat in seconds (None: no heartbeat of that process was found)."""

    pid: int
    host: str
    beat_age: float | None

    def alive(self) -> bool | None:
        """True if the process lives, False if it is gone, None where nothing can tell (another
        host and no heartbeat: a run written before heartbeats existed)."""
        if self.beat_age is not None and self.beat_age > STALE_SECONDS:
            return False
        if self.host == socket.gethostname():
            return _pid_alive(self.pid)
        return True if self.beat_age is not None else None

    def __str__(self) -> str:
        beat = "" if self.beat_age is None else f", heartbeat {self.beat_age:.0f} s ago"
        return f"pid {self.pid} on host {self.host}{beat}"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS): the signal test is all there is
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def _read_heartbeat(folder: Path) -> tuple[dict[str, Any], float] | None:
    """The heartbeat file's record (pid, host) and its age in seconds, or None."""
    path = Path(folder) / HEARTBEAT
    try:
        record = json.loads(read_file(path, str(path), HEARTBEAT_BYTES).decode("utf-8"))
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError, NnlabError):  # a FIFO or device in its place: no heartbeat
        return None
    return (record, max(0.0, age)) if isinstance(record, dict) else None


def owner_of(pid: Any, host: Any, folder: Path) -> Owner | None:
    """The process behind a run or sweep in ``folder``: the ``pid`` and ``host`` its record
    (meta.json, or state.json for a sweep) names when it names one, else the heartbeat's;
    None when neither names one. A heartbeat left by another process (one that ran before a
    resume) does not count for this one."""
    beat = _read_heartbeat(folder)
    if not isinstance(pid, int):
        named = beat[0] if beat else {}
        pid, host = named.get("pid"), named.get("host")
    if not isinstance(pid, int) or pid <= 0 or not isinstance(host, str):
        return None  # (pid 0 or below would name a process group)
    age = beat[1] if beat and (beat[0].get("pid"), beat[0].get("host")) == (pid, host) else None
    return Owner(pid, host, age)


def shown_status(status: str, pid: Any, host: Any, folder: Path) -> str:
    """The status to show for a run or sweep in ``folder`` whose record (meta.json, or
    state.json) holds ``status``, ``pid`` and ``host``: the stored status, with ``(dead?)``
    added to a ``running`` whose process is gone."""
    if status != RunStatus.RUNNING:
        return status
    owner = owner_of(pid, host, folder)
    return status + DEAD if owner is not None and owner.alive() is False else status


def refuse_if_alive(record: Meta | SweepRecord, folder: Path, what: str) -> None:
    """NnlabError, naming the process, when ``record`` says ``running`` and its process lives:
    taking over its folder would make two processes write one run (or sweep)."""
    owner = (
        owner_of(record.pid, record.host, folder) if record.status == RunStatus.RUNNING else None
    )
    if owner is not None and owner.alive():
        raise NnlabError(
            f"{folder} is still running ({owner}); {what} only once that process has ended "
            "(stop it, or wait for it)"
        )


class Heartbeat:
    """While the ``with`` block runs, ``folder/heartbeat`` names this process and is renewed
    every :data:`BEAT_SECONDS` by a daemon thread (a touch: one system call, off the training
    loop's path); on the way out it is removed, as the folder's status then says the rest.
    Best effort: a disk that refuses the file leaves liveness to the pid alone."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / HEARTBEAT
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="nnlab-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        record = {"pid": os.getpid(), "host": socket.gethostname()}
        with contextlib.suppress(OSError):
            atomic_write_text(self.path, json.dumps(record) + "\n")
        try:
            with HeldSignals():  # Ctrl-C inside start() could leave a thread join() refuses
                self._thread.start()
        except BaseException:  # the signal, acted on once it started: no block, no beats
            self.__exit__()
            raise
        return self

    def _beat(self) -> None:
        while not self._stop.wait(BEAT_SECONDS):
            with contextlib.suppress(OSError):  # a folder removed mid-run is not recreated
                os.utime(self.path)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started (a signal may have come before that)
            self._thread.join()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


LOCK = "driver.lock"  # the file in a sweep folder that its one driver holds locked


class FolderLock:
    """One process at a time in a folder: an exclusive ``flock`` on ``folder/driver.lock``,
    which names the holder (pid, host). The kernel releases the lock when the process ends,
    however it ends (kill -9 included), so a stale lock recovers by itself; the file stays.
    A second taker gets NnlabError naming the holder. Where the file system cannot lock
    (no fcntl, a network mount without locks) the lock is skipped: the pid and heartbeat
    checks (:func:`refuse_if_alive`) remain."""

    def __init__(self, folder: Path, what: str = "resume it"):
        self.folder, self.path, self.what = Path(folder), Path(folder) / LOCK, what
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # not POSIX
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise NnlabError(
                f"{self.folder} is still running ({holder}); {self.what} only once that "
                "process has ended (stop it, or wait for it)"
            ) from None
        except OSError:  # no locks here: liveness falls back on pid and heartbeat
            os.close(fd)
            return self
        self._fd = fd
        return self

    def name_holder(self) -> None:
        """Write this process's pid and host into the lock file: done when the holder first
        writes to the folder, so that a resume refused before that changes no file."""
        if self._fd is None:
            return
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n"
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, record.encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the lock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_holder(fd: int, wait: float = 5.0) -> str:
    """Who holds the lock, as the lock file names it: 'pid N on host H'. A holder names
    itself once it has checked the folder, so a file that still names a process that is gone
    (or none) is read again for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            record = {}
        pid = record.get("pid") if isinstance(record, dict) else None
        if isinstance(pid, int) and pid > 0:
            owner = Owner(pid, str(record.get("host")), None)
            if owner.alive() is not False or time.monotonic() > deadline:
                return f"pid {pid} on host {owner.host}"
        elif time.monotonic() > deadline:
            return "another process holds its lock"
        time.sleep(0.1)
