"""Sizes are bounded before anything is allocated or created: sweep grids are counted before
they are expanded, the memory a config needs is estimated from it and refused above the
limit, the decision-boundary figure predicts in bounded chunks, and MNIST-format files are
checked when they are read — all as one-line errors through the real CLI (docs/design.md,
'Resource bounds')."""

import resource
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import nnlab, small_mnist, write_idx

GB = 1024**3


def address_space(gb: float):
    """A child-process setup that caps its address space: a check that fails to refuse shows
    as a MemoryError within the cap, never as the machine's memory being taken."""

    def setup() -> None:
        limit = int(gb * GB)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return setup


def one_line_error(result) -> str:
    """The single `nnlab: error:` line of a refused command (exit 2, no traceback)."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error: "), result.stderr
    return lines[0]


# -- 7: MNIST-format files are checked when they are read --------------------------------------


def _mismatched_test_images(root: Path) -> Path:
    small_mnist(root)
    test = np.zeros((100, 20, 20), dtype=np.uint8)
    return write_idx(root / "t10k-images-idx3-ubyte", test)


KIND_ARGS = {
    "mlp": ["model.layers=[784,16,10]", "train.optimizer=adam", "train.epochs=1"],
    "dcn": ["model.kind=dcn", "model.conv_channels=[4]", "model.fc_units=8", "train.epochs=1"],
}


def _train_on(root: Path, kind: str, tmp_path: Path):
    sets = [f"data.root={root}", "data.name=mnist", *KIND_ARGS[kind]]
    base = tmp_path / "base.yaml"
    base.write_text("name: idx\n")
    args = [a for s in sets for a in ("-s", s)]
    return nnlab("train", base, *args, "--runs-dir", tmp_path / "runs", setup=address_space(4))


@pytest.mark.parametrize("kind", ["mlp", "dcn"])
def test_train_and_test_images_of_different_sizes_are_refused_before_the_run(tmp_path, kind):
    test_images = _mismatched_test_images(tmp_path / "mnist")
    line = one_line_error(_train_on(tmp_path / "mnist", kind, tmp_path))
    assert str(test_images) in line and "20x20" in line and "28x28" in line
    assert not (tmp_path / "runs").exists()


BAD_HEADERS = {
    "dimensions that overflow": (
        b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3 + bytes(64),
        "its header promises 4294967295x4294967295x4294967295 images",
    ),
    "type code": (b"\x00\x00\x0d\x03" + bytes(12), "type code is 0x0d (float32)"),
    "number of dimensions": (
        b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02" + bytes(4),
        "2 dimensions; images need 3",
    ),
    "trailing bytes": (
        b"\x00\x00\x08\x03\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x02" + bytes(9),
        "5 bytes more than its header's 1x2x2 images",
    ),
}


@pytest.mark.parametrize("kind", ["mlp", "dcn"])
@pytest.mark.parametrize("case", list(BAD_HEADERS), ids=list(BAD_HEADERS))
def test_a_bad_idx_header_is_one_line_naming_the_file(tmp_path, case, kind):
    small_mnist(tmp_path / "mnist")
    content, message = BAD_HEADERS[case]
    images = tmp_path / "mnist" / "train-images-idx3-ubyte"
    images.write_bytes(content)
    line = one_line_error(_train_on(tmp_path / "mnist", kind, tmp_path))
    assert str(images) in line and message in line
    assert not (tmp_path / "runs").exists()

