"""Data sets as the MLP reads them: tables of features and labels (images flattened), split
into train / validation / test and scaled; and the sizes of those splits before anything is
loaded (:func:`data_shape`, for the memory estimate).

Which data sets there are, and where each comes from, is :mod:`~nnlab.data.catalog`'s.
Everything is offline except ``data.download: true``. scikit-learn is imported only by the
loaders that use it: the memory estimate imports this module for every MLP run, and
scikit-learn takes about a second to import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnlab.data import tables
from nnlab.data.catalog import BUNDLED, CATALOG, FILE, IDX, DataSet
from nnlab.data.extent import extent
from nnlab.data.idx import load_idx
from nnlab.errors import DataError


@dataclass
class Dataset:
    """Features as float ``(n, n_features)`` arrays, labels as int ``(n,)`` arrays (indices
    into ``class_names``, the label order). ``X_val``/``X_test`` are None when nothing is
    held out for them."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str]
    feature_names: list[str]
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def splits(self) -> list[str]:
        """The splits this data set has, in metric order: train, then val and test if held."""
        held = [("val", self.X_val), ("test", self.X_test)]
        return ["train", *(name for name, X in held if X is not None)]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return getattr(self, f"X_{name}"), getattr(self, f"y_{name}")


def _pixel_names(height: int, width: int) -> list[str]:
    return [f"pixel_{r}_{c}" for r in range(height) for c in range(width)]


def _generated(entry: DataSet, data_cfg: dict[str, Any], seed: int) -> tuple:
    """Points drawn by scikit-learn: X, y, class names, feature names."""
    from sklearn import datasets  # lazy: a second to import (the module docstring says why)

    noise = {"noise": data_cfg["noise"]} if "noise" in entry.keys else {}
    X, y = getattr(datasets, entry.loader)(data_cfg["n_samples"], random_state=seed, **noise)
    classes = [str(c) for c in range(int(y.max()) + 1)]
    return X, y, classes, [f"x{i + 1}" for i in range(X.shape[1])]


def _bundled(entry: DataSet) -> tuple:
    """A table that ships with scikit-learn: X, y, class names, feature names."""
    from sklearn import datasets  # lazy: a second to import (the module docstring says why)

    bunch = getattr(datasets, entry.loader)()
    classes = [str(c) for c in bunch.target_names]
    if len(entry.size) == 3:  # images (digits: 8x8 of 0-16), scaled to [0, 1] like the others
        return bunch.data / 16.0, bunch.target, classes, _pixel_names(*entry.size[1:])
    return bunch.data, bunch.target, classes, [str(f) for f in bunch.feature_names]


def _images(entry: DataSet, data_cfg: dict[str, Any]) -> tuple:
    """MNIST-format IDX files, each image flattened row by row and scaled to [0, 1]: the
    training images and labels, the test ones, class names, feature names."""
    splits = load_idx(entry.name, data_cfg)  # checks that both splits have one image size
    (images, labels), (test_images, test_labels) = splits["train"], splits["test"]
    h, w = images.shape[1:]

    def flat(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), h * w) / 255.0

    classes = list(entry.classes)
    return flat(images), labels, flat(test_images), test_labels, classes, _pixel_names(h, w)


def _own_file(entry: DataSet, data_cfg: dict[str, Any]) -> tuple:
    read = getattr(tables, entry.loader)
    options = {key: data_cfg[key] for key in entry.keys if key != "path"}  # csv's columns
    table = read(data_cfg["path"], **options)
    return table.X, table.labels, table.class_names, table.feature_names


def _hold_out(X, y, size, seed: int, what: str, key: str, n_classes: int) -> tuple:
    """Split off ``size`` (a fraction or a count) of (X, y), stratified and seeded."""
    from sklearn.model_selection import train_test_split

    try:
        X, X_out, y, y_out = train_test_split(X, y, test_size=size, stratify=y, random_state=seed)
    except ValueError as exc:
        raise DataError(
            f"{key}={size} cannot hold out {what} from {len(y)} examples of {n_classes} "
            f"classes with stratification: {exc}"
        ) from None
    return X, y, X_out, y_out


