"""A user's CSV table: reading the text, finding its delimiter, header and columns, and the
message for a record the :mod:`csv` module refuses.

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
import io
import itertools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from nnlab.data.tables._columns import _Columns, _select
from nnlab.data.tables._common import (
    Table,
    _check_classes,
    _encode_labels,
    _fail,
    _is_number,
    _open,
    _show,
)
from nnlab.data.tables._rows import _is_blank, _read_plain, _Rows

DELIMITERS = (",", ";", "\t")  # detection prefers them in this order on a tie
QUOTE = '"'


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


def _detect_header(first: list[str], second: list[str] | None) -> bool:
    """Whether the first row is a header (see :func:`read_csv`)."""
    if second is None:
        return not any(_is_number(cell) for cell in first)
    return any(
        a.strip() and not _is_number(a) and _is_number(b)
        for a, b in zip(first, second, strict=False)
    )


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
