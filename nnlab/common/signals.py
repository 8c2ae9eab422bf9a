"""Ctrl-C and SIGTERM held off while something must not be cut in half: a run folder being
written, a thread being started."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class HeldSignals:
    """Holds Ctrl-C and SIGTERM while the work in between must not be cut short. A signal in
    between is noted, and :meth:`release` hands it to the handler it was meant for, once the
    work is done. (Python runs signal handlers in the main thread only, so this holds whatever
    threads the libraries started; in any other thread it holds nothing — and nothing there
    is interrupted by a signal anyway.)"""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._old: dict[int, Any] = {}
        self._given_back: dict[int, Any] = {}  # what the last release() put back
        self._pending: int | None = None

    def hold(self) -> None:
        """Note the signals from now on instead of acting on them."""
        if self._old or threading.current_thread() is not threading.main_thread():
            return
        self._given_back = {}
        try:
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._note)
        except BaseException:  # a signal before the last was held: none stays held
            self.release()
            raise

    def _note(self, signum: int, frame: Any) -> None:
        if signum not in self._given_back:
            self._pending = signum
            return
        # released, but a signal cut release() short before this one's handler was back
        handler = self._given_back[signum]
        signal.signal(signum, handler)
        _act(signum, handler)

    def release(self) -> None:
        """Give the signals back to their handlers, and a noted one to its own."""
        old, self._old = self._old, {}
        self._given_back = old
        for sig, handler in old.items():
            signal.signal(sig, handler)
        signum, self._pending = self._pending, None
        if signum is not None:
            _act(signum, old.get(signum))

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Let the signals through inside (the training loop), holding them again after."""
        try:
            self.release()
            yield
        finally:
            self.hold()

    def __enter__(self) -> HeldSignals:
        self.hold()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _act(signum: int, handler: Any) -> None:
    """Do what ``handler``, a signal's handler, does with it."""
    if handler == signal.SIG_IGN:
        return
    if callable(handler):
        handler(signum, None)  # Python's Ctrl-C handler, or the CLI's SIGTERM one
    else:
        signal.raise_signal(signum)  # the default action
