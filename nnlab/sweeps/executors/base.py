"""What an executor is: the task it is given, the outcome it reports, the contract it
implements, and :func:`run_task`, which runs a task in the calling process."""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnlab.common.status import RunStatus
from nnlab.errors import NnlabError
from nnlab.runfolder.environment import with_threads
from nnlab.runfolder.types import Summary


@dataclass
class Task:
    """One attempt of one job: its resolved config and the new folder it must run in."""

    job_id: str
    attempt: int
    config: dict[str, Any]
    run_dir: str
    threads: int = 1
    # a search trial's job under a pruner: where and what to report (sweeps.search.pruning.reporter)
    report: dict[str, Any] | None = None
    # the runs folder to take a completed run with the same fingerprint from (None: train)
    reuse_from: str | None = None


@dataclass
class Outcome:
    """How an attempt ended: a run status (completed, diverged, failed, interrupted)."""

    job_id: str
    attempt: int
    status: RunStatus
    error: str | None = None
    summary: Summary | None = None  # None: the run never ended (or never began)
    node: str | None = None  # where it ran, when the executor knows (a cluster node's id)
    reused: str | None = None  # the completed run its folder was copied from, if it was


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
    from nnlab.experiment import RunInterrupted, train

    try:
        on_row = None
        if task.report is not None:
            from nnlab.sweeps.search.pruning import reporter

            on_row = reporter(task.report)
        config = with_threads(task.config, share=task.threads)
        reuse = task.reuse_from if task.report is None else None  # a pruner needs the rows
        run = train(config, run_dir=task.run_dir, on_row=on_row, reuse=reuse or False)
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
    reused = str(run.reused_from) if run.reused_from else None
    return Outcome(task.job_id, task.attempt, run.status, run.error, run.summary, reused=reused)


def capped(asked: int, *limits: int | None) -> int:
    """How many tasks to run at once: ``asked``, but at least 1 and at most each limit that is
    known (the jobs there are to run, the cores) — a slot beyond the jobs never runs anything,
    and a worker beyond the cores only costs memory (~170 MB a process) and threads."""
    return max(1, min(asked, *(limit for limit in limits if limit)))
