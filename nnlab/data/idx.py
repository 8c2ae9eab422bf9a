"""MNIST-format data: IDX files (gzipped or not), where to find them, torchvision's downloader.

Both model kinds read MNIST and Fashion-MNIST through :func:`load_idx` (docs/models.md, 'IDX
files'): flat in ``data.root``, in torchvision's ``<root>/MNIST/raw/`` layout, or —
without ``data.root`` — in Debian's ``/usr/share/datasets/fashion-mnist`` and ``./data``.
"""

from __future__ import annotations

import gzip
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from nnlab.data.catalog import CATALOG
from nnlab.errors import DataError

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_UBYTE = 0x08
# The IDX format's type codes; nnlab reads unsigned bytes, as MNIST's files hold.
IDX_TYPES = {0x08: "unsigned bytes", 0x09: "signed bytes", 0x0B: "int16", 0x0C: "int32",
             0x0D: "float32", 0x0E: "float64"}  # fmt: skip
DIMENSIONS = {"images": 3, "labels": 1}  # (N, height, width) and (N,)
_CHUNK = 1 << 24  # bytes read at a time, so that a header's promise is never allocated unread


@dataclass(frozen=True)
class IdxHeader:
    """An IDX file's header, checked against the format and (uncompressed) the file's size:
    its dimensions, and what it holds (``"images"`` or ``"labels"``)."""

    path: Path
    what: str
    dims: tuple[int, ...]

    @property
    def offset(self) -> int:
        """Bytes before the data: the magic number and one 4-byte size per dimension."""
        return 4 + 4 * len(self.dims)

    @property
    def size(self) -> int:
        """Bytes of data the header promises (Python integers: no overflow)."""
        return math.prod(self.dims)

    @property
    def count(self) -> int:
        return self.dims[0]

    def shape_text(self, dims: tuple[int, ...] | None = None) -> str:
        return "x".join(map(str, self.dims if dims is None else dims))

    def promise(self) -> str:
        return f"{self.shape_text()} {self.what}, {self.size} bytes of data"


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _parse_magic(path: Path, head: bytes, what: str | None) -> tuple[str, int]:
    """What the first four bytes say — (images or labels, number of dimensions) — or
    DataError saying what is wrong with them. ``what`` None: whichever the file holds."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[3] == 0:
        magic = head[:4].hex() if len(head) >= 4 else "missing"
        raise DataError(
            f"{path}: not an IDX file of unsigned bytes (magic number 0x{magic}; expected "
            "0x00000801 for labels or 0x00000803 for images)"
        )
    if head[2] != IDX_UBYTE:
        kind = IDX_TYPES.get(head[2], "not a type of the format")
        raise DataError(
            f"{path}: not an IDX file of unsigned bytes: its type code is 0x{head[2]:02x} "
            f"({kind}); nnlab reads type 0x08 (unsigned bytes), as MNIST's files hold"
        )
    ndim = head[3]
    what = what or {n: w for w, n in DIMENSIONS.items()}.get(ndim)
    if what is None or ndim != DIMENSIONS[what]:
        need = f"{what} need {DIMENSIONS[what]}" if what else "images need 3, labels 1"
        raise DataError(f"{path}: its header gives {ndim} dimensions; {need}")
    return what, ndim


def _check_length(header: IdxHeader, data_bytes: int) -> None:
    """The data must be exactly what the header promises: a short file is truncated, a long
    one is not the format it claims."""
    if data_bytes < header.size:
        raise DataError(
            f"{header.path}: truncated: its header promises {header.promise()}; the file "
            f"holds {data_bytes}"
        )
    if data_bytes > header.size:
        raise DataError(
            f"{header.path}: holds {data_bytes - header.size} bytes more than its header's "
            f"{header.promise()}: it is damaged or not an IDX file"
        )


def read_idx_header(path: Path, what: str | None = None) -> IdxHeader:
    """Read and check the header of an IDX file of ``what`` (``"images"``, ``"labels"``, or
    None: either), without reading its data: magic number, type code, number of dimensions,
    and — for an uncompressed file — the dimensions against the file's size. DataError
    naming the file and what is wrong."""
    path = Path(path)
    try:
        with _open(path) as f:
            what, ndim = _parse_magic(path, f.read(4), what)
            sizes = f.read(4 * ndim)
        size = None if path.suffix == ".gz" else path.stat().st_size
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read: {exc}") from None
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    header = IdxHeader(path, what, struct.unpack(f">{ndim}I", sizes))
    if size is not None:
        _check_length(header, size - header.offset)
    return header


def read_idx(path: Path, what: str | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not) into a uint8 array, its header
    checked first (:func:`read_idx_header`) and its length against the header.

    The data is read in chunks up to what the header promises, so a damaged header never
    makes nnlab allocate what the file does not hold."""
    path = Path(path)
    header = read_idx_header(path, what)
    data = bytearray()
    try:
        with _open(path) as f:
            f.seek(header.offset)
            while len(data) <= header.size:
                chunk = f.read(min(_CHUNK, header.size + 1 - len(data)))
                if not chunk:
                    break
                data += chunk
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read: {exc}") from None
    _check_length(header, len(data))
    return np.frombuffer(data, dtype=np.uint8).reshape(header.dims)