def load_data(cfg: dict[str, Any]) -> Dataset:
    """The train / validation / test split a resolved config's ``data`` section describes.

    The test split (``data.test_size``; the IDX sets bring their own) is held out first, then
    the validation split (``data.val_size``) from what remains; both are stratified and
    seeded with ``cfg["seed"]``. Standardisation uses the mean and standard deviation of the
    training split only. Arrays are float64, or float32 under ``train.dtype: float32``.
    """
    data_cfg, seed = cfg["data"], cfg["seed"]
    name = data_cfg["name"]
    X_test = y_test = X_val = y_val = None
    entry = CATALOG[name]
    if entry.source == IDX:
        X, y, X_test, y_test, class_names, feature_names = _images(entry, data_cfg)
    elif entry.source == FILE:
        X, y, class_names, feature_names = _own_file(entry, data_cfg)
    elif entry.source == BUNDLED:
        X, y, class_names, feature_names = _bundled(entry)
    else:
        X, y, class_names, feature_names = _generated(entry, data_cfg, seed)
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n_classes = len(class_names)
    test_size = data_cfg.get("test_size")  # (not a key of the IDX sets: their test files)
    if test_size:
        X, y, X_test, y_test = _hold_out(
            X, y, test_size, seed, "a test split", "data.test_size", n_classes
        )
    if data_cfg["val_size"]:
        X, y, X_val, y_val = _hold_out(
            X, y, data_cfg["val_size"], seed, "a validation split", "data.val_size", n_classes
        )
    if data_cfg["standardize"]:
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std[std == 0] = 1.0
        X = (X - mean) / std
        X_val, X_test = ((Z - mean) / std if Z is not None else None for Z in (X_val, X_test))
    dtype = np.dtype(cfg["train"]["dtype"])
    if dtype != np.float64:
        X, X_val, X_test = (Z.astype(dtype) if Z is not None else None for Z in (X, X_val, X_test))
    y_test = None if y_test is None else np.asarray(y_test, dtype=np.int64)
    return Dataset(name, X, y, X_test, y_test, class_names, feature_names, X_val, y_val)


def check_fits(cfg: dict[str, Any], data: Dataset) -> None:
    """Raise DataError when the model's input or output size does not match the data."""
    layers = cfg["model"]["layers"]
    if layers[0] != data.n_features:
        raise DataError(
            f"model.layers[0] is {layers[0]} but data set {data.name!r} has "
            f"{data.n_features} features; set model.layers[0] to {data.n_features}"
        )
    if layers[-1] != data.n_classes:
        raise DataError(
            f"model.layers[-1] is {layers[-1]} but data set {data.name!r} has "
            f"{data.n_classes} classes; set model.layers[-1] to {data.n_classes}"
        )
    present = np.unique(data.y_train)
    if len(present) < 2:
        raise DataError(f"the training split of {data.name!r} holds only one class")


def outline(data: Dataset) -> Dataset:
    """``data`` without its examples: all that :func:`check_fits` reads (the features, the
    class names, each class of the training split once), for a sweep's pre-check to keep."""
    features = np.empty((0, data.n_features))
    classes = np.unique(data.y_train)
    return Dataset(data.name, features, classes, None, None, data.class_names, data.feature_names)


@dataclass(frozen=True)
class Shape:
    """How many examples each split of a config's data will hold, and their features —
    known before the data is loaded (for the memory estimate, nnlab.models.bounds)."""

    train: int
    val: int
    test: int
    features: int
    reading: float = 0  # bytes that reading the user's file takes beyond the arrays

    @property
    def total(self) -> int:
        return self.train + self.val + self.test

    @property
    def largest_split(self) -> int:
        return max(self.train, self.val, self.test)


def data_shape(cfg: dict[str, Any]) -> Shape:
    """The sizes of the splits :func:`load_data` would make, from the config and at most the
    headers of its files (:func:`~nnlab.data.extent.extent`)."""
    size = extent(cfg["data"])
    n, n_test = size.examples, size.test
    test_size, val_size = cfg["data"].get("test_size"), cfg["data"]["val_size"]
    if test_size:
        n_test = math.ceil(test_size * n)
        n -= n_test
    n_val = math.ceil(val_size * n) if isinstance(val_size, float) else min(val_size, n)
    return Shape(n - n_val, n_val, n_test, size.features, size.reading)
