"""Search sweeps: Optuna samples the trials, nnlab runs them (docs/design.md, 'Search').

A sweep file's ``search:`` names the method (random or tpe), the number of trials to finish,
the validation metric and its direction; ``params:`` gives each dotted key's distribution. The
study lives in the sweep folder as Optuna's journal file (``search.journal``), so a sweep that
was killed resumes the same study: trials that were running are run again under their own
trial numbers, and the total of finished trials is ``trials``.

Each trial is asked for with a sampler seeded from the search seed and the trial number, so the
parameters of trial k do not depend on how many times the sweep was resumed.

With ``confirm: {top: k, seeds: n}``, once every trial has ended the k best completed trials
(the finalists) run again on n fresh seeds, as ordinary jobs ``confirm-<trial>,seed=<s>`` that
never feed the study; the winner is the finalist with the best mean of the search metric over
all its runs (:func:`finalists`).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.common.status import JobStatus
from nnlab.config.options import (
    PATH_KEYS,
    anchor_overrides,
    check_value,
    clip,
    load_config,
    schema_of,
    shown,
)
from nnlab.errors import ConfigError, NnlabError
from nnlab.models.bounds import check_memory
from nnlab.sweeps.state import DONE

METHODS = ("grid", "random", "tpe")
DIRECTIONS = ("maximize", "minimize")
SEARCH_KEYS = ("method", "trials", "metric", "direction", "seed", "startup_trials", "confirm")
CONFIRM_KEYS = ("top", "seeds")
TPE_STARTUP = 10  # random trials before TPE models the results (Optuna's n_startup_trials)
JOURNAL = "search.journal"
# a trial's status: the first of these that one of its seeds' jobs has, else completed
UNFINISHED = (JobStatus.RUNNING, JobStatus.PENDING, JobStatus.FAILED, JobStatus.INTERRUPTED,
              JobStatus.DIVERGED, JobStatus.PRUNED)  # fmt: skip


@dataclass
class Param:
    """One searched key: a float range (log or linear, optional step), an int range (optional
    step, log) or a list of choices."""

    key: str
    kind: str  # "float" | "int" | "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list | None = None

    def distribution(self):
        from optuna import distributions as d

        if self.kind == "choice":  # lists (layer sizes) travel as their JSON text
            return d.CategoricalDistribution([_encode(c) for c in self.choices])
        if self.kind == "int":
            return d.IntDistribution(
                int(self.low), int(self.high), log=self.log, step=self.step or 1
            )
        return d.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"choices": self.choices}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass
class SearchSpec:
    method: str
    trials: int
    metric: str
    direction: str
    seed: int
    params: dict[str, Param]
    pruner: dict[str, Any] = field(default_factory=lambda: {"kind": "none"})
    startup_trials: int = TPE_STARTUP
    confirm: dict[str, int] | None = None  # {"top": k, "seeds": n}: re-run the k best on n seeds

    def to_json(self) -> dict[str, Any]:
        return (
            {
                "method": self.method,
                "trials": self.trials,
                "metric": self.metric,
                "direction": self.direction,
                "seed": self.seed,
                "params": {k: p.to_json() for k, p in self.params.items()},
                "pruner": self.pruner,
            }
            | (
                {"startup_trials": self.startup_trials}
                if self.startup_trials != TPE_STARTUP
                else {}
            )
            | ({"confirm": self.confirm} if self.confirm else {})
        )

    def planned_jobs(self, seeds: list[int] | None) -> int:
        """The jobs the search runs at most: trials × seeds, and the confirmation jobs."""
        confirm = self.confirm["top"] * self.confirm["seeds"] if self.confirm else 0
        return self.trials * len(seeds or [None]) + confirm


def _encode(choice: Any) -> Any:
    plain = choice is None or isinstance(choice, bool | int | float | str)
    return choice if plain else json.dumps(choice)


def _decode(param: Param, value: Any) -> Any:
    if param.kind != "choice":
        return value
    return next(c for c in param.choices if _encode(c) == value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


PATH_PARAMS = tuple(f"{section}.{key}" for section, key in PATH_KEYS)
RANGE_PROBES = 16  # values between low and high checked against the key's option


def _param(
    key: str, raw: Any, where: str, base_cfg: dict[str, Any], anchor: Path | None = None
) -> Param:
    """One ``params:`` entry, checked: its form, its bounds, and that the base config accepts
    its values, within the memory limit (so a trial can never be an invalid config; a size
    between the bounds needs no more memory than the larger bound). A range must also suit
    its key's type (an integer key takes integer low, high and step) and stay inside the
    key's bounds everywhere between low and high (:func:`_check_range`). File names among
    the choices (``data.path``) are made absolute against ``anchor``, the sweep file's
    folder, as a grid's values are."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}.{key} must be {{low, high[, log, step]}} or {{choices: [...]}}, "
            f"got {shown(raw)}"
        )
    if "choices" in raw:
        extra = set(raw) - {"choices"}
        choices = raw["choices"]
        if extra or not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.{key}: choices must be a non-empty list, alone")
        if key in PATH_PARAMS and anchor is not None:  # relative to the sweep file
            choices = [anchor_overrides({key: c}, anchor)[key] for c in choices]
        param = Param(key, "choice", choices=list(choices))
        values = choices
    else:
        unknown = set(raw) - {"low", "high", "log", "step"}
        if unknown or "low" not in raw or "high" not in raw:
            raise ConfigError(
                f"{where}.{key} must have low and high (and optionally log, step); "
                f"got keys {', '.join(map(str, raw))}"
            )
        low, high, log, step = raw["low"], raw["high"], raw.get("log", False), raw.get("step")
        if not (_number(low) and _number(high)) or low >= high:
            raise ConfigError(f"{where}.{key}: low and high must be numbers with low < high")
        if not isinstance(log, bool):
            raise ConfigError(f"{where}.{key}.log must be true or false")
        if log and low <= 0:
            raise ConfigError(f"{where}.{key}: a log scale needs low > 0, got {low}")
        if step is not None and (not _number(step) or step <= 0 or (log and step)):
            raise ConfigError(f"{where}.{key}.step must be a number > 0, and not with log: true")
        is_int = all(isinstance(v, int) for v in (low, high)) and (
            step is None or isinstance(step, int)
        )
        param = Param(key, "int" if is_int else "float", low, high, log, step)
        values = [low, high]
    for value in values:
        try:
            check_memory(load_config(base_cfg, {key: value}))
        except NnlabError as exc:
            raise ConfigError(
                f"{where}.{key}: the value {shown(value)} is refused: {exc}"
            ) from None
    if param.kind != "choice":
        _check_range(param, where, base_cfg)
    return param