def _candidate_dirs(name: str, root: str | None) -> list[Path]:
    entry = CATALOG[name]  # torchvision's folder is its class's name (entry.loader)
    bases = [root] if root else [*filter(None, [entry.folder]), "data"]
    dirs = []
    for base in map(Path, bases):
        dirs += [base, base / name, base / entry.loader / "raw"]
    return dirs


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def locate_idx_files(name: str, root: str | None) -> dict[str, tuple[Path, Path]] | None:
    """The (images, labels) files of each split, from the first folder that holds all four;
    None when no folder does."""
    for folder in _candidate_dirs(name, root):
        found = {
            split: (_find(folder, images), _find(folder, labels))
            for split, (images, labels) in SPLITS.items()
        }
        if all(p is not None for pair in found.values() for p in pair):
            return found  # type: ignore[return-value]
    return None


def find_idx_files(name: str, root: str | None) -> dict[str, tuple[Path, Path]]:
    """:func:`locate_idx_files`, or DataError saying where nnlab looked and how to get them."""
    found = locate_idx_files(name, root)
    if found is not None:
        return found
    how = [
        "set data.root to a folder holding train-images-idx3-ubyte[.gz], "
        "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]",
        "or set data.download: true (needs internet)",
    ]
    entry = CATALOG[name]
    if entry.package:
        how.append(f"or run `apt-get install {entry.package}` (installs them in {entry.folder})")
    looked = ", ".join(map(str, _candidate_dirs(name, root)))
    how_text = "; ".join(how)
    raise DataError(f"{name} IDX files not found; looked in {looked}. To get them: {how_text}")


Headers = dict[str, tuple[IdxHeader, IdxHeader]]  # split -> (images, labels)


def check_pairs(headers: Headers) -> None:
    """Rules between the four files: each split has images, one label per image, and the
    test images are the training images' size (a network takes one size)."""
    train_images = headers["train"][0]
    for images, labels in headers.values():
        if images.count == 0:
            raise DataError(f"{images.path}: holds no images")
        if labels.count != images.count:
            raise DataError(
                f"{images.path} holds {images.count} images but {labels.path} holds "
                f"{labels.count} labels"
            )
        if images.dims[1:] != train_images.dims[1:]:
            raise DataError(
                f"{images.path}: its images are {images.shape_text(images.dims[1:])} but the "
                f"training images ({train_images.path}) are "
                f"{train_images.shape_text(train_images.dims[1:])}; both splits need one size"
            )


def idx_headers(files: dict[str, tuple[Path, Path]]) -> Headers:
    """The checked headers of a data set's four files, and the rules between them
    (:func:`check_pairs`): everything that can be known without reading the images."""
    headers = {
        split: (read_idx_header(images, "images"), read_idx_header(labels, "labels"))
        for split, (images, labels) in files.items()
    }
    check_pairs(headers)
    return headers


class IdxShape(NamedTuple):
    """Images in each split and their size, as an IDX data set's headers give them."""

    train: int
    test: int
    height: int
    width: int


MNIST_SHAPE = IdxShape(60_000, 10_000, 28, 28)  # MNIST's and Fashion-MNIST's


def idx_shape(name: str, data_cfg: dict[str, Any]) -> IdxShape:
    """The images of an IDX data set, from its checked headers (DataError naming a bad
    file), without reading them; MNIST's shape for files not there yet (a download to come,
    or the loader's 'not found' to come)."""
    files = locate_idx_files(name, data_cfg["root"] or ("data" if data_cfg["download"] else None))
    if files is None:
        return MNIST_SHAPE
    headers = idx_headers(files)
    (train, _), (test, _) = headers["train"], headers["test"]
    return IdxShape(train.count, test.count, *train.dims[1:])


def download(name: str, root: str | None) -> str:
    """Fetch a data set with torchvision's downloader into ``root`` (default ./data)."""
    from torchvision import datasets

    root = root or "data"
    cls = getattr(datasets, CATALOG[name].loader)
    try:
        for train in (True, False):
            cls(root, train=train, download=True)
    except Exception as exc:  # network errors come in many types; all mean the same here
        reason = " ".join(str(exc).split())  # torchvision's message spans several lines
        raise DataError(
            f"downloading {name} with torchvision into {root!r} failed: {reason}"
        ) from None
    return root


def load_idx(name: str, data_cfg: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The images and labels of each split, every header and the rules between the files
    checked before any image is read; DataError naming the file for every problem."""
    root = download(name, data_cfg["root"]) if data_cfg["download"] else data_cfg["root"]
    headers = idx_headers(find_idx_files(name, root))
    out = {}
    for split, (images_header, labels_header) in headers.items():
        images, labels = read_idx(images_header.path, "images"), read_idx(labels_header.path)
        classes = len(CATALOG[name].classes)
        if labels.max(initial=0) >= classes:
            raise DataError(
                f"{labels_header.path}: label {labels.max()} is outside 0-{classes - 1}"
            )
        out[split] = (images, labels)
    return out
