"""Sweeps on a real Ray cluster on 127.0.0.1: a head and a second worker node, started and
stopped by the tests (whatever happens), every wait bounded."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, check_run, nnlab, nnlab_process, read_csv, run_child
from tests.sweeps.test_search import load_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nnlab[ray]')")
RAY = str(Path(sys.executable).with_name("ray"))
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str, timeout: float = 90) -> None:
    subprocess.run([RAY, *args], check=True, capture_output=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def cluster():
    port = _free_port()
    address = f"127.0.0.1:{port}"
    try:
        _ray(
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=1",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            "--disable-usage-stats",
        )
        _ray("start", f"--address={address}", "--num-cpus=1", "--node-ip-address=127.0.0.1")
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=60, env=ENV)


SWEEP = """sweep:
  name: {name}
  base: {base}
  grid:
    model.activation: [tanh, relu]
    model.layers: [[2, 3, 2], [2, 5, 2]]
"""


def _sweep_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SWEEP.format(name=name, base=CONFIGS / "moons_tanh.yaml"))
    return path


def _metrics(folder: Path) -> dict:
    rows = read_csv(folder / "summary.csv")
    return {r["job"]: (r["status"], r["train_loss"], r["train_acc"]) for r in rows}


def test_a_sweep_on_two_nodes_equals_the_local_executor(cluster, tmp_path):
    path = _sweep_file(tmp_path, "twonodes")
    sets = ["-s", "train.iterations=3000", "-s", "train.log_every=500"]
    remote = nnlab(
        "sweep",
        path,
        "-q",
        "--executor",
        "ray",
        "--address",
        cluster,
        "--runs-dir",
        tmp_path / "ray",
        *sets,
        timeout=240,
    )
    assert remote.returncode == 0, remote.stderr
    local = nnlab(
        "sweep", path, "-q", "--jobs", "2", "--runs-dir", tmp_path / "local", *sets, timeout=240
    )
    assert local.returncode == 0, local.stderr
    ray_folder = Path(remote.stdout.strip().splitlines()[-1])
    local_folder = Path(local.stdout.strip().splitlines()[-1])
    assert _metrics(ray_folder) == _metrics(local_folder)  # the same numbers, job by job
    state = json.loads((ray_folder / "state.json").read_text())
    nodes = {j["node"] for j in state["jobs"].values()}
    assert len(nodes) == 2, nodes  # both the head and the second node ran jobs
    check_run(ray_folder)  # the run folders came back whole over Ray, not through a common disk
    for job in state["jobs"].values():
        assert (ray_folder / job["run"] / "model.npz").is_file()


def test_a_worker_killed_mid_job_is_retried_and_the_sweep_completes(cluster, tmp_path):
    path = tmp_path / "kill.yaml"
    path.write_text(
        f"sweep:\n  name: kill\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        "  grid:\n    model.activation: [tanh]\n"
    )
    with nnlab_process(
        "sweep",
        path,
        "-q",
        "--executor",
        "ray",
        "--address",
        cluster,
        "--retries",
        "1",
        "--runs-dir",
        tmp_path,
        "-s",
        "train.iterations=60000",
    ) as proc:
        deadline, victim = time.time() + 90, None
        while time.time() < deadline and victim is None:
            found = subprocess.run(
                ["pgrep", "-f", "ray::_remote_run"], capture_output=True, text=True
            ).stdout.split()
            victim = int(found[0]) if found else None
            time.sleep(0.2)
        assert victim is not None, "the Ray task never started"
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    folder = Path(out.strip().splitlines()[-1])
    job = json.loads((folder / "state.json").read_text())["jobs"]["activation=tanh"]
    assert job["status"] == "completed" and job["attempts"] == 2
    assert (folder / job["run"]).name == "attempt-2"


SEARCH = """sweep:
  name: {name}
  base: {base}
  search: {{method: random, trials: 6, metric: val_loss, seed: 1}}
  params:
    train.epsilon: {{low: 1.0e-6, high: 0.1, log: true}}
  pruner: {{kind: median, startup_trials: 2, warmup_steps: 0}}
"""


def _trials(folder: Path) -> dict:
    """Each trial's status, steps run and last row, from the sweep's own records."""
    state = json.loads((folder / "state.json").read_text())["jobs"]
    out = {}
    for job_id, job in state.items():
        rows = read_csv(folder / job["run"] / "metrics.csv")
        out[job_id] = (job["status"], len(rows), rows[-1])
    return out


def test_a_pruned_search_on_two_nodes_decides_as_the_local_executor_does(cluster, tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH.format(name="prunedray", base=CONFIGS / "moons_tanh.yaml"))
    sets = ["-s", "data.val_size=0.25", "-s", "train.iterations=2000", "-s", "train.log_every=200"]
    folders = {}
    for where, extra in {"ray": ["--executor", "ray", "--address", cluster], "local": []}.items():
        runs = tmp_path / where
        result = nnlab("sweep", path, "-q", "--jobs", "1", "--runs-dir", runs, *extra, *sets,
                       timeout=300)  # fmt: skip
        assert result.returncode == 0, result.stderr
        folders[where] = Path(result.stdout.strip().splitlines()[-1])
    ray_trials = _trials(folders["ray"])
    # one trial at a time, so the same reports reach the same pruner in the same order
    assert ray_trials == _trials(folders["local"])
    statuses = [status for status, _, _ in ray_trials.values()]
    assert len(statuses) == 6 and "pruned" in statuses and "completed" in statuses
    for status, steps, last in ray_trials.values():  # a pruned trial stopped early
        assert (steps < 11) == (status == "pruned"), (status, steps, last)
    study = load_study(folders["ray"])  # the driver's study holds what the workers reported
    for trial in study.trials:
        status, steps, _ = ray_trials[f"trial-{trial.number:04d}"]
        assert trial.state.name == ("PRUNED" if status == "pruned" else "COMPLETE")
        assert len(trial.intermediate_values) == steps
    check_run(folders["ray"])


def test_an_unreachable_address_is_a_quick_clear_error(tmp_path):
    path = _sweep_file(tmp_path, "nowhere")
    t0 = time.time()
    result = nnlab(
        "sweep",
        path,
        "--executor",
        "ray",
        "--address",
        f"127.0.0.1:{_free_port()}",
        "--runs-dir",
        tmp_path / "runs",
        timeout=60,
    )
    assert time.time() - t0 < 30
    assert result.returncode == 2
    assert result.stderr.startswith("nnlab: error: cannot reach the Ray cluster at 127.0.0.1:")
    assert not (tmp_path / "runs").exists()  # nothing was marked running


def test_ray_is_never_imported_otherwise_and_its_absence_is_explained(tmp_path):
    code = (
        "import sys, nnlab, nnlab.cli, nnlab.sweeps, nnlab.sweeps.executors\n"
        "assert 'ray' not in sys.modules\n"
        "sys.modules['ray'] = None  # as if Ray were not installed\n"
        "from nnlab.cli import main\n"
        f"main(['sweep', {str(_sweep_file(tmp_path, 'noray'))!r}, '--executor', 'ray', "
        f"'--runs-dir', {str(tmp_path / 'runs')!r}])\n"
    )
    result = run_child([sys.executable, "-c", code], timeout=60)
    assert result.returncode == 2
    assert "pip install 'nnlab[ray]'" in result.stderr
