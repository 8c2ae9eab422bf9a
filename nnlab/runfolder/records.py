"""Every file nnlab reads back, validated in one place into records of the shape nnlab writes
(docs/design.md, 'Run folder', 'Sweep folder' and 'Reading files back').

meta.json, summary.json and config.yaml of a run, sweep.yaml and state.json of a sweep (and
metrics.csv and stats.csv, read by nnlab.runfolder.tables) may have been hand-edited, cut
short by a full disk, or written by something else. Whoever reads them — ``nnlab runs``,
``report``, ``plot``, ``sweep --resume``, ``train --resume`` — gets them through the readers
here, so a file that is not what nnlab writes is one :class:`RecordError`: one line naming the
file, the field and what was expected, never a traceback from deep inside a reader. The JSON
records come back typed (nnlab.runfolder.types). Fields nnlab does not know are kept, so that
a newer nnlab's folders still read; values shown in messages are cut short.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from nnlab.common.metrics import COUNTERS, LABELS
from nnlab.common.status import JobStatus, RunStatus, SweepStatus, texts
from nnlab.common.yamlread import MAX_BYTES as MAX_YAML_BYTES
from nnlab.common.yamlread import check_file, open_file, read_file
from nnlab.config.options import load_config, read_yaml_file
from nnlab.errors import NnlabError
from nnlab.runfolder.types import Meta, Summary, SweepRecord

MAX_RECORD_BYTES = 256 * 2**20  # far above any record nnlab writes; a bound before parsing
SHOWN_CHARS = 40  # how much of a bad value a message repeats


class RecordError(NnlabError):
    """A file nnlab reads back is unreadable or not of the shape nnlab writes it in."""


class _Mismatch(Exception):
    """A value that does not fit its shape; becomes a RecordError once the file is known."""

    def __init__(self, where: str, text: str):
        super().__init__(f"{where} {text}" if where else text)


def shown(value: Any) -> str:
    """A value as a one-line message repeats it: containers by kind, text cut short and with
    its control characters escaped."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


# -- shapes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What a value must be: ``test`` says whether it is, ``allowed`` says so in words."""

    allowed: str
    test: Callable[[Any], bool] = lambda value: True

    def check(self, value: Any, where: str) -> Any:
        if not self.test(value):
            raise _Mismatch(where, f"is {shown(value)}; expected {self.allowed}")
        return value


@dataclass(frozen=True)
class Nullable(Shape):
    """``inner``, or null (made by :func:`nullable`)."""

    inner: Shape | None = None

    def check(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner.check(value, where)


def nullable(inner: Shape) -> Nullable:
    return Nullable(f"{inner.allowed} or null", inner=inner)


@dataclass(frozen=True)
class ListOf(Shape):
    """A list whose every item has the ``item`` shape (and at least ``min_len`` items)."""

    item: Shape | None = None  # None: any item
    min_len: int = 0

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, list) or len(value) < self.min_len:
            raise _Mismatch(where, f"is {shown(value)}; expected {self.allowed}")
        if self.item is None:
            return value
        return [self.item.check(v, f"{where}[{i}]") for i, v in enumerate(value)]


@dataclass(frozen=True)
class Record(Shape):
    """A mapping with text keys: ``fields`` have their own shapes (``required`` ones must be
    there); any other key has the ``rest`` shape, or is kept as it is when ``rest`` is None.
    ``bracket`` names the other keys as ``where[key]`` (job ids hold dots), else
    ``where.key``."""

    fields: dict[str, Shape] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    rest: Shape | None = None
    bracket: bool = False

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise _Mismatch(where, f"is {shown(value)}; expected {self.allowed}")
        for key in self.required:
            if key not in value:
                raise _Mismatch(_inside(where, key), "is missing (nnlab always writes it)")
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Mismatch(where, f"has the key {shown(key)}; keys are text")
            shape = self.fields.get(key, self.rest)
            name = f"{where}[{key_text(key)}]" if self.bracket else _inside(where, key)
            out[key] = item if shape is None else shape.check(item, name)
        return out


