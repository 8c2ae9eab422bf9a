"""Every YAML nnlab reads (configs, sweep files, -s values, config.yaml and sweep.yaml read
back) goes through one bounded loader: hostile input is one line and exit 2, never a
traceback, a hang or a flood; YAML 1.1's surprises (duplicate keys, base-60 numbers) are
refused or read as text; sweep job ids tell distinct values apart; gradcheck says what it
checks."""

import json
import os
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, check_run, nnlab, run_dir_of

MOONS = str(CONFIGS / "moons_tanh.yaml")
DEEP = "[" * 5000 + "]" * 5000


def alias_bomb(levels: int = 7) -> str:
    """A flow list whose aliases expand to 9**levels strings (a 'billion laughs')."""
    parts = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        parts.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "[" + ", ".join(parts) + "]"


def one_line_error(result, *words: str) -> str:
    """Assert exit 2 with a single ``nnlab: error:`` line holding ``words``; return it."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error: "), result.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def moons_run(tmp_path: Path) -> Path:
    """A finished quick moons run folder."""
    result = nnlab(
        "train", MOONS, "-q", "--runs-dir", tmp_path / "runs", "-s", "train.iterations=100"
    )
    assert result.returncode == 0, result.stderr
    return run_dir_of(result, tmp_path)


# -- item 10: hostile YAML ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["config", "sweep file", "override"])
def test_deep_nesting_is_one_line_naming_the_limit(tmp_path, where):
    (tmp_path / "deep.yaml").write_text(f"train:\n  epsilon: {DEEP}\n")
    (tmp_path / "sweep.yaml").write_text(
        f"sweep:\n  base: {MOONS}\n  grid:\n    train.epsilon: {DEEP}\n"
    )
    args = {
        "config": ["train", tmp_path / "deep.yaml"],
        "sweep file": ["sweep", tmp_path / "sweep.yaml"],
        "override": ["train", MOONS, "-s", f"train.epsilon={DEEP}"],
    }[where]
    result = nnlab(*args, "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    line = one_line_error(result, "nested deeper than")
    assert ("override train.epsilon" if where == "override" else str(tmp_path)) in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["config", "override"])
def test_an_alias_bomb_is_refused_without_being_expanded(tmp_path, where):
    (tmp_path / "bomb.yaml").write_text(f"train:\n  epsilon: {alias_bomb()}\n")
    args = {
        "config": ["train", tmp_path / "bomb.yaml"],
        "override": ["train", MOONS, "-s", f"train.epsilon={alias_bomb()}"],
    }[where]
    result = nnlab(*args, "--runs-dir", tmp_path / "runs", cwd=tmp_path, timeout=120)
    line = one_line_error(result, "aliases")
    assert len(line) < 400
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["config", "search"])
def test_a_value_in_an_error_is_shown_truncated(tmp_path, where):
    long = "x" * 100_000
    (tmp_path / "c.yaml").write_text(f"model:\n  activation: {long}\n")
    (tmp_path / "s.yaml").write_text(
        f"sweep:\n  base: {MOONS}\n  search: {{method: {long}}}\n"
        "  params: {train.epsilon: {low: 0.001, high: 0.1}}\n"
    )
    command, words = {
        "config": ("train", "model.activation must be"),
        "search": ("sweep", "sweep.search.method must be"),
    }[where]
    line = one_line_error(nnlab(command, tmp_path / f"{where[0]}.yaml"), words)
    assert len(line) < 400 and "…" in line


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_file_as_config_is_refused(tmp_path, device):
    result = nnlab("train", device, "--runs-dir", tmp_path / "runs", timeout=60)
    one_line_error(result, device, "not a regular file")
    assert not (tmp_path / "runs").exists()


def test_a_huge_config_file_is_refused_unread(tmp_path):
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:
        f.truncate(200 * 2**20)  # 200 MiB, sparse: nothing to read if nnlab checks the size
    result = nnlab("train", huge, "--runs-dir", tmp_path / "runs", timeout=60)
    one_line_error(result, str(huge), "MiB", "limit")


HOSTILE = {"deep": (DEEP, "nested deeper than"), "bomb": (alias_bomb(), "aliases")}


@pytest.mark.slow
@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_config_yaml_read_back_goes_through_the_same_loader(tmp_path, hostile):
    text, words = HOSTILE[hostile]
    run = moons_run(tmp_path)
    (run / "config.yaml").write_text(f"train:\n  epsilon: {text}\n")
    line = one_line_error(nnlab("report", run, timeout=120), str(run / "config.yaml"), words)
    assert len(line) < 400


@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_sweep_yaml_read_back_goes_through_the_same_loader(tmp_path, hostile):
    text, words = HOSTILE[hostile]
    folder = tmp_path / "20260101-000000-sweep-x"
    folder.mkdir()
    (folder / "sweep.yaml").write_text(f"sweep: {text}\n")
    (folder / "state.json").write_text(json.dumps({"status": "running", "jobs": {}}))
    result = nnlab("sweep", "--resume", folder, timeout=120)
    line = one_line_error(result, str(folder / "sweep.yaml"), words)
    assert len(line) < 400


# -- item 12: YAML 1.1 surprises and job ids -----------------------------------------------


def test_a_sexagesimal_number_is_not_read_as_base_60(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  iterations: 1:30\n")
    result = nnlab("train", tmp_path / "c.yaml", "--runs-dir", tmp_path / "runs")
    one_line_error(result, "train.iterations must be an integer >= 1; got '1:30'")
    override = nnlab("train", MOONS, "-s", "train.epsilon=1:30", "--runs-dir", tmp_path / "runs")
    one_line_error(override, "train.epsilon must be a number > 0; got '1:30'")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["config", "sweep file", "override"])
def test_a_duplicate_key_is_refused_naming_the_key_and_line(tmp_path, where):
    (tmp_path / "c.yaml").write_text("train:\n  epsilon: 0.1\n  iterations: 100\n  epsilon: 5\n")
    (tmp_path / "s.yaml").write_text(
        f"sweep:\n  base: {MOONS}\n  grid:\n    model.activation: [tanh]\n"
        "    model.activation: [relu]\n"
    )
    args, words = {
        "config": (["train", tmp_path / "c.yaml"], ["'epsilon'", "line 4", "line 2"]),
        "sweep file": (["sweep", tmp_path / "s.yaml"], ["'model.activation'", "line 5"]),
        "override": (
            ["train", MOONS, "-s", "train.lr_decay={kind: step, kind: none}"],
            ["override train.lr_decay", "'kind'"],
        ),
    }[where]
    result = nnlab(*args, "--runs-dir", tmp_path / "runs")
    one_line_error(result, "duplicate key", *words)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_grid_values_equal_to_six_digits_get_distinct_job_ids(tmp_path):
    (tmp_path / "s.yaml").write_text(
        f"sweep:\n  base: {MOONS}\n  grid:\n    train.epsilon: [0.1, 0.1000001, 0.01]\n"
        "    model.layers: [[2, 3, 2]]\n"
    )
    result = nnlab(
        "sweep", tmp_path / "s.yaml", "-q", "--jobs", "1", "--runs-dir", tmp_path / "runs",
        "-s", "train.iterations=100",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    jobs = json.loads((folder / "state.json").read_text())["jobs"]
    assert sorted(jobs) == [  # the ordinary value keeps the id it always had
        "epsilon=0.01,layers=2-3-2",
        "epsilon=0.1,layers=2-3-2",
        "epsilon=0.1000001,layers=2-3-2",
    ]
    assert jobs["epsilon=0.1000001,layers=2-3-2"]["overrides"]["train.epsilon"] == 0.1000001
    assert sorted(os.listdir(folder / "jobs")) == sorted(jobs)
    check_run(folder)


def test_grid_values_that_are_one_value_are_still_duplicates(tmp_path):
    (tmp_path / "s.yaml").write_text(
        f"sweep:\n  base: {MOONS}\n  grid:\n    train.epsilon: [1, 1.0]\n"
    )
    result = nnlab("sweep", tmp_path / "s.yaml", "--runs-dir", tmp_path / "runs")
    one_line_error(result, "the same config", "epsilon=1")
    assert not (tmp_path / "runs").exists()


# -- item 4: gradcheck of a DCN config -----------------------------------------------------


def test_gradcheck_of_a_dcn_config_says_what_it_checks(tmp_path):
    config = CONFIGS / "digits_dcn.yaml"
    result = nnlab("gradcheck", config, cwd=tmp_path)
    one_line_error(result, str(config), "model.kind is dcn", "model.kind mlp", "autograd")
    assert result.stdout == ""
