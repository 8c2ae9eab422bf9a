"""The columns of a user's CSV table: their names, the target and the features chosen by name
or index, and how a column is named in a message."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.data.tables._common import _fail, _list_names, _show


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
