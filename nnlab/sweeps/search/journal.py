"""The Optuna storage over a sweep folder's journal file, as every process of a search opens
it (the driver, and each local worker that reports to the pruner)."""

from __future__ import annotations

import threading
from pathlib import Path

from nnlab.common.signals import HeldSignals


def journal_storage(path: Path):
    """Optuna's JournalStorage on the file ``path``, its lock taken with signals held."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    class Lock(JournalFileSymlinkLock):
        """Optuna's lock of the journal, with Ctrl-C and SIGTERM held from the moment it is
        asked for until it is given back. Optuna answers an interrupt that lands as it takes
        the lock by releasing the lock, which it may not hold: that raises RuntimeError("did
        not possess lock") in the interrupt's place — a sweep's cancelled trial then ended
        ``failed``, not ``interrupted`` — or takes away another process's lock. Held, the
        signal acts once the write is done: a write takes milliseconds, but waiting for a lock
        another process holds is held too — up to Optuna's grace period (30 s without a
        write) when that process died holding it."""

        _held = threading.local()  # per thread: the signals held while it has the lock

        def acquire(self) -> bool:
            held = HeldSignals()
            held.hold()
            try:
                taken = super().acquire()  # may release() a stale lock on the way
            except BaseException:
                held.release()
                raise
            self._held.signals = held
            return taken

        def release(self) -> None:
            held, self._held.signals = getattr(self._held, "signals", None), None
            try:
                super().release()
            finally:
                if held is not None:  # the lock was ours (not a stale one taken away)
                    held.release()

    return JournalStorage(JournalFileBackend(str(path), lock_obj=Lock(str(path))))
