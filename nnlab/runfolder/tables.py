"""metrics.csv and stats.csv of a run read back, validated (docs/design.md, 'Reading files
back'): a file cut short, hand-edited or not CSV is one :class:`RecordError` naming the file,
the line and the column, never a traceback from deep inside a reader."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnlab.common.metrics import COUNTERS
from nnlab.runfolder.records import RecordError, open_record, shown

COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a metric names figures' files too


def _cell(path: Path, line: int, column: str, text: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(text)
    except ValueError:
        kind = "an integer" if parse is int else "a number"
        raise RecordError(
            f"{path}: line {line}, column {column} is {shown(text)}; expected {kind}"
        ) from None


def _read_table(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    """A CSV file's header and rows, every row as long as the header and the ``required``
    columns there; [] rows when the file is missing or empty."""
    try:
        with open_record(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
            lines = list(csv.reader(f))
    except FileNotFoundError:
        return [], []
    except UnicodeDecodeError:
        raise RecordError(f"{path}: cannot be read: not UTF-8 text") from None
    except (OSError, csv.Error) as exc:
        raise RecordError(f"{path}: cannot be read: {' '.join(str(exc).split())}") from None
    if not lines:
        return [], []
    header, rows = lines[0], lines[1:]
    for name in required:
        if name not in header:
            raise RecordError(f"{path}: the header has no {name} column")
    for name in header:
        if not COLUMN_NAME.fullmatch(name):
            raise RecordError(
                f"{path}: the header's column {shown(name)} is not a name (letters, digits, _)"
            )
    if len(set(header)) != len(header):
        raise RecordError(f"{path}: the header repeats a column name")
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise RecordError(
                f"{path}: line {line} has {len(row)} fields, the header {len(header)} "
                "(cut short or hand-edited?)"
            )
    return header, rows


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv as rows of floats (``step`` and ``epoch`` as integers, empty cells left
    out); [] when there is no file or no row yet."""
    header, rows = _read_table(path, ("step",))
    out = []
    for line, row in enumerate(rows, start=2):
        if not row[header.index("step")]:
            raise RecordError(f"{path}: line {line}, column step is empty; expected an integer")
        out.append(
            {
                k: _cell(path, line, k, v, int if k in COUNTERS else float)
                for k, v in zip(header, row, strict=True)
                if v != ""
            }
        )
    return out


STATS_COLUMNS = ("step", "layer", "quantity", "min", "max", "mean", "std")


def read_stats(path: Path) -> list[dict[str, Any]]:
    """The DCN's stats.csv: step (an integer), layer and quantity (text), min, max, mean and
    std (numbers)."""
    header, rows = _read_table(path, STATS_COLUMNS)
    parse = {"step": int, "layer": str, "quantity": str}
    return [
        {k: _cell(path, line, k, row[header.index(k)], parse.get(k, float)) for k in STATS_COLUMNS}
        for line, row in enumerate(rows, start=2)
    ]
