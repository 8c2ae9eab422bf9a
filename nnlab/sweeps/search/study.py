"""The Optuna study of a search, kept in the sweep folder's journal file, and the source of
trials the scheduler runs: asked with a sampler seeded per trial, told their results, pruned
through the journal, confirmed on fresh seeds."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from nnlab.common.status import JobStatus
from nnlab.errors import NnlabError
from nnlab.sweeps.search.journal import journal_storage
from nnlab.sweeps.search.objectives import entry_value
from nnlab.sweeps.search.pruning import judge, make_pruner
from nnlab.sweeps.search.results import ranked, trial_records, trial_seeds
from nnlab.sweeps.search.space import (
    JOURNAL,
    SearchSpec,
    confirm_job_id,
    decode,
    encode,
    is_confirmation,
    trial_job_id,
    trial_number,
)
from nnlab.sweeps.state import DONE


def confirm_seeds(spec: SearchSpec, used: list[int]) -> list[int]:
    """The fresh seeds every finalist runs again on: ``1000 · (search seed + 1)`` and on,
    skipping the seeds the trials ran with (``used``: the base seed, or sweep.seeds)."""
    seeds: list[int] = []
    taken = set(used)
    candidate = 1000 * (spec.seed + 1)
    while len(seeds) < spec.confirm["seeds"]:
        seed = candidate % 2**32
        if seed not in taken:
            seeds.append(seed)
            taken.add(seed)
        candidate += 1
    return seeds


def _sampler(spec: SearchSpec, number: int):
    """The sampler for trial ``number``: seeded from the search seed and the number."""
    import optuna

    seed = (spec.seed * 1_000_003 + number) % 2**32
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.method == "nsga2":  # its generations live in the study, so one per trial works
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=spec.population)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.startup_trials)


def _record(line: bytes) -> bool:
    """Whether one line of the journal is a record Optuna wrote (a JSON object with its
    operation code)."""
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and isinstance(value.get("op_code"), int)


def repair_journal(path: Path) -> int:
    """Make the journal end on its last whole record: a sweep killed while Optuna wrote (or
    a disk that filled) leaves a cut or garbled tail, which Optuna would append onto and
    then fail to read. Returns the bytes cut off. A damaged record followed by whole ones
    is not a cut tail: NnlabError (one line, naming the file and line)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise NnlabError(f"{path}: cannot read the search journal ({exc.strerror})") from None
    lines = data.split(b"\n")  # the last piece: what follows the last newline ("" if none)
    bad, end = None, 0
    for number, line in enumerate(lines[:-1], start=1):
        if _record(line):
            if bad is not None:
                raise NnlabError(
                    f"{path}: line {bad} is not a journal record, yet whole records follow "
                    "it: the study cannot be read. Move the file away and resume: the study "
                    "is rebuilt from state.json"
                )
            end += len(line) + 1
        elif bad is None:
            bad = number
    if end == len(data):
        return 0
    with open(path, "r+b") as f:
        f.truncate(end)
        f.flush()
        os.fsync(f.fileno())
    return len(data) - end


Value = float | list[float] | None  # a trial's result: one number, or one per objective


def _finite(value: Value) -> bool:
    """Whether a result is complete: a finite number, or a list of them."""
    values = value if isinstance(value, list) else [value]
    return all(v is not None and math.isfinite(v) for v in values)


