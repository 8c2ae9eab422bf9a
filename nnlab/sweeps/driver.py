"""Running a sweep: the sweep folder, resume, and the scheduler that feeds jobs to an executor
(docs/design.md, 'Sweep folder' and 'Statuses').

Each job is a normal run folder made by the same code as ``nnlab train``, under
``jobs/<id>/attempt-<k>/``; state.json records every job's status and attempts at each change,
so a sweep killed at any moment resumes where it stopped, and no attempt folder is ever reused.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nnlab.common.files import atomic_write_text
from nnlab.common.status import JobStatus, RunStatus, SweepStatus
from nnlab.config.options import flatten, load_config
from nnlab.errors import NnlabError, RunStorageError
from nnlab.runfolder.liveness import FolderLock, Heartbeat, refuse_if_alive
from nnlab.runfolder.records import RecordError, key_text, read_sweep_record, resolved_config
from nnlab.runfolder.runs import RUNS_DIR, create_run_dir, load_run, result_row
from nnlab.runfolder.types import JobEntry, Summary
from nnlab.sweeps.executors import Executor, LocalExecutor, Outcome, Task
from nnlab.sweeps.spec import Job, SweepSpec, load_sweep
from nnlab.sweeps.state import DONE, SweepState
from nnlab.sweeps.summary import write_summary

if TYPE_CHECKING:
    from nnlab.sweeps.search import SearchSpec

Progress = Callable[..., None]
OnJob = Callable[[str, dict[str, Any]], None]
Warn = Callable[[str], None]


@dataclass
class Sweep:
    """A sweep folder and what happened in it (``state`` in state.json's shape)."""

    path: Path
    state: dict[str, Any]
    tables: list[str] = field(default_factory=list)  # markdown, one per table

    @property
    def status(self) -> str:
        """completed, or failed when a job failed (interrupted sweeps raise instead)."""
        return self.state["status"]

    @property
    def failed(self) -> dict[str, str]:
        """Job id -> error, for every job that failed: empty when the sweep completed."""
        return {
            k: j.get("error") or ""
            for k, j in self.state["jobs"].items()
            if j["status"] == JobStatus.FAILED
        }


class SweepStopped(NnlabError):
    """An unexpected error ended a sweep; state.json marks it failed, with the error."""

    exit_code = 1


class SweepInterrupted(KeyboardInterrupt):
    def __init__(self, sweep: Sweep):
        super().__init__(f"sweep interrupted: {sweep.path}")
        self.sweep = sweep


# -- resume ------------------------------------------------------------------------------------


def _key_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The dotted keys that differ between two nested mappings: 'k 1 -> 2, ...' (six at most)."""
    a, b = flatten(old), flatten(new)
    keys = sorted(k for k in set(a) | set(b) if k not in a or k not in b or a[k] != b[k])

    def shown(side: dict[str, Any], key: str) -> str:
        return repr(side[key]) if key in side else "(none)"

    return ", ".join(f"{k} {shown(a, k)} -> {shown(b, k)}" for k in keys[:6])


def _describe_change(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    if old.get("base_config") != new.get("base_config"):
        changes.append(
            "the base config changed: " + _key_changes(old["base_config"], new["base_config"])
        )
    old_jobs, new_jobs = old.get("jobs", {}), new.get("jobs", {})
    added, removed = sorted(set(new_jobs) - set(old_jobs)), sorted(set(old_jobs) - set(new_jobs))
    if added:
        changes.append(f"{len(added)} new jobs ({', '.join(added[:3])}...)")
    if removed:
        changes.append(f"{len(removed)} jobs gone ({', '.join(removed[:3])}...)")
    if old.get("sweep", {}).get("table") != new.get("sweep", {}).get("table"):
        changes.append("the tables changed")
    before, after = old.get("sweep", {}).get("search"), new.get("sweep", {}).get("search")
    if before != after:  # a study's trials were sampled from the space it recorded
        changes.append("the search changed: " + _key_changes(before or {}, after or {}))
    return changes


def _adopt_finished_attempt(folder: Path, entry: JobEntry) -> None:
    """A job marked running when the sweep died may have finished on its own: take its result
    from the attempt's folder instead of running it again."""
    if entry.status != JobStatus.RUNNING or not entry.run:
        return
    try:
        run = load_run(folder / entry.run)
    except NnlabError:
        entry.update(status=JobStatus.INTERRUPTED)
        return
    if run.status in DONE:
        entry.update(
            status=JobStatus(run.status),
            error=run.error,
            final=result_row(run.summary),
            did_not_learn=_did_not_learn(run.summary),
        )
    else:
        entry.update(
            status=JobStatus.INTERRUPTED, error="the sweep process stopped during this job"
        )


def _did_not_learn(summary: Summary | None) -> bool:
    return summary is not None and summary.did_not_learn is True


# search.trial_job_id's and search.confirm_job_id's forms
TRIAL_JOB_ID = re.compile(r"trial-\d+(,seed=\d+)?|confirm-\d+,seed=\d+")


def open_sweep_folder(folder: Path) -> tuple[dict[str, Any], SweepSpec, SweepState]:
    """A sweep folder read back from its sweep.yaml and state.json alone (the sweep file and
    its base config may have moved or changed since): the sweep.yaml record, the sweep and
    its state. Every config in it is validated; RecordError names the file and field."""
    saved = read_sweep_record(folder)
    state = SweepState.load(folder)
    path, spec = folder / "sweep.yaml", saved["sweep"]
    base = resolved_config(path, "base_config", saved["base_config"])
    sweep = SweepSpec(
        spec["name"],
        Path(spec["base"]),
        spec["overrides"],
        spec["grid"],
        spec["variants"],
        spec["seeds"],
        spec["table"],
        base,
    )
    if spec.get("search"):  # a search's jobs are its trials so far, in state.json
        sweep.search = _recorded_search(path, spec["search"], base)
        for job_id in state.jobs:
            if not TRIAL_JOB_ID.fullmatch(job_id):
                raise RecordError(f"{state.path}: jobs[{key_text(job_id)}] is not a trial's job id")
        sweep.jobs = [
            _recorded_job(state.path, f"jobs[{key_text(k)}].overrides", k, e.overrides, base)
            for k, e in state.jobs.items()
        ]
    else:
        for job_id in saved["jobs"]:
            if job_id not in state.jobs:
                raise RecordError(
                    f"{state.path}: jobs has no entry for {key_text(job_id)}, a job of sweep.yaml"
                )
        sweep.jobs = [
            _recorded_job(path, f"jobs[{key_text(k)}]", k, overrides, base)
            for k, overrides in saved["jobs"].items()
        ]
    return saved, sweep, state


def _recorded_job(
    path: Path, where: str, job_id: str, overrides: dict[str, Any], base: dict[str, Any]
) -> Job:
    """A job as a sweep folder recorded it, its config validated (naming file and field)."""
    return Job(job_id, overrides, resolved_config(path, where, base, overrides))


def _recorded_search(path: Path, search: dict[str, Any], base: dict[str, Any]) -> SearchSpec:
    """The search sweep.yaml recorded, validated as the sweep file's was (its keys are checked
    by the base config accepting each value)."""
    from nnlab.sweeps.search import parse_search

    raw = {k: v for k, v in search.items() if k not in ("params", "pruner")}
    try:
        return parse_search(
            raw, search.get("params"), path, base, lambda key, where: key, search.get("pruner")
        )
    except NnlabError as exc:
        raise RecordError(str(exc)) from None


def load_sweep_folder(folder: Path) -> tuple[SweepSpec, SweepState]:
    """A sweep folder's sweep and state, read back (:func:`open_sweep_folder`)."""
    _, sweep, state = open_sweep_folder(folder)
    return sweep, state


# -- scheduling --------------------------------------------------------------------------------


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
    ):
        self.state, self.folder, self.executor = state, folder, executor
        self.sweep, self.source = sweep, source  # source: a search's TrialSource
        self.fail_fast, self.retries = fail_fast, retries
        self.progress, self.on_job = progress, on_job
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
        task = Task(job.id, attempt, job.config, str(self.folder / run_rel))
        if self.source is not None:
            task.report = self.source.report_for(job.id)
        self.executor.submit(task)

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
            did_not_learn=_did_not_learn(outcome.summary),
            run=entry.run if made else None,
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


