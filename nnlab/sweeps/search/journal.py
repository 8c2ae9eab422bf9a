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
        asked for until it is given back. Optuna answers an interrupt while it waits for the
        lock by releasing the lock, which it does not hold: that raises RuntimeError("did not
        possess lock") in the interrupt's place — a sweep's cancelled trial then ended
        ``failed``, not ``interrupted`` — or takes away another process's lock. Held, the
        signal acts once the write is done (a write is milliseconds; the wait is bounded by
        Optuna's grace period for a stale lock)."""

        _held = threading.local()  # the signals are held by the thread that took the lock

        def acquire(self) -> bool:
            held = self._held.signals = HeldSignals()
            held.hold()
            try:
                return super().acquire()
            except BaseException:
                held.release()
                raise

        def release(self) -> None:
            try:
                super().release()
            finally:
                self._held.signals.release()

    return JournalStorage(JournalFileBackend(str(path), lock_obj=Lock(str(path))))
