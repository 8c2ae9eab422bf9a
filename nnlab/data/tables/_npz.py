"""A user's table from an ``.npz`` archive (``numpy.savez``): its members checked from the
zip's directory, its arrays checked one by one."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nnlab.data.tables._common import (
    Table,
    _check_classes,
    _class_name,
    _encode_labels,
    _fail,
    _kind,
    _list_names,
    _open,
    _show,
)


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