def _inside(where: str, key: str) -> str:
    return f"{where}.{key_text(key)}" if where else key_text(key)


def key_text(key: str) -> str:
    """A key (a job id, a metric name) as a message names it: control characters escaped,
    cut short."""
    text = repr(key)[1:-1]
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _timestamp(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def _inside_folder(value: Any) -> bool:
    """A relative path that stays inside the folder it is relative to."""
    if not isinstance(value, str) or not value:
        return False
    path = PurePosixPath(value)
    return not path.is_absolute() and ".." not in path.parts


def one_of(choices: Iterable[str]) -> Shape:
    choices = tuple(choices)
    return Shape(f"one of {', '.join(choices)}", lambda v: isinstance(v, str) and v in choices)


ANY = Shape("anything")
TEXT = Shape("text", lambda v: isinstance(v, str))
NUMBER = Shape("a finite number", _number)
SECONDS = Shape("a number of seconds >= 0", lambda v: _number(v) and v >= 0)
COUNT = Shape("an integer >= 0", lambda v: _integer(v) and v >= 0)
FLAG = Shape("true or false", lambda v: isinstance(v, bool))
TIMESTAMP = Shape("an ISO 8601 time, e.g. 2026-01-31T12:00:00+00:00", _timestamp)
INSIDE = Shape("a path inside the sweep folder, e.g. jobs/<id>/attempt-1", _inside_folder)
MAPPING = Record("a mapping")
METRIC_ROW = Record(
    "a mapping of metric names to numbers",
    fields=dict.fromkeys(COUNTERS, COUNT),
    rest=NUMBER,
)
EARLY_STOPPING = Record(
    "a mapping: metric, mode, best, best_step, stopped_early, weights_from_step, row",
    fields={
        "metric": TEXT,
        "mode": one_of(("min", "max")),
        "best": nullable(NUMBER),
        "best_step": nullable(COUNT),
        "stopped_early": FLAG,
        "weights_from_step": nullable(COUNT),
        "row": nullable(METRIC_ROW),
    },
    required=("metric", "mode", "best", "best_step", "stopped_early", "weights_from_step", "row"),
)
META = Record(
    "a JSON object (a run's meta.json)",
    fields={
        "status": one_of(texts(RunStatus)),
        "name": TEXT,
        "kind": TEXT,
        "start_time": TIMESTAMP,
        "end_time": nullable(TIMESTAMP),
        "duration_seconds": nullable(SECONDS),
        "command": ListOf("a list of the command's words", item=TEXT),
        "versions": Record("a mapping of packages to versions", rest=nullable(TEXT)),
        "host": TEXT,
        "pid": nullable(COUNT),
        "error": nullable(TEXT),
        "resumed": ListOf("a list of times", item=TIMESTAMP),
        "warnings": ListOf("a list of texts", item=TEXT),
        "stopped": Record(
            "a mapping: reason, step",
            fields={"reason": TEXT, "step": nullable(COUNT)},
            required=("reason",),
        ),
        "environment": Record(
            "a mapping: threads, device, precision, libraries, blas, torch, cpu, ...",
            fields={"threads": COUNT, "device": TEXT, "precision": TEXT},
        ),
        "repeat_of": TEXT,
    },
    required=("status", "name", "kind", "start_time"),
)
SUMMARY = Record(
    "a JSON object (a run's summary.json)",
    fields={
        "status": one_of(texts(RunStatus)),
        "final": METRIC_ROW,
        "best": Record("a mapping of metric names to numbers", rest=NUMBER),
        "n_params": COUNT,
        "train_seconds": SECONDS,
        "classes": ListOf("a list of class names", item=TEXT),
        "device": TEXT,
        "train_images_per_second": nullable(SECONDS),  # (nnlab before 2026-12: dcn)
        "images_per_second": nullable(SECONDS),
        "eval_seconds": SECONDS,
        "startup_seconds": nullable(SECONDS),
        "chance_acc": Shape("a fraction in [0, 1]", lambda v: _number(v) and 0 <= v <= 1),
        "did_not_learn": FLAG,
        "early_stopping": nullable(EARLY_STOPPING),
    },
    required=("status", "final"),
)
JOB = Record(
    "a mapping: overrides, status, attempts, run, error, final",
    fields={
        "overrides": Record("a mapping of dotted keys to values"),
        "status": one_of(texts(JobStatus)),
        "attempts": COUNT,
        "run": nullable(INSIDE),
        "error": nullable(TEXT),
        "final": METRIC_ROW,
        "node": nullable(TEXT),
        "did_not_learn": FLAG,
    },
    required=("overrides", "status", "attempts", "run", "error", "final"),
)
STATE = Record(
    "a JSON object (a sweep's state.json)",
    fields={
        "name": TEXT,
        "created": TIMESTAMP,
        "updated": TIMESTAMP,
        "status": one_of(texts(SweepStatus)),
        "jobs": Record("a mapping of job ids to jobs", rest=JOB, bracket=True),
        "plot_error": nullable(TEXT),
        "pid": nullable(COUNT),  # the driver that last ran it, and its host
        "host": nullable(TEXT),
        "error": nullable(TEXT),  # why the sweep stopped, when an error ended it
    },
    required=("name", "created", "updated", "status", "jobs"),
)
TABLE = Record(
    "a mapping: rows, cols, value",
    fields={"rows": TEXT, "cols": TEXT, "value": one_of(LABELS)},
    required=("rows", "cols", "value"),
)
SWEEP_RECORD = Record(
    "a mapping: sweep, base_config, jobs (a sweep's sweep.yaml)",
    fields={
        "sweep": Record(
            "a mapping: name, base, file, overrides, grid, variants, seeds, table[, search]",
            fields={
                "name": TEXT,
                "base": TEXT,
                "file": TEXT,
                "overrides": Record("a mapping of dotted keys to values"),
                "grid": Record(
                    "a mapping of dotted keys to lists of values",
                    rest=ListOf("a non-empty list of values", min_len=1),
                ),
                "variants": ListOf("a list of mappings", item=Record("a mapping of dotted keys")),
                "seeds": nullable(ListOf("a list of integers >= 0", item=COUNT)),
                "table": ListOf("a list of tables", item=TABLE),
                "search": nullable(MAPPING),
            },
            required=("name", "base", "file", "overrides", "grid", "variants", "seeds", "table"),
        ),
        "base_config": Record("a mapping (the resolved base config)"),
        "jobs": Record(
            "a mapping of job ids to their overrides",
            rest=Record("a mapping of dotted keys to values"),
            bracket=True,
        ),
    },
    required=("sweep", "base_config", "jobs"),
)


def check(path: Path, data: Any, shape: Shape) -> Any:
    """``data`` read from ``path``, checked against ``shape``; RecordError naming the file and
    the field otherwise."""
    try:
        return shape.check(data, "")
    except _Mismatch as exc:
        raise RecordError(f"{path}: {exc}") from None


# -- JSON ------------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows (nnlab never writes it)")


def read_record_bytes(path: Path, limit: int = MAX_RECORD_BYTES) -> bytes:
    """The bytes of a file nnlab reads back, through the checks configs get
    (:func:`nnlab.common.yamlread.read_file`): a regular file of at most ``limit`` bytes, checked
    before it is opened — a FIFO, a device (a link to /dev/zero) or a folder in its place is
    a RecordError naming it, never a hang or a read without end. FileNotFoundError passes
    through."""
    return read_file(path, str(path), limit, error=RecordError)


def open_record(path: Path, limit: int = MAX_RECORD_BYTES) -> BinaryIO:
    """``path`` opened for reading after the checks of :func:`read_record_bytes` (for a
    reader that streams, such as a CSV's); FileNotFoundError passes through."""
    return open_file(path, str(path), limit, error=RecordError)


def check_record_file(path: Path, limit: int = MAX_RECORD_BYTES) -> None:
    """The checks of :func:`read_record_bytes` on a file another library opens (a model, a
    figure): RecordError unless it is a regular file of at most ``limit`` bytes;
    FileNotFoundError passes through."""
    check_file(os.stat(path), str(path), limit, error=RecordError)


def check_model_files(folder: Path) -> None:
    """The type checks of :func:`check_record_file` on a run's saved model (``model.*``,
    whatever its kind's format), before its library opens it: a model may be large, so no
    size is imposed."""
    for path in sorted(folder.glob("model.*")):
        check_record_file(path, limit=2**62)


def read_json(path: Path, shape: Shape, missing: str) -> Any:
    """The JSON record in ``path``, checked against ``shape``; RecordError with the message
    ``missing`` when there is no such file, or naming the file and the problem."""
    try:
        data = json.loads(read_record_bytes(path).decode("utf-8"), parse_constant=_refuse_constant)
    except FileNotFoundError:
        raise RecordError(missing) from None
    except UnicodeDecodeError:
        raise RecordError(f"{path}: cannot be read: not UTF-8 text") from None
    except RecursionError:
        raise RecordError(f"{path}: cannot be read: nested too deeply") from None
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: cannot be read: {exc}") from None
    return check(path, data, shape)


def read_meta(folder: Path) -> Meta:
    """A run's meta.json."""
    path = folder / "meta.json"
    return Meta.from_json(read_json(path, META, f"{folder}: no meta.json (not a run folder?)"))


def read_summary(folder: Path) -> Summary | None:
    """A run's summary.json; None while the run has not ended."""
    path = folder / "summary.json"
    if not path.exists():
        return None
    return Summary.from_json(read_json(path, SUMMARY, f"{folder}: no summary.json"))


def read_state(folder: Path) -> SweepRecord:
    """A sweep's state.json."""
    path = folder / "state.json"
    data = read_json(path, STATE, f"{folder} is not a sweep folder (no state.json)")
    return SweepRecord.from_json(data)


# -- YAML ------------------------------------------------------------------------------------


def read_run_config(folder: Path) -> dict[str, Any]:
    """A run's config.yaml, validated as `nnlab train` would validate it (a regular file:
    nnlab reads no pipe or device back from a folder)."""
    path = folder / "config.yaml"
    with contextlib.suppress(FileNotFoundError):  # load_config names a missing file
        check_record_file(path, MAX_YAML_BYTES)
    return resolved_config(path, "", path)


def resolved_config(
    path: Path, where: str, source: Path | dict[str, Any], overrides: dict | None = None
) -> dict[str, Any]:
    """A config read back from ``path`` (its field ``where``, when the file holds more than the
    config), validated and resolved; RecordError naming the file and field otherwise."""
    try:
        return load_config(source, overrides)
    except NnlabError as exc:
        text = str(exc)
        if str(path) not in text:  # a file's YAML errors name it already
            text = f"{path}: {where}: {text}" if where else f"{path}: {text}"
        raise RecordError(text) from None


def read_sweep_record(folder: Path) -> dict[str, Any]:
    """A sweep's sweep.yaml, of the shape nnlab writes (the configs in it are validated by
    whoever builds jobs from them, with :func:`resolved_config`)."""
    path = folder / "sweep.yaml"
    if not path.exists():
        raise RecordError(f"{folder} is not a sweep folder (no sweep.yaml)")
    try:
        data = read_yaml_file(path, what="sweep record", pipes=False)
    except NnlabError as exc:
        raise RecordError(str(exc)) from None
    return check(path, data, SWEEP_RECORD)
