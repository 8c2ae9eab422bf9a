"""Sweeps through the real CLI: expansion, tables, failures, resume after SIGKILL, changes."""

import csv
import json
import os
import re
import signal
import statistics
import sys
import time
from pathlib import Path

import pytest

from nnlab.common.stats import mean_ci
from nnlab.common.status import JobStatus
from nnlab.errors import ConfigError
from nnlab.runfolder.types import JobEntry, SweepRecord
from nnlab.sweeps import job_id, load_sweep, pivot_table
from tests.conftest import CONFIGS, check_run, nnlab, nnlab_process, run_child, small_mnist


def write_sweep(folder: Path, body: str, base: str = "moons_tanh.yaml") -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"sweep:\n  base: {CONFIGS / base}\n" + body)
    return path


def sweep_dir(result) -> Path:
    return Path(result.stdout.strip().splitlines()[-1])


def state_of(folder: Path) -> dict:
    return json.loads((folder / "state.json").read_text())


GRID = """  name: small
  grid:
    model.activation: [tanh, relu]
    model.layers: [[2, 3, 2], [2, 4, 2]]
  seeds: [0, 1]
  table: {rows: model.layers, cols: model.activation, value: train_acc}
"""


@pytest.mark.slow
def test_grid_expands_to_every_job_and_the_table_holds_their_numbers(tmp_path):
    path = write_sweep(tmp_path, GRID)
    result = nnlab(
        "sweep",
        path,
        "-s",
        "train.iterations=400",
        "-s",
        "train.log_every=100",
        "--runs-dir",
        tmp_path / "runs",
        "--jobs",
        "2",
    )
    assert result.returncode == 0, result.stderr
    folder = sweep_dir(result)
    assert folder.name.endswith("-sweep-small")
    check_run(folder)
    state = state_of(folder)
    expected = {
        f"activation={a},layers={layers},seed={s}"
        for a in ("tanh", "relu")
        for layers in ("2-3-2", "2-4-2")
        for s in (0, 1)
    }
    assert set(state["jobs"]) == expected
    assert all(j["status"] == "completed" and j["attempts"] == 1 for j in state["jobs"].values())
    cfg = folder / "jobs" / "activation=relu,layers=2-4-2,seed=1" / "attempt-1" / "config.yaml"
    text = cfg.read_text()
    assert "activation: relu" in text and "layers: [2, 4, 2]" in text and "seed: 1" in text
    assert "iterations: 400" in text  # -s applies to the base of every job

    with open(folder / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"completed"}

    # every cell of summary.md is the mean ± std [95% CI] of its jobs' summary.json values
    acc = {}
    for job in state["jobs"].values():
        summary = json.loads((folder / job["run"] / "summary.json").read_text())
        o = job["overrides"]
        acc.setdefault((json.dumps(o["model.layers"]), o["model.activation"]), []).append(
            summary["final"]["train_acc"]
        )
    md = (folder / "summary.md").read_text()
    lines = [line for line in md.splitlines() if line.startswith("| [2")]
    assert len(lines) == 2
    for line in lines:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        layers = json.dumps(json.loads(cells[0]))
        for act, cell in zip(("tanh", "relu"), cells[1:], strict=True):
            values = acc[(layers, act)]
            mean, sd, low, high = (float(x) for x in re.split(r" ± | \[|, |\]", cell)[:4])
            assert mean == pytest.approx(100 * statistics.mean(values), abs=0.005)
            assert sd == pytest.approx(100 * statistics.stdev(values), abs=0.005)
            ci = mean_ci(values, metric="train_acc")  # t-interval of the mean over 2 seeds
            assert (low, high) == pytest.approx((100 * ci[0], 100 * ci[1]), abs=0.005)
    assert "over seeds (the completed jobs in each cell)" in md
    assert "Train accuracy (%) | Tanh | ReLU" in md
    assert "Train accuracy (%) | Tanh | ReLU" in result.stdout  # printed at the end too
    for name in ("loss.png", "accuracy.png", "decision_boundaries.png"):
        assert (folder / "plots" / name).is_file()


