"""The data rows of a user's CSV table, gathered in blocks of CHUNK_ROWS: the fast way
(NumPy's parser, for a block of plain lines) and the careful way (record by record), which
names the first bad cell."""

from __future__ import annotations

import itertools
import operator

import numpy as np

from nnlab.data.tables._columns import _Columns
from nnlab.data.tables._common import _fail, _is_number, _show
from nnlab.errors import DataError

CHUNK_ROWS = 2000  # rows read and converted at a time


def _is_blank(row: list[str]) -> bool:
    """A record from a line that holds nothing but spaces."""
    return len(row) == 0 or (len(row) == 1 and not row[0].strip())


def _bad_feature(cols: _Columns, line: int, j: int, cell: str, delimiter: str) -> DataError:
    """The message for a feature cell that ``float`` refused or parsed to NaN / infinity."""
    where = f"line {line}, {cols.label(j)}"
    if not cell.strip():
        return _fail(
            cols.path, f"{where}: empty cell (a missing value); every feature needs a number"
        )
    try:
        value = float(cell)
    except ValueError:
        hint = ""
        if delimiter != "," and "," in cell and _is_number(cell.replace(",", ".", 1)):
            hint = "; a decimal comma? write decimals with a point"
        elif line == 1 and not cols.header:
            hint = "; if line 1 is a header, set data.header: true"
        return _fail(
            cols.path,
            f"{where}: {_show(cell)} is not a number; features must be numbers "
            f"(int or float text){hint}",
        )
    reads = "" if str(value) in cell.strip().lower() else f" (it reads as {value})"
    return _fail(
        cols.path,
        f"{where}: {_show(cell)} is not a finite number{reads}; features must be finite "
        "(the MLP cannot use NaN or infinity)",
    )


class _Rows:
    """The data rows of one CSV file, gathered in file order: X in blocks, the label texts and
    their line numbers. Rows given one by one are checked the careful way (:meth:`add`), and
    the first problem raises, after every row before it has been checked."""

    def __init__(self, cols: _Columns, chosen: list[int], delimiter: str):
        self.cols, self.chosen, self.delimiter = cols, chosen, delimiter
        d = len(chosen)
        self.pick = operator.itemgetter(*chosen) if d > 1 else (lambda row: (row[chosen[0]],))
        self.blocks: list[np.ndarray] = []
        self.labels: list[str] = []
        self.lines: list[int] = []
        self.chunk: list[tuple[str, ...]] = []  # feature cells not yet converted
        self.chunk_lines: list[int] = []
        self.blank_at: int | None = None  # the first blank line after the last row

    def add(self, line: int, row: list[str]) -> None:
        """One record of the file, starting at ``line``."""
        path, m, t = self.cols.path, self.cols.m, self.cols.target
        if _is_blank(row):
            self.blank_at = self.blank_at or line
            return
        self._no_blank_before()
        if len(row) != m:
            self.flush()
            multiline = any("\n" in cell or "\r" in cell for cell in row)
            hint = (
                " (a quoted cell runs over several lines: a quote not closed?)" if multiline else ""
            )
            raise _fail(
                path, f"line {line} has {len(row)} cells, expected {m} (as in line 1){hint}"
            )
        label = row[t].strip()
        self.chunk.append(self.pick(row))
        self.chunk_lines.append(line)
        if not label:
            self.flush()
            raise _fail(
                path,
                f"line {line}, {self.cols.label(t)}: empty cell (a missing value); every row "
                "needs a label",
            )
        self.labels.append(label)
        self.lines.append(line)
        if len(self.chunk) >= CHUNK_ROWS:
            self.flush()

    def add_block(self, X: np.ndarray, labels: list[str], first_line: int) -> None:
        """Rows already checked and converted (the fast path), on consecutive lines."""
        self._no_blank_before()
        self.flush()
        self.blocks.append(X)
        self.labels.extend(labels)
        self.lines.extend(range(first_line, first_line + len(labels)))

    def _no_blank_before(self) -> None:
        """Raise when a blank line came before the row being added."""
        if self.blank_at is not None:
            self.flush()
            raise _fail(
                self.cols.path,
                f"line {self.blank_at} is blank; blank lines are allowed only at the end",
            )

    def flush(self) -> None:
        """Convert the rows added so far, raising for the first bad cell among them."""
        chunk = self.chunk
        if not chunk:
            return
        flat = list(itertools.chain.from_iterable(chunk))
        try:
            values = np.fromiter(map(float, flat), dtype=np.float64, count=len(flat))
        except ValueError:
            values = None
        if values is None or not np.isfinite(values).all():
            for row, line in zip(chunk, self.chunk_lines, strict=True):
                for j, cell in zip(self.chosen, row, strict=True):
                    try:
                        ok = bool(np.isfinite(float(cell)))
                    except ValueError:
                        ok = False
                    if not ok:
                        raise _bad_feature(self.cols, line, j, cell, self.delimiter)
        self.blocks.append(values.reshape(len(chunk), len(self.chosen)))
        chunk.clear()
        self.chunk_lines.clear()

    def finish(self) -> tuple[np.ndarray, list[str], list[int]]:
        self.flush()
        if not self.blocks:
            raise _fail(
                self.cols.path,
                "has a header but no data rows; expected rows of numbers with a label in "
                "one column",
            )
        X = self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)
        return X, self.labels, self.lines


def _plain_block(
    lines: list[str], cols: _Columns, chosen: list[int], delimiter: str
) -> tuple[np.ndarray, list[str]] | None:
    """X and the label texts of lines of a plain file (each line one row, no quotes) via
    NumPy's C parser, or None when anything is unusual (the lines then go the careful way)."""
    expected = cols.m - 1
    if any(line.count(delimiter) != expected for line in lines):
        return None  # a blank line or a ragged row
    t = cols.target
    if t == cols.m - 1:
        labels = [line[line.rfind(delimiter) + 1 :].strip() for line in lines]
    else:
        labels = [line.split(delimiter, t + 1)[t].strip() for line in lines]
    if not all(labels):
        return None
    try:
        X = np.loadtxt(
            lines,
            delimiter=delimiter,
            comments=None,
            quotechar=None,
            usecols=chosen,
            dtype=np.float64,
            ndmin=2,
        )
    except Exception:  # whatever NumPy refuses goes the careful way, which says what is wrong
        return None
    if X.shape != (len(lines), len(chosen)) or not np.isfinite(X).all():
        return None
    return X, labels


def _read_plain(text: str, header: bool, rows: _Rows) -> bool:
    """Read the data lines of ``text``, a file without quotes, into ``rows``: all at once by
    NumPy when it can, else in blocks (NumPy for the clean ones, the careful way for the
    others). False (nothing read) when the file has a lone carriage return, a line break
    :mod:`csv` knows and this reader does not."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return False
    delimiter = rows.delimiter
    lines = text.split("\n")
    first_line = 1
    if header:
        del lines[0]
        first_line = 2
    while lines and _is_blank(lines[-1].split(delimiter)):
        lines.pop()  # blank lines at the end
    if len(lines) > CHUNK_ROWS:  # a clean file in one piece: no blocks to join
        block = _plain_block(lines, rows.cols, rows.chosen, delimiter)
        if block is not None:
            rows.add_block(*block, first_line)
            return True
    for start in range(0, len(lines), CHUNK_ROWS):
        part = lines[start : start + CHUNK_ROWS]
        block = _plain_block(part, rows.cols, rows.chosen, delimiter)
        if block is not None:
            rows.add_block(*block, first_line + start)
        else:
            for i, line in enumerate(part):
                rows.add(first_line + start + i, line.split(delimiter))
    return True
