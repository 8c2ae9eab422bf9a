"""Sweeps on a Ray cluster: each job is a Ray task; no shared filesystem is assumed.

A task runs the job in a temporary folder on whichever node Ray picks, through the same code as
`nnlab train`, and returns the run folder's files; the driver writes them under the sweep
folder. A worker process or node that dies mid-task surfaces as a failed attempt, which the
sweep driver retries (``--retries``) like any other failure. Ray is imported here only, so
importing nnlab or running any other command never imports it.

A pruned search's trials report their intermediate values through a small Ray actor, the
relay: a task's report waits at the relay while the driver, which holds the study's journal
file, reports the value and answers whether to prune. The decisions are the local executor's
(the same study, the same pruner), and the answer arrives within milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnlab.common.files import atomic_write_bytes
from nnlab.common.status import RunStatus
from nnlab.errors import NnlabError
from nnlab.models import kind_of
from nnlab.sweeps.executors.base import Executor, Outcome, Task, capped, run_task

CONNECT_TIMEOUT = 10.0  # seconds for the address check; ray.init itself follows
ANSWER_TIMEOUT = 120.0  # seconds a task waits for the driver's pruning answer before going on


class Relay:
    """The Ray actor between trials and the driver: ``ask`` (from a task) queues a report and
    waits for its answer; ``reports`` (from the driver) waits for reports and takes them;
    ``answer`` hands the driver's decisions back to the waiting tasks."""

    def __init__(self) -> None:
        self._reports: list[tuple[int, int, int, float]] = []
        self._waiting: dict[int, asyncio.Future] = {}
        self._arrived = asyncio.Event()
        self._next = 0

    async def ask(self, trial: int, step: int, value: float) -> bool:
        key, self._next = self._next, self._next + 1
        future = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        self._reports.append((key, trial, step, value))
        self._arrived.set()
        return await future

    async def reports(self) -> list[tuple[int, int, int, float]]:
        await self._arrived.wait()
        self._arrived.clear()
        out, self._reports = self._reports, []
        return out

    async def answer(self, answers: list[tuple[int, bool]]) -> None:
        for key, prune in answers:
            future = self._waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(prune)


class _Ask:
    """A task's way to the driver's pruning decision: ``(trial, step, value) -> prune?``. If
    no answer comes in time (a driver gone), the trial goes on unpruned."""

    def __init__(self, relay: Any):
        self.relay = relay

    def __call__(self, trial: int, step: int, value: float) -> bool:
        import ray

        ref = self.relay.ask.remote(trial, step, float(value))
        try:
            return bool(ray.get(ref, timeout=ANSWER_TIMEOUT))
        except ray.exceptions.GetTimeoutError:
            return False


def _remote_run(task: Task, threads: int) -> tuple[Outcome, dict[str, bytes]]:
    """On a worker: run the attempt in a temporary folder, return its outcome and files."""
    import ray

    task.threads = threads
    with tempfile.TemporaryDirectory(prefix="nnlab-") as tmp:
        local = Task(
            task.job_id, task.attempt, task.config, str(Path(tmp) / "run"), threads, task.report
        )
        outcome = run_task(local)  # train.threads: the task's CPUs
        outcome.node = ray.get_runtime_context().get_node_id()
        root = Path(local.run_dir)
        files = (
            {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
            if root.is_dir()
            else {}
        )
    return outcome, files


def _check_reachable(address: str) -> None:
    """Fail within seconds, with a clear message, when host:port does not answer."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise NnlabError(f"--address {address!r} is not auto, host:port or ray://host:port")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise NnlabError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; "
            "is `ray start --head` running there?"
        ) from None


class RayExecutor(Executor):
    """Jobs as Ray tasks of ``cpus_per_job`` CPUs (and the GPUs a job's model kind asks for,
    :meth:`nnlab.models.Kind.resources`: one for a DCN whose device is cuda).

    At most ``workers`` tasks run at once (default: as many as the cluster's CPUs hold), and
    never more than the ``jobs`` there are to run. Without an address, a local Ray instance is
    started for the sweep and stopped after it.
    """

    def __init__(
        self,
        address: str | None = None,
        cpus_per_job: int = 1,
        workers: int | None = None,
        jobs: int | None = None,
    ):
        try:
            import ray
        except ImportError:
            raise NnlabError("the ray executor needs Ray: pip install 'nnlab[ray]'") from None
        self.ray = ray
        if address is not None:
            _check_reachable(address)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            ray.init(
                address=address,
                logging_level="ERROR",
                log_to_driver=False,
                include_dashboard=False if address is None else None,
                ignore_reinit_error=True,
            )
        except Exception as exc:  # ConnectionError, RuntimeError, ...: one clear line
            where = address or "a new local instance"
            reason = " ".join(str(exc).split())[:300]
            raise NnlabError(f"cannot connect to the Ray cluster at {where}: {reason}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.cpus_per_job = cpus_per_job
        self.slots = capped(workers or cpus // cpus_per_job, jobs)
        self._remote = ray.remote(_remote_run)
        self._running: dict[Any, Task] = {}
        self._judge: Callable[[int, int, float], bool] | None = None
        self._relay: Any = None
        self._reports: Any = None  # the pending relay.reports() call

    def judge_pruning(self, judge: Callable[[int, int, float], bool]) -> None:
        """Trials report through the relay actor; ``judge`` decides on the driver."""
        self._judge = judge
        self._relay = self.ray.remote(num_cpus=0)(Relay).remote()
        self._reports = self._relay.reports.remote()

    def submit(self, task: Task) -> None:
        if task.report is not None and self._relay is not None:
            task.report = {**task.report, "ask": _Ask(self._relay)}
        gpus = kind_of(task.config).resources(task.config).get("gpus", 0)
        ref = self._remote.options(num_cpus=self.cpus_per_job, num_gpus=gpus, max_retries=0).remote(
            task, self.cpus_per_job
        )
        self._running[ref] = task

    def _finish(self, ref: Any) -> Outcome:
        task = self._running.pop(ref)
        try:
            outcome, files = self.ray.get(ref)
        except Exception as exc:  # the worker or its node died, or the task was cancelled
            cancelled = isinstance(exc, self.ray.exceptions.TaskCancelledError)
            reason = " ".join(str(exc).split())[:300]
            return Outcome(
                task.job_id,
                task.attempt,
                RunStatus.INTERRUPTED if cancelled else RunStatus.FAILED,
                f"the Ray task ended: {type(exc).__name__}: {reason}",
            )
        root = Path(task.run_dir)
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
        return outcome

    def _answer_reports(self) -> None:
        """Judge every report the relay holds and send the answers back."""
        reports = self.ray.get(self._reports)
        self._reports = self._relay.reports.remote()
        answers = [(key, self._judge(trial, step, value)) for key, trial, step, value in reports]
        self._relay.answer.remote(answers)

    def wait(self, timeout: float) -> list[Outcome]:
        if not self._running:
            return []
        refs = list(self._running) + ([self._reports] if self._relay is not None else [])
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
        if self._relay is not None and self._reports in ready:
            self._answer_reports()
            ready.remove(refs[-1])
        if ready:
            tasks = list(self._running)
            more, _ = self.ray.wait(tasks, num_returns=len(tasks), timeout=0)
            ready = list(dict.fromkeys(ready + more))
        return [self._finish(ref) for ref in ready]

    def shutdown(self, cancel: bool = False) -> list[Outcome]:
        out = []
        if cancel:
            for ref in list(self._running):
                self.ray.cancel(ref, force=True)
            out = [self._finish(ref) for ref in list(self._running)]
        self.ray.shutdown()
        return out
