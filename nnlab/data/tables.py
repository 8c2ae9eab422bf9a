"""A user's own data table for the MLP, from a CSV file or an ``.npz`` archive.

Every problem raises :class:`~nnlab.errors.DataError` with a one-line message that names the
file and, where it applies, the line (1-based, the header counted), the column (name and
index), the bad value and what is allowed.

CSV rows are read in blocks of CHUNK_ROWS, in file order, one of two ways:

- the careful way, :mod:`csv` records checked one by one and converted with Python's
  ``float``. It decides what is accepted and raises for the first problem in file order.
  Files with a quote character anywhere are read this way throughout.
- the fast way, for a block of lines of a file without quotes (each line is one row): the
  lines are checked to have the right number of cells and non-empty labels, and NumPy's C
  parser (:func:`numpy.loadtxt`) converts the feature columns; a block where anything is
  unusual (a bad cell, NaN, a blank or ragged line) goes the careful way instead. NumPy
  parses a subset of what ``float`` parses, to the same double, so the fast way never
  accepts what the careful way would refuse, nor reads a value differently.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import io
import itertools
import math
import operator
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nnlab.common.yamlread import open_regular
from nnlab.errors import DataError

DELIMITERS = (",", ";", "\t")  # detection prefers them in this order on a tie
QUOTE = '"'
CHUNK_ROWS = 2000  # rows read and converted at a time
SHOW_CHARS = 40  # a bad value is shown as the repr of at most this many characters
SHOW_COLUMNS = 8  # column names listed in a message before "... (N in all)"


@dataclass
class Table:
    """A labelled table: ``X[i]`` holds the features of example ``i``, whose class is
    ``class_names[labels[i]]``."""

    X: np.ndarray  # float64, shape (n, d), C-contiguous, all finite
    labels: np.ndarray  # int64 (n,): indices into class_names
    class_names: list[str]  # numbers sorted numerically, else strings sorted by code point
    feature_names: list[str]  # length d


# ----------------------------------------------------------------------------- messages


def _fail(path: Any, message: str) -> DataError:
    """The error to raise: ``<path>: <message>``, kept to one line whatever the text holds."""
    text = f"{path}: {message}"
    return DataError(text.replace("\r", "\\r").replace("\n", "\\n"))


def _show(value: Any) -> str:
    """A value as it appears in a message: its repr, cut to about SHOW_CHARS characters."""
    if isinstance(value, str) and len(value) > SHOW_CHARS:
        return f"{value[:SHOW_CHARS]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= SHOW_CHARS + 2 else text[:SHOW_CHARS] + "..."


def _list_names(names: Sequence[str]) -> str:
    shown = ", ".join(_show(n) for n in names[:SHOW_COLUMNS])
    if len(names) > SHOW_COLUMNS:
        shown += f", ... ({len(names)} in all)"
    return shown


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- labels


def _class_name(value: float) -> str:
    """A numeric class as text: whole numbers without a fraction (``1.0`` -> ``1``)."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _exact_name(value: Decimal) -> str:
    """A number read from text, named by its exact value: whole numbers as integers of any
    size (``9007199254740993``), others as the float they read as when that float is exactly
    them (``0.1``), else in full — so two distinct numbers never share a name."""
    if value == value.to_integral_value():
        return str(int(value))
    as_float = float(value)
    return repr(as_float) if Decimal(repr(as_float)) == value else str(value.normalize())


def _exact(cell: str) -> Decimal:
    """The exact value of a label that ``float`` parses (and found finite)."""
    try:
        return Decimal(cell)
    except InvalidOperation:  # a spelling float knows and Decimal does not
        return Decimal(float(cell))


