"""A search's space: the ``search:`` and ``params:`` of a sweep file, read into a
:class:`SearchSpec` and checked against the base config before anything runs (docs/design.md,
'Search').

Each entry is stated in the constraint vocabulary (:mod:`nnlab.common.constraints`), so every
error is one line naming the key and what is allowed; a ``params:`` entry is also checked
against the key's own option, so that no trial can be an invalid config.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.common.constraints import (
    Boolean,
    Integer,
    ListOf,
    Number,
    OneOf,
    refuse_unknown_keys,
    require,
)
from nnlab.common.yamlread import shown
from nnlab.config.options import check_value
from nnlab.config.overrides import PATH_KEYS, anchor_overrides
from nnlab.config.resolve import load_config, schema_of
from nnlab.errors import ConfigError, NnlabError
from nnlab.models import check_memory
from nnlab.sweeps.search.conditions import (
    WHEN,
    acyclic,
    check_condition_key,
    implied,
    split_when,
    value_text,
)
from nnlab.sweeps.search.objectives import (
    NSGA2_POPULATION,
    Objective,
    parse_goal,
    parse_pick,
    parse_population,
    refuse_with_objectives,
)
from nnlab.sweeps.search.pruning import parse_pruner

METHODS = ("grid", "random", "tpe", "nsga2")
TPE_STARTUP = 10  # random trials before TPE models the results (Optuna's n_startup_trials)
JOURNAL = "search.journal"  # the study, in the sweep folder
# What each entry of ``search:`` allows. Counts are exact integers (2.0 trials is a mistake).
SEARCH_KEYS = OneOf(
    ("method", "trials", "metric", "direction", "seed", "startup_trials", "confirm",
     "objectives", "pick", "population")
)  # fmt: skip
METHOD = OneOf(METHODS)
TRIALS = Integer(1, exact=True)
METRIC = OneOf(("val_loss", "val_acc"), words="val_loss or val_acc")
SEED = Integer(0, exact=True)
CONFIRM_KEYS = OneOf(("top", "seeds"))
CONFIRM_COUNT = Integer(1, 1000, exact=True, words="an integer from 1 to 1000")
# A ``params:`` entry: a list of choices, or a range of numbers (a log scale, on a step).
CHOICES = ListOf(min_len=1, words="a non-empty list")
RANGE_KEYS = OneOf(("low", "high", "log", "step"))
BOUND = Number()
LOG = Boolean()
STEP = Number(0, low_open=True)


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
    when: dict[str, Any] | None = None  # applies only where these keys have these values

    def applies(self, values: dict[str, Any]) -> bool:
        """Whether the param applies to a trial whose params so far are ``values`` (dotted
        key -> value, as the config takes it): every key of ``when`` is among them with its
        value (a key that did not apply itself fails the condition)."""
        return all(
            k in values and encode(values[k]) == encode(v) for k, v in (self.when or {}).items()
        )

    def condition_text(self) -> str | None:
        """The condition in words: 'train.optimizer = sgd' (None: always applies)."""
        if not self.when:
            return None
        return " and ".join(f"{k} = {value_text(v)}" for k, v in self.when.items())

    def describe(self) -> str:
        """The param's distribution in words, for the report: 'float, log-uniform from
        0.0001 to 0.05', 'one of sgd, adam', and its condition."""
        if self.kind == "choice":
            text = "one of " + ", ".join(value_text(c) for c in self.choices)
        else:
            scale = "log-uniform" if self.log else "uniform"
            text = f"{self.kind}, {scale} from {value_text(self.low)} to {value_text(self.high)}"
            if self.step is not None:
                text += f" on a step of {value_text(self.step)}"
        condition = self.condition_text()
        return text + (f"; only when {condition}" if condition else "")

    def suggest(self, trial) -> Any:
        """Ask Optuna's ``trial`` (define-by-run) for this param: the value as Optuna stores it."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, [encode(c) for c in self.choices])
        if self.kind == "int":
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=self.step or 1, log=self.log
            )
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def distribution(self):
        from optuna import distributions as d

        if self.kind == "choice":  # lists (layer sizes) travel as their JSON text
            return d.CategoricalDistribution([encode(c) for c in self.choices])
        if self.kind == "int":
            return d.IntDistribution(
                int(self.low), int(self.high), log=self.log, step=self.step or 1
            )
        return d.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def to_json(self) -> dict[str, Any]:
        when = {WHEN: dict(self.when)} if self.when else {}
        if self.kind == "choice":
            return {"choices": self.choices} | when
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out | when

    def info(self) -> dict[str, Any]:
        """What a figure or the HTML report needs to draw the param's axis: ``kind`` (float,
        int, choice), ``scale`` (log, linear or categorical: the scale it was sampled on),
        ``low`` / ``high`` or ``choices``, and ``when`` (its condition, or None)."""
        scale = "categorical" if self.kind == "choice" else "log" if self.log else "linear"
        out: dict[str, Any] = {"kind": self.kind, "scale": scale}
        if self.kind == "choice":
            out["choices"] = self.choices
        else:
            out |= {"low": self.low, "high": self.high}
        return out | {"when": dict(self.when) if self.when else None}


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
    # a multi-objective search: its objectives (metric and direction are the first's), the
    # rule that picks best.yaml's trial on the front, NSGA-II's population size
    objectives: list[Objective] | None = None
    pick: str = "knee"
    population: int = NSGA2_POPULATION

    @property
    def directions(self) -> list[str]:
        """Each objective's direction (one for a single-objective search)."""
        return [o.direction for o in self.objectives] if self.objectives else [self.direction]

    @property
    def metrics(self) -> list[str]:
        """Each objective's metric (one for a single-objective search)."""
        return [o.metric for o in self.objectives] if self.objectives else [self.metric]

    def to_json(self) -> dict[str, Any]:
        goal: dict[str, Any] = (
            {"objectives": [o.to_json() for o in self.objectives], "pick": self.pick}
            if self.objectives
            else {"metric": self.metric, "direction": self.direction}
        )
        return (
            {
                "method": self.method,
                "trials": self.trials,
                **goal,
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
            | ({"population": self.population} if self.method == "nsga2" else {})
        )

    def order(self) -> list[str]:
        """The params in the order a trial asks for them: the sweep file's, except that a
        conditional param comes after the params its condition names."""
        out: list[str] = []

        def visit(key: str) -> None:
            if key not in out:
                for other in self.params[key].when or {}:
                    visit(other)
                out.append(key)

        for key in self.params:
            visit(key)
        return out

    def sample(self, trial) -> dict[str, Any]:
        """A trial's params from Optuna's ``trial``, define-by-run: each param in
        :meth:`order`, asked for only when its condition holds (one that does not apply is
        never suggested, so the trial lacks it). Dotted key -> value as the config takes it."""
        values: dict[str, Any] = {}
        for key in self.order():
            param = self.params[key]
            if param.applies(values):
                values[key] = decode(param, param.suggest(trial))
        return values

    def info(self) -> dict[str, dict[str, Any]]:
        """Each param's :meth:`Param.info`, in the sweep file's order."""
        return {k: p.info() for k, p in self.params.items()}

    def planned_jobs(self, seeds: list[int] | None) -> int:
        """The jobs the search runs at most: trials × seeds, and the confirmation jobs."""
        confirm = self.confirm["top"] * self.confirm["seeds"] if self.confirm else 0
        return self.trials * len(seeds or [None]) + confirm


def encode(choice: Any) -> Any:
    """A choice as Optuna stores it: lists (layer sizes) as their JSON text."""
    plain = choice is None or isinstance(choice, bool | int | float | str)
    return choice if plain else json.dumps(choice)


def decode(param: Param, value: Any) -> Any:
    """A value Optuna sampled for ``param``, as the config takes it."""
    if param.kind != "choice":
        return value
    return next(c for c in param.choices if encode(c) == value)


PATH_PARAMS = tuple(f"{section}.{key}" for section, key in PATH_KEYS)
RANGE_PROBES = 16  # values between low and high checked against the key's option


def _param(
    key: str,
    raw: Any,
    where: str,
    base_cfg: dict[str, Any],
    anchor: Path | None = None,
    given: dict[str, Any] | None = None,
) -> Param:
    """One ``params:`` entry, checked: its form, its bounds, and that the base config accepts
    its values, within the memory limit (so a trial can never be an invalid config; a size
    between the bounds needs no more memory than the larger bound). A range must also suit
    its key's type (an integer key takes integer low, high and step) and stay inside the
    key's bounds everywhere between low and high (:func:`_check_range`). File names among
    the choices (``data.path``) are made absolute against ``anchor``, the sweep file's
    folder, as a grid's values are. ``given``: the values a conditional param's condition
    sets (its values are checked with them, as its trials run)."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}.{key} must be {{low, high[, log, step]}} or {{choices: [...]}}, "
            f"got {shown(raw)}"
        )
    if "choices" in raw:
        choices = raw["choices"]
        if set(raw) != {"choices"} or not CHOICES.is_satisfied_by(choices):
            raise ConfigError(f"{where}.{key}: choices must be a non-empty list, alone")
        if key in PATH_PARAMS and anchor is not None:  # relative to the sweep file
            choices = [anchor_overrides({key: c}, anchor)[key] for c in choices]
        param = Param(key, "choice", choices=list(choices))
        values = choices
    else:
        known = all(RANGE_KEYS.is_satisfied_by(k) for k in raw)
        if not known or "low" not in raw or "high" not in raw:
            raise ConfigError(
                f"{where}.{key} must have low and high (and optionally log, step); "
                f"got keys {', '.join(map(str, raw))}"
            )
        low, high, log, step = raw["low"], raw["high"], raw.get("log", False), raw.get("step")
        if not (BOUND.is_satisfied_by(low) and BOUND.is_satisfied_by(high)) or low >= high:
            raise ConfigError(f"{where}.{key}: low and high must be numbers with low < high")
        require(log, LOG, f"{where}.{key}.log")
        if log and low <= 0:
            raise ConfigError(f"{where}.{key}: a log scale needs low > 0, got {low}")
        if step is not None and (not STEP.is_satisfied_by(step) or log):
            raise ConfigError(f"{where}.{key}.step must be a number > 0, and not with log: true")
        is_int = all(isinstance(v, int) for v in (low, high)) and (
            step is None or isinstance(step, int)
        )
        param = Param(key, "int" if is_int else "float", low, high, log, step)
        values = [low, high]
    for value in values:
        try:
            check_memory(load_config(base_cfg, {**(given or {}), key: value}))
        except NnlabError as exc:
            optimizer = re.search(r"applies to optimizer (\w+)", str(exc))
            hint = (
                f"; a param that applies only to one optimizer takes `when:`, e.g. "
                f"{key}: {{..., when: {{train.optimizer: {optimizer.group(1)}}}}}"
                if optimizer and not given
                else ""
            )
            raise ConfigError(
                f"{where}.{key}: the value {shown(value)} is refused: {exc}{hint}"
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
    if isinstance(opt.allowed, Integer) and param.kind != "int":
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
    refuse_unknown_keys(raw, SEARCH_KEYS, where)
    method = require(raw.get("method", "tpe"), METHOD, f"{where}.method")
    trials = require(raw.get("trials"), TRIALS, f"{where}.trials")
    metric, direction, objectives = parse_goal(raw, METRIC, where)
    if not (base_cfg.get("data", {}).get("val_size") or 0) > 0:
        named = f"{where}.objectives[0].metric" if objectives else f"{where}.metric"
        raise ConfigError(
            f"{named} is {metric} but the base config has no validation split; set "
            "data.val_size above 0"
        )
    seed = require(raw.get("seed", 0), SEED, f"{where}.seed")
    startup = require(raw.get("startup_trials", TPE_STARTUP), SEED, f"{where}.startup_trials")
    if "startup_trials" in raw and method != "tpe":
        raise ConfigError(
            f"{where}.startup_trials is the number of random trials before TPE models the "
            f"results: it needs method tpe, not {method}"
        )
    confirm = _confirm(raw.get("confirm"), where, trials)
    if not isinstance(raw_params, dict) or not raw_params:
        raise ConfigError(f"{path}: a search needs sweep.params: dotted keys with distributions")
    params = _params(raw_params, path, base_cfg, check_key)
    if confirm is not None and "seed" in params:
        raise ConfigError(
            f"{where}.confirm runs the finalists on fresh seeds: leave seed out of sweep.params"
        )
    pruner = parse_pruner(raw_pruner, f"{path}: sweep.pruner")
    if objectives is not None:
        refuse_with_objectives(raw, pruner, where)
    return SearchSpec(
        method, trials, metric, direction, seed, params, pruner, startup, confirm, objectives,
        parse_pick(raw, objectives, where), parse_population(raw, method, where),
    )  # fmt: skip


def _params(
    raw_params: dict[str, Any], path: Path, base_cfg: dict[str, Any], check_key
) -> dict[str, Param]:
    """The ``params:`` entries, checked, in the sweep file's order. A conditional entry's
    ``when`` names params with choices, each with one of its choices, without cycles; its
    values are checked in the config its condition makes (momentum with ``optimizer: sgd``)."""
    where = f"{path}: sweep.params"
    raws, whens = {}, {}
    for key, spec in raw_params.items():
        check_key(key, where)
        raws[key], whens[key] = split_when(key, spec, where)
    for key, when in whens.items():
        for other in when:
            check_condition_key(key, other, raws, where)
    order = acyclic(whens, where)
    params: dict[str, Param] = {}
    given: dict[str, dict[str, Any]] = {}
    for key in order:
        when = {}
        for other, value in whens[key].items():
            choices = params[other].choices
            if other in PATH_PARAMS and isinstance(value, str):  # relative to the sweep file
                value = anchor_overrides({other: value}, path.parent)[other]
            words = "one of its choices: " + ", ".join(value_text(c) for c in choices)
            when[other] = require(value, OneOf(choices, words=words), f"{where}.{key}.when.{other}")
        given[key] = implied(key, when, given, where)
        params[key] = _param(key, raws[key], where, base_cfg, path.parent, given[key])
        params[key].when = when or None
    return {key: params[key] for key in raws}


def _confirm(raw: Any, where: str, trials: int) -> dict[str, int] | None:
    """``search.confirm: {top: k, seeds: n}``, checked: 1 <= k <= trials, n >= 1."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}.confirm must be a mapping {{top: k, seeds: n}}; got {shown(raw)}"
        )
    refuse_unknown_keys(raw, CONFIRM_KEYS, f"{where}.confirm")
    out = {}
    for key, what in (("top", "the best trials to confirm"), ("seeds", "fresh seeds for each")):
        out[key] = require(raw.get(key), CONFIRM_COUNT, f"{where}.confirm.{key} ({what})")
    if out["top"] > trials:
        raise ConfigError(
            f"{where}.confirm.top is {out['top']}, more than the {trials} trials of the search"
        )
    return out


# -- the job ids of trials and of confirmation runs ---------------------------------------


def trial_number(job_id: str) -> int:
    """The trial a job belongs to: ``trial-0007,seed=1`` and ``confirm-0007,seed=1000`` are 7's."""
    return int(job_id.split(",")[0].split("-")[1])


def is_confirmation(job_id: str) -> bool:
    return job_id.startswith("confirm-")


def confirm_job_id(number: int, seed: int) -> str:
    """``confirm-0007,seed=1000``: trial 7 run again on a fresh seed."""
    return f"confirm-{number:04d},seed={seed}"


# the forms of trial_job_id and confirm_job_id
JOB_ID = re.compile(r"trial-\d+(,seed=\d+)?|confirm-\d+,seed=\d+")


def trial_job_id(number: int, seed: int | None) -> str:
    """``trial-0007`` (``trial-0007,seed=1`` when the search repeats trials over seeds)."""
    return f"trial-{number:04d}" + ("" if seed is None else f",seed={seed}")
