"""The shape of a user's file without reading it whole, for the memory estimate."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnlab.data.tables._common import _fail, _kind, _open
from nnlab.data.tables._csv import DELIMITERS
from nnlab.data.tables._npz import _npz_members

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