def _probes(param: Param) -> list[float]:
    """Values between a range's low and high as Optuna could sample them (on the step, whole
    numbers for an integer range, spread on a log scale for a log range)."""
    low, high, out = param.low, param.high, []
    for k in range(1, RANGE_PROBES):
        t = k / RANGE_PROBES
        x = low * (high / low) ** t if param.log else low + (high - low) * t
        if param.step:
            x = low + round((x - low) / param.step) * param.step
        x = min(max(x, low), high)
        out.append(int(round(x)) if param.kind == "int" else x)
    return out


def _check_range(param: Param, where: str, base_cfg: dict[str, Any]) -> None:
    """A range refused unless every value in it is one its key takes: an integer key needs
    integer low, high and step (a fractional step or bound would sample 150.5 iterations),
    and the values between the bounds must be inside the key's bounds too (a size key takes
    fractions below 1 or whole counts, not 1.5)."""
    key = param.key
    opt = schema_of(base_cfg["model"]["kind"]).get(key)
    if opt is None:
        return
    if opt.type == "int" and param.kind != "int":
        raise ConfigError(
            f"{where}.{key} is an integer key: low, high and step must be integers; got "
            f"{shown(param.to_json())}"
        )
    for value in _probes(param):
        try:
            check_value(key, opt, value)
        except ConfigError as exc:
            raise ConfigError(
                f"{where}.{key}: the range {shown(param.to_json())} crosses the key's bounds: "
                f"the value {shown(value)} between low and high is refused: {exc}"
            ) from None


