"""The local executor: up to ``workers`` worker processes on this machine — never more than
the jobs there are to run, nor than the cores this process may use — each limited to a fair
share of the CPU threads so that parallel jobs do not oversubscribe the cores."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import types
from collections.abc import Callable
from typing import Any

from nnlab.common.status import RunStatus
from nnlab.runfolder.environment import thread_share, usable_cores
from nnlab.sweeps.executors.base import Executor, Outcome, Task, capped, run_task

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # fmt: skip


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the sweep process dies, even by SIGKILL, so that a
    worker marks its run interrupted instead of running on unseen."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Stop:
    """A worker's SIGTERM handler (from the driver cancelling, or from Linux as the driver
    died): stop the run as Ctrl-C would, and remember to take no further task, even when
    the signal was held until a finished run had saved its files and that run completed."""

    asked = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.asked = True
        raise KeyboardInterrupt


def _worker(inbox: mp.Queue, outbox: mp.Queue, threads: int) -> None:
    for name in THREAD_VARIABLES:  # before NumPy or torch is imported in this process
        os.environ[name] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    _die_with_parent()
    while True:
        try:
            task = inbox.get()
        except (KeyboardInterrupt, EOFError, OSError):
            return
        if task is None:
            return
        task.threads = threads
        outcome = run_task(task)
        with contextlib.suppress(Exception):
            outbox.put(outcome)
        if stop.asked or outcome.status == RunStatus.INTERRUPTED:
            return


@contextlib.contextmanager
def _callers_script_unseen() -> Any:
    """While a worker process starts, hide the caller's ``__main__`` from multiprocessing:
    a spawned child otherwise runs the parent's script again (as ``__mp_main__``) before its
    task, and a user's script without an ``if __name__ == "__main__":`` guard — the README's
    Python example saved as a file — would train and start a sweep again in every worker.
    A worker needs nothing from the script: its target and tasks are nnlab's own."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


class LocalExecutor(Executor):
    """Up to ``workers`` processes on this machine (default: one per core), capped at the
    ``jobs`` there are to run and at the cores this process may use (``warn`` is told when
    more were asked for than the cores); each is pinned to ``cores // workers`` threads. A
    worker starts only when a task finds no idle one."""

    def __init__(
        self,
        workers: int | None = None,
        jobs: int | None = None,
        warn: Callable[[str], None] | None = None,
    ):
        cores = usable_cores()
        if workers is not None and workers > cores and warn is not None:
            warn(
                f"--jobs {workers} is more than the {cores} core{'s' * (cores != 1)} this "
                f"process may use; running at most {capped(workers, cores, jobs)} jobs at once"
            )
        self.slots = capped(workers or cores, cores, jobs)
        self.threads = thread_share(self.slots)  # the rule nnlab train follows with 1 slot
        self._ctx = mp.get_context("spawn")  # a clean interpreter: no inherited thread pools
        self._outbox = self._ctx.Queue()
        self._workers: list[dict[str, Any]] = []

    def _start_worker(self) -> dict[str, Any]:
        inbox = self._ctx.Queue()
        proc = self._ctx.Process(
            target=_worker, args=(inbox, self._outbox, self.threads), daemon=True
        )
        with _callers_script_unseen():
            proc.start()
        worker = {"proc": proc, "inbox": inbox, "task": None}
        self._workers.append(worker)
        return worker

    def submit(self, task: Task) -> None:
        idle = [w for w in self._workers if w["task"] is None and w["proc"].is_alive()]
        worker = idle[0] if idle else self._start_worker()
        worker["task"] = task
        worker["inbox"].put(task)

    def _collect(self, timeout: float) -> list[Outcome]:
        out = []
        try:
            out.append(self._outbox.get(timeout=timeout))
            while True:
                out.append(self._outbox.get_nowait())
        except queue.Empty:
            pass
        for outcome in out:
            for w in self._workers:
                task = w["task"]
                if task and (task.job_id, task.attempt) == (outcome.job_id, outcome.attempt):
                    w["task"] = None
        return out

    def wait(self, timeout: float) -> list[Outcome]:
        out = self._collect(timeout)
        for w in list(self._workers):
            if not w["proc"].is_alive():
                self._workers.remove(w)
                task = w["task"]
                # its outcome may still be in the pipe: look once more before calling it lost
                late = self._collect(0.2) if task else []
                out += late
                if task and not any(
                    o.job_id == task.job_id and o.attempt == task.attempt for o in out
                ):
                    out.append(
                        Outcome(
                            task.job_id,
                            task.attempt,
                            RunStatus.FAILED,
                            f"worker process died (exit code {w['proc'].exitcode})",
                        )
                    )
        return out

    def shutdown(self, cancel: bool = False) -> list[Outcome]:
        out: list[Outcome] = []
        for w in self._workers:
            if cancel and w["task"] is not None and w["proc"].is_alive():
                os.kill(w["proc"].pid, signal.SIGTERM)
            with contextlib.suppress(Exception):
                w["inbox"].put(None)
        for w in self._workers:
            w["proc"].join(timeout=30)
            if w["proc"].is_alive():
                w["proc"].kill()
                w["proc"].join(timeout=5)
        out += self._collect(0.1)
        self._workers = []
        return out
