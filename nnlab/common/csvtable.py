"""CSV files nnlab writes and reads back (a run's metrics.csv, a DCN's stats.csv): a header of
column names, then rows as long as it.

Every problem is one line of the caller's ``error`` naming the file, and the line and column
where it applies (docs/design.md, 'Reading files back').
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnlab.common.yamlread import clip, open_file

MAX_BYTES = 256 * 2**20  # far above any table or record nnlab writes; a bound before parsing
SHOWN_CHARS = 40  # how much of a bad value a message repeats
COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a metric names figures' files too


def cell(
    path: Path,
    line: int,
    column: str,
    text: str,
    parse: Callable[[str], Any],
    error: type[Exception],
) -> Any:
    """``text`` of ``column`` on ``line`` parsed, or ``error`` saying what was expected."""
    try:
        return parse(text)
    except ValueError:
        kind = "an integer" if parse is int else "a number"
        raise error(
            f"{path}: line {line}, column {column} is {clip(repr(text), SHOWN_CHARS)}; "
            f"expected {kind}"
        ) from None


def read_table(
    path: Path, required: tuple[str, ...], error: type[Exception]
) -> tuple[list[str], list[list[str]]]:
    """A CSV file's header and rows, every row as long as the header and the ``required``
    columns there; [] rows when the file is missing or empty. The file gets the checks of
    :func:`nnlab.common.yamlread.open_file` (a regular file of at most MAX_BYTES)."""
    try:
        with (
            open_file(path, str(path), MAX_BYTES, error=error) as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as f,
        ):
            lines = list(csv.reader(f))
    except FileNotFoundError:
        return [], []
    except UnicodeDecodeError:
        raise error(f"{path}: cannot be read: not UTF-8 text") from None
    except (OSError, csv.Error) as exc:
        raise error(f"{path}: cannot be read: {' '.join(str(exc).split())}") from None
    if not lines:
        return [], []
    header, rows = lines[0], lines[1:]
    for name in required:
        if name not in header:
            raise error(f"{path}: the header has no {name} column")
    for name in header:
        if not COLUMN_NAME.fullmatch(name):
            raise error(
                f"{path}: the header's column {clip(repr(name), SHOWN_CHARS)} is not a name "
                "(letters, digits, _)"
            )
    if len(set(header)) != len(header):
        raise error(f"{path}: the header repeats a column name")
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise error(
                f"{path}: line {line} has {len(row)} fields, the header {len(header)} "
                "(cut short or hand-edited?)"
            )
    return header, rows


STAT_COLUMNS = ("step", "layer", "quantity", "min", "max", "mean", "std")  # a DCN's stats.csv
STATISTICS = STAT_COLUMNS[3:]  # its statistics' columns, in the figures' and the page's order
QUANTITIES = ("weights", "biases", "net_input", "activation", "pool")  # in the network's order


def read_stats(path: Path, error: type[Exception]) -> list[dict[str, Any]]:
    """A DCN's stats.csv: step (an integer), layer and quantity (text), min, max, mean and std
    (numbers); [] when the file is missing; one ``error`` naming the file, line and column for
    anything else."""
    header, rows = read_table(path, STAT_COLUMNS, error)
    parse: dict[str, Callable[[str], Any]] = {"step": int, "layer": str, "quantity": str}
    return [
        {
            k: cell(path, line, k, row[header.index(k)], parse.get(k, float), error)
            for k in STAT_COLUMNS
        }
        for line, row in enumerate(rows, start=2)
    ]
