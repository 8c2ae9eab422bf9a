"""Running a sweep: the sweep folder, resume, and the scheduler that feeds jobs to an executor
(docs/sweeps.md; docs/run-folder.md, 'Sweep folder' and 'Statuses').

Each job is a normal run folder made by the same code as ``nnlab train``, under
``jobs/<id>/attempt-<k>/``; state.json records every job's status and attempts at each change,
so a sweep killed at any moment resumes where it stopped, and no attempt folder is ever reused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from nnlab.common.files import atomic_write_text
from nnlab.common.status import JobStatus, SweepStatus
from nnlab.config.resolve import load_config
from nnlab.errors import NnlabError, RunStorageError
from nnlab.models import kind_of
from nnlab.runfolder.liveness import FolderLock, Heartbeat, refuse_if_alive
from nnlab.runfolder.runs import RUNS_DIR, create_run_dir
from nnlab.sweeps.executors import Executor, LocalExecutor
from nnlab.sweeps.folder import adopt_finished_attempt, describe_change, open_sweep_folder
from nnlab.sweeps.scheduler import OnJob, Progress, Scheduler
from nnlab.sweeps.search.study import JOURNAL, TrialSource, repair_journal
from nnlab.sweeps.spec import Job, SweepSpec, load_sweep
from nnlab.sweeps.state import DONE, JobEntry, Sweep, SweepState
from nnlab.sweeps.summary import write_summary

Warn = Callable[[str], None]


class SweepStopped(NnlabError):
    """An unexpected error ended a sweep; state.json marks it failed, with the error."""

    exit_code = 1


class SweepInterrupted(KeyboardInterrupt):
    def __init__(self, sweep: Sweep):
        super().__init__(f"sweep interrupted: {sweep.path}")
        self.sweep = sweep


def make_executor(
    executor: Executor | str,
    jobs: int | None,
    address: str | None,
    cpus_per_job: int,
    to_run: int | None = None,
    warn: Warn | None = None,
    gpus_per_job: int = 0,
) -> Executor:
    """The executor a sweep runs on: an Executor passes through; "ray" connects to a cluster
    (``address``); "local" keeps ``jobs`` worker processes (the CLI's --jobs; default one per
    core; for jobs that need ``gpus_per_job`` GPUs, at most one per that many visible GPUs,
    each with its own). Either runs at most ``to_run`` tasks at once, the jobs there are to
    run."""
    if isinstance(executor, Executor):
        return executor
    if executor == "ray":
        from nnlab.sweeps.executors.ray import RayExecutor

        return RayExecutor(address, cpus_per_job, jobs, to_run)
    if address is not None:
        raise NnlabError("--address names a Ray cluster: use it with --executor ray")
    return LocalExecutor(jobs, to_run, warn, gpus_per_job)


def _gpus_per_job(sweep: SweepSpec) -> int:
    """The most GPUs one of the sweep's jobs asks for (:meth:`nnlab.models.Kind.resources`;
    a DCN's: one when its train.device is cuda). A search's trials to come are not known
    yet: its base config, with the -s overrides, speaks for them."""
    configs = [job.config for job in sweep.jobs]
    if sweep.search is not None or not configs:
        configs.append(sweep.base_config)
    return max(int(kind_of(cfg).resources(cfg).get("gpus", 0)) for cfg in configs)


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
    reuse: bool = True,
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
    cores, nor, for jobs on GPUs, than the GPUs visible (each local worker gets its own);
    ``warn(message)`` is told when ``jobs`` asked for more than the cores or GPUs hold.
    With ``reuse`` (the default), a job whose fingerprint matches a completed run under the
    runs folder holding the sweep is copied from it instead of trained (state.json marks it
    ``reused``; docs/sweeps.md, 'Reusing runs').
    """
    with contextlib.ExitStack() as held:  # the folder's lock, released on the way out
        return _run_sweep(
            sweep_file, overrides, runs_dir, jobs, executor, resume, force, fail_fast,
            retries, progress, on_job, address, cpus_per_job, warn, held, reuse,
        )  # fmt: skip


def _run_sweep(
    sweep_file, overrides, runs_dir, jobs, executor, resume, force, fail_fast, retries,
    progress, on_job, address, cpus_per_job, warn, held: contextlib.ExitStack, reuse=True,
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
        changes = describe_change(saved, sweep.resolved())
        if changes and not force:
            raise NnlabError(
                f"{folder}: the sweep changed since it started ("
                + "; ".join(changes)
                + "); use --force to resume anyway"
            )
        if sweep.search is not None:  # its jobs so far are the trials in state.json
            repair_journal(folder / JOURNAL)  # a damaged study is refused before any write
            sweep.jobs = [_job(sweep, k, e.overrides) for k, e in state.jobs.items()]
        for job in sweep.jobs:
            entry = state.jobs.setdefault(job.id, JobEntry(job.overrides))
            adopt_finished_attempt(folder, entry)
        if state.status == SweepStatus.COMPLETED and _jobs_to_run(sweep, state) <= 0:
            if warn is not None:  # and the folder is left as it was: its times too
                warn(f"{folder}: nothing to resume: the sweep completed ({len(state.jobs)} jobs)")
            return Sweep(folder, state.to_json())
        # in memory so far: the folder is written only once the executor is up
        executor = make_executor(
            executor, jobs, address, cpus_per_job, _jobs_to_run(sweep, state), warn,
            _gpus_per_job(sweep),
        )  # fmt: skip
        lock.name_holder()  # the first write: a refused resume changes no file
        state.claim()
    else:
        sweep = load_sweep(sweep_file, overrides)
        executor = make_executor(
            executor, jobs, address, cpus_per_job, _jobs_to_run(sweep), warn, _gpus_per_job(sweep)
        )
        folder = create_run_dir(runs_dir, sweep.name, kind="sweep")
        record = sweep.resolved()
        record["sweep"]["file"] = str(Path(sweep_file).resolve())
        atomic_write_text(folder / "sweep.yaml", yaml.safe_dump(record, sort_keys=False))
        held.enter_context(FolderLock(folder)).name_holder()
        (folder / "jobs").mkdir()
        state = SweepState.new(folder, sweep.name, {j.id: j.overrides for j in sweep.jobs})
        state.claim()

    with Heartbeat(folder):  # a resume or `nnlab runs` can tell that this sweep lives
        try:
            return _run_jobs(
                sweep, state, folder, executor, fail_fast, retries, progress, on_job, reuse
            )
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
        adopt_finished_attempt(folder, entry)
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
    reuse: bool = True,
) -> Sweep:
    """Run the jobs still to do (asking a search for its trials), then write the tables and
    figures; SweepInterrupted on Ctrl-C."""
    source = None
    if sweep.search is not None:
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
        reuse,
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