@pytest.mark.slow
def test_an_invalid_job_stops_the_sweep_before_it_starts(tmp_path):
    path = write_sweep(tmp_path, "  grid:\n    model.activation: [tanh, rleu]\n")
    result = nnlab("sweep", path, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert result.stderr.startswith("nnlab: error: job activation=rleu: model.activation must be")
    assert not (tmp_path / "runs").exists()
    path = write_sweep(tmp_path, "  grid:\n    model.layers: [[2, 3, 2], [3, 3, 2]]\n")
    result = nnlab("sweep", path, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2 and "job layers=3-3-2: model.layers[0] is 3" in result.stderr


@pytest.mark.parametrize("body, message", [
    ("  grid:\n    train.lr: [1]\n", "unknown key train.lr (did you mean train.epsilon?)"),
    ("  grid:\n    seed: []\n", "sweep.grid.seed must be a non-empty list"),
    ("  gird: {}\n", "unknown key sweep.gird (did you mean sweep.grid?)"),
    ("  seeds: [a]\n", "sweep.seeds must be a non-empty list of integers"),
    ("  table: {rows: model.layers}\n", "each sweep.table needs rows and cols"),
    ("  table: {rows: model.layers, cols: seed, value: f1}\n", "'f1' is not a metric"),
])  # fmt: skip
@pytest.mark.slow
def test_bad_sweep_files_are_one_line_errors(tmp_path, body, message):
    result = nnlab("sweep", write_sweep(tmp_path, body), "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


@pytest.mark.slow
def test_a_failing_job_is_recorded_and_the_others_complete(tmp_path):
    good = small_mnist(tmp_path / "good")
    dcn = {
        "model.kind": "dcn", "data.name": "mnist", "data.val_size": 20, "train.epochs": 1,
        "model.conv_channels": [4], "model.fc_units": 16, "train.stats_every": 0,
        "train.tensorboard": False,
    }  # fmt: skip
    base = tmp_path / "dcn.yaml"
    base.write_text(json.dumps({"model": {"kind": "dcn"}, "data": {"name": "mnist"}}))
    sets = " ".join(f"-s {k}={json.dumps(v)}" for k, v in dcn.items() if k != "model.kind")
    path = tmp_path / "sweep.yaml"
    path.write_text(
        f"sweep:\n  base: {base}\n  grid:\n    data.root: [{tmp_path}/nowhere, {good}]\n"
    )
    result = nnlab(
        "sweep",
        path,
        *sets.split(),
        "--runs-dir",
        tmp_path / "runs",
        "--jobs",
        "1",
        "--retries",
        "1",
    )
    assert result.returncode == 1
    assert "1 job(s) failed" in result.stderr
    state = state_of(sweep_dir(result))
    jobs = list(state["jobs"].values())
    bad, ok = sorted(jobs, key=lambda j: "nowhere" not in j["overrides"]["data.root"])
    assert bad["status"] == "failed" and bad["attempts"] == 2  # retried once
    assert "IDX files not found" in bad["error"]
    assert ok["status"] == "completed"
    md = (sweep_dir(result) / "summary.md").read_text()
    assert "## Failed jobs" in md and "IDX files not found" in md


def _wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_resume_after_sigkill_finishes_and_reruns_no_completed_job(tmp_path):
    path = write_sweep(
        tmp_path,
        "  name: killme\n  grid:\n    model.layers: "
        "[[2, 3, 2], [2, 4, 2], [2, 5, 2], [2, 6, 2], [2, 7, 2]]\n",
    )
    runs = tmp_path / "runs"

    def two_done() -> bool:
        states = list(runs.glob("*/state.json"))
        if not states:
            return False
        try:
            jobs = json.loads(states[0].read_text())["jobs"].values()
        except ValueError:
            return False
        return sum(j["status"] == "completed" for j in jobs) >= 2

    args = ["sweep", path, "-q", "--jobs", "1", "--runs-dir", runs, "-s", "train.iterations=6000"]
    with nnlab_process(*args) as proc:
        _wait_for(two_done)
        os.kill(proc.pid, signal.SIGKILL)  # the sweep process alone, as a crash would
        proc.wait(timeout=30)
        folder = next(runs.glob("*-sweep-killme"))
        before = state_of(folder)["jobs"]
        done_before = {k for k, j in before.items() if j["status"] == "completed"}
        stamps = {
            k: (folder / before[k]["run"] / "meta.json").stat().st_mtime_ns for k in done_before
        }
        # its worker, sent SIGTERM by Linux as its parent died, winds down as the sweep resumes
        result = nnlab("sweep", "--resume", folder, "-q")
    assert result.returncode == 0, result.stderr
    after = state_of(folder)["jobs"]
    assert all(j["status"] == "completed" for j in after.values())
    for k in done_before:  # not run again: one attempt, its folder untouched
        assert after[k]["attempts"] == 1
        assert (folder / after[k]["run"] / "meta.json").stat().st_mtime_ns == stamps[k]
        assert sorted(p.name for p in (folder / "jobs" / k).iterdir()) == ["attempt-1"]
    with open(folder / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["job"] for r in rows) == sorted(after) and len(rows) == 5
    check_run(folder)
    # the job that was running when the sweep died got a new attempt folder; its first
    # attempt has a folder only if the killed sweep's worker got as far as making it (attempt
    # numbers are never reused, so a late worker can never collide with the new attempt)
    for k, j in after.items():
        attempts = {p.name for p in (folder / "jobs" / k).iterdir()}
        assert f"attempt-{j['attempts']}" in attempts
        assert attempts <= {f"attempt-{i}" for i in range(1, j["attempts"] + 1)}


@pytest.mark.slow
def test_resume_refuses_a_changed_sweep_file_unless_forced(tmp_path):
    path = write_sweep(tmp_path, "  grid:\n    model.activation: [tanh, relu]\n")
    first = nnlab("sweep", path, "-q", "-s", "train.iterations=200", "--runs-dir", tmp_path)
    folder = sweep_dir(first)
    path.write_text(path.read_text().replace("[tanh, relu]", "[tanh, sigmoid]"))
    result = nnlab("sweep", path, "--resume", folder, "-q", "-s", "train.iterations=200")
    assert result.returncode == 2
    assert "the sweep changed since it started" in result.stderr
    assert "1 new jobs (activation=sigmoid" in result.stderr
    result = nnlab("sweep", path, "--resume", folder, "-q", "-s", "train.iterations=300")
    assert result.returncode == 2 and "train.iterations 200 -> 300" in result.stderr
    forced = nnlab("sweep", path, "--resume", folder, "-q", "-s", "train.iterations=200", "--force")
    assert forced.returncode == 0, forced.stderr
    assert state_of(folder)["jobs"]["activation=sigmoid"]["status"] == "completed"


@pytest.mark.slow
def test_sigint_stops_the_sweep_and_marks_running_jobs_interrupted(tmp_path):
    path = write_sweep(tmp_path, "  grid:\n    model.activation: [tanh, relu, sigmoid]\n")
    runs = tmp_path / "runs"
    with nnlab_process(
        "sweep",
        path,
        "-q",
        "--jobs",
        "1",
        "--runs-dir",
        runs,
        "-s",
        "train.iterations=100000000",
        "-s",
        "train.log_every=1000",
    ) as proc:
        _wait_for(lambda: any(p.stat().st_size > 100 for p in runs.glob("*/jobs/*/*/metrics.csv")))
        proc.send_signal(signal.SIGINT)  # the sweep process alone: it stops its workers itself
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    folder = Path(out.strip().splitlines()[-1])
    jobs = state_of(folder)["jobs"]
    assert [j["status"] for j in jobs.values()] == ["interrupted", "pending", "pending"]
    run = folder / jobs["activation=tanh"]["run"]
    assert json.loads((run / "meta.json").read_text())["status"] == "interrupted"
    assert state_of(folder)["status"] == "interrupted"


def test_job_ids_are_readable_short_and_safe():
    assert (
        job_id({"model.activation": "tanh", "model.layers": [2, 3, 3, 2], "seed": 0})
        == "activation=tanh,layers=2-3-3-2,seed=0"
    )
    assert (
        job_id({"model.kind": "dcn", "train.lr_decay.kind": "step"})
        == "model.kind=dcn,train.lr_decay.kind=step"
    )
    assert (
        job_id({"train.epsilon": 0.001, "data.standardize": True})
        == "epsilon=0.001,standardize=true"
    )
    unsafe = job_id({"data.root": "/tmp/../x y"})
    assert "/" not in unsafe and " " not in unsafe and len(unsafe) < 110
    assert unsafe != job_id({"data.root": "/tmp/../x_y"})  # a hash keeps them apart
    long = job_id({"model.layers": list(range(1, 80))})
    assert len(long) <= 100


def test_shipped_sweeps_expand_and_validate():
    counts = {
        "moons_activations": 3,
        "moons_depth": 6,
        "moons_hidden_units": 5,
        "breast_cancer_table": 45,
        "dcn_hparams": 8,
    }
    for name, n in counts.items():
        sweep = load_sweep(CONFIGS / "sweeps" / f"{name}.yaml")
        assert len(sweep.jobs) == n, name
    deep = {j.id: j.config for j in load_sweep(CONFIGS / "sweeps" / "moons_depth.yaml").jobs}
    relu = next(c for k, c in deep.items() if "2-3-3-2" in k and "relu" in k)
    assert relu["train"]["epsilon"] == 0.001 and relu["train"]["reg_lambda"] == 0.001


def test_sweep_file_structure_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {}\n")
    with pytest.raises(ConfigError, match="one mapping under the key 'sweep:'"):
        load_sweep(bad)


@pytest.mark.slow
def test_python_api_runs_a_sweep(tmp_path):
    import nnlab

    path = write_sweep(tmp_path, "  grid:\n    model.activation: [tanh, relu]\n")
    sweep = nnlab.sweep(path, overrides={"train.iterations": 100}, runs_dir=tmp_path, jobs=2)
    assert sweep.path.parent == tmp_path and sweep.failed == {}
    assert {k: j["status"] for k, j in sweep.state["jobs"].items()} == {
        "activation=tanh": "completed",
        "activation=relu": "completed",
    }
    assert (
        nnlab.load_run(sweep.path / sweep.state["jobs"]["activation=relu"]["run"]).config["model"][
            "activation"
        ]
        == "relu"
    )


@pytest.mark.slow
def test_a_diverged_job_is_a_result_not_a_failure(tmp_path):
    path = write_sweep(tmp_path, "  grid:\n    train.epsilon: [0.01, 1000000.0]\n")
    result = nnlab(
        "sweep",
        path,
        "-q",
        "--retries",
        "2",
        "--runs-dir",
        tmp_path,
        "-s",
        "train.iterations=300",
        "-s",
        "train.log_every=1",
    )
    assert result.returncode == 0, result.stderr
    jobs = state_of(sweep_dir(result))["jobs"]
    assert {k: (j["status"], j["attempts"]) for k, j in jobs.items()} == {
        "epsilon=0.01": ("completed", 1),
        "epsilon=1e+06": ("diverged", 1),
    }  # not retried
    run = sweep_dir(result) / jobs["epsilon=1e+06"]["run"]
    assert (run / "plots" / "loss.png").is_file()  # drawn from the finite part


def test_a_table_says_what_its_spread_is_over(tmp_path):
    """A cell that averages seeds says so; one that averages other keys names them, and its
    interval is the t-interval of the mean of exactly its jobs' values."""
    path = write_sweep(
        tmp_path,
        "  grid:\n    model.activation: [tanh, relu]\n    train.epsilon: [0.01, 0.03]\n"
        "  seeds: [0, 1, 2]\n",
    )
    sweep = load_sweep(path)
    values = {job.id: 0.9 + 0.01 * i for i, job in enumerate(sweep.jobs)}
    jobs = {
        job.id: JobEntry({}, JobStatus.COMPLETED, final={"train_acc": values[job.id]})
        for job in sweep.jobs
    }
    state = SweepRecord("s", "2026-01-31T12:00:00+00:00", "2026-01-31T12:00:00+00:00", jobs=jobs)
    table = {"rows": "model.activation", "cols": "train.epsilon", "value": "train_acc"}
    seeds = pivot_table(state, sweep, table)
    assert "± std [95% t-interval of the mean] over seeds (" in seeds.note
    relu = [values[j.id] for j in sweep.jobs if j.overrides["model.activation"] == "relu"]
    table = {"rows": "model.activation", "cols": "model.layers", "value": "train_acc"}
    pooled = pivot_table(state, sweep, table)
    assert "over train.epsilon, seed (" in pooled.note
    low, high = mean_ci(relu, metric="train_acc")
    mean, sd = statistics.mean(relu), statistics.stdev(relu)
    assert pooled.rows[1][1][0] == (
        f"{mean * 100:.2f} ± {sd * 100:.2f} [{low * 100:.2f}, {high * 100:.2f}]"
    )


def _readme_snippet() -> str:
    """The README's Python API example, as a new user saves it to a script."""
    readme = (CONFIGS.parent / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def _run_snippet(tmp_path: Path, monkeypatch, worker_site: str = "") -> tuple:
    """Run the snippet as a script from a fresh folder holding the shipped configs;
    ``worker_site`` is code that every sweep worker process (and only they) runs first."""
    (tmp_path / "configs").symlink_to(CONFIGS)
    script = tmp_path / "example.py"
    script.write_text(_readme_snippet())
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f'import sys\nif "spawn_main" in " ".join(sys.orig_argv):\n    {worker_site or "pass"}\n'
    )
    path = os.pathsep.join([str(site), str(CONFIGS.parent), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    result = run_child([sys.executable, script], cwd=tmp_path)
    runs = (tmp_path / "runs").iterdir()
    return result, sorted(p for p in runs if not p.name.startswith("."))  # not the index


@pytest.mark.slow
def test_the_readme_python_snippet_runs_as_written_as_a_script(tmp_path, monkeypatch):
    """No `if __name__ == "__main__":` guard needed: the sweep's worker processes never run
    the caller's script again (before, every worker re-ran it — trained again, then failed to
    start a sweep — so every job failed, and the script still exited 0)."""
    result, folders = _run_snippet(tmp_path, monkeypatch)
    assert result.returncode == 0, result.stderr
    runs = [f for f in folders if "-sweep-" not in f.name]
    sweeps = [f for f in folders if "-sweep-" in f.name]
    assert len(runs) == 1 and len(sweeps) == 1, folders  # the script's run trained once
    state = state_of(sweeps[0])
    assert state["status"] == "completed"
    assert {j["status"] for j in state["jobs"].values()} == {"completed"}


@pytest.mark.slow
def test_the_readme_python_snippet_says_when_sweep_jobs_failed(tmp_path, monkeypatch):
    """A library sweep whose jobs failed says so: Sweep.failed, which the snippet checks, so
    the script exits non-zero naming the jobs (each worker here is given too little memory)."""
    limit = 'import os; os.environ["NNLAB_MAX_MEMORY_GB"] = "0.000001"'
    result, folders = _run_snippet(tmp_path, monkeypatch, worker_site=limit)
    assert result.returncode != 0
    assert "3 sweep jobs failed" in result.stderr, result.stderr
    sweep = next(f for f in folders if "-sweep-" in f.name)
    assert state_of(sweep)["status"] == "failed"


@pytest.mark.slow
def test_resuming_a_completed_sweep_says_so_and_leaves_its_folder_as_it_was(tmp_path):
    """Before, it rewrote state.json's `updated` (the listed duration jumped from seconds to
    the time since) and the summary, and said nothing."""
    body = "  grid:\n    model.activation: [tanh, relu]\n"
    small = ["-s", "train.iterations=200", "-s", "train.log_every=100"]
    path = write_sweep(tmp_path, body)
    first = nnlab("sweep", path, *small, "-q", "--runs-dir", tmp_path / "runs")
    assert first.returncode == 0, first.stderr
    folder = sweep_dir(first)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob("*.*")}
    time.sleep(1.1)  # a rewrite would show in state.json's seconds
    again = nnlab("sweep", "--resume", folder, "-q")
    assert again.returncode == 0, again.stderr
    assert f"{folder}: nothing to resume: the sweep completed (2 jobs)" in again.stderr
    assert again.stdout.strip() == str(folder)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob("*.*")} == before