class Study:
    """The search's Optuna study, kept in the sweep folder's journal file."""

    def __init__(self, folder: Path, spec: SearchSpec):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec = spec
        self.repaired = repair_journal(folder / JOURNAL)  # bytes of a cut tail removed
        storage = journal_storage(folder / JOURNAL)
        goal = {"directions": spec.directions} if spec.objectives else {"direction": spec.direction}
        self.study = optuna.create_study(
            study_name="nnlab",
            storage=storage,
            load_if_exists=True,
            pruner=make_pruner(spec.pruner),
            **goal,
        )
        self.distributions = {k: p.distribution() for k, p in spec.params.items()}

    def trials(self) -> list:
        return self.study.get_trials(deepcopy=False)

    def ask(self) -> tuple[int, dict[str, Any]]:
        """A new trial: its number and its parameters (dotted key -> value; a conditional
        param only where its condition holds)."""
        number = len(self.trials())
        self.study.sampler = _sampler(self.spec, number)
        trial = self.study.ask()  # define-by-run: a param whose condition fails is not asked
        return trial.number, self.spec.sample(trial)

    def add(self, params: dict[str, Any] | None, value: Value, state: str) -> int:
        """Add a trial the journal lost, as state.json recorded it: its parameters (None:
        a number no job recorded, added as failed) and its result (``state`` is complete,
        pruned, fail or running — a running one is run again and told later)."""
        from optuna.trial import TrialState, create_trial

        states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                  "fail": TrialState.FAIL, "running": TrialState.RUNNING}  # fmt: skip
        if state == "complete" and not _finite(value):
            state, value = "fail", None
        known = params is not None
        several = isinstance(value, list)
        trial = create_trial(
            params={k: encode(v) for k, v in params.items()} if known else {},
            distributions={k: self.distributions[k] for k in params} if known else {},
            value=value if state == "complete" and not several else None,
            values=value if state == "complete" and several else None,
            state=states[state],
        )
        return self.study._storage.create_new_trial(self.study._study_id, template_trial=trial)

    def tell(self, number: int, value: Value, state: str) -> None:
        """End a trial: ``state`` is complete, pruned or fail; ``value`` a list of one value
        per objective in a multi-objective study."""
        from optuna.trial import TrialState

        states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                  "fail": TrialState.FAIL}  # fmt: skip
        if state == "complete" and not _finite(value):
            state, value = "fail", None
        self.study.tell(number, value if state == "complete" else None, states[state])