def parse_search(
    raw: Any,
    raw_params: Any,
    path: Path,
    base_cfg: dict[str, Any],
    check_key,
    raw_pruner: Any = None,
) -> SearchSpec:
    """The ``search:`` and ``params:`` of a sweep file, validated against the base config."""
    where = f"{path}: sweep.search"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping: {{method, trials, metric, direction, seed}}")
    for key in raw:
        if key not in SEARCH_KEYS:
            raise ConfigError(f"{where}: unknown key {key}; allowed: {', '.join(SEARCH_KEYS)}")
    method = raw.get("method", "tpe")
    if method not in METHODS:
        raise ConfigError(
            f"{where}.method must be one of {', '.join(METHODS)}; got {shown(method)}"
        )
    trials = raw.get("trials")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ConfigError(f"{where}.trials must be an integer >= 1; got {shown(trials)}")
    metric = raw.get("metric", "val_loss")
    if isinstance(metric, str) and metric.startswith("test_"):
        raise ConfigError(
            f"{where}.metric is {metric}, a test metric: a search chooses on validation data, "
            "never on test (use val_acc or val_loss; the summary reports the chosen trial's "
            "test metrics beside it)"
        )
    if metric not in ("val_loss", "val_acc"):
        raise ConfigError(f"{where}.metric must be val_loss or val_acc; got {shown(metric)}")
    if not (base_cfg.get("data", {}).get("val_size") or 0) > 0:
        raise ConfigError(
            f"{where}.metric is {metric} but the base config has no validation split; set "
            "data.val_size above 0"
        )
    default_direction = "maximize" if metric.endswith("_acc") else "minimize"
    direction = raw.get("direction", default_direction)
    if direction not in DIRECTIONS:
        raise ConfigError(f"{where}.direction must be maximize or minimize; got {shown(direction)}")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"{where}.seed must be an integer >= 0; got {shown(seed)}")
    startup = raw.get("startup_trials", TPE_STARTUP)
    if not isinstance(startup, int) or isinstance(startup, bool) or startup < 0:
        raise ConfigError(f"{where}.startup_trials must be an integer >= 0; got {shown(startup)}")
    if "startup_trials" in raw and method != "tpe":
        raise ConfigError(
            f"{where}.startup_trials is the number of random trials before TPE models the "
            f"results: it needs method tpe, not {method}"
        )
    confirm = _confirm(raw.get("confirm"), where, trials)
    if not isinstance(raw_params, dict) or not raw_params:
        raise ConfigError(f"{path}: a search needs sweep.params: dotted keys with distributions")
    params = {}
    for key, spec in raw_params.items():
        check_key(key, f"{path}: sweep.params")
        params[key] = _param(key, spec, f"{path}: sweep.params", base_cfg, path.parent)
    if confirm is not None and "seed" in params:
        raise ConfigError(
            f"{where}.confirm runs the finalists on fresh seeds: leave seed out of sweep.params"
        )
    from nnlab.sweeps.search.pruning import parse_pruner

    pruner = parse_pruner(raw_pruner, f"{path}: sweep.pruner")
    return SearchSpec(method, trials, metric, direction, seed, params, pruner, startup, confirm)


