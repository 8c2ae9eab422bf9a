"""Data sets for the MLP: generated 2-D sets and scikit-learn's bundled tables (all offline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnlab.errors import DataError


@dataclass
class Dataset:
    """Features as float64 ``(n, n_features)`` arrays, labels as int ``(n,)`` arrays.

    ``X_test``/``y_test`` are None when nothing is held out.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str]
    feature_names: list[str]

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def _raw(data_cfg: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray, list, list]:
    """The whole data set before splitting: X, y, class names, feature names."""
    from sklearn import datasets

    name = data_cfg["name"]
    n, noise = data_cfg["n_samples"], data_cfg["noise"]
    if name == "moons":
        X, y = datasets.make_moons(n, noise=noise, random_state=seed)
    elif name == "circles":
        X, y = datasets.make_circles(n, noise=noise, random_state=seed)
    elif name == "blobs":
        X, y = datasets.make_blobs(n, random_state=seed)
    else:
        bunch = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits}[
            name
        ]()
        names = [str(c) for c in bunch.target_names]
        return bunch.data, bunch.target, names, [str(f) for f in bunch.feature_names]
    classes = [str(c) for c in range(int(y.max()) + 1)]
    return X, y, classes, [f"x{i + 1}" for i in range(X.shape[1])]


def load_data(cfg: dict[str, Any]) -> Dataset:
    """Build the train/test split described by a resolved config's ``data`` section.

    The split is stratified and seeded with ``cfg["seed"]``; standardisation uses the mean and
    standard deviation of the training split only.
    """
    data_cfg, seed = cfg["data"], cfg["seed"]
    X, y, class_names, feature_names = _raw(data_cfg, seed)
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    X_test = y_test = None
    test_size = data_cfg["test_size"]
    if test_size > 0:
        from sklearn.model_selection import train_test_split

        try:
            X, X_test, y, y_test = train_test_split(
                X, y, test_size=test_size, stratify=y, random_state=seed
            )
        except ValueError as exc:
            raise DataError(
                f"data.test_size={test_size} cannot split {len(y)} examples of "
                f"{len(class_names)} classes with stratification: {exc}"
            ) from None
    if data_cfg["standardize"]:
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std[std == 0] = 1.0
        X = (X - mean) / std
        if X_test is not None:
            X_test = (X_test - mean) / std
    return Dataset(data_cfg["name"], X, y, X_test, y_test, class_names, feature_names)


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
