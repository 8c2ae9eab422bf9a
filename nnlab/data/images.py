"""Image data for the DCN: MNIST-format IDX files, Fashion-MNIST, and scikit-learn's digits.

Everything ends as float32 tensors ``(N, 1, H, W)`` normalised with the training split's mean
and standard deviation, held in memory so that a batch is one indexing operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nnlab.data.catalog import CATALOG, IDX, DataSet
from nnlab.data.idx import load_idx
from nnlab.errors import DataError

VAL_FRACTION_CAP = 0.1  # never carve more than this fraction of the training images


def _load_bundled(
    entry: DataSet, test_size: float, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's bundled images (digits: 1,797 real 8x8 handwritten digits of 0-16),
    bilinearly resized to the entry's image size, as uint8."""
    # scikit-learn (a second to import) only for its own images: an IDX run never needs it
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    bunch = getattr(datasets, entry.loader)()
    small = torch.from_numpy(bunch.images / 16.0).float().unsqueeze(1)
    big = F.interpolate(small, size=entry.image_size, mode="bilinear", align_corners=False)
    images = (big.squeeze(1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    labels = bunch.target.astype(np.uint8)
    if test_size == 0:
        raise DataError(
            f"data.test_size must be > 0 for {entry.name} with model.kind dcn "
            "(the DCN reports test accuracy)"
        )
    tr, te = train_test_split(
        np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=seed
    )
    return {"train": (images[tr], labels[tr]), "test": (images[te], labels[te])}


@dataclass
class ImageData:
    """Normalised float32 image tensors ``(N, 1, H, W)`` and int64 labels, per split."""

    name: str
    X_train: Any
    y_train: Any
    X_val: Any
    y_val: Any
    X_test: Any
    y_test: Any
    class_names: list[str]
    mean: float
    std: float

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.X_train.shape[-2:])


def load_images(cfg: dict[str, Any]) -> ImageData:
    """The train / validation / test tensors a DCN config describes.

    The validation split (``data.val_size``: a count, at most 10% of the training images, or
    a fraction of them) is drawn with the config's seed; mean and std come from what remains
    for training.
    """
    data_cfg, seed, name = cfg["data"], cfg["seed"], cfg["data"]["name"]
    entry = CATALOG[name]
    if entry.source == IDX:
        splits = load_idx(name, data_cfg)
    else:
        splits = _load_bundled(entry, data_cfg["test_size"], seed)
    images, labels = splits["train"]
    size = data_cfg["val_size"]
    if isinstance(size, float):  # a fraction of the training images
        n_val = round(size * len(labels))
    else:  # a count, capped
        n_val = min(size, int(len(labels) * VAL_FRACTION_CAP))
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).numpy()
    val_idx, train_idx = perm[:n_val], np.sort(perm[n_val:])
    if len(train_idx) == 0:
        raise DataError(f"{name}: no training images")

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        X = torch.from_numpy(np.array(x)).unsqueeze(1).float().div_(255.0)  # a writable copy
        return X, torch.from_numpy(y.astype(np.int64))

    X_train, y_train = tensors(images[train_idx], labels[train_idx])
    X_val, y_val = tensors(images[val_idx], labels[val_idx])
    X_test, y_test = tensors(*splits["test"])
    mean, std = X_train.mean().item(), X_train.std().item() or 1.0
    for X in (X_train, X_val, X_test):
        X.sub_(mean).div_(std)
    return ImageData(
        name, X_train, y_train, X_val, y_val, X_test, y_test, list(entry.classes), mean, std
    )