def _confirm(raw: Any, where: str, trials: int) -> dict[str, int] | None:
    """``search.confirm: {top: k, seeds: n}``, checked: 1 <= k <= trials, n >= 1."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}.confirm must be a mapping {{top: k, seeds: n}}; got {shown(raw)}"
        )
    for key in raw:
        if key not in CONFIRM_KEYS:
            raise ConfigError(
                f"{where}.confirm: unknown key {clip(str(key))}; allowed: {', '.join(CONFIRM_KEYS)}"
            )
    out = {}
    for key, what in (("top", "the best trials to confirm"), ("seeds", "fresh seeds for each")):
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
            raise ConfigError(
                f"{where}.confirm.{key} ({what}) must be an integer from 1 to 1000; got "
                f"{shown(value)}"
            )
        out[key] = value
    if out["top"] > trials:
        raise ConfigError(
            f"{where}.confirm.top is {out['top']}, more than the {trials} trials of the search"
        )
    return out


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


class Study:
    """The search's Optuna study, kept in the sweep folder's journal file."""

    def __init__(self, folder: Path, spec: SearchSpec):
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        from nnlab.sweeps.search.pruning import make_pruner

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec = spec
        self.repaired = repair_journal(folder / JOURNAL)  # bytes of a cut tail removed
        storage = JournalStorage(JournalFileBackend(str(folder / JOURNAL)))
        self.study = optuna.create_study(
            study_name="nnlab",
            storage=storage,
            direction=spec.direction,
            load_if_exists=True,
            pruner=make_pruner(spec.pruner),
        )
        self.distributions = {k: p.distribution() for k, p in spec.params.items()}

    def trials(self) -> list:
        return self.study.get_trials(deepcopy=False)

    def ask(self) -> tuple[int, dict[str, Any]]:
        """A new trial: its number and its parameters (dotted key -> value)."""
        number = len(self.trials())
        self.study.sampler = _sampler(self.spec, number)
        trial = self.study.ask(self.distributions)
        params = {k: _decode(self.spec.params[k], v) for k, v in trial.params.items()}
        return trial.number, params

    def add(self, params: dict[str, Any] | None, value: float | None, state: str) -> int:
        """Add a trial the journal lost, as state.json recorded it: its parameters (None:
        a number no job recorded, added as failed) and its result (``state`` is complete,
        pruned, fail or running — a running one is run again and told later)."""
        from optuna.trial import TrialState, create_trial

        states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                  "fail": TrialState.FAIL, "running": TrialState.RUNNING}  # fmt: skip
        if state == "complete" and (value is None or not math.isfinite(value)):
            state, value = "fail", None
        known = params is not None
        trial = create_trial(
            params={k: _encode(v) for k, v in params.items()} if known else {},
            distributions={k: self.distributions[k] for k in params} if known else {},
            value=value if state == "complete" else None,
            state=states[state],
        )
        return self.study._storage.create_new_trial(self.study._study_id, template_trial=trial)

    def tell(self, number: int, value: float | None, state: str) -> None:
        """End a trial: ``state`` is complete, pruned or fail."""
        from optuna.trial import TrialState

        states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                  "fail": TrialState.FAIL}  # fmt: skip
        if state == "complete" and (value is None or not math.isfinite(value)):
            state, value = "fail", None
        self.study.tell(number, value if state == "complete" else None, states[state])


def trial_number(job_id: str) -> int:
    """The trial a job belongs to: ``trial-0007,seed=1`` and ``confirm-0007,seed=1000`` are 7's."""
    return int(job_id.split(",")[0].split("-")[1])


def is_confirmation(job_id: str) -> bool:
    return job_id.startswith("confirm-")


def confirm_job_id(number: int, seed: int) -> str:
    """``confirm-0007,seed=1000``: trial 7 run again on a fresh seed."""
    return f"confirm-{number:04d},seed={seed}"


def trial_job_id(number: int, seed: int | None) -> str:
    """``trial-0007`` (``trial-0007,seed=1`` when the search repeats trials over seeds)."""
    return f"trial-{number:04d}" + ("" if seed is None else f",seed={seed}")


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
        from nnlab.sweeps.search.pruning import judge

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
            params = {k: _decode(self.spec.params[k], v) for k, v in trial.params.items()}
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

    def _verdict(self, number: int) -> tuple[float | None, str] | None:
        """What to tell the study of trial ``number`` from its jobs in state.json: (value,
        state) once every job has a result, None while one is to run (again)."""
        entries = [self.state.jobs[j] for j in self.jobs_of.get(number, [])]
        if not entries or any(e.status not in DONE for e in entries):
            return None
        return self._result(entries)

    def _result(self, entries: list) -> tuple[float | None, str]:
        """A trial's result from its ended jobs: the mean of the metric over its seeds when
        all completed; pruned when some were pruned and the others completed; else fail."""
        statuses = {e.status for e in entries}
        if statuses <= {JobStatus.COMPLETED}:
            values = [e.final.get(self.spec.metric) for e in entries]
            if all(v is not None for v in values):
                return sum(values) / len(values), "complete"
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


# -- results -------------------------------------------------------------------------------------


