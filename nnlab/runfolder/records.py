"""Every file nnlab reads back, validated in one place into records of the shape nnlab writes
(docs/run-folder.md; docs/reliability.md, 'Reading files back').

meta.json, summary.json, config.yaml and metrics.csv of a run (a DCN's stats.csv:
nnlab.models.dcn.figures, through the same CSV reader, nnlab.common.csvtable), sweep.yaml and
state.json of a sweep may have been hand-edited, cut short by a full disk, or written by
something else. Whoever reads them — ``nnlab runs``, ``report``, ``plot``, ``sweep --resume``,
``train --resume`` — gets them through the readers here, so a file that is not what nnlab
writes is one :class:`RecordError`: one line naming the file, the field and what was expected,
never a traceback from deep inside a reader. The JSON records come back typed
(nnlab.runfolder.types). Fields nnlab does not know are kept, so that a newer nnlab's folders
still read; values shown in messages are cut short.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from nnlab.common.constraints import (
    Boolean,
    Constraint,
    Fields,
    Integer,
    ListOf,
    Mismatch,
    Nullable,
    Number,
    OneOf,
    Predicate,
    Text,
)
from nnlab.common.csvtable import MAX_BYTES as MAX_RECORD_BYTES
from nnlab.common.csvtable import SHOWN_CHARS, cell, read_table
from nnlab.common.metrics import COUNTERS, LABELS
from nnlab.common.status import JobStatus, RunStatus, SweepStatus, texts
from nnlab.common.yamlread import MAX_BYTES as MAX_YAML_BYTES
from nnlab.common.yamlread import check_file, read_file, read_yaml_file
from nnlab.config.resolve import load_config
from nnlab.errors import NnlabError
from nnlab.runfolder.types import Meta, Summary, SweepRecord


class RecordError(NnlabError):
    """A file nnlab reads back is unreadable or not of the shape nnlab writes it in."""


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


# -- shapes (in the constraint vocabulary, nnlab.common.constraints) -----------------------


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


# Values are kept as written (a record's numbers are not converted), and an integer is one
# that nnlab wrote as an integer (exact: 3.0 steps is not a record of nnlab's).
TEXT = Text()
NUMBER = Number(keep_type=True)
SECONDS = Number(0, keep_type=True, words="a number of seconds >= 0")
COUNT = Integer(0, exact=True)
FLAG = Boolean()
TIMESTAMP = Predicate(
    "an ISO 8601 time, e.g. 2026-01-31T12:00:00+00:00",
    _timestamp,
    {"type": "string", "format": "date-time"},
)
INSIDE = Predicate(
    "a path inside the sweep folder, e.g. jobs/<id>/attempt-1", _inside_folder, {"type": "string"}
)
MAPPING = Fields("a mapping")
METRIC_ROW = Fields(
    "a mapping of metric names to numbers",
    fields=dict.fromkeys(COUNTERS, COUNT),
    rest=NUMBER,
)
EARLY_STOPPING = Fields(
    "a mapping: metric, mode, best, best_step, stopped_early, weights_from_step, row",
    fields={
        "metric": TEXT,
        "mode": OneOf(("min", "max")),
        "best": Nullable(NUMBER),
        "best_step": Nullable(COUNT),
        "stopped_early": FLAG,
        "weights_from_step": Nullable(COUNT),
        "row": Nullable(METRIC_ROW),
    },
    required=("metric", "mode", "best", "best_step", "stopped_early", "weights_from_step", "row"),
)
META = Fields(
    "a JSON object (a run's meta.json)",
    fields={
        "status": OneOf(texts(RunStatus)),
        "name": TEXT,
        "kind": TEXT,
        "start_time": TIMESTAMP,
        "end_time": Nullable(TIMESTAMP),
        "duration_seconds": Nullable(SECONDS),
        "command": ListOf(TEXT, words="a list of the command's words"),
        "versions": Fields("a mapping of packages to versions", rest=Nullable(TEXT)),
        "host": TEXT,
        "pid": Nullable(COUNT),
        "error": Nullable(TEXT),
        "resumed": ListOf(TIMESTAMP, words="a list of times"),
        "warnings": ListOf(TEXT, words="a list of texts"),
        "stopped": Fields(
            "a mapping: reason, step",
            fields={"reason": TEXT, "step": Nullable(COUNT)},
            required=("reason",),
        ),
        "environment": Fields(
            "a mapping: threads, device, precision, libraries, blas, torch, cpu, ...",
            fields={"threads": COUNT, "device": TEXT, "precision": TEXT},
        ),
        "repeat_of": TEXT,
        "fingerprint": Fields(
            "a mapping: sha256, code, data",
            fields={"sha256": TEXT, "code": Fields("a mapping"), "data": Fields("a mapping")},
            required=("sha256",),
        ),
        "reused_from": TEXT,
    },
    required=("status", "name", "kind", "start_time"),
)
SUMMARY = Fields(
    "a JSON object (a run's summary.json)",
    fields={
        "status": OneOf(texts(RunStatus)),
        "final": METRIC_ROW,
        "best": Fields("a mapping of metric names to numbers", rest=NUMBER),
        "n_params": COUNT,
        "train_seconds": SECONDS,
        "classes": ListOf(TEXT, words="a list of class names"),
        "device": TEXT,
        "train_images_per_second": Nullable(SECONDS),  # (nnlab before 2026-12: dcn)
        "images_per_second": Nullable(SECONDS),
        "eval_seconds": SECONDS,
        "startup_seconds": Nullable(SECONDS),
        "chance_acc": Number(0, 1, keep_type=True, words="a fraction in [0, 1]"),
        "did_not_learn": FLAG,
        "early_stopping": Nullable(EARLY_STOPPING),
    },
    required=("status", "final"),
)
JOB = Fields(
    "a mapping: overrides, status, attempts, run, error, final",
    fields={
        "overrides": Fields("a mapping of dotted keys to values"),
        "status": OneOf(texts(JobStatus)),
        "attempts": COUNT,
        "run": Nullable(INSIDE),
        "error": Nullable(TEXT),
        "final": METRIC_ROW,
        "node": Nullable(TEXT),
        "did_not_learn": FLAG,
        "reused": TEXT,
        "cost": Fields(
            "a mapping: n_params, train_seconds",
            fields={"n_params": COUNT, "train_seconds": SECONDS},
        ),
    },
    required=("overrides", "status", "attempts", "run", "error", "final"),
)
STATE = Fields(
    "a JSON object (a sweep's state.json)",
    fields={
        "name": TEXT,
        "created": TIMESTAMP,
        "updated": TIMESTAMP,
        "status": OneOf(texts(SweepStatus)),
        "jobs": Fields("a mapping of job ids to jobs", rest=JOB, bracket=True),
        "plot_error": Nullable(TEXT),
        "pid": Nullable(COUNT),  # the driver that last ran it, and its host
        "host": Nullable(TEXT),
        "error": Nullable(TEXT),  # why the sweep stopped, when an error ended it
    },
    required=("name", "created", "updated", "status", "jobs"),
)
TABLE = Fields(
    "a mapping: rows, cols, value",
    fields={"rows": TEXT, "cols": TEXT, "value": OneOf(LABELS)},
    required=("rows", "cols", "value"),
)
SWEEP_RECORD = Fields(
    "a mapping: sweep, base_config, jobs (a sweep's sweep.yaml)",
    fields={
        "sweep": Fields(
            "a mapping: name, base, file, overrides, grid, variants, seeds, table[, search]",
            fields={
                "name": TEXT,
                "base": TEXT,
                "file": TEXT,
                "overrides": Fields("a mapping of dotted keys to values"),
                "grid": Fields(
                    "a mapping of dotted keys to lists of values",
                    rest=ListOf(min_len=1, words="a non-empty list of values"),
                ),
                "variants": ListOf(Fields("a mapping of dotted keys"), words="a list of mappings"),
                "seeds": Nullable(ListOf(COUNT, words="a list of integers >= 0")),
                "table": ListOf(TABLE, words="a list of tables"),
                "search": Nullable(MAPPING),
            },
            required=("name", "base", "file", "overrides", "grid", "variants", "seeds", "table"),
        ),
        "base_config": Fields("a mapping (the resolved base config)"),
        "jobs": Fields(
            "a mapping of job ids to their overrides",
            rest=Fields("a mapping of dotted keys to values"),
            bracket=True,
        ),
    },
    required=("sweep", "base_config", "jobs"),
)


def check(path: Path, data: Any, shape: Constraint) -> Any:
    """``data`` read from ``path``, checked against ``shape``; RecordError naming the file and
    the field otherwise."""
    try:
        return shape.check(data, "")
    except Mismatch as exc:
        raise RecordError(f"{path}: {_mismatch(exc)}") from None


def _mismatch(exc: Mismatch) -> str:
    """What does not fit, in words: "<field> is 3; expected text"."""
    if exc.reason == "missing":
        text = "is missing (nnlab always writes it)"
    elif exc.reason == "key":
        text = f"has the key {shown(exc.value)}; keys are text"
    else:
        text = f"is {shown(exc.value)}; expected {exc.expected}"
    return f"{exc.where} {text}" if exc.where else text


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


def read_json(path: Path, shape: Constraint, missing: str) -> Any:
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


# -- CSV -------------------------------------------------------------------------------------


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv as rows of floats (``step`` and ``epoch`` as integers, empty cells left
    out); [] when there is no file or no row yet."""
    header, rows = read_table(path, ("step",), RecordError)
    out = []
    for line, row in enumerate(rows, start=2):
        if not row[header.index("step")]:
            raise RecordError(f"{path}: line {line}, column step is empty; expected an integer")
        out.append(
            {
                k: cell(path, line, k, v, int if k in COUNTERS else float, RecordError)
                for k, v in zip(header, row, strict=True)
                if v != ""
            }
        )
    return out
