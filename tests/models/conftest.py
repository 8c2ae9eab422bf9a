"""Fixtures the DCN's test modules share."""

from pathlib import Path

import pytest

from tests.conftest import small_mnist


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory) -> Path:
    """More digits, for runs that train to a stable accuracy: 1,000 training, 500 test."""
    return small_mnist(tmp_path_factory.mktemp("digits"), n_train=1000, n_test=500)