def trial_records(sweep, state) -> list:
    """One record per trial from state.json: its parameters, its status over its seeds, and
    the mean of the search metric (and of each other metric) over its completed seeds."""
    from nnlab.figures.search import TrialRecord

    by_trial: dict[int, list] = {}
    for job_id, entry in state.jobs.items():
        if not is_confirmation(job_id):  # a trial's value is what the study was told
            by_trial.setdefault(trial_number(job_id), []).append(entry)
    records = []
    metric = sweep.search.metric
    for number in sorted(by_trial):
        entries = by_trial[number]
        statuses = {e.status for e in entries}
        status = next(
            (s for s in UNFINISHED
             if s in statuses),
            JobStatus.COMPLETED,
        )  # fmt: skip
        params = _trial_params(sweep, entries[0].overrides)
        record = TrialRecord(number, params, status, None)
        record.did_not_learn = any(e.did_not_learn for e in entries)
        if status == JobStatus.COMPLETED:
            finals = [e.final for e in entries]
            record.value = sum(f.get(sweep.search.metric, math.nan) for f in finals) / len(finals)
            record.metrics = {
                k: sum(f.get(k, math.nan) for f in finals) / len(finals)
                for k in finals[0]
                if k != "step"
            }
        elif status == JobStatus.PRUNED:  # where it was stopped: drawn, never ranked
            values = [e.final[metric] for e in entries if metric in e.final]
            record.value = sum(values) / len(values) if values else None
        records.append(record)
    return records


def _trial_params(sweep, overrides: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters from one of its jobs' overrides: the searched keys (``seed``
    among them when it is searched), without the seed that sweep.seeds adds."""
    searched = "seed" in sweep.search.params
    return {k: v for k, v in overrides.items() if k != "seed" or searched}


def trial_seeds(sweep) -> list[int]:
    """The seeds each trial runs with: sweep.seeds, or the base config's seed."""
    return list(sweep.seeds or [sweep.base_config["seed"]])


@dataclass
class Finalist:
    """A trial run again on the fresh seeds: its runs as (job id, seed, status, value), the
    value the search metric of a completed run (None otherwise), in the search's order."""

    number: int
    params: dict[str, Any]
    runs: list[tuple[str, int, str, float | None]]

    @property
    def values(self) -> list[float]:
        """The search metric of its completed confirmation runs: the fresh seeds only. Its
        trial's own run is left out: it was chosen for being best, so it is optimistic."""
        return [
            v
            for job_id, _, status, v in self.runs
            if is_confirmation(job_id) and status == JobStatus.COMPLETED and v is not None
        ]

    @property
    def trial_values(self) -> list[float | None]:
        """The search metric of its trial's own runs (what it was chosen on)."""
        return [v for job_id, _, _, v in self.runs if not is_confirmation(job_id)]

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def diverged(self) -> bool:
        return any(status == JobStatus.DIVERGED for _, _, status, _ in self.runs)

    @property
    def unfinished(self) -> int:
        """Runs without a result yet (pending, running, interrupted, failed): resume runs them."""
        return sum(status not in DONE for _, _, status, _ in self.runs)

    @property
    def fresh_seeds(self) -> list[int]:
        """The seeds of its confirmation runs."""
        return [seed for job_id, seed, _, _ in self.runs if is_confirmation(job_id)]

    @property
    def trial_seed(self) -> int:
        """The seed of the trial's first run: best.yaml's, so that it reproduces that run."""
        return self.runs[0][1]


def finalists(sweep, state) -> list[Finalist]:
    """The trials that were run again (those with confirmation jobs in state.json), in trial
    order, each with its original runs and its confirmation runs."""
    metric = sweep.search.metric
    base_seed = sweep.base_config["seed"]
    by_trial: dict[int, list[str]] = {}
    for job_id in state.jobs:
        by_trial.setdefault(trial_number(job_id), []).append(job_id)
    out = []
    for number in sorted(by_trial):
        ids = sorted(by_trial[number], key=is_confirmation)  # the trial's runs first
        if not is_confirmation(ids[-1]):
            continue
        runs = []
        for job_id in ids:
            entry = state.jobs[job_id]
            seed = entry.overrides.get("seed", base_seed)
            runs.append((job_id, seed, entry.status, entry.final.get(metric)))
        params = {k: v for k, v in state.jobs[ids[0]].overrides.items() if k != "seed"}
        out.append(Finalist(number, params, runs))
    return out


def by_rule(found: list[Finalist], direction: str) -> list[Finalist]:
    """The finalists in the winner rule's order: the best mean of the search metric over all
    their completed runs first, a tie to the lower trial number; those that diverged on any
    seed (or have no completed run) last, in trial order."""
    sign = -1 if direction == "maximize" else 1
    able = [f for f in found if f.mean is not None and not f.diverged]
    able.sort(key=lambda f: (sign * f.mean, f.number))
    return able + [f for f in found if f not in able]


