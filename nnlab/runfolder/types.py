"""The records of run and sweep folders as types: meta.json (:class:`Meta`), summary.json
(:class:`Summary`) and state.json (:class:`SweepRecord` with a :class:`JobEntry` per job)
(docs/design.md, 'Run folder', 'Sweep folder').

Whoever writes one (nnlab.runfolder.runs, nnlab.sweeps.state) builds the record and writes
its ``to_json()``; whoever reads one gets it from nnlab.runfolder.records, validated and then
made a record with ``from_json()``. The JSON keeps the shape nnlab always wrote. A record
remembers the keys it holds (``keys``: those it was read with, then those set with
``update``), so a field that was null stays null rather than going, and keys nnlab does not
know are kept (``other``). meta.json and summary.json keep their keys in that order (a file
read back and written again is the same file; a field set later comes after the others, as
it always did); state.json's keys are always in the order of the fields here. Fields in
``_ALWAYS`` are written even when null. ``record["key"]`` reads a value as the JSON holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar, TypeVar

from nnlab.common.status import JobStatus, RunStatus, SweepStatus

_BOOKKEEPING = ("other", "keys")
_R = TypeVar("_R", bound="_Record")


class _Record:
    """What every record shares: JSON out and in, with the key order and unknown keys kept.
    Each is a dataclass ending in ``other`` (keys nnlab does not know) and ``keys`` (the
    keys it holds, in the file's order)."""

    _ALWAYS: ClassVar[tuple[str, ...]] = ()  # written as null when None
    _KEY_ORDER: ClassVar[bool] = True  # keys in the order held (else in the fields' order)
    _PARSE: ClassVar[dict[str, Any]] = {}  # field -> a function from its JSON to its value

    other: dict[str, Any]
    keys: tuple[str, ...]

    @classmethod
    def _names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name not in _BOOKKEEPING]  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        """The record as nnlab writes it: plain JSON values, in the record's key order."""
        names = self._names()
        if self._KEY_ORDER:
            order = [*self.keys, *(n for n in names if n not in self.keys)]
        else:
            order = [*names, *self.keys]
        out: dict[str, Any] = {}
        for key in order:
            if key not in names:
                if key in self.other:
                    out[key] = self.other[key]
                continue
            value = getattr(self, key)
            if value is not None or key in self.keys or key in self._ALWAYS:
                out[key] = _plain(value)
        for key, value in self.other.items():
            out.setdefault(key, value)
        return out

    def __getitem__(self, key: str) -> Any:
        """The value of ``key`` as the JSON file holds it (the Python API's
        ``run.summary["final"]["train_loss"]``, docs/design.md); KeyError when not there."""
        return self.to_json()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` as the JSON file holds it, or ``default``: a record reads like
        the dict nnlab before 2026-12 returned."""
        return self.to_json().get(key, default)

    def update(self, **changes: Any) -> None:
        """Set fields (TypeError for one it has not; FrozenInstanceError on a frozen
        record); those it did not hold are written from now on, after the keys it held (so
        a null among them is written too)."""
        names = self._names()
        for key in changes:
            if key not in names:
                raise TypeError(f"{type(self).__name__} has no field {key!r}")
        held = tuple(self.to_json())
        for key, value in changes.items():
            setattr(self, key, value)
        self.keys = (*held, *(k for k in changes if k not in held))

    @classmethod
    def from_json(cls: type[_R], data: dict[str, Any]) -> _R:
        """The record of ``data``, a mapping already validated (nnlab.runfolder.records)."""
        names = cls._names()
        known = {k: cls._PARSE.get(k, _same)(v) for k, v in data.items() if k in names}
        other = {k: v for k, v in data.items() if k not in names}
        return cls(**known, other=other, keys=tuple(data))


def _same(value: Any) -> Any:
    return value


def _plain(value: Any) -> Any:
    """A field's value as JSON holds it."""
    if isinstance(value, _Record):
        return value.to_json()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _other() -> Any:
    """A record's ``other`` field: the keys nnlab does not know, with their values."""
    return field(default_factory=dict, repr=False, compare=False)


def _keys() -> Any:
    """A record's ``keys`` field: the keys it holds, in the file's order."""
    return field(default=(), repr=False, compare=False)


# -- a run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stopped(_Record):
    """meta.json's ``stopped``: why a hook ended the run early, and the step it stopped at."""

    reason: str
    step: int | None = None
    other: dict[str, Any] = _other()
    keys: tuple[str, ...] = _keys()
    _ALWAYS = ("step",)


@dataclass
class Meta(_Record):
    """A run's meta.json: its status and the facts of how it ran. The recorder changes it as
    the run goes (``status``, ``stopped``, ``warnings``...) and rewrites the file."""

    status: RunStatus
    name: str
    kind: str
    start_time: str
    end_time: str | None = None
    duration_seconds: float | None = None
    command: list[str] | None = None
    versions: dict[str, str | None] | None = None
    host: str | None = None
    pid: int | None = None
    error: str | None = None
    environment: dict[str, Any] | None = None  # nnlab.runfolder.environment
    repeat_of: str | None = None  # the run this one repeats (nnlab repro)
    git: dict[str, Any] | None = None  # nnlab.runfolder.provenance
    stopped: Stopped | None = None
    warnings: list[str] | None = None
    resumed: list[str] | None = None  # when it was resumed, each time
    fingerprint: dict[str, Any] | None = None  # nnlab.runfolder.fingerprint: sha256, code, data
    reused_from: str | None = None  # a copy of this completed run (nnlab.runfolder.memo)
    other: dict[str, Any] = _other()
    keys: tuple[str, ...] = _keys()
    _ALWAYS = ("end_time", "duration_seconds", "pid", "error")
    _PARSE = {"status": RunStatus, "stopped": lambda v: Stopped.from_json(v)}


@dataclass(frozen=True)
class EarlyStopping(_Record):
    """summary.json's ``early_stopping``: the metric watched, the best value and step, and
    whether the run stopped early and kept that step's weights (``row``: its metrics)."""

    metric: str
    mode: str
    best: float | None
    best_step: int | None
    stopped_early: bool
    weights_from_step: int | None
    row: dict[str, float] | None
    other: dict[str, Any] = _other()
    keys: tuple[str, ...] = _keys()
    _ALWAYS = ("best", "best_step", "weights_from_step", "row")


@dataclass(frozen=True)
class Summary(_Record):
    """A run's summary.json, written once when the run ends: its status, the final and best
    metrics and what the kind adds (the DCN's device and timings, the classes, ...)."""

    status: RunStatus
    final: dict[str, float]
    best: dict[str, float] | None = None
    n_params: int | None = None
    train_seconds: float | None = None
    classes: list[str] | None = None
    device: str | None = None
    eval_seconds: float | None = None
    images_per_second: float | None = None
    train_images_per_second: float | None = None  # (nnlab before 2026-12: dcn)
    startup_seconds: float | None = None
    early_stopping: EarlyStopping | None = None
    chance_acc: float | None = None
    did_not_learn: bool | None = None
    other: dict[str, Any] = _other()
    keys: tuple[str, ...] = _keys()
    _PARSE = {
        "status": RunStatus,
        "early_stopping": lambda v: None if v is None else EarlyStopping.from_json(v),
    }


def stayed_at_chance(summary: Summary | None) -> bool:
    """The run's accuracy stayed at chance: its summary says ``did_not_learn`` (False with no
    summary: a run that has not ended)."""
    return summary is not None and summary.did_not_learn is True


# -- a sweep ---------------------------------------------------------------------------------


def job_name(sweep: str, job_id: str) -> str:
    """A sweep job's run name — its config.yaml's and meta.json's ``name``, its figures'
    titles, its name in `nnlab runs` — from the sweep and the job: ``moons_activations /
    activation=relu`` (a plain run is named after its config file)."""
    return f"{sweep} / {job_id}"


@dataclass
class JobEntry(_Record):
    """One job's entry in state.json: its overrides, its status and its latest attempt
    (``run``, the attempt's folder relative to the sweep folder; its ``error`` and ``final``
    metric row; ``node``, where it ran, once an executor has reported on an attempt;
    ``reused``, the completed run its attempt folder was copied from instead of training)."""

    overrides: dict[str, Any]
    status: JobStatus = JobStatus.PENDING
    attempts: int = 0
    run: str | None = None
    error: str | None = None
    final: dict[str, Any] = field(default_factory=dict)
    node: str | None = None
    did_not_learn: bool = False  # its accuracy stayed at chance (written only when true)
    reused: str | None = None  # the run its attempt was copied from (written only when set)
    # a multi-objective search's job: its run's n_params and train_seconds (written when set)
    cost: dict[str, Any] = field(default_factory=dict)
    other: dict[str, Any] = _other()
    keys: tuple[str, ...] = _keys()
    _ALWAYS = ("run", "error")
    _KEY_ORDER = False
    _PARSE = {"status": JobStatus}

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if not self.did_not_learn:
            out.pop("did_not_learn", None)
        if self.reused is None:
            out.pop("reused", None)
        if not self.cost:
            out.pop("cost", None)
        return out


@dataclass
class SweepRecord(_Record):
    """A sweep's state.json: its status, a :class:`JobEntry` per job id, and the driver
    process that last ran it (``pid``, ``host``); ``plot_error`` when the comparison figures
    failed, ``error`` when an error ended the sweep."""

    name: str
    created: str
    updated: str
    status: SweepStatus = SweepStatus.RUNNING
    jobs: dict[str, JobEntry] = field(default_factory=dict)
    plot_error: str | None = None
    pid: int | None = None
    host: str | None = None
    error: str | None = None
    other: dict[str, Any] = _other()
    keys: tuple[str, ...] = _keys()
    _KEY_ORDER = False
    _PARSE = {
        "status": SweepStatus,
        "jobs": lambda jobs: {job_id: JobEntry.from_json(e) for job_id, e in jobs.items()},
    }

    def to_json(self) -> dict[str, Any]:
        """state.json: ``plot_error``, ``pid``, ``host`` and ``error`` only when they are
        set."""
        out = super().to_json()
        for key in ("plot_error", "pid", "host", "error"):
            if out.get(key, ...) is None:
                del out[key]
        return out

    def counts(self) -> dict[JobStatus, int]:
        """How many jobs have each status, every status listed."""
        out = dict.fromkeys(JobStatus, 0)
        for entry in self.jobs.values():
            out[entry.status] += 1
        return out