def _encode_labels(
    cells: list[str], where: Callable[[int], str], path: Any
) -> tuple[np.ndarray, list[str]]:
    """Label texts (already stripped, none empty) -> (int64 indices, class names).

    When every label parses as a number, the classes are those numbers sorted numerically,
    compared by their exact decimal values (``1.0`` and ``1`` are one class; 9007199254740993
    and 9007199254740992, one float64 apart from neither, are two); otherwise every label is
    a string and the classes are sorted by code point. ``where(i)`` describes the place of
    label ``i`` for a message.
    """
    try:
        numbers = np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        numbers = None
    if numbers is not None:
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            i = int(bad[0])
            raise _fail(
                path,
                f"{where(i)}: label {_show(cells[i])} is not a finite number; labels must be "
                "finite numbers or text (a missing value?)",
            )
        exact = {cell: _exact(cell) for cell in dict.fromkeys(cells)}
        values = sorted(set(exact.values()))
        index = {value: k for k, value in enumerate(values)}
        codes = np.array([index[exact[cell]] for cell in cells], dtype=np.int64)
        return codes, [_exact_name(v) for v in values]
    else:
        values, inverse = np.unique(np.array(cells, dtype=str), return_inverse=True)
        names = [str(v) for v in values]
    return inverse.reshape(-1).astype(np.int64), names


def _check_classes(names: list[str], what: str, path: Any) -> None:
    if len(names) < 2:
        raise _fail(
            path,
            f"{what} holds only one class {names[0]!r}; a classifier needs at least 2 classes",
        )


# ----------------------------------------------------------------------------- CSV