class TrialSource:
    """Hands the scheduler one trial's jobs (one per seed) whenever a slot is free, until
    ``trials`` trials have been asked; tells the study each trial's result — the mean of the
    metric over its seeds — once all of its jobs have ended."""

    def __init__(self, sweep, folder: Path, state, make_job):
        self.sweep, self.spec, self.state = sweep, sweep.search, state
        self.folder = folder
        self.study = Study(folder, self.spec)
        self.make_job = make_job  # (job id, overrides) -> Job
        self.seeds = sweep.seeds or [None]
        self.jobs_of: dict[int, list[str]] = {}
        for job_id in state.jobs:  # a resumed search: its trials so far
            if not is_confirmation(job_id):
                self.jobs_of.setdefault(trial_number(job_id), []).append(job_id)
        self.reconcile()

    def report_for(self, job_id: str) -> dict[str, Any] | None:
        """What a trial's job reports under a pruner (its first seed's job only: the
        trial's intermediate values are one curve)."""
        if self.spec.pruner["kind"] == "none" or is_confirmation(job_id):
            return None  # a confirmation job is never pruned
        if self.seeds[0] is not None and not job_id.endswith(f",seed={self.seeds[0]}"):
            return None
        return {
            "journal": str(self.folder / JOURNAL),
            "trial": trial_number(job_id),
            "metric": self.spec.metric,
            "pruner": self.spec.pruner,
        }

    def judge(self, number: int, step: int, value: float) -> bool:
        """A relayed report of trial ``number`` (pruning.reporter): whether to prune it."""
        return judge(self.study.study, number, step, value)

    def more(self) -> bool:
        return self._searching() or self._confirmation_due()

    def _searching(self) -> bool:
        """Whether trials remain to be asked for (or orphans to run)."""
        return bool(self._orphans()) or len(self.study.trials()) < self.spec.trials

    def _confirmation_due(self) -> bool:
        """Whether the confirmation jobs are to be made now: the search has a ``confirm``,
        none are made yet, and every trial's job has ended for good (state.json's word: a
        trial a killed sweep never told the study about still counts as ended)."""
        if self.spec.confirm is None or any(is_confirmation(k) for k in self.state.jobs):
            return False
        if self._searching():
            return False
        return all(
            e.status not in (JobStatus.PENDING, JobStatus.RUNNING) for e in self.state.jobs.values()
        )

    def _confirmation_jobs(self) -> list:
        """The finalists' jobs on the fresh seeds (none when no trial completed)."""
        ranked_done = ranked(trial_records(self.sweep, self.state), self.spec.direction)
        top = [r for r in ranked_done if r.status == JobStatus.COMPLETED][
            : self.spec.confirm["top"]
        ]
        jobs = []
        for record in top:
            for seed in confirm_seeds(self.spec, trial_seeds(self.sweep)):
                overrides = dict(record.params) | {"seed": seed}
                jobs.append(self.make_job(confirm_job_id(record.number, seed), overrides))
        return jobs

    def _orphans(self) -> list:
        """Trials the study handed out that state.json never recorded (the sweep was killed
        in between): they run under their own numbers, with the parameters the study kept."""
        from optuna.trial import TrialState

        return [
            t
            for t in self.study.trials()
            if t.state == TrialState.RUNNING and t.number not in self.jobs_of
        ]

    def next_jobs(self) -> list:
        if not self._searching():
            return self._confirmation_jobs() if self._confirmation_due() else []
        orphans = self._orphans()
        if orphans:
            trial = orphans[0]
            params = {k: decode(self.spec.params[k], v) for k, v in trial.params.items()}
            number = trial.number
        else:
            number, params = self.study.ask()
        jobs = []
        for seed in self.seeds:
            overrides = dict(params) | ({} if seed is None else {"seed": seed})
            jobs.append(self.make_job(trial_job_id(number, seed), overrides))
        self.jobs_of[number] = [j.id for j in jobs]
        return jobs

    def reconcile(self) -> None:
        """Make the study agree with state.json, which records every job's result first:
        trials the journal lost (a cut tail, a deleted file) are added back as state.json
        has them, and trials whose jobs all ended — a job that finished while the driver was
        dead is adopted on resume — are told their result, so that TPE models every result
        and no completed trial is asked for again under its number."""
        known = len(self.study.trials())
        for number in range(known, max(self.jobs_of, default=-1) + 1):
            ids = self.jobs_of.get(number)
            if ids is None:
                self.study.add(None, None, "fail")
                continue
            params = {
                k: v for k, v in self.state.jobs[ids[0]].overrides.items() if k in self.spec.params
            }
            value, state = self._verdict(number) or (None, "running")
            try:
                self.study.add(params, value, state)
            except ValueError:  # values outside the space (resumed with --force): a number
                self.study.add(None, None, "fail")  # kept, its jobs' results in state.json
        for number in self.unfinished():
            if number in self.jobs_of and self._verdict(number) is not None:
                self.study.tell(number, *self._verdict(number))

    def _verdict(self, number: int) -> tuple[Value, str] | None:
        """What to tell the study of trial ``number`` from its jobs in state.json: (value,
        state) once every job has a result, None while one is to run (again)."""
        entries = [self.state.jobs[j] for j in self.jobs_of.get(number, [])]
        if not entries or any(e.status not in DONE for e in entries):
            return None
        return self._result(entries)

    def _result(self, entries: list) -> tuple[Value, str]:
        """A trial's result from its ended jobs: the mean of the metric over its seeds when
        all completed (of each objective's, in a multi-objective search); pruned when some
        were pruned and the others completed; else fail."""
        statuses = {e.status for e in entries}
        if statuses <= {JobStatus.COMPLETED}:
            means = []
            for metric in self.spec.metrics:
                values = [entry_value(e, metric) for e in entries]
                if any(v is None for v in values):
                    break
                means.append(sum(values) / len(values))
            else:
                return (means if self.spec.objectives else means[0]), "complete"
        pruned = JobStatus.PRUNED in statuses and statuses <= {
            JobStatus.COMPLETED,
            JobStatus.PRUNED,
        }
        return None, "pruned" if pruned else "fail"

    def unfinished(self) -> list[int]:
        """Trials the study still has running (a resumed sweep runs their jobs again)."""
        from optuna.trial import TrialState

        return [t.number for t in self.study.trials() if t.state == TrialState.RUNNING]

    def ended(self, job_id: str) -> None:
        """A job ended for good (no retry to come): tell its trial once all its jobs have
        (a confirmation job tells nothing)."""
        if is_confirmation(job_id):
            return
        number = trial_number(job_id)
        entries = [self.state.jobs[j] for j in self.jobs_of.get(number, [])]
        if any(e.status in (JobStatus.PENDING, JobStatus.RUNNING) for e in entries):
            return
        if number not in self.unfinished():
            return
        self.study.tell(number, *self._result(entries))
