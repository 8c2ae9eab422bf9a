"""Training end to end: the run folder, determinism, re-runs, statuses (library API and CLI)."""

import json
import signal

import numpy as np
import pytest

import nnlab
from nnlab.config.resolve import load_config
from nnlab.data.tabular import load_data
from tests.conftest import CONFIGS, check_run, interrupt_after_rows, read_csv, run_dir_of
from tests.conftest import nnlab as run_nnlab


@pytest.mark.slow
def test_cli_train_moons_tanh_produces_the_full_run_folder(tmp_path):
    result = run_nnlab("train", CONFIGS / "moons_tanh.yaml", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    run = run_dir_of(result, tmp_path)
    assert run.parent == tmp_path / "runs" and run.name.endswith("-moons_tanh")
    for name in (
        "config.yaml",
        "meta.json",
        "metrics.csv",
        "summary.json",
        "model.npz",
        "plots/loss.png",
        "plots/accuracy.png",
        "plots/decision_boundary.png",
    ):
        assert (run / name).is_file(), name
    assert not (run / "plots" / "confusion_matrix.png").exists()  # no test split
    check_run(run)

    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["error"] is None
    assert meta["versions"]["numpy"] and meta["duration_seconds"] > 0
    rows = read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(0, 20000, 1000)) + [19999]
    assert list(rows[0]) == ["step", "train_loss", "train_acc"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["step"] == 19999
    assert summary["final"]["train_loss"] == float(rows[-1]["train_loss"])
    assert summary["n_params"] == 2 * 3 + 3 + 3 * 2 + 2
    # the classic course run: loss falls from 0.43 and the training set is classified > 95%
    assert float(rows[0]["train_loss"]) > 0.4 > 0.1 > summary["final"]["train_loss"]
    assert summary["final"]["train_acc"] > 0.95
    # the classic course printed 0.432387 at iteration 0 and 0.068947 at 1000
    assert float(rows[0]["train_loss"]) == pytest.approx(0.432387, abs=5e-7)
    assert float(rows[1]["train_loss"]) == pytest.approx(0.068947, abs=5e-7)

    # the saved config repeats the run exactly
    again = run_nnlab("train", run / "config.yaml", "--runs-dir", tmp_path / "again", "-q")
    assert again.returncode == 0, again.stderr
    rerun = run_dir_of(again, tmp_path)
    assert (rerun / "metrics.csv").read_text() == (run / "metrics.csv").read_text()
    assert (rerun / "config.yaml").read_text() == (run / "config.yaml").read_text()


@pytest.mark.slow
def test_progress_and_rows_go_to_stderr_and_the_path_is_last_on_stdout(tmp_path):
    result = run_nnlab(
        "train", CONFIGS / "moons_relu.yaml", "--runs-dir", tmp_path, "-s", "train.iterations=3000"
    )
    assert result.returncode == 0
    assert "step   1000" in result.stderr and "it/s" not in result.stderr  # a pipe: no bar
    out = result.stdout.strip().splitlines()
    assert out[0].startswith("completed in") and "train_acc" in out[0]
    assert run_dir_of(result, tmp_path).parent == tmp_path


@pytest.mark.slow
def test_overrides_land_in_the_saved_config(tmp_path):
    result = run_nnlab(
        "train",
        CONFIGS / "moons_tanh.yaml",
        "--runs-dir",
        tmp_path,
        "-q",
        "-s",
        "model.activation=relu",
        "-s",
        "model.layers=[2,5,5,2]",
        "-s",
        "train.iterations=500",
        "-s",
        "train.epsilon=2e-3",
    )
    assert result.returncode == 0, result.stderr
    saved = load_config(run_dir_of(result, tmp_path) / "config.yaml")
    assert saved["model"]["activation"] == "relu"
    assert saved["model"]["layers"] == [2, 5, 5, 2]
    assert saved["train"]["iterations"] == 500 and saved["train"]["epsilon"] == 0.002


@pytest.mark.slow
def test_same_config_gives_identical_metrics_and_other_seeds_differ(tmp_path, moons_small):
    a = nnlab.train(moons_small, runs_dir=tmp_path)
    b = nnlab.train(moons_small, runs_dir=tmp_path)
    c = nnlab.train(moons_small, overrides={"seed": 1}, runs_dir=tmp_path)
    assert a.path != b.path  # same second, same name: distinct folders
    text = lambda r: (r.path / "metrics.csv").read_text()  # noqa: E731
    assert text(a) == text(b)
    assert text(a) != text(c)


def test_different_seed_changes_data_and_initial_weights(moons_small):
    d0 = load_data(load_config(moons_small))
    d1 = load_data(load_config(moons_small, {"seed": 1}))
    assert not np.array_equal(d0.X_train, d1.X_train)


@pytest.mark.slow
def test_training_reduces_the_loss_for_every_activation(tmp_path, moons_small):
    for act in ("sigmoid", "tanh", "relu"):
        run = nnlab.train(moons_small, {"model.activation": act}, runs_dir=tmp_path)
        assert run.status == "completed"
        assert run.metrics[-1]["train_loss"] < 0.75 * run.metrics[0]["train_loss"], act


@pytest.mark.slow
def test_breast_cancer_split_is_stratified_standardized_and_reported(tmp_path):
    cfg = load_config(CONFIGS / "breast_cancer_tanh.yaml")
    data = load_data(cfg)
    assert len(data.y_test) == 114 and len(data.y_train) == 455
    assert np.allclose(data.X_train.mean(axis=0), 0) and np.allclose(data.X_train.std(axis=0), 1)
    assert abs(data.y_test.mean() - data.y_train.mean()) < 0.01  # stratified
    run = nnlab.train(
        CONFIGS / "breast_cancer_tanh.yaml", {"train.iterations": 3000}, runs_dir=tmp_path
    )
    assert {"test_loss", "test_acc"} <= set(run.metrics[-1])
    assert run.summary.final["test_acc"] > 0.9
    assert (run.path / "plots" / "confusion_matrix.png").is_file()
    assert not (run.path / "plots" / "decision_boundary.png").exists()  # 30-D inputs
    check_run(run.path)


def test_load_run_reads_back_what_train_returned(tmp_path, moons_small):
    run = nnlab.train(moons_small, runs_dir=tmp_path)
    back = nnlab.load_run(run.path)
    assert back.status == "completed"
    assert back.config == run.config
    assert back.metrics == run.metrics  # float repr round-trips every bit
    assert back.summary.to_json() == json.loads(json.dumps(run.summary.to_json()))
    params = np.load(run.path / "model.npz")
    assert sorted(params.files) == ["W1", "W2", "b1", "b2"]


@pytest.mark.slow
def test_huge_learning_rate_diverges_with_the_step_named(tmp_path):
    result = run_nnlab(
        "train",
        CONFIGS / "moons_relu.yaml",
        "--runs-dir",
        tmp_path,
        "-q",
        "-s",
        "train.epsilon=1e6",
        "-s",
        "train.log_every=1",
    )
    assert result.returncode == 1
    assert "diverged at step" in result.stderr and "Traceback" not in result.stderr
    run = run_dir_of(result, tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "diverged" and "diverged at step" in meta["error"]
    check_run(run)


def test_an_exception_during_training_marks_the_run_failed(tmp_path, moons_small):
    def explode(row):
        if row["step"] >= 400:
            raise RuntimeError("disk on fire")

    run = nnlab.train(moons_small, runs_dir=tmp_path, on_row=explode)
    assert run.status == "failed" and "disk on fire" in run.error
    assert "RuntimeError" in (run.path / "error.log").read_text()
    assert [r["step"] for r in nnlab.load_run(run.path).metrics] == [0, 200, 400]
    check_run(run.path)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_status_interrupted_with_metrics_so_far(tmp_path, sig):
    args = [
        "train",
        CONFIGS / "moons_tanh.yaml",
        "--runs-dir",
        tmp_path,
        "-s",
        "train.iterations=100000000",
        "-s",
        "train.log_every=500",
    ]
    code, out, err = interrupt_after_rows(args, tmp_path, rows=3, sig=sig)
    assert code == 130, err
    assert "Traceback" not in err
    run = tmp_path / out.strip().splitlines()[-1]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["end_time"]
    rows = read_csv(run / "metrics.csv")
    assert len(rows) >= 3 and [int(r["step"]) for r in rows[:3]] == [0, 500, 1000]
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    check_run(run)
