"""The local executor: up to ``workers`` worker processes on this machine — never more than
the jobs there are to run, nor than the cores this process may use, nor, for jobs that run on
GPUs, than the GPUs it sees — each limited to a fair share of the CPU threads so that parallel
jobs do not oversubscribe the cores, and each given GPUs of its own when the jobs need them."""

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
from nnlab.errors import NnlabError
from nnlab.runfolder.environment import thread_share, usable_cores, visible_gpus
from nnlab.sweeps.executors.base import Executor, Outcome, Task, capped, run_task

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # fmt: skip


def plan_slots(
    asked: int | None,
    jobs: int | None,
    cores: int,
    gpus: int = 0,
    gpus_per_job: int = 0,
) -> tuple[int, str | None]:
    """How many jobs run at once, and the one-line note for a ``--jobs`` (``asked``) above
    what this machine holds: ``asked`` (default: the ``cores``), capped at the ``jobs`` there
    are to run, at the cores and — for jobs that each need ``gpus_per_job`` GPUs — at the
    ``gpus`` visible divided among them. Jobs that need GPUs where too few are visible are an
    error: each would fail to start."""
    gpu_slots = gpus // gpus_per_job if gpus_per_job else None
    if gpu_slots == 0:
        raise NnlabError(
            f"the sweep's jobs run on CUDA GPUs ({gpus_per_job} each: train.device is cuda) "
            f"but {gpus or 'no'} GPU{'s' * (gpus != 1)} {'is' if gpus == 1 else 'are'} "
            "visible here; use -s train.device=cpu (or auto)"
        )
    slots = capped(asked or cores, cores, gpu_slots, jobs)
    note = None
    gpus_bind = gpu_slots is not None and gpu_slots <= cores  # the tighter of the two limits
    if asked is not None and gpus_bind and asked > gpu_slots:
        each = "one per job" if gpus_per_job == 1 else f"{gpus_per_job} per job"
        note = (
            f"--jobs {asked} is more than the {gpus} GPU{'s' * (gpus != 1)} visible here "
            f"({each}); running at most {slots} job{'s' * (slots != 1)} at once"
        )
    elif asked is not None and asked > cores:
        note = (
            f"--jobs {asked} is more than the {cores} core{'s' * (cores != 1)} this "
            f"process may use; running at most {slots} jobs at once"
        )
    return slots, note


def gpu_groups(gpus: int, per_job: int, visible: str | None) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` of each GPU worker: the ``gpus`` devices this process
    sees — the entries of its own ``visible`` list (indices, UUIDs or MIG names) when set, else
    0 to gpus - 1 — ``per_job`` to a worker, in order, none shared."""
    ids = [v.strip() for v in visible.split(",")] if visible else [str(i) for i in range(gpus)]
    ids = ids[:gpus]
    return [",".join(ids[i : i + per_job]) for i in range(0, len(ids) - per_job + 1, per_job)]


def worker_variables(threads: int, gpus: str | None) -> dict[str, str]:
    """The environment a worker sets for itself before NumPy or PyTorch is imported: its
    thread share for every thread pool, and its own GPUs (``gpus``) when the jobs use them."""
    variables = {name: str(threads) for name in THREAD_VARIABLES}
    if gpus is not None:
        variables["CUDA_VISIBLE_DEVICES"] = gpus
    return variables


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


def _worker(inbox: mp.Queue, outbox: mp.Queue, threads: int, gpus: str | None) -> None:
    os.environ.update(worker_variables(threads, gpus))  # before NumPy or torch is imported
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
    ``jobs`` there are to run and at the cores this process may use; each is pinned to
    ``cores // workers`` threads. A worker starts only when a task finds no idle one.

    Jobs that each need ``gpus_per_job`` GPUs (:meth:`nnlab.models.Kind.resources`; the
    driver passes the most any job needs) run at most ``gpus // gpus_per_job`` at once, where
    ``gpus`` is how many this process sees (default: counted,
    :func:`~nnlab.runfolder.environment.visible_gpus`), and each worker gets GPUs of its own
    through ``CUDA_VISIBLE_DEVICES``, set before it imports PyTorch. ``warn`` is told when
    more jobs were asked for than the cores or GPUs hold."""

    def __init__(
        self,
        workers: int | None = None,
        jobs: int | None = None,
        warn: Callable[[str], None] | None = None,
        gpus_per_job: int = 0,
        gpus: int | None = None,
    ):
        if gpus_per_job and gpus is None:
            gpus = visible_gpus()
        gpus = gpus or 0
        self.slots, note = plan_slots(workers, jobs, usable_cores(), gpus, gpus_per_job)
        if note is not None and warn is not None:
            warn(note)
        self.threads = thread_share(self.slots)  # the rule nnlab train follows with 1 slot
        # each worker's CUDA_VISIBLE_DEVICES, taken when it starts and given back when it dies
        self.free_gpus: list[str] | None = (
            gpu_groups(gpus, gpus_per_job, os.environ.get("CUDA_VISIBLE_DEVICES"))
            if gpus_per_job
            else None
        )
        self._ctx = mp.get_context("spawn")  # a clean interpreter: no inherited thread pools
        self._outbox = self._ctx.Queue()
        self._workers: list[dict[str, Any]] = []

    def _start_worker(self) -> dict[str, Any]:
        gpus = None
        if self.free_gpus is not None:
            for w in list(self._workers):  # a worker that ended between tasks frees its GPUs
                if w["task"] is None and not w["proc"].is_alive():
                    self._remove(w)
            # never empty: the driver keeps fewer tasks than slots running, and slots are at
            # most the groups; every live worker without a task is idle and took this task
            gpus = self.free_gpus.pop(0)
        inbox = self._ctx.Queue()
        proc = self._ctx.Process(
            target=_worker, args=(inbox, self._outbox, self.threads, gpus), daemon=True
        )
        with _callers_script_unseen():
            proc.start()
        worker = {"proc": proc, "inbox": inbox, "task": None, "gpus": gpus}
        self._workers.append(worker)
        return worker

    def _remove(self, worker: dict[str, Any]) -> None:
        """Forget a worker whose process ended; its GPUs go back to the free ones."""
        self._workers.remove(worker)
        if worker["gpus"] is not None and self.free_gpus is not None:
            self.free_gpus.append(worker["gpus"])

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
                self._remove(w)
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
        for w in list(self._workers):
            self._remove(w)
        return out
