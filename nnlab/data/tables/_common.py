"""What the readers of a user's table share: the :class:`Table` they return, their one-line
messages, the encoding of labels as classes, the opening of the file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nnlab.common.yamlread import open_regular
from nnlab.errors import DataError

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


def _open(path: Path) -> BinaryIO:
    """The data file opened for reading; DataError when it is not a regular file."""
    return open_regular(path, lambda problem: _fail(path, problem))


def _kind(exc: BaseException) -> str:
    """An exception's type for a message: ``zlib.error``, ``ValueError``."""
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