def winner(found: list[Finalist], direction: str) -> Finalist | None:
    """The first finalist by :func:`by_rule` once every finalist has all its confirmation
    runs (the same fresh seeds each: finalists are compared on equal n), unless it cannot
    win (diverged, no result); None while any confirmation run has no result yet."""
    if any(f.unfinished for f in found):
        return None
    first = next(iter(by_rule(found, direction)), None)
    return None if first is None or first.mean is None or first.diverged else first


WINNER_RULE = (
    "the winner is the finalist with the best mean of {metric} over its confirmation runs on "
    "the fresh seeds {seeds}, the same for every finalist; its trial's own run is shown apart "
    "and left out of n, the mean, std and CI, since it was chosen for being best (so it is "
    "optimistic). A finalist that diverged on any seed cannot win; a tie goes to the lower "
    "trial number; no finalist wins until every confirmation run has a result. The 95% CI is "
    "Student's t interval of the mean: finalists whose intervals overlap are not clearly apart."
)


def confirm_table(sweep, state) -> tuple[str, list[str], list[list], str] | None:
    """(title, header, rows, note) of the finalists, the winner's row cells (text, True) so
    that it shows in bold; None for a search without confirmation jobs."""
    from nnlab.common.metrics import metric_text
    from nnlab.common.stats import mean_ci

    spec = sweep.search
    found = finalists(sweep, state)
    if not found:  # the folder says what ran: sweep.yaml's confirm is not needed
        return None
    chosen = winner(found, spec.direction)
    keys = list(spec.params)
    metric = spec.metric
    header = [
        "finalist",
        "trial",
        *keys,
        f"trial's {metric}",
        "n",
        f"mean {metric}",
        "std",
        "95% CI",
        "fresh runs (seed: value)",
    ]

    def text(value: float | None) -> str:
        return "—" if value is None else metric_text(metric, value)

    rows = []
    for f in by_rule(found, spec.direction):
        values = f.values
        ci = mean_ci(values, metric=metric)
        std = statistics.stdev(values) if len(values) > 1 else None
        mark = "winner" if f is chosen else "out (diverged)" if f.diverged else ""
        runs = ", ".join(
            f"{seed}: {text(v) if status == JobStatus.COMPLETED else status}"
            for job_id, seed, status, v in f.runs
            if is_confirmation(job_id)
        )
        cells = [mark, str(f.number), *(_cell(f.params.get(k)) for k in keys)]
        cells += [", ".join(text(v) for v in f.trial_values)]
        cells += [str(len(values)), text(f.mean), text(std)]
        cells += ["—" if ci is None else f"[{text(ci[0])}, {text(ci[1])}]", runs]
        rows.append([(c, True) for c in cells] if f is chosen else cells)
    fresh = sorted({s for f in found for s in f.fresh_seeds})
    seeds = ", ".join(map(str, fresh))
    note = WINNER_RULE.format(metric=metric, seeds=seeds)
    note = note[:1].upper() + note[1:]
    missing = sum(f.unfinished for f in found)
    if missing:
        note += (
            f" {missing} confirmation runs have no result yet, so there is no winner yet "
            "(best.yaml holds the best trial's config): `nnlab sweep --resume` runs them."
        )
    seeds_text = f"{len(fresh)} fresh seed" + ("s" if len(fresh) != 1 else "")
    trials_text = f"the {len(found)} best trials" if len(found) > 1 else "the best trial"
    title = f"Confirmation: {trials_text} run again on {seeds_text}"
    return title, header, rows, note


def ranked(records: list, direction: str) -> list:
    done = [r for r in records if r.status == JobStatus.COMPLETED and r.value is not None]
    done.sort(key=lambda r: r.value, reverse=direction == "maximize")
    return done + [r for r in records if r not in done]


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def search_table(sweep, records: list) -> tuple[str, list[str], list[list[str]]]:
    """(title, header, rows): the trials, best first, with their parameters, status, the
    search metric and the test metrics beside it (the choice is made on validation data
    only)."""
    from nnlab.common.metrics import metric_text

    spec = sweep.search
    keys = list(spec.params)
    extra = [k for k in ("test_acc", "test_loss") if k != spec.metric]
    title = (
        f"Search: {spec.method}, {len(records)} of {spec.trials} trials, "
        f"{spec.direction} {spec.metric}"
    )
    header = ["rank", "trial", *keys, "status", spec.metric, *extra]
    rows, rank = [], 0
    for r in ranked(records, spec.direction):
        done = r.status == JobStatus.COMPLETED and r.value is not None
        rank += done
        metrics = getattr(r, "metrics", {}) if done else {}
        cells = [str(rank) if done else "—", str(r.number)]
        cells += [_cell(r.params.get(k)) for k in keys]
        shown = f"{r.status}, did not learn" if r.did_not_learn else r.status
        cells += [shown, metric_text(spec.metric, r.value) if done else "—"]
        cells += [metric_text(k, metrics[k]) if k in metrics else "—" for k in extra]
        rows.append(cells)
    return title, header, rows


