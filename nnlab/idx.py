"""MNIST-format data: IDX files (gzipped or not), where to find them, torchvision's downloader.

Both model kinds read MNIST and Fashion-MNIST through :func:`load_idx` (docs/design.md, 'Data
without internet'): flat in ``data.root``, in torchvision's ``<root>/MNIST/raw/`` layout, or —
without ``data.root`` — in Debian's ``/usr/share/datasets/fashion-mnist`` and ``./data``.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.errors import DataError

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
DEBIAN_FOLDER = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "digits": [str(i) for i in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}  # fmt: skip
IDX_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not) into a uint8 array.

    Raises DataError naming the file when the magic number is wrong or the file is short.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != IDX_UBYTE or raw[3] == 0:
        magic = raw[:4].hex() if len(raw) >= 4 else "missing"
        raise DataError(
            f"{path}: not an IDX file of unsigned bytes (magic number 0x{magic}; expected "
            "0x00000801 for labels or 0x00000803 for images)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(dims))
    if len(raw) - header < size:
        raise DataError(
            f"{path}: truncated: its header promises {size} bytes of data for shape "
            f"{tuple(dims)}, the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(dims)


def _candidate_dirs(name: str, root: str | None) -> list[Path]:
    bases = [Path(root)] if root else [*filter(None, [DEBIAN_FOLDER.get(name)]), Path("data")]
    dirs = []
    for base in bases:
        dirs += [base, base / name, base / TORCHVISION_FOLDER[name] / "raw"]
    return dirs


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_idx_files(name: str, root: str | None) -> dict[str, tuple[Path, Path]]:
    """The (images, labels) files of each split, from the first folder that holds all four."""
    looked = _candidate_dirs(name, root)
    for folder in looked:
        found = {
            split: (_find(folder, images), _find(folder, labels))
            for split, (images, labels) in SPLITS.items()
        }
        if all(p is not None for pair in found.values() for p in pair):
            return found  # type: ignore[return-value]
    how = [
        "set data.root to a folder holding train-images-idx3-ubyte[.gz], "
        "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]",
        "or set data.download: true (needs internet)",
    ]
    if name in DEBIAN_FOLDER:
        how.append(
            f"or run `apt-get install dataset-fashion-mnist` (installs them in "
            f"{DEBIAN_FOLDER[name]})"
        )
    raise DataError(
        f"{name} IDX files not found; looked in {', '.join(map(str, looked))}. To get them: "
        + "; ".join(how)
    )


def download(name: str, root: str | None) -> str:
    """Fetch a data set with torchvision's downloader into ``root`` (default ./data)."""
    from torchvision import datasets

    root = root or "data"
    cls = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[name]
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
    root = download(name, data_cfg["root"]) if data_cfg["download"] else data_cfg["root"]
    out = {}
    for split, (images_path, labels_path) in find_idx_files(name, root).items():
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(
                f"{images_path}: expected images (N, H, W) and labels (N,), got "
                f"shapes {images.shape} and {labels.shape}"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} holds {len(images)} images but {labels_path} holds "
                f"{len(labels)} labels"
            )
        if labels.max(initial=0) >= len(CLASS_NAMES[name]):
            raise DataError(f"{labels_path}: label {labels.max()} is outside 0-9")
        out[split] = (images, labels)
    return out
