"""The contract checker of tests/contract.py: real folders pass, and it catches each breakage."""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

import nnlab
from tests.conftest import CONFIGS, check_run
from tests.contract import problems

QUICK = {"train.iterations": 200, "train.log_every": 50}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """A real completed run folder and a real one-job sweep folder, made once."""
    root = tmp_path_factory.mktemp("contract")
    run = nnlab.train(CONFIGS / "moons_tanh.yaml", QUICK, runs_dir=root / "runs")
    sweep_file = root / "sweep.yaml"
    sweep_file.write_text(
        f"sweep:\n  base: {CONFIGS / 'moons_tanh.yaml'}\n  grid:\n    model.activation: [relu]\n"
    )
    sweep = nnlab.sweep(sweep_file, overrides=QUICK, runs_dir=root / "runs", jobs=1)
    return {"run": run.path, "sweep": sweep.path}


@pytest.fixture
def run(made, tmp_path) -> Path:
    """A copy of the real run folder, for a test to break."""
    return Path(shutil.copytree(made["run"], tmp_path / made["run"].name))


@pytest.mark.slow
def test_real_run_sweep_and_runs_folders_pass(made):
    assert problems(made["run"]) == []
    assert problems(made["sweep"]) == []
    assert problems(made["run"].parent) == []  # the runs folder holding both
    check_run(made["run"], made["sweep"])


def _set_status(run: Path, status) -> None:
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "status": status}))


def _set_train_acc(run: Path, value: str) -> None:
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[-1]["train_acc"] = value
    with open(run / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


BREAKAGES = {
    "completed without summary.json": (
        lambda run: (run / "summary.json").unlink(),
        "no summary.json",
    ),
    "accuracy in percent": (
        lambda run: _set_train_acc(run, "97.5"),
        "metrics.csv train_acc 97.5 is not a fraction in [0, 1]",
    ),
    "a plot that is not a PNG": (
        lambda run: (run / "plots" / "loss.png").write_text("<svg/>"),
        "plots/loss.png is not a PNG file",
    ),
    "an unknown status": (
        lambda run: _set_status(run, "done"),
        "meta.json status 'done' is not one of running, completed,",
    ),
    "no status": (lambda run: _set_status(run, None), "meta.json status None is not one of"),
    "meta.json not an object": (
        lambda run: (run / "meta.json").write_text("[]"),
        "meta.json is not a JSON object",
    ),
    "no model": (lambda run: (run / "model.npz").unlink(), "no model.npz or model.pt"),
    "no metrics rows": (
        lambda run: (run / "metrics.csv").write_text("step,train_loss,train_acc\n"),
        "metrics.csv has no rows",
    ),
    "no train_loss column": (
        lambda run: (run / "metrics.csv").write_text("step,loss\n0,0.5\n"),
        "metrics.csv has no column train_loss",
    ),
    "no plots": (lambda run: shutil.rmtree(run / "plots"), "no plots/*.png"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_each_breakage_of_a_run_folder_is_caught(run, breakage):
    breaking, message = BREAKAGES[breakage]
    breaking(run)
    found = problems(run)
    assert any(message in p for p in found), found
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_run(run)


def test_an_unfinished_run_needs_no_summary_model_or_plots(run):
    _set_status(run, "interrupted")
    for name in ("summary.json", "model.npz"):
        (run / name).unlink()
    shutil.rmtree(run / "plots")
    assert problems(run) == []


def test_a_broken_run_inside_a_sweep_or_a_runs_folder_is_caught(made, tmp_path):
    sweep = Path(shutil.copytree(made["sweep"], tmp_path / "runs" / made["sweep"].name))
    attempt = next(sweep.glob("jobs/*/attempt-1"))
    _set_train_acc(attempt, "97.5")
    (sweep / "summary.md").unlink()
    found = problems(tmp_path / "runs")
    assert f"{sweep}: no summary.md" in found
    assert any(p.startswith(f"{sweep}: jobs/{attempt.parent.name}/attempt-1: ") for p in found)
    shutil.rmtree(sweep / "jobs")
    assert f"{sweep}: no run folder under jobs/<id>/attempt-<k>/" in problems(sweep)


def test_a_folder_with_nothing_to_check_is_a_problem(tmp_path):
    assert problems(tmp_path) == [
        f"{tmp_path}: no meta.json or state.json, nor run or sweep folders inside"
    ]
    assert problems(tmp_path / "missing") == [f"{tmp_path / 'missing'}: not a folder"]