def make_executor(
    executor: Executor | str,
    jobs: int | None,
    address: str | None,
    cpus_per_job: int,
    to_run: int | None = None,
    warn: Warn | None = None,
) -> Executor:
    """The executor a sweep runs on: an Executor passes through; "ray" connects to a cluster
    (``address``); "local" keeps ``jobs`` worker processes (the CLI's --jobs; default one per
    core). Either runs at most ``to_run`` tasks at once, the jobs there are to run."""
    if isinstance(executor, Executor):
        return executor
    if executor == "ray":
        from nnlab.sweeps.executors.ray import RayExecutor

        return RayExecutor(address, cpus_per_job, jobs, to_run)
    if address is not None:
        raise NnlabError("--address names a Ray cluster: use it with --executor ray")
    return LocalExecutor(jobs, to_run, warn)


def _jobs_to_run(sweep: SweepSpec, state: SweepState | None = None) -> int:
    """How many jobs are left to run: a grid's jobs not done, a search's trials × seeds (and
    confirmation jobs) less the jobs done (``state``: on a resume)."""
    if sweep.search is None:
        return len(sweep.jobs if state is None else _todo(sweep, state))
    done = 0 if state is None else sum(e.status in DONE for e in state.jobs.values())
    return sweep.search.planned_jobs(sweep.seeds) - done


