"""Data sets from scikit-learn, splits and standardisation, and training on each."""

import matplotlib.image
import numpy as np
import pytest

import nnlab
from nnlab.config.resolve import load_config, schema_of
from nnlab.data.catalog import (
    BUNDLED,
    CATALOG,
    FILE,
    GENERATED,
    IDX,
    names,
)
from nnlab.data.extent import extent, image_extent
from nnlab.data.tabular import data_shape, load_data
from tests.conftest import small_mnist

SHAPES = {
    "moons": (2, 2),
    "circles": (2, 2),
    "blobs": (2, 3),
    "breast_cancer": (30, 2),
    "digits": (64, 10),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_data_set_loads_with_its_features_and_classes(name):
    data = load_data(load_config({"data": {"name": name}}))
    assert (data.n_features, data.n_classes) == SHAPES[name]
    assert data.X_train.dtype == np.float64 and data.X_train.flags.c_contiguous
    assert set(np.unique(data.y_train)) == set(range(data.n_classes))


def test_generated_sets_follow_n_samples_noise_and_seed():
    base = {"data": {"name": "circles", "n_samples": 321, "noise": 0.05}}
    a = load_data(load_config(base))
    assert a.X_train.shape == (321, 2) and a.X_test is None
    b = load_data(load_config(base, {"data.noise": 0.3}))
    assert not np.allclose(a.X_train, b.X_train)


def test_standardize_uses_training_statistics_only():
    data = load_data(
        load_config({"data": {"name": "digits", "test_size": 0.25, "standardize": True}})
    )
    assert np.allclose(data.X_train.mean(axis=0), 0)
    assert not np.allclose(data.X_test.mean(axis=0), 0)  # test split is not re-centred
    assert np.all(np.isfinite(data.X_test))  # constant pixels (std 0) do not divide by zero


@pytest.mark.slow
def test_digits_mlp_learns_and_draws_a_ten_class_confusion_matrix(tmp_path):
    cfg = {
        "name": "digits_mlp",
        "data": {"name": "digits", "test_size": 0.2, "standardize": True},
        "model": {"layers": [64, 32, 10], "activation": "relu", "init": "he"},
        "train": {"epsilon": 0.0005, "reg_lambda": 0.01, "iterations": 600, "log_every": 100},
    }
    run = nnlab.train(cfg, runs_dir=tmp_path)
    assert run.status == "completed"
    assert run.summary.final["test_acc"] > 0.9
    image = matplotlib.image.imread(run.path / "plots" / "confusion_matrix.png")
    assert image.shape[0] > 300 and image.shape[1] > 300


@pytest.mark.slow
def test_decision_boundary_shows_both_splits_and_every_class(tmp_path):
    cfg = {
        "data": {"name": "blobs", "test_size": 0.3},
        "model": {"layers": [2, 8, 3]},
        "train": {"iterations": 300, "log_every": 100},
    }
    run = nnlab.train(cfg, runs_dir=tmp_path)
    image = matplotlib.image.imread(run.path / "plots" / "decision_boundary.png")[..., :3]
    # the Spectral colours of three classes fill the plane: at least three distinct large areas
    colours, counts = np.unique(
        (image * 255).astype(int).reshape(-1, 3), axis=0, return_counts=True
    )
    big = colours[counts > 0.05 * counts.sum()]
    assert len(big) >= 4  # white margin + three class regions


def test_every_data_set_of_the_kinds_schemas_is_in_the_catalog():
    for kind in ("mlp", "dcn"):
        accepted = schema_of(kind)["data.name"].choices
        assert accepted == names(kind)
        for key, opt in schema_of(kind).items():
            assert set(opt.data_sets) <= set(CATALOG), key
    assert set(CATALOG) == set(names("mlp")) | set(names("dcn"))


def _catalog_config(kind: str, name: str, tmp_path) -> dict:
    """A resolved config of each catalog entry, with a small file where it needs one."""
    data: dict = {"name": name}
    if name in names(source=IDX):
        data["root"] = str(small_mnist(tmp_path / name, n_train=120, n_test=40))
    elif name in names(source=FILE):
        X, y = np.arange(60.0).reshape(20, 3), np.arange(20) % 2
        data["path"] = str(tmp_path / f"own.{name}")
        if name == "npz":
            np.savez(data["path"], X=X, y=y)
        else:
            rows = "".join(f"{a},{b},{c},{label}\n" for (a, b, c), label in zip(X, y, strict=True))
            (tmp_path / f"own.{name}").write_text(rows)
    return load_config({"model": {"kind": kind}, "data": data})


@pytest.mark.parametrize(
    ("kind", "name"), [(k, n) for k in ("mlp", "dcn") for n in names(k)], ids="-".join
)
def test_every_catalog_entry_reports_its_shape_without_loading_and_loading_agrees(
    kind, name, tmp_path
):
    cfg = _catalog_config(kind, name, tmp_path)
    if kind == "mlp":
        size = extent(cfg["data"])
        data = load_data(cfg)
        splits = [data.split(s)[0] for s in data.splits]
        assert size.examples + size.test == sum(len(X) for X in splits)
        assert size.features == data.n_features
        held = {s: len(data.split(s)[0]) for s in data.splits}
        shape = data_shape(cfg)
        assert (shape.train, shape.val, shape.test) == tuple(
            held.get(s, 0) for s in ("train", "val", "test")
        )
    else:
        from nnlab.data.images import load_images

        size = image_extent(cfg["data"])
        images = load_images(cfg)
        total = len(images.X_train) + len(images.X_val) + len(images.X_test)
        assert size.examples + size.test == total
        assert size.example == images.image_size
        assert len(images.class_names) == len(CATALOG[name].classes)


def test_the_bundled_shapes_are_known_without_any_file(monkeypatch):
    """Generated and bundled sets are measured from the config and the catalog alone."""
    import nnlab.data.tables as tables

    def refuse(*args, **kwargs):
        raise AssertionError("a file was read")

    monkeypatch.setattr(tables, "file_shape", refuse)
    for name in (*names(source=GENERATED), *names(source=BUNDLED)):
        size = extent(load_config({"data": {"name": name}})["data"])
        assert size.examples > 0 and size.features > 0
    assert image_extent({"name": "digits"}).example == (28, 28)