def _read_text(path: Path) -> str:
    """The file's text (UTF-8, a byte-order mark dropped); DataError when it is missing, not
    a regular file (a folder, a FIFO, a device), unreadable, not UTF-8 or empty."""
    try:
        with _open(path) as f:
            raw = f.read()
    except OSError as exc:
        raise _fail(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _fail(
            path,
            f"line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the table as UTF-8",
        ) from None
    if not text or text.isspace():
        raise _fail(path, "is empty; expected rows of numbers with a label in one column")
    return text


def _open(path: Path) -> BinaryIO:
    """The data file opened for reading; DataError when it is not a regular file."""
    return open_regular(path, lambda problem: _fail(path, problem))


@contextlib.contextmanager
def _cells_up_to(size: int) -> Iterator[None]:
    """:mod:`csv`'s limit on a cell (131,072 characters) raised to ``size``, the length of
    the text in memory, for the ``with`` block: no cell can be longer, and a long one is then
    refused by the checks that name its line and column (not a number, say)."""
    before = csv.field_size_limit()
    csv.field_size_limit(max(before, size))
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _first_line(text: str) -> str:
    """The first line, up to the first line break of any kind (\\n, \\r\\n or a lone \\r)."""
    end = re.search("[\r\n]", text)
    return text if end is None else text[: end.start()]


def _column_in(line_text: str, delimiter: str) -> int:
    """The 0-based column where the end of ``line_text`` (the start of a record) falls:
    delimiters counted outside quotes."""
    return sum(part.count(delimiter) for part in line_text.split(QUOTE)[::2])


def _line_start(text: str, line: int) -> int:
    """The offset of ``line`` (1-based, line breaks as :mod:`csv` counts them)."""
    return sum(len(s) for s in itertools.islice(io.StringIO(text, newline=""), line - 1))


def _refuse_nul(text: str, delimiter: str, path: Path) -> None:
    """A NUL character in a table is a binary file or UTF-16 text, never a cell."""
    at = text.find("\0")
    if at < 0:
        return
    line = len(re.split("\r\n|\r|\n", text[:at]))
    start = _line_start(text, line)
    raise _fail(
        path,
        f"line {line}, column index {_column_in(text[start:at], delimiter)}: a NUL byte "
        "(\\x00); a binary file, or text not saved as UTF-8?",
    )


def _csv_failed(text: str, line: int, delimiter: str, columns: _Columns | None) -> str:
    """Where a record starting at ``line`` that :mod:`csv` refused goes wrong: the line and
    the column of the quoted cell that is not closed or has text after its closing quote."""
    cell_end = re.compile(f"[{re.escape(delimiter)}\r\n]")
    i, column, j = _line_start(text, line), 0, 0
    while i < len(text):
        if text[i] == QUOTE:
            close = i + 1
            while (close := text.find(QUOTE, close)) >= 0 and text[close + 1 : close + 2] == QUOTE:
                close += 2
            if close < 0 or text[close + 1 : close + 2] not in ("", delimiter, "\r", "\n"):
                j = column
                break
            i = close + 1
        else:
            match = cell_end.search(text, i)
            i = match.start() if match else len(text)
        if text[i : i + 1] != delimiter:
            j = column
            break
        i, column = i + 1, column + 1
    where = columns.label(j) if columns is not None and j < columns.m else f"column index {j}"
    return f"line {line}, {where}"


def _detect_delimiter(text: str) -> str:
    """The candidate that splits the first line into the most cells (comma on a tie)."""
    first = _first_line(text)
    counts = [len(next(csv.reader([first], delimiter=d), [])) for d in DELIMITERS]
    return DELIMITERS[counts.index(max(counts))]


def _is_blank(row: list[str]) -> bool:
    """A record from a line that holds nothing but spaces."""
    return len(row) == 0 or (len(row) == 1 and not row[0].strip())


def _detect_header(first: list[str], second: list[str] | None) -> bool:
    """Whether the first row is a header (see :func:`read_csv`)."""
    if second is None:
        return not any(_is_number(cell) for cell in first)
    return any(
        a.strip() and not _is_number(a) and _is_number(b)
        for a, b in zip(first, second, strict=False)
    )


class _Columns:
    """The columns of one CSV file: names, lookup by name or index, names for messages."""

    def __init__(self, path: Path, first: list[str], header: bool):
        self.path = path
        self.m = len(first)
        self.header = header
        self.names = [cell.strip() for cell in first] if header else None
        self.target = -1

    def label(self, j: int) -> str:
        """How column ``j`` appears in a message."""
        if j == self.target:
            if self.names is None:
                return f"target column {j}"
            return f"target column {_show(self.names[j])} (index {j})"
        name = self.names[j] if self.names is not None else f"x{j + 1}"
        return f"column {_show(name)} (index {j})"

    def resolve(self, key: Any, what: str) -> int:
        """The 0-based index of the column that ``key`` (a name or an index) gives."""
        if isinstance(key, str):
            if self.names is None:
                raise _fail(
                    self.path,
                    f"{what} {key!r} is a column name, but the file has no header (line 1 "
                    "holds data); give the column by its 0-based index, or set data.header: true",
                )
            hits = [j for j, name in enumerate(self.names) if name == key]
            if len(hits) > 1:
                raise _fail(
                    self.path,
                    f"{what} {key!r} is ambiguous: header columns "
                    f"{', '.join(map(str, hits))} all have that name; give the column by its index",
                )
            if not hits:
                close = difflib.get_close_matches(key, self.names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise _fail(
                    self.path,
                    f"{what} {key!r} is not a column of the header "
                    f"(columns: {_list_names(self.names)}){hint}",
                )
            return hits[0]
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise _fail(
                self.path,
                f"{what} must be a column name (str) or a 0-based column index (int); "
                f"got {_show(key)}",
            )
        j = int(key)
        if not -self.m <= j < self.m:
            raise _fail(
                self.path,
                f"{what} index {j} is out of range: the file has {self.m} columns "
                f"(allowed 0..{self.m - 1}, or -{self.m}..-1 from the end)",
            )
        return j % self.m

    def check_named(self, j: int) -> None:
        if self.names is not None and not self.names[j]:
            raise _fail(
                self.path,
                f"line 1: column index {j} has no name in the header; name it, or leave it "
                "out with data.features (is it a row index written by pandas?)",
            )


def _select(cols: _Columns, target: str | int, features: Sequence[str | int] | None) -> list[int]:
    """Set ``cols.target`` and return the feature columns' indices, in the order asked."""
    cols.target = cols.resolve(target, "target")
    cols.check_named(cols.target)
    if features is None:
        chosen = [j for j in range(cols.m) if j != cols.target]
    else:
        if isinstance(features, (str, bytes, int)) or not isinstance(features, Sequence):
            raise _fail(
                cols.path,
                f"features must be a list of column names or indices; got {_show(features)}",
            )
        chosen = []
        for key in features:
            j = cols.resolve(key, "feature")
            if j == cols.target:
                raise _fail(
                    cols.path,
                    f"feature {_show(key)} is the {cols.label(j)}; features must not include "
                    "the target",
                )
            if j in chosen:
                raise _fail(cols.path, f"features name {cols.label(j)} twice")
            chosen.append(j)
    if not chosen:
        raise _fail(
            cols.path, "no feature columns: the table needs at least one besides the target"
        )
    for j in chosen:
        cols.check_named(j)
    return chosen


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


def _first_records(text: str, delimiter: str, path: Path) -> tuple[list[str], list[str] | None]:
    """The first two records of the file (the second None when there is none), parsed from a
    prefix of the text when that holds them, so that a big file is not copied for them."""
    prefix = 1 << 16
    heads = [text[:prefix], text] if len(text) > prefix else [text]
    for head in heads:
        whole = head is heads[-1]
        reader = csv.reader(
            io.StringIO(head, newline=""), delimiter=delimiter, quotechar=QUOTE, strict=True
        )
        records: list[list[str]] = []
        line = 1  # where the record being read starts
        try:
            for row in reader:
                records.append(row)
                line = reader.line_num + 1
                if len(records) == 3:  # the third one proves the second complete
                    break
        except csv.Error as exc:
            if whole:
                where = _csv_failed(text, line, delimiter, None)
                raise _fail(
                    path, f"{where}: cannot be parsed as CSV ({exc}); check its quotes"
                ) from None
        if len(records) >= 3 or whole:
            return records[0], (records[1] if len(records) > 1 else None)
    raise AssertionError("unreachable: the last head is the whole text")


def _read_quoted(text: str, header: bool, rows: _Rows) -> None:
    """Read the data rows of ``text`` with :mod:`csv` into ``rows``."""
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=rows.delimiter, quotechar=QUOTE, strict=True
    )
    line = 1  # where the next record starts
    try:
        for row in reader:
            here, line = line, reader.line_num + 1
            if not (header and here == 1):
                rows.add(here, row)
    except csv.Error as exc:
        where = _csv_failed(text, line, rows.delimiter, rows.cols)
        raise _fail(
            rows.cols.path, f"{where}: cannot be parsed as CSV ({exc}); check its quotes"
        ) from None


def read_csv(
    path: str | Path,
    target: str | int = -1,
    features: list[str | int] | None = None,
    header: bool | None = None,
) -> Table:
    """Read a CSV table: numeric feature columns and one label column, the target.

    - ``target``: a column name (the file needs a header) or a 0-based index, negative from
      the end (-1, the default, is the last column). A string is always a name, even ``"3"``.
    - ``features``: column names or indices, in the order wanted; None takes every column but
      the target, in file order. The target cannot be one of them.
    - ``header``: True, False, or None to detect it. Detection looks at the first two rows:
      the first row is a header when some column holds a non-empty, non-numeric cell in the
      first row over a numeric cell in the second (``alcohol,...,class`` over
      ``14.2,...,class_0``). Empty (or all-space) cells are no evidence: a missing value in
      the first data row must not make it a header. A file with a single row (blank lines
      after it aside) takes it as a header when none of its cells is numeric (and then fails:
      no data rows), else as a data row (and then fails: one class). Numeric means what
      Python's ``float`` parses, NaN and infinity included. A header is missed when each of
      its non-numeric names sits over text in the second row too (``1,2,3,label`` over
      ``0.5,0.2,0.1,cat``): pass header=True then.

    Without a header the feature names are ``x1, x2, ...`` by column position (1-based) and the
    target column is named by its index in messages.

    The delimiter is the one of comma, semicolon and tab that splits the first line into the
    most cells (comma on a tie). Cells may be quoted (``"``); a UTF-8 byte-order mark and blank
    lines at the end are ignored, a blank line elsewhere is an error. Features must be what
    Python's ``float`` parses (surrounding spaces allowed) and finite. Labels, stripped of
    surrounding spaces, are numbers or text: when all of them are numbers, the classes are the
    distinct numbers sorted numerically (``1.0`` and ``1`` are one class, named ``"1"``);
    otherwise all are text, sorted by code point. All-numeric labels must be finite (``nan``
    there is taken for a missing value). There must be at least two classes.

    Raises DataError, with a one-line message, for any problem with the file or the arguments.
    """
    path = Path(path)
    if header not in (True, False, None):
        raise _fail(path, f"header must be True, False or None (detect); got {_show(header)}")
    text = _read_text(path)
    with _cells_up_to(len(text) + 1):
        return _read_table(path, text, target, features, header)


def _read_table(
    path: Path,
    text: str,
    target: str | int,
    features: Sequence[str | int] | None,
    header: bool | None,
) -> Table:
    """:func:`read_csv` of the file's text."""
    delimiter = _detect_delimiter(text)
    _refuse_nul(text, delimiter, path)
    first, second = _first_records(text, delimiter, path)
    if _is_blank(first):
        raise _fail(path, "line 1 is blank; blank lines are allowed only at the end")
    if second is not None and _is_blank(second):
        second = None  # a single row (a blank line before more rows fails later)
    if len(first) < 2:
        raise _fail(
            path,
            f"line 1 has a single column ({_show(first[0])}); expected feature columns and a "
            "target column separated by commas, semicolons or tabs",
        )
    if header is None:
        header = _detect_header(first, second)

    cols = _Columns(path, first, header)
    chosen = _select(cols, target, features)

    rows = _Rows(cols, chosen, delimiter)
    plain = QUOTE not in text and _read_plain(text, header, rows)
    if not plain:
        _read_quoted(text, header, rows)
    X, labels, label_lines = rows.finish()

    def where(i: int) -> str:
        return f"line {label_lines[i]}, {cols.label(cols.target)}"

    codes, class_names = _encode_labels(labels, where, path)
    _check_classes(class_names, cols.label(cols.target), path)
    if cols.names is not None:
        feature_names = [cols.names[j] for j in chosen]
    else:
        feature_names = [f"x{j + 1}" for j in chosen]
    return Table(np.ascontiguousarray(X, dtype=np.float64), codes, class_names, feature_names)


# ----------------------------------------------------------------------------- shapes

SAMPLE_BYTES = 1 << 20  # of a CSV file, read to estimate its rows from its line lengths
CSV_READ_FACTOR = 3  # the file's bytes, its text, the text split into lines
CSV_LINE_BYTES = 128  # per line: a Python string for the line and one for its label


@dataclass(frozen=True)
class FileShape:
    """What a data file holds, known without reading it whole (for the memory estimate,
    nnlab.models.bounds): its examples, their features, and the bytes that reading it takes at its
    peak beyond the arrays of the data set it makes."""

    rows: int
    features: int
    reading: float


def file_shape(
    name: str, path: str | Path, features: Sequence[str | int] | None = None
) -> FileShape:
    """The shape of a ``csv`` or ``npz`` data file: for a CSV file, its columns from the first
    line (delimiters counted, quotes ignored: never fewer) and its rows estimated from its
    size and the line lengths of its first MiB; for an npz archive, from the .npy headers of
    its arrays (their data is not decompressed). DataError, one line, for a file that is not
    a regular file, or not an archive with readable headers."""
    path = Path(path)
    with _open(path) as f:
        if name == "npz":
            return _npz_shape(f, path)
        return _csv_shape(f, path, features)


def _csv_shape(f: BinaryIO, path: Path, features: Sequence[str | int] | None) -> FileShape:
    size = os.fstat(f.fileno()).st_size
    sample = chunk = f.read(SAMPLE_BYTES)
    cells = {d.encode(): 0 for d in DELIMITERS}  # in the first line
    first = 0  # the first line's length: streamed, it may be longer than the sample
    while chunk:
        end = re.search(b"[\r\n]", chunk)
        part = chunk if end is None else chunk[: end.start()]
        first += len(part)
        for d in cells:
            cells[d] += part.count(d)
        if end is not None:
            break
        chunk = f.read(SAMPLE_BYTES)
    breaks = sample.count(b"\n") or sample.count(b"\r")
    if len(sample) >= size:
        rows = breaks + (not sample.endswith((b"\n", b"\r")))
    else:
        rows = math.ceil(size * breaks / len(sample)) if breaks else math.ceil(size / (first + 1))
    columns = max(cells.values()) + 1
    d = len(features) if isinstance(features, list) else columns - 1
    return FileShape(rows, max(d, 1), CSV_READ_FACTOR * size + CSV_LINE_BYTES * rows)


def _npz_shape(f: BinaryIO, path: Path) -> FileShape:
    archive, members = _npz_members(f, path)
    arrays = {}
    for key, info in members.items():
        try:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read = np.lib.format.read_array_header_1_0
                if version != (1, 0):
                    read = np.lib.format.read_array_header_2_0
                shape, _, dtype = read(member)
        except Exception as exc:  # zlib, zipfile, the header parser: any of them
            raise _fail(path, f"array {key!r} cannot be read: damaged? ({_kind(exc)})") from None
        arrays[key] = (math.prod(shape), dtype.itemsize, shape)
    rows, d = 0, 1
    if "X" in arrays:
        shape = arrays["X"][2]
        rows = shape[0] if shape else 1
        d = max(math.prod(shape[1:]), 1)
    # X as stored (then converted: the data's need); y and the names as stored and as
    # Python strings (a few dozen bytes each beyond their characters)
    reading = sum(
        n * item if key == "X" else n * (2 * item + 64) for key, (n, item, _) in arrays.items()
    )
    return FileShape(rows, d, reading)


# ----------------------------------------------------------------------------- npz


def read_npz(path: str | Path) -> Table:
    """Read an ``.npz`` archive (``numpy.savez``) holding ``X`` and ``y``.

    - ``X``: a 2-D numeric array (bool, int or float), one row per example, every value finite;
    - ``y``: a 1-D array of the same length: ints, floats that are whole numbers, or strings
      (the class_names rule of :func:`read_csv`: strings that are all numbers are numbers);
    - ``feature_names`` (optional): a 1-D array of one string per column of ``X``; without
      it the names are ``x1, x2, ...``.

    The archive is loaded with ``allow_pickle=False``: object arrays are refused. Raises
    DataError, with a one-line message, for any problem.
    """
    path = Path(path)
    with _open(path) as f:
        return _read_npz(f, path)


NPZ_ARRAYS = ("X", "y", "feature_names")
# what numpy.savez and savez_compressed write (stored, deflate), and what zipfile reads too
NPZ_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def _npz_members(f: BinaryIO, path: Path) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    """The zip members of the arrays nnlab reads (X, y, feature_names), checked from the
    zip's directory alone: not encrypted, compressed in a way zipfile reads, .npy files.
    DataError when the file is not a zip archive."""
    try:
        is_zip = zipfile.is_zipfile(f)
        f.seek(0)
        npy = f.read(6) == b"\x93NUMPY"
        f.seek(0)
        archive = zipfile.ZipFile(f) if is_zip else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _fail(path, f"cannot be read as an .npz archive ({_kind(exc)})") from None
    if archive is None:
        if npy:
            raise _fail(
                path,
                "is a .npy file (one array); expected an .npz archive holding X and y "
                "(numpy.savez(path, X=X, y=y))",
            )
        raise _fail(path, "is not an .npz archive (a zip file written by numpy.savez)")
    members = {}
    for info in archive.infolist():
        key = info.filename.removesuffix(".npy")
        if key not in NPZ_ARRAYS:
            continue
        if info.filename == key:  # numpy would read it whole, as bytes
            raise _fail(path, f"member {key!r} is not a NumPy array (.npy) file")
        if info.flag_bits & 0x1:
            raise _fail(
                path,
                f"member {info.filename!r} is encrypted; nnlab reads archives without a "
                "password (numpy.savez)",
            )
        if info.compress_type not in NPZ_COMPRESSION:
            raise _fail(
                path,
                f"member {info.filename!r} uses zip compression method {info.compress_type}, "
                "which is not supported (stored, deflate, bzip2, lzma; numpy.savez or "
                "savez_compressed write these)",
            )
        members[key] = info
    return archive, members


def _read_npz(f: BinaryIO, path: Path) -> Table:
    """:func:`read_npz` of the open file."""
    _npz_members(f, path)
    f.seek(0)
    try:
        archive = np.load(f, allow_pickle=False)
    except Exception as exc:  # a damaged zip directory, say
        raise _fail(path, f"cannot be read as an .npz archive ({_kind(exc)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _fail(path, "is not an .npz archive (a zip file written by numpy.savez)")
    with archive:
        names = list(archive.files)
        missing = [key for key in ("X", "y") if key not in names]
        if missing:
            which = " and ".join(repr(k) for k in missing)
            raise _fail(
                path,
                f"has no array {which}; it holds {_list_names(names) if names else 'no arrays'}"
                " (expected X, y and optionally feature_names)",
            )
        X = _npz_array(archive, "X", path)
        y = _npz_array(archive, "y", path)
        feature_names = (
            _npz_array(archive, "feature_names", path) if ("feature_names" in names) else None
        )

    if X.ndim != 2:
        raise _fail(
            path,
            f"array 'X' has shape {X.shape}; expected 2-D (examples, features)",
        )
    if X.dtype.kind not in "biuf":
        raise _fail(
            path,
            f"array 'X' has dtype {X.dtype}; expected numbers (bool, int or float)",
        )
    n, d = X.shape
    if n == 0 or d == 0:
        raise _fail(path, f"array 'X' has shape {X.shape}; expected at least one row and column")
    X = np.ascontiguousarray(X, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = (int(k) for k in bad[0])
        raise _fail(
            path,
            f"X[{i}, {j}] is {X[i, j]}, not a finite number; features must be finite (the MLP "
            "cannot use NaN or infinity)",
        )

    if y.ndim != 1:
        raise _fail(path, f"array 'y' has shape {y.shape}; expected 1-D (one label per row of X)")
    if len(y) != n:
        raise _fail(path, f"array 'y' holds {len(y)} labels but 'X' has {n} rows; expected equal")
    codes, class_names = _npz_labels(y, path)
    _check_classes(class_names, "array 'y'", path)

    if feature_names is None:
        names_out = [f"x{j + 1}" for j in range(d)]
    else:
        if feature_names.dtype.kind not in "US" or feature_names.shape != (d,):
            raise _fail(
                path,
                f"array 'feature_names' has shape {feature_names.shape} and dtype "
                f"{feature_names.dtype}; expected {d} strings, one per column of X",
            )
        names_out = [_text(v, "feature_names", j, path) for j, v in enumerate(feature_names)]
    return Table(X, codes, class_names, names_out)


def _npz_array(archive: Any, key: str, path: Path) -> np.ndarray:
    """One array of the archive. A damaged member can fail in many ways deep inside NumPy
    (zlib, zipfile, the .npy header parser), so any exception becomes a DataError here."""
    try:
        array = archive[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower():  # "Object arrays cannot be loaded when allow_pickle=False"
            raise _fail(
                path,
                f"array {key!r} is an object array (pickled Python objects), which is refused; "
                "save plain numbers or strings",
            ) from None
        raise _fail(path, f"array {key!r} cannot be read: damaged? ({_kind(exc)})") from None
    except Exception as exc:
        raise _fail(path, f"array {key!r} cannot be read: damaged? ({_kind(exc)})") from None
    if not isinstance(array, np.ndarray):  # a member that is not a .npy file
        raise _fail(path, f"member {key!r} is not a NumPy array (.npy) file")
    return array


def _kind(exc: BaseException) -> str:
    """An exception's type for a message: ``zlib.error``, ``ValueError``."""
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _text(value: Any, key: str, i: int, path: Path) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(path, f"{key}[{i}] = {_show(value)} is not UTF-8 text") from None
    return str(value)


def _npz_labels(y: np.ndarray, path: Path) -> tuple[np.ndarray, list[str]]:
    kind = y.dtype.kind
    if kind in "biu":
        values, inverse = np.unique(y, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64), [str(int(v)) for v in values]
    if kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            i = int(bad[0])
            raise _fail(
                path,
                f"y[{i}] is {y[i]}; float labels must be finite whole numbers (or use ints or "
                "strings)",
            )
        values, inverse = np.unique(y.astype(np.float64), return_inverse=True)
        return inverse.reshape(-1).astype(np.int64), [_class_name(float(v)) for v in values]
    if kind in "US":
        cells = [_text(v, "y", i, path).strip() for i, v in enumerate(y.tolist())]
        for i, cell in enumerate(cells):
            if not cell:
                raise _fail(path, f"y[{i}] is an empty string; every row needs a label")
        return _encode_labels(cells, lambda i: f"y[{i}]", path)
    raise _fail(
        path, f"array 'y' has dtype {y.dtype}; expected ints, whole-number floats or strings"
    )