def _job(sweep: SweepSpec, job_id: str, overrides: dict[str, Any]) -> Job:
    """A search's job: the base config with the trial's parameters (and seed)."""
    return Job(
        job_id, overrides, load_config(sweep.base_path, {**sweep.base_overrides, **overrides})
    )


def _todo(sweep: SweepSpec, state: SweepState) -> list[Job]:
    return [j for j in sweep.jobs if state.jobs[j.id].status not in DONE]


def run_sweep(
    sweep_file: str | Path | None = None,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    runs_dir: str | Path = RUNS_DIR,
    jobs: int | None = None,
    executor: Executor | str = "local",
    resume: str | Path | None = None,
    force: bool = False,
    fail_fast: bool = False,
    retries: int = 0,
    progress: Progress | None = None,
    on_job: OnJob | None = None,
    address: str | None = None,
    cpus_per_job: int = 1,
    warn: Warn | None = None,
) -> Sweep:
    """Run (or resume) a sweep and write its tables and figures.

    Returns the Sweep; raises :class:`SweepInterrupted` on Ctrl-C after marking running jobs
    interrupted. ``progress(done, total, desc=..., unit="job", postfix=...)`` follows the jobs;
    ``on_job(job_id, state_entry)`` is called as each attempt ends, with the job's state.json
    entry (a dict). ``jobs`` is how many run at once (default: one per core, or what the
    cluster holds). ``executor`` is "local", "ray" (``address`` names the cluster; each job
    asks for ``cpus_per_job`` CPUs) or an :class:`~nnlab.sweeps.executors.Executor`; it is set
    up before the sweep folder is touched, so a cluster that cannot be reached leaves no job
    marked running. Never more run at once than there are jobs left, nor, locally, than the
    cores; ``warn(message)`` is told when ``jobs`` asked for more than the cores.
    """
    with contextlib.ExitStack() as held:  # the folder's lock, released on the way out
        return _run_sweep(
            sweep_file, overrides, runs_dir, jobs, executor, resume, force, fail_fast,
            retries, progress, on_job, address, cpus_per_job, warn, held,
        )  # fmt: skip


def _run_sweep(
    sweep_file, overrides, runs_dir, jobs, executor, resume, force, fail_fast, retries,
    progress, on_job, address, cpus_per_job, warn, held: contextlib.ExitStack,
) -> Sweep:  # fmt: skip
    """:func:`run_sweep`, the folder's lock held in ``held``."""
    if resume is not None:
        folder = Path(resume)
        lock = FolderLock(folder)
        if (folder / "state.json").is_file():  # one driver per sweep folder: wait for none
            held.enter_context(lock)
        saved, recorded, state = open_sweep_folder(folder)
        # the recorded base as today's nnlab resolves it: a key added since (train.threads)
        # takes its default on both sides instead of reading as a change
        saved = {**saved, "base_config": recorded.base_config}
        refuse_if_alive(state, folder, "resume it")
        if sweep_file is None:
            sweep_file = saved["sweep"]["file"]
            overrides = overrides or saved["sweep"]["overrides"]
        sweep = load_sweep(sweep_file, overrides)
        changes = _describe_change(saved, sweep.resolved())
        if changes and not force:
            raise NnlabError(
                f"{folder}: the sweep changed since it started ("
                + "; ".join(changes)
                + "); use --force to resume anyway"
            )
        if sweep.search is not None:  # its jobs so far are the trials in state.json
            from nnlab.sweeps.search import JOURNAL, repair_journal

            repair_journal(folder / JOURNAL)  # a damaged study is refused before any write
            sweep.jobs = [_job(sweep, k, e.overrides) for k, e in state.jobs.items()]
        for job in sweep.jobs:
            entry = state.jobs.setdefault(job.id, JobEntry(job.overrides))
            _adopt_finished_attempt(folder, entry)
        if state.status == SweepStatus.COMPLETED and _jobs_to_run(sweep, state) <= 0:
            if warn is not None:  # and the folder is left as it was: its times too
                warn(f"{folder}: nothing to resume: the sweep completed ({len(state.jobs)} jobs)")
            return Sweep(folder, state.to_json())
        # in memory so far: the folder is written only once the executor is up
        executor = make_executor(
            executor, jobs, address, cpus_per_job, _jobs_to_run(sweep, state), warn
        )
        lock.name_holder()  # the first write: a refused resume changes no file
        state.claim()
    else:
        sweep = load_sweep(sweep_file, overrides)
        executor = make_executor(executor, jobs, address, cpus_per_job, _jobs_to_run(sweep), warn)
        folder = create_run_dir(runs_dir, sweep.name, kind="sweep")
        record = sweep.resolved()
        record["sweep"]["file"] = str(Path(sweep_file).resolve())
        atomic_write_text(folder / "sweep.yaml", yaml.safe_dump(record, sort_keys=False))
        held.enter_context(FolderLock(folder)).name_holder()
        (folder / "jobs").mkdir()
        state = SweepState.new(folder, sweep)
        state.claim()

    with Heartbeat(folder):  # a resume or `nnlab runs` can tell that this sweep lives
        try:
            return _run_jobs(sweep, state, folder, executor, fail_fast, retries, progress, on_job)
        except OSError as exc:  # the sweep folder cannot be written (a full disk)
            raise _stopped_by_storage(folder, state, executor, exc) from None
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # never left `running`: say how it ended
            return _stopped(state, folder, exc)
        finally:
            state.release_reserve()