def _markdown_table(header: list[str], rows: list[list]) -> list[str]:
    def md(cell: Any) -> str:
        text, bold = cell if isinstance(cell, tuple) else (cell, False)
        text = text.replace("|", "\\|")
        return f"**{text}**" if bold else text

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]


def search_markdown(sweep, state, records: list) -> str:
    title, header, rows = search_table(sweep, records)
    lines = [f"## {title}", "", *_markdown_table(header, rows)]
    done = [r for r in ranked(records, sweep.search.direction) if r.status == JobStatus.COMPLETED]
    confirmed = confirm_table(sweep, state)
    if confirmed is not None:
        title, header, rows, note = confirmed
        chosen = winner(finalists(sweep, state), sweep.search.direction)
        lines += ["", f"## {title}", "", *_markdown_table(header, rows), "", note]
        if chosen is not None:
            lines += [
                "",
                f"Winner: trial {chosen.number} (`best.yaml` holds its config, with its trial's "
                f"seed {chosen.trial_seed}).",
            ]
        elif done:
            lines += ["", f"No finalist can win yet; `best.yaml` holds the best trial's "
                      f"({done[0].number}) config."]  # fmt: skip
    elif done:
        lines += ["", f"Best trial: {done[0].number} (`best.yaml` holds its config)."]
    return "\n".join(lines) + "\n"


def write_search_results(folder: Path, sweep, state) -> str:
    """The ranked table (returned, for summary.md), best.yaml and the search figures."""
    from nnlab.common.files import atomic_write_text
    from nnlab.config.options import dump_config
    from nnlab.figures import search as plots

    spec = sweep.search
    records = trial_records(sweep, state)
    best = next(
        (r for r in ranked(records, spec.direction) if r.status == JobStatus.COMPLETED), None
    )
    chosen = winner(finalists(sweep, state), spec.direction)
    if chosen is not None:  # the confirmed winner, as its trial's first run ran
        job_id, params = chosen.runs[0][0], chosen.params | {"seed": chosen.trial_seed}
    elif best is not None:  # the best trial, as its first run ran
        seed = trial_seeds(sweep)[0]
        job_id = trial_job_id(best.number, seed if sweep.seeds else None)
        params = {"seed": seed} | best.params  # a searched seed is the trial's own
    if chosen is not None or best is not None:
        entry = state.jobs.get(job_id)
        ran = folder / entry.run / "config.yaml" if entry and entry.run else None
        if ran is not None and ran.is_file():  # its threads too: the same numbers again
            text = ran.read_text(encoding="utf-8")
        else:
            text = dump_config(load_config(sweep.base_path, {**sweep.base_overrides, **params}))
        atomic_write_text(folder / "best.yaml", text)
    out = folder / "plots"
    out.mkdir(exist_ok=True)
    title = f"{sweep.name}: {spec.method} search"
    shown = [  # a list-valued choice (layer sizes) is one category, named by its text
        plots.TrialRecord(
            r.number,
            {k: json.dumps(v) if isinstance(v, list) else v for k, v in r.params.items()},
            r.status,
            r.value,
        )
        for r in records
    ]
    try:
        plots.optimisation_history(shown, spec.metric, spec.direction, out / "history.png", title)
        plots.param_importances(shown, spec.metric, out / "importances.png", title)
        scales = {k: p.log for k, p in spec.params.items() if p.kind != "choice"}
        plots.parallel_coordinates(
            shown, spec.metric, spec.direction, out / "parallel.png", title, scales
        )
    except Exception as exc:  # figures are extras: the tables are never lost over them
        state.plot_error = f"{type(exc).__name__}: {exc}"
        state.save()
    return search_markdown(sweep, state, records)
