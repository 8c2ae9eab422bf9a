"""Data sets from scikit-learn, splits and standardisation, and training on each."""

import matplotlib.image
import numpy as np
import pytest

import nnlab
from nnlab.config.options import load_config
from nnlab.data.catalog import load_data

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
