"""The scheduler: feeds a sweep's jobs to an executor and records every outcome in the
sweep's state (retries, --fail-fast, Ctrl-C)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from nnlab.common.status import JobStatus, RunStatus
from nnlab.errors import NnlabError
from nnlab.runfolder.runs import result_row
from nnlab.runfolder.types import job_name, stayed_at_chance
from nnlab.sweeps.executors import Executor, Outcome, Task
from nnlab.sweeps.search.objectives import cost_of
from nnlab.sweeps.spec import Job, SweepSpec
from nnlab.sweeps.state import DONE, JobEntry, SweepState

Progress = Callable[..., None]
OnJob = Callable[[str, dict[str, Any]], None]


class Scheduler:
    """Feeds a sweep's jobs to an executor, at most ``executor.slots`` at a time, and records
    every outcome in the state: a failed job goes back in the queue while it has retries left;
    with ``fail_fast`` a failure without retries left stops the sweep, running jobs marked
    interrupted; Ctrl-C cancels what runs and marks it interrupted too."""

    def __init__(
        self,
        sweep: SweepSpec,
        state: SweepState,
        folder: Path,
        executor: Executor,
        todo: list[Job],
        fail_fast: bool = False,
        retries: int = 0,
        progress: Progress | None = None,
        on_job: OnJob | None = None,
        source=None,
        reuse: bool = True,
    ):
        self.state, self.folder, self.executor = state, folder, executor
        self.sweep, self.source = sweep, source  # source: a search's TrialSource
        self.fail_fast, self.retries = fail_fast, retries
        self.progress, self.on_job = progress, on_job
        # reuse: completed runs with a job's fingerprint under the runs folder holding the sweep
        self.reuse_from = str(folder.resolve().parent) if reuse else None
        self.by_id = {j.id: j for j in sweep.jobs}
        self.total = len(sweep.jobs)
        if source is not None:
            self.total = sweep.search.planned_jobs(sweep.seeds)
        self.queue: list[Job] = list(todo)
        self.running: set[str] = set()
        self.tries: dict[str, int] = {}  # attempts made by this scheduler, per job
        self.stop = False  # --fail-fast: start nothing more

    def report(self) -> None:
        if self.progress is None:
            return
        c = self.state.counts()
        self.progress(
            sum(c[s] for s in (*DONE, JobStatus.FAILED)),
            self.total,
            desc="jobs",
            unit="job",
            postfix=f"{c[JobStatus.COMPLETED]} done, {c[JobStatus.PRUNED]} pruned, "
            f"{c[JobStatus.FAILED]} failed, {c[JobStatus.DIVERGED]} diverged, "
            f"{len(self.running)} running",
        )

    def start(self, job: Job) -> None:
        """Record a new attempt of ``job`` as running and hand it to the executor."""
        attempt = self.state.jobs[job.id].attempts + 1
        run_rel = f"jobs/{job.id}/attempt-{attempt}"
        self.state.update_job(
            job.id, status=JobStatus.RUNNING, attempts=attempt, run=run_rel, error=None
        )
        self.tries[job.id] = self.tries.get(job.id, 0) + 1
        self.running.add(job.id)
        task = Task(job.id, attempt, self._run_config(job), str(self.folder / run_rel))
        task.reuse_from = self.reuse_from
        if self.source is not None:
            task.report = self.source.report_for(job.id)
        self.executor.submit(task)

    def _run_config(self, job: Job) -> dict[str, Any]:
        """The config the job's run gets: its own, named after the sweep and the job (the
        titles of its figures, its name in `nnlab runs`), unless the job sets ``name``."""
        if "name" in job.overrides:
            return job.config
        return {**job.config, "name": job_name(self.sweep.name, job.id)}

    def finish(self, outcome: Outcome) -> None:
        """Record how an attempt ended; queue a retry, or stop for --fail-fast."""
        job_id = outcome.job_id
        self.running.discard(job_id)
        entry = self.state.jobs[job_id]
        made = entry.run and (self.folder / entry.run).is_dir()  # bad data fails before
        self.state.update_job(
            job_id,
            node=outcome.node,
            status=JobStatus(outcome.status),
            error=outcome.error,
            final=result_row(outcome.summary),
            did_not_learn=stayed_at_chance(outcome.summary),
            run=entry.run if made else None,
            reused=outcome.reused,
            **self._cost(outcome),
        )
        if self.on_job is not None:
            self.on_job(job_id, entry.to_json())
        if outcome.status == RunStatus.FAILED:
            if self.tries[job_id] <= self.retries:
                self.queue.append(self.by_id[job_id])
                return
            if self.fail_fast:
                self.stop = True
        if self.source is not None:
            self.source.ended(job_id)

    def _cost(self, outcome: Outcome) -> dict[str, Any]:
        """A multi-objective search's job records its run's size and time (``cost``: the
        objectives that are not metric rows); other sweeps' entries are as they were."""
        search = self.sweep.search
        if search is None or not search.objectives:
            return {}
        return {"cost": cost_of(outcome.summary)}

    def _refill(self) -> None:
        """A search: ask for the next trial's jobs when the queue is empty."""
        if self.source is not None and not self.queue and not self.stop and self.source.more():
            for job in self.source.next_jobs():
                if job.id in self.state.jobs:  # never write over a recorded job's result
                    raise NnlabError(
                        f"{self.folder}: the study handed out {job.id} again, which state.json "
                        "already records; the search journal does not match state.json"
                    )
                self.sweep.jobs.append(job)
                self.by_id[job.id] = job
                self.state.jobs[job.id] = JobEntry(job.overrides)
                self.queue.append(job)
            self.state.save()

    def _finish_all(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.finish(outcome)

    def _interrupt_running(self, error: str) -> None:
        for job_id in list(self.running):
            self.state.update_job(job_id, status=JobStatus.INTERRUPTED, error=error)
            self.running.discard(job_id)

    def run(self) -> bool:
        """Run the queue to the end; True if interrupted (Ctrl-C)."""
        executor = self.executor
        self.report()
        try:
            self._refill()
            while (self.queue and not self.stop) or self.running:
                while self.queue and not self.stop and len(self.running) < executor.slots:
                    self.start(self.queue.pop(0))
                    self._refill()
                self._finish_all(executor.wait(timeout=0.5))
                self._refill()
                self.report()
                if self.stop and self.running:
                    self._finish_all(executor.shutdown(cancel=True))
                    self._interrupt_running("stopped by --fail-fast")
            self._finish_all(executor.shutdown())
            return False
        except KeyboardInterrupt:
            self._finish_all(executor.shutdown(cancel=True))
            self._interrupt_running("interrupted by the user")
            return True
        except BaseException:  # an error: stop the workers; the driver marks the sweep
            with contextlib.suppress(Exception):
                executor.shutdown(cancel=True)
            raise


# -- the entry point -----------------------------------------------------------------------------
