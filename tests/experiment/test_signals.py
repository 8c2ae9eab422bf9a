"""Termination signals, liveness and sweep workers through the real CLI: a signal while a
finished run saves its files, `running` runs and sweeps whose process is alive or gone
(resume, `nnlab runs`), and how many worker processes a sweep starts."""

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, check_run, nnlab, nnlab_process, read_csv, small_mnist

LONG = ["-s", "train.iterations=100000000", "-s", "train.log_every=1000"]


def _wait_for(predicate, proc, what: str, timeout: float = 180):
    """Poll ``predicate`` until it returns something true; fail if ``proc`` ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _saving(pattern: str, root: Path, model: str):
    """The run folder under ``root`` matching ``pattern`` that has saved its model but not yet
    its summary: it is in its final writes (the figures come in between)."""
    for run in root.glob(pattern):
        if (run / model).is_file() and not (run / "summary.json").exists():
            return run
    return None


def _meta(run: Path) -> dict:
    return json.loads((run / "meta.json").read_text())


def _assert_saved_whole(run: Path, figures: set[str]) -> None:
    meta = _meta(run)
    assert meta["status"] == "completed" and meta["end_time"], meta
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert figures <= {p.name for p in (run / "plots").iterdir()}
    check_run(run)


def _dcn_config(tmp_path: Path, epochs: int, log_every: int, stats_every: int) -> Path:
    """A tiny DCN on MNIST-format files the test writes (quick on two cores)."""
    root = small_mnist(tmp_path / "mnist", n_train=200, n_test=50)
    path = tmp_path / "dcn.yaml"
    path.write_text(
        f"name: tiny_dcn\ndata: {{name: mnist, root: {root}, val_size: 20}}\n"
        "model: {kind: dcn, conv_channels: [4], fc_units: 8}\n"
        f"train: {{epochs: {epochs}, log_every: {log_every}, stats_every: {stats_every}, "
        "tensorboard: false}\n"
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_a_finished_run_saves_completes_its_files_then_exits_130(tmp_path, sig):
    args = ["train", CONFIGS / "moons_tanh.yaml", "-q", "--runs-dir", tmp_path]
    args += ["-s", "train.iterations=1", "-s", "model.layers=[2,64,64,2]"]
    with nnlab_process(*args) as proc:
        run = _wait_for(lambda: _saving("*", tmp_path, "model.npz"), proc, "the save phase")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted while saving" in err
    assert Path(out.strip().splitlines()[-1]) == run
    _assert_saved_whole(run, {"loss.png", "accuracy.png", "decision_boundary.png"})


@pytest.mark.slow
def test_sigterm_while_a_finished_dcn_run_saves_completes_it(tmp_path):
    config = _dcn_config(tmp_path, epochs=1, log_every=2, stats_every=2)
    args = ["train", config, "-q", "--runs-dir", tmp_path / "runs"]
    with nnlab_process(*args) as proc:
        run = _wait_for(lambda: _saving("*", tmp_path / "runs", "model.pt"), proc, "the save phase")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    _assert_saved_whole(run, {"loss.png", "confusion_matrix.png", "layer_stats.png"})
    assert not (run / "checkpoint.pt").exists()  # nothing left to resume: it is complete


@pytest.mark.slow
def test_sigterm_while_a_sweep_job_saves_records_the_job_as_its_folder_says(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        f"sweep:\n  name: saving\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.layers: [[2, 64, 64, 2]]\n"
    )
    runs = tmp_path / "runs"
    args = ["sweep", path, "-q", "--jobs", "1", "--runs-dir", runs, "-s", "train.iterations=1"]
    with nnlab_process(*args) as proc:
        run = _wait_for(
            lambda: _saving("*/jobs/*/attempt-1", runs, "model.npz"), proc, "the save phase"
        )
        os.killpg(proc.pid, signal.SIGTERM)  # the whole group, as a batch scheduler does
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    _assert_saved_whole(run, {"loss.png", "accuracy.png", "decision_boundary.png"})
    state = json.loads((run.parents[2] / "state.json").read_text())
    assert [j["status"] for j in state["jobs"].values()] == ["completed"]


def _first_rows(root: Path, pattern: str, rows: int = 2):
    for metrics in root.glob(pattern):
        if len(read_csv(metrics)) >= rows:
            return metrics.parent
    return None


def _status_shown(runs_dir: Path) -> str:
    listing = nnlab("runs", "--runs-dir", runs_dir)
    assert listing.returncode == 0, listing.stderr
    return listing.stdout.splitlines()[1]


@pytest.mark.slow
def test_runs_tells_a_running_run_from_one_whose_process_is_gone(tmp_path):
    args = ["train", CONFIGS / "moons_tanh.yaml", "-q", "--runs-dir", tmp_path, *LONG]
    with nnlab_process(*args) as proc:
        run = _wait_for(lambda: _first_rows(tmp_path, "*/metrics.csv"), proc, "two rows")
        alive = _status_shown(tmp_path)
        os.killpg(proc.pid, signal.SIGKILL)  # as the OOM killer or a power cut would
        proc.wait()
    assert " running " in alive and "dead?" not in alive
    assert _meta(run)["status"] == "running"
    assert "running (dead?)" in _status_shown(tmp_path)
    assert "running (dead?)" in nnlab("runs", "--runs-dir", tmp_path, "--status", "running").stdout

    # on another host the pid cannot be checked: the heartbeat says whether it lives
    beat = run / "heartbeat"
    for record in (run / "meta.json", beat):
        record.write_text(json.dumps({**json.loads(record.read_text()), "host": "elsewhere"}))
    now = time.time()
    os.utime(beat, (now, now))
    assert "dead?" not in _status_shown(tmp_path)
    os.utime(beat, (now - 3600, now - 3600))
    assert "running (dead?)" in _status_shown(tmp_path)


@pytest.mark.slow
def test_resume_refuses_a_run_that_is_still_training_and_takes_over_a_dead_one(tmp_path):
    config = _dcn_config(tmp_path, epochs=100000, log_every=1, stats_every=0)
    args = ["train", config, "-q", "--runs-dir", tmp_path / "runs"]
    with nnlab_process(*args) as first:
        run = _wait_for(lambda: _first_rows(tmp_path / "runs", "*/metrics.csv"), first, "rows")
        refused = nnlab("train", "--resume", run, "-q", timeout=120)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nnlab: error:"), lines
        assert f"pid {first.pid} on host {socket.gethostname()}" in lines[0]
        assert _meta(run)["pid"] == first.pid  # the live run's folder untouched
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    with nnlab_process("train", "--resume", run, "-q") as second:  # a dead run is taken over
        _wait_for(lambda: _meta(run)["pid"] == second.pid, second, "the resume")
        assert _meta(run)["status"] == "running" and "resumed" in _meta(run)


def two_job_sweep(folder: Path, name: str) -> Path:
    """A sweep file of two moons jobs (tanh, relu), named ``name``."""
    path = folder / "s.yaml"
    path.write_text(
        f"sweep:\n  name: {name}\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh, relu]\n"
    )
    return path


@pytest.mark.slow
def test_sweep_resume_refuses_a_sweep_that_is_still_running(tmp_path):
    path = two_job_sweep(tmp_path, "live")
    runs = tmp_path / "runs"
    with nnlab_process("sweep", path, "-q", "--jobs", "1", "--runs-dir", runs, *LONG) as proc:
        _wait_for(lambda: _first_rows(runs, "*/jobs/*/*/metrics.csv"), proc, "a job's rows")
        folder = next(runs.glob("*-sweep-live"))
        refused = nnlab("sweep", "--resume", folder, "-q", timeout=120)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nnlab: error:"), lines
        assert f"pid {proc.pid} on host {socket.gethostname()}" in lines[0]
        assert "running" in _status_shown(runs) and "dead?" not in _status_shown(runs)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "running (dead?)" in _status_shown(runs)


@pytest.mark.slow
def test_jobs_beyond_the_cores_start_no_more_workers_than_the_cores(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        f"sweep:\n  name: capped\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.layers: [[2, 3, 2], [2, 4, 2], [2, 5, 2], [2, 6, 2]]\n"
    )
    result = nnlab(
        "sweep", path, "-q", "--jobs", "10000", "--runs-dir", tmp_path / "runs",
        "-s", "train.iterations=100",
        setup=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),  # one core
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "--jobs 10000" in warnings[0] and "1 core" in warnings[0]
    pids = {_meta(run)["pid"] for run in (tmp_path / "runs").glob("*/jobs/*/attempt-1")}
    assert len(pids) == 1  # one worker ran every job: each run records its process


def test_workers_are_capped_at_the_jobs_and_share_the_cores_among_them():
    from nnlab.runfolder.environment import usable_cores
    from nnlab.sweeps.executors import LocalExecutor

    executor = LocalExecutor(workers=10000, jobs=1)
    assert executor.slots == 1 and executor.threads == usable_cores()