def _stopped(state: SweepState, folder: Path, exc: BaseException):
    """An error ended the sweep: its jobs still marked running are interrupted, the sweep
    is marked failed with the error in state.json, and the error is raised again (an
    NnlabError as it is, anything else as :class:`SweepStopped`, one line)."""
    text = str(exc) if isinstance(exc, NnlabError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    for entry in state.jobs.values():  # a job that finished keeps its result
        _adopt_finished_attempt(folder, entry)
    state.status, state.error = SweepStatus.FAILED, text
    with contextlib.suppress(OSError):  # a disk that refuses it: the pid still tells
        state.save()
    if isinstance(exc, NnlabError):
        raise exc
    raise SweepStopped(
        f"{folder}: the sweep stopped: {text}; it is marked failed (completed jobs are kept: "
        f"nnlab sweep --resume {folder} runs the rest)"
    ) from exc


def _run_jobs(
    sweep: SweepSpec,
    state: SweepState,
    folder: Path,
    executor: Executor,
    fail_fast: bool,
    retries: int,
    progress: Progress | None,
    on_job: OnJob | None,
) -> Sweep:
    """Run the jobs still to do (asking a search for its trials), then write the tables and
    figures; SweepInterrupted on Ctrl-C."""
    source = None
    if sweep.search is not None:
        from nnlab.sweeps.search import TrialSource

        source = TrialSource(sweep, folder, state, lambda k, o: _job(sweep, k, o))
        if sweep.search.pruner["kind"] != "none":
            executor.judge_pruning(source.judge)
    scheduler = Scheduler(
        sweep,
        state,
        folder,
        executor,
        _todo(sweep, state),
        fail_fast,
        retries,
        progress,
        on_job,
        source,
    )
    interrupted = scheduler.run()
    counts = state.counts()
    state.status = (
        SweepStatus.INTERRUPTED
        if interrupted
        else SweepStatus.FAILED
        if counts[JobStatus.FAILED]
        else SweepStatus.COMPLETED
    )
    state.save()
    tables = write_summary(folder, sweep, state)
    result = Sweep(folder, state.to_json(), tables)
    if interrupted:
        raise SweepInterrupted(result)
    return result


def _stopped_by_storage(
    folder: Path, state: SweepState, executor: Executor, exc: OSError
) -> RunStorageError:
    """After a write to the sweep folder failed: stop the workers, record the jobs that were
    running as pending (a resume runs them again) and the sweep as failed, and say so."""
    with contextlib.suppress(Exception):
        executor.shutdown(cancel=True)
    reason = exc.strerror or str(exc)
    where = f" writing {exc.filename}" if exc.filename else ""
    for entry in state.jobs.values():
        if entry.status == JobStatus.RUNNING:
            entry.update(status=JobStatus.PENDING, error=f"stopped: {reason}")
    state.status = SweepStatus.FAILED
    try:
        state.save()
        told = ""
    except OSError:
        told = " (state.json could not be updated either)"
    return RunStorageError(
        f"{folder}: the sweep stopped: {reason}{where}{told}; free space, then "
        f"`nnlab sweep --resume {folder}` goes on"
    )


sweep = run_sweep  # the public name: nnlab.sweep("configs/sweeps/x.yaml", jobs=2)
