"""Where a sweep's jobs run. An executor takes tasks and reports their outcomes; the sweep driver
(nnlab.sweeps.driver) owns the state, the retries and the summary, so a new executor (a cluster,
say) only has to move tasks and outcomes (docs/design.md, 'Sweep folder').

The local executor keeps up to ``workers`` worker processes — never more than the jobs there are
to run, nor than the cores this process may use — each limited to a fair share of the CPU
threads so that parallel jobs do not oversubscribe the cores.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import traceback
import types
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnlab.common.status import RunStatus
from nnlab.runfolder.environment import thread_share, usable_cores, with_threads
from nnlab.runfolder.types import Summary

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # fmt: skip


@dataclass
class Task:
    """One attempt of one job: its resolved config and the new folder it must run in."""

    job_id: str
    attempt: int
    config: dict[str, Any]
    run_dir: str
    threads: int = 1
    # a search trial's job under a pruner: where and what to report (sweeps.pruning.reporter)
    report: dict[str, Any] | None = None


@dataclass
class Outcome:
    """How an attempt ended: a run status (completed, diverged, failed, interrupted)."""

    job_id: str
    attempt: int
    status: RunStatus
    error: str | None = None
    summary: Summary | None = None  # None: the run never ended (or never began)
    node: str | None = None  # where it ran, when the executor knows (a cluster node's id)


class Executor(ABC):
    """Runs tasks somewhere and reports their outcomes as they finish.

    The extension contract (like a Hydra launcher's): pass an instance as
    ``nnlab.sweep(..., executor=MyExecutor())``. The driver calls, from one thread:

    - ``__init__`` (yours): connect and check everything that can fail (a cluster that does not
      answer, a missing library) and raise :class:`nnlab.errors.NnlabError` with one line: the
      sweep folder is not touched yet, so no job is left marked running.
    - ``slots``: how many tasks may run at once, read before every submit; at least 1.
    - :meth:`submit`: start one task and return at once. ``task.run_dir`` is a new folder
      that must hold the attempt's run folder, on this machine, by the time its outcome is
      returned (run it there with :func:`run_task`, or copy the files back).
    - :meth:`wait`: block at most ``timeout`` seconds; return the outcome of every task that
      ended since the last call, each exactly once. A task must never be lost: one whose
      worker, process or node died comes back as a ``failed`` outcome (the driver retries it
      with ``--retries``).
    - :meth:`shutdown`: at the end, release the workers and return the outcomes that arrived
      meanwhile. On Ctrl-C or ``--fail-fast`` it is called with ``cancel`` first: stop the
      running tasks too (their runs end ``interrupted``); a task with no outcome by then is
      marked interrupted. It may be called again after that and must then do nothing.

    - :meth:`judge_pruning`: only for a search with a pruner, before the first submit. A
      task with ``task.report`` reports its search metric at every evaluation. By default
      its worker does so itself, through the study's journal file in the sweep folder, which
      needs this machine's file system; an executor whose workers cannot reach it overrides
      this method and relays each report to ``judge(trial, step, value)``, called on the
      driver's thread (from :meth:`wait`), which answers whether to prune.

    The driver never has more than ``slots`` tasks submitted and not yet reported.
    """

    slots: int  # how many tasks may run at once

    def judge_pruning(self, judge: Callable[[int, int, float], bool]) -> None:
        """Workers report to the journal file themselves: nothing to relay."""
        return None

    @abstractmethod
    def submit(self, task: Task) -> None:
        """Start a task without waiting for it; never more than ``slots`` at a time."""

    @abstractmethod
    def wait(self, timeout: float) -> list[Outcome]:
        """Outcomes of tasks that ended since the last call (empty after ``timeout`` seconds)."""

    @abstractmethod
    def shutdown(self, cancel: bool = False) -> list[Outcome]:
        """Stop the workers. With ``cancel``, running tasks are stopped (their runs end
        ``interrupted``); returns the outcomes that arrived meanwhile."""


def run_task(task: Task) -> Outcome:
    """Run one attempt in this process through the same path as ``nnlab train``."""
    from nnlab.errors import NnlabError
    from nnlab.experiment import RunInterrupted, train

    try:
        on_row = None
        if task.report is not None:
            from nnlab.sweeps.search.pruning import reporter

            on_row = reporter(task.report)
        config = with_threads(task.config, share=task.threads)
        run = train(config, run_dir=task.run_dir, on_row=on_row)
    except RunInterrupted as exc:  # its status: interrupted, or what it had finished with
        run = exc.run
        return Outcome(task.job_id, task.attempt, run.status, run.error, run.summary)
    except KeyboardInterrupt:  # stopped while its config or data loaded: no folder yet
        return Outcome(
            task.job_id, task.attempt, RunStatus.INTERRUPTED, "stopped before the run began"
        )
    except NnlabError as exc:
        return Outcome(task.job_id, task.attempt, RunStatus.FAILED, str(exc))
    except Exception as exc:  # a crash outside the run's own handling: report, don't die
        detail = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return Outcome(
            task.job_id, task.attempt, RunStatus.FAILED, f"{type(exc).__name__}: {detail}"
        )
    return Outcome(task.job_id, task.attempt, run.status, run.error, run.summary)


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


def capped(asked: int, *limits: int | None) -> int:
    """How many tasks to run at once: ``asked``, but at least 1 and at most each limit that is
    known (the jobs there are to run, the cores) — a slot beyond the jobs never runs anything,
    and a worker beyond the cores only costs memory (~170 MB a process) and threads."""
    return max(1, min(asked, *(limit for limit in limits if limit)))


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
