"""Sizes are bounded before anything is allocated or created: sweep grids are counted before
they are expanded, the memory a config needs is estimated from it and refused above the
limit, the decision-boundary figure predicts in bounded chunks, and MNIST-format files are
checked when they are read — all as one-line errors through the real CLI (docs/reliability.md,
'Resource bounds')."""

import json
import resource
from pathlib import Path

import numpy as np
import pytest

from nnlab.config.resolve import dump_config, load_config
from nnlab.errors import ConfigError
from nnlab.models.mlp.math import MLP, forward
from nnlab.sweeps import load_sweep
from tests.conftest import CONFIGS, nnlab, run_dir_of, small_mnist, write_idx

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


def values(n: int) -> str:
    return "[" + ", ".join(str(i) for i in range(1, n + 1)) + "]"


# -- 5: grids are counted before they are expanded ---------------------------------------------


def test_a_huge_grid_is_refused_before_it_is_expanded(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(
        f"sweep:\n  base: {CONFIGS / 'moons_tanh.yaml'}\n  grid:\n"
        f"    train.iterations: {values(100)}\n    train.log_every: {values(100)}\n"
        f"    model.activation: [tanh, relu]\n"
        f"  variants: [{{train.epsilon: 0.1}}, {{train.epsilon: 0.01}}]\n"
        f"  seeds: {values(250)}\n"
    )
    result = nnlab(
        "sweep", path, "--runs-dir", tmp_path / "runs", timeout=120, setup=address_space(3)
    )
    line = one_line_error(result)
    assert "10,000,000 jobs" in line and "at most 100,000" in line
    for part in ("train.iterations 100", "train.log_every 100", "model.activation 2"):
        assert part in line
    assert "2 variants" in line and "250 seeds" in line
    assert not (tmp_path / "runs").exists()


def test_a_search_of_more_trials_than_a_sweep_may_run_is_refused(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(
        f"sweep:\n  base: {CONFIGS / 'breast_cancer_val.yaml'}\n"
        "  search: {method: random, trials: 60000, metric: val_acc}\n"
        "  params:\n    train.epsilon: {low: 0.001, high: 0.1}\n  seeds: [0, 1]\n"
    )
    result = nnlab("sweep", path, "--runs-dir", tmp_path / "runs", "--jobs", "1", timeout=120)
    line = one_line_error(result)
    assert "sweep.search.trials 60,000" in line and "2 seeds" in line
    assert "120,000 jobs" in line and "at most 100,000" in line
    assert not (tmp_path / "runs").exists()


GRIDS = {
    "values": "  grid:\n    train.epsilon: [0.1, 0.2]\n    model.layers: [[2, 3, 2], [2, 5, 2]]\n",
    "kind": "  grid:\n    model.kind: [mlp, dcn]\n",
    "data set": "  variants:\n    - {data.name: breast_cancer, model.layers: [30, 5, 2]}\n"
    "    - {data.name: circles}\n",
    "test size": "  grid:\n    data.test_size: [null, 0.25]\n  seeds: [3, 4]\n",
    "variants": "  variants: [{train.optimizer: adam, train.epochs: 2}, {name: other}]\n",
}


@pytest.mark.parametrize("body", GRIDS.values(), ids=list(GRIDS))
def test_each_job_is_the_config_its_overrides_give(tmp_path, body):
    """Expansion validates the base once and each job's overrides on top of it: every job must
    still be exactly what resolving the base file with its overrides gives."""
    base = tmp_path / "base.yaml"
    base.write_text("data: {name: moons}\nmodel: {kind: mlp}\ntrain: {iterations: 50}\n")
    path = tmp_path / "sweep.yaml"
    path.write_text(f"sweep:\n  base: {base}\n{body}")
    try:
        sweep = load_sweep(path, ["train.reg_lambda=0.002"])
    except ConfigError as exc:  # the dcn job: a config error, the same as load_config's
        with pytest.raises(ConfigError) as expected:
            load_config(base, {"train.reg_lambda": 0.002, "model.kind": "dcn"})
        assert str(exc) == f"job kind=dcn: {expected.value}"
        return
    assert len(sweep.jobs) > 1
    for job in sweep.jobs:
        expected = load_config(base, {"train.reg_lambda": 0.002, **job.overrides})
        assert dump_config(job.config) == dump_config(expected)  # the same keys, in order


def test_a_bad_value_in_a_large_grid_names_its_job(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        f"sweep:\n  base: {CONFIGS / 'moons_tanh.yaml'}\n  grid:\n"
        f"    train.iterations: {values(200)}\n    train.log_every: {values(99)}\n"
        "    train.epsilon: [0.1, -1]\n"
    )
    line = one_line_error(nnlab("sweep", path, "--runs-dir", tmp_path / "runs"))
    assert "job iterations=1,log_every=1,epsilon=-1: train.epsilon must be a number > 0" in line


# -- 6: memory is estimated from the config and bounded ----------------------------------------

TOO_BIG = {  # config, overrides, the key the error must name
    "mlp hidden layer": ("moons_tanh.yaml", ["model.layers=[2,2000000000,2]"], "model.layers"),
    "mlp data": ("moons_tanh.yaml", ["data.n_samples=10000000000"], "data.n_samples"),
    "mlp full batch": (
        "moons_tanh.yaml", ["model.layers=[2,400000,2]", "data.n_samples=20000"], "model.layers"
    ),
    "mlp metric rows": ("moons_tanh.yaml", ["train.iterations=100000000000"], "train.log_every"),
    "dcn fc layer": ("digits_dcn.yaml", ["model.fc_units=1000000000"], "model.fc_units"),
    "dcn kernel": ("digits_dcn.yaml", ["model.kernel_size=100000"], "model.kernel_size"),
    "dcn channels": (
        "digits_dcn.yaml", ["model.conv_channels=[1000000,1000000]"], "model.conv_channels"
    ),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", list(TOO_BIG), ids=list(TOO_BIG))
def test_a_config_that_needs_too_much_memory_is_refused_before_anything_is_made(
    case, tmp_path, monkeypatch
):
    monkeypatch.setenv("NNLAB_MAX_MEMORY_GB", "16")
    config, overrides, key = TOO_BIG[case]
    sets = [a for s in overrides for a in ("-s", s)]
    result = nnlab(
        "train", CONFIGS / config, *sets, "--runs-dir", tmp_path / "runs",
        setup=address_space(4), timeout=120,
    )  # fmt: skip
    line = one_line_error(result)
    assert key in line and " GB" in line
    assert "above the limit of 16 GB (NNLAB_MAX_MEMORY_GB)" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_the_memory_limit_defaults_to_this_machine_and_can_be_set(tmp_path, monkeypatch):
    monkeypatch.delenv("NNLAB_MAX_MEMORY_GB", raising=False)
    runs = tmp_path / "runs"
    big = ["-s", "model.fc_units=1000000000", "--runs-dir", runs]
    line = one_line_error(nnlab("train", CONFIGS / "digits_dcn.yaml", *big, setup=address_space(4)))
    assert "this machine's memory; set NNLAB_MAX_MEMORY_GB" in line
    small = [CONFIGS / "moons_tanh.yaml", "-s", "train.iterations=10", "--runs-dir", runs]
    monkeypatch.setenv("NNLAB_MAX_MEMORY_GB", "0.000001")
    line = one_line_error(nnlab("train", *small))
    assert "above the limit of 1e-06 GB (NNLAB_MAX_MEMORY_GB)" in line
    monkeypatch.setenv("NNLAB_MAX_MEMORY_GB", "lots")
    line = one_line_error(nnlab("train", *small))
    assert "NNLAB_MAX_MEMORY_GB must be a number of GB > 0; got 'lots'" in line
    assert not runs.exists()
    monkeypatch.setenv("NNLAB_MAX_MEMORY_GB", "1")
    assert nnlab("train", *small).returncode == 0


@pytest.mark.slow
def test_every_job_of_a_sweep_is_bounded_before_the_sweep_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_MAX_MEMORY_GB", "16")
    path = tmp_path / "sweep.yaml"
    path.write_text(
        f"sweep:\n  base: {CONFIGS / 'moons_tanh.yaml'}\n  grid:\n"
        "    model.layers: [[2, 3, 2], [2, 2000000000, 2]]\n"
    )
    result = nnlab("sweep", path, "--runs-dir", tmp_path / "runs", setup=address_space(3))
    line = one_line_error(result)
    assert line.startswith("nnlab: error: job layers=2-2000000000-2: model.layers")
    assert not (tmp_path / "runs").exists()
    path.write_text(
        f"sweep:\n  base: {CONFIGS / 'digits_dcn.yaml'}\n"
        "  search: {method: random, trials: 2, metric: val_acc}\n"
        "  params:\n    model.fc_units: {low: 16, high: 1000000000}\n"
    )
    line = one_line_error(nnlab("sweep", path, "--runs-dir", tmp_path / "runs"))
    assert "sweep.params.model.fc_units: the value 1000000000 is refused: model.fc_units" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_bad_keep_freed_memory_value_is_refused_before_a_run_or_a_sweep_starts(
    tmp_path, monkeypatch
):
    """NNLAB_KEEP_FREED_MEMORY (nnlab.models.allocator) is read with the memory limit: any value but
    0 or 1 is one line naming it, for any model kind and device, before a folder is made."""
    monkeypatch.setenv("NNLAB_KEEP_FREED_MEMORY", "yes")
    runs = tmp_path / "runs"
    small = [CONFIGS / "moons_tanh.yaml", "-s", "train.iterations=10", "--runs-dir", runs]
    line = one_line_error(nnlab("train", *small))
    assert "NNLAB_KEEP_FREED_MEMORY is 'yes'; use 1 (the default" in line
    path = tmp_path / "sweep.yaml"
    path.write_text(
        f"sweep:\n  base: {CONFIGS / 'moons_tanh.yaml'}\n  grid:\n    train.iterations: [10, 20]\n"
    )
    line = one_line_error(nnlab("sweep", path, "--runs-dir", runs))
    assert "NNLAB_KEEP_FREED_MEMORY is 'yes'" in line
    assert not runs.exists()
    monkeypatch.setenv("NNLAB_KEEP_FREED_MEMORY", "0")
    assert nnlab("train", *small).returncode == 0


@pytest.mark.slow
def test_the_decision_boundary_of_a_wide_network_is_drawn_in_bounded_memory(tmp_path):
    result = nnlab(
        "train", CONFIGS / "moons_tanh.yaml", "-s", "model.layers=[2,3000,2]",
        "-s", "train.iterations=3", "--runs-dir", tmp_path / "runs", cwd=tmp_path,
        setup=address_space(2),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = run_dir_of(result, tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    assert "warnings" not in meta, meta["warnings"]
    assert (run / "plots" / "decision_boundary.png").is_file()


def test_predicting_in_chunks_gives_the_predictions_of_one_batch():
    model = MLP.create([2, 300, 300, 3], "tanh", "classic", 0)
    X = np.random.RandomState(1).uniform(-3, 3, size=(20_000, 2))
    whole = np.argmax(forward(model.W, model.b, X, "tanh")[1], axis=1)
    assert np.array_equal(model.predict(X), whole)  # 20,000 rows: several chunks


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


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_a_dcn_sweep_on_mismatched_idx_files_stops_before_it_starts(tmp_path):
    _mismatched_test_images(tmp_path / "mnist")
    base = tmp_path / "base.yaml"
    base.write_text(
        f"data: {{name: mnist, root: {tmp_path / 'mnist'}, val_size: 10}}\n"
        "model: {kind: dcn, conv_channels: [4], fc_units: 8}\n"
        "train: {epochs: 1, stats_every: 0, tensorboard: false}\n"
    )
    path = tmp_path / "sweep.yaml"
    path.write_text(f"sweep:\n  base: {base}\n  grid:\n    train.epsilon: [0.01, 0.1]\n")
    result = nnlab("sweep", path, "--runs-dir", tmp_path / "runs", "--jobs", "1")
    line = one_line_error(result)
    assert line.startswith("nnlab: error: job epsilon=0.01: ") and "20x20" in line
    assert not (tmp_path / "runs").exists()


# -- the user's data files are measured from the file, not from the config -----------------------


def _file_config(tmp_path: Path, name: str, path: str, layers: str = "[3, 4, 2]") -> Path:
    config = tmp_path / "cfg.yaml"
    config.write_text(
        f"data: {{name: {name}, path: {path}}}\nmodel: {{layers: {layers}}}\n"
        "train: {iterations: 2, log_every: 1}\n"
    )
    return config


def test_a_wide_csv_file_is_measured_from_its_first_line_not_model_layers(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_MAX_MEMORY_GB", "0.01")
    row = ",".join(["0"] * 20_000)  # 20,000 features: 2 bytes each on disk, 8+ in memory
    lines = [",".join(f"f{j}" for j in range(20_000)) + ",kind"]
    lines += [f"{row},{('ant', 'bee')[i % 2]}" for i in range(100)]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n")
    config = _file_config(tmp_path, "csv", "wide.csv")  # model.layers[0] says 3 features
    line = one_line_error(nnlab("train", config, "--runs-dir", tmp_path / "runs"))
    assert f"data.path '{tmp_path / 'wide.csv'}': the data need about" in line
    assert "above the limit of 0.01 GB (NNLAB_MAX_MEMORY_GB)" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_zip_bomb_npz_is_refused_from_its_npy_headers_before_it_is_read(tmp_path, monkeypatch):
    """80 MB of zeros in an archive of 80 kB: the .npy header says how big X is, and the
    run and every job of a sweep are refused from it, before anything is decompressed."""
    monkeypatch.setenv("NNLAB_MAX_MEMORY_GB", "0.05")
    y = np.arange(5000) % 2
    np.savez_compressed(tmp_path / "bomb.npz", X=np.zeros((5000, 2000)), y=y)
    assert (tmp_path / "bomb.npz").stat().st_size < 1_000_000
    config = _file_config(tmp_path, "npz", "bomb.npz")
    line = one_line_error(nnlab("train", config, "--runs-dir", tmp_path / "runs"))
    assert f"data.path '{tmp_path / 'bomb.npz'}':" in line
    assert "above the limit of 0.05 GB (NNLAB_MAX_MEMORY_GB)" in line
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("sweep:\n  base: cfg.yaml\n  seeds: [0, 1]\n")
    line = one_line_error(nnlab("sweep", sweep, "--runs-dir", tmp_path / "runs"))
    assert line.startswith("nnlab: error: job seed=0: data.path")
    assert "above the limit of 0.05 GB" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_sweep_s_pre_check_holds_one_data_set_at_a_time(tmp_path, monkeypatch):
    """Eight seeds of a data set of 400 MB in memory (50 MB on disk: uint8) under an address
    space of 2.5 GB: the pre-check loads each seed's split in turn and keeps only what the
    layer check reads, then stops at the last job's wrong layers, before anything runs."""
    monkeypatch.setenv("NNLAB_MAX_MEMORY_GB", "100")
    rng = np.random.RandomState(0)
    X = rng.randint(0, 4, (20_000, 2_500)).astype(np.uint8)
    np.savez(tmp_path / "wide.npz", X=X, y=rng.randint(0, 2, 20_000))
    del X
    _file_config(tmp_path, "npz", "wide.npz", "[2500, 4, 2]")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "sweep:\n  base: cfg.yaml\n  grid:\n    model.layers: [[2500, 4, 2], [3, 4, 2]]\n"
        f"  seeds: {list(range(8))}\n"
    )
    result = nnlab("sweep", sweep, "--runs-dir", tmp_path / "runs", setup=address_space(2.5))
    line = one_line_error(result)
    assert line.startswith("nnlab: error: job layers=3-4-2,seed=0: model.layers[0] is 3 but")
    assert not (tmp_path / "runs").exists()
