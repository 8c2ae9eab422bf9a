"""Memoized runs (docs/sweeps.md, 'Reusing runs'): a sweep, or `nnlab train --reuse`, takes a
completed run with the same fingerprint instead of training it again — and never one whose
config, code, data or status differs.

The sweeps here run in this process (an executor that calls the workers' own ``run_task``), so
that the real trainer's ``fit`` can be counted: each test says how many trainings happened."""

import json
import subprocess
from pathlib import Path

import pytest

from nnlab import sweep as run_sweep
from nnlab import train
from nnlab.common.status import JobStatus
from nnlab.models.mlp.trainer import MLPTrainer
from nnlab.runfolder.fingerprint import CODE_DIR_VARIABLE
from nnlab.sweeps.executors import Executor, run_task
from tests.conftest import CONFIGS, check_run, nnlab, read_csv


class InProcess(Executor):
    """Runs each task at once, in this process, through the workers' run_task."""

    slots = 1

    def __init__(self) -> None:
        self.done: list = []

    def submit(self, task) -> None:
        self.done.append(run_task(task))

    def wait(self, timeout: float) -> list:
        out, self.done = self.done, []
        return out

    def shutdown(self, cancel: bool = False) -> list:
        return self.wait(0)


@pytest.fixture
def fits(monkeypatch) -> list[str]:
    """The names of the runs the MLP trainer trained (its real fit, counted)."""
    calls: list[str] = []
    real = MLPTrainer.fit

    def counted(self, run_dir, hooks):
        calls.append(self.cfg["name"])
        return real(self, run_dir, hooks)

    monkeypatch.setattr(MLPTrainer, "fit", counted)
    return calls


def write_sweep(folder: Path, activations: list[str], name: str = "sweep.yaml") -> Path:
    path = folder / name
    path.write_text(
        f"sweep:\n  name: memo\n  base: {CONFIGS / 'moons_tanh.yaml'}\n"
        f"  grid:\n    model.activation: {json.dumps(activations)}\n  seeds: [0, 1]\n"
        "  table: {rows: model.layers, cols: model.activation, value: train_acc}\n"
    )
    return path


SHORT = {"train.iterations": 60, "train.log_every": 20, "train.threads": 1}


def sweep(path: Path, runs: Path, **kwargs):
    return run_sweep(path, SHORT, runs, executor=InProcess(), **kwargs)


def test_a_finished_sweep_run_again_trains_nothing_and_its_jobs_read_back(tmp_path, fits):
    path, runs = write_sweep(tmp_path, ["tanh", "relu"]), tmp_path / "runs"
    first = sweep(path, runs)
    assert len(fits) == 4 and not any(j.get("reused") for j in first.state["jobs"].values())
    fits.clear()
    again = sweep(path, runs)
    assert fits == []  # nothing trained
    for job_id, job in again.state["jobs"].items():
        assert job["status"] == JobStatus.COMPLETED
        source = first.path / first.state["jobs"][job_id]["run"]
        assert Path(job["reused"]) == source.resolve()
        copy = again.path / job["run"]
        assert (copy / "metrics.csv").read_bytes() == (source / "metrics.csv").read_bytes()
        assert job["final"] == first.state["jobs"][job_id]["final"]
        meta = json.loads((copy / "meta.json").read_text())
        assert meta["reused_from"] == str(source.resolve())
        assert meta["name"] == f"memo / {job_id}"  # named after this sweep's job
        assert meta["start_time"] == json.loads((source / "meta.json").read_text())["start_time"]
    check_run(again.path)  # the copies keep the run-folder contract
    rows = read_csv(again.path / "summary.csv")
    assert all(Path(r["reused"]).is_relative_to(first.path) for r in rows)
    assert "4 of 4 jobs reused" in (again.path / "summary.md").read_text()
    # `nnlab runs` says so too, for the jobs of the second sweep only
    listed = nnlab("runs", "--runs-dir", again.path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("completed, reused") == 4, listed.stdout
    listed = nnlab("runs", "--runs-dir", runs, "--jobs", "--columns", "folder,reused_from",
                   "--format", "json")  # fmt: skip
    sources = {e["folder"]: e["reused_from"] for e in json.loads(listed.stdout)}
    assert len(sources) == 8 and sum(v is not None for v in sources.values()) == 4


def test_one_grid_value_added_trains_one_job_per_seed(tmp_path, fits):
    runs = tmp_path / "runs"
    sweep(write_sweep(tmp_path, ["tanh", "relu"]), runs)
    fits.clear()
    grown = sweep(write_sweep(tmp_path, ["tanh", "relu", "sigmoid"], "grown.yaml"), runs)
    assert sorted(fits) == ["memo / activation=sigmoid,seed=0", "memo / activation=sigmoid,seed=1"]
    reused = {k for k, j in grown.state["jobs"].items() if j.get("reused")}
    assert reused == {f"activation={a},seed={s}" for a in ("tanh", "relu") for s in (0, 1)}


def test_no_reuse_trains_every_job(tmp_path, fits):
    path, runs = write_sweep(tmp_path, ["tanh"]), tmp_path / "runs"
    sweep(path, runs)
    fits.clear()
    forced = sweep(path, runs, reuse=False)
    assert len(fits) == 2
    assert not any(j.get("reused") for j in forced.state["jobs"].values())


def test_a_diverged_or_failed_run_is_never_reused(tmp_path, fits):
    cfg = {"name": "boom", "data": {"name": "moons"}, "model": {"layers": [2, 3, 2]},
           "train": {"iterations": 50, "epsilon": 1e12, "threads": 1}}  # fmt: skip
    first = train(cfg, runs_dir=tmp_path, reuse=True)
    assert first.status == "diverged"
    again = train(cfg, runs_dir=tmp_path, reuse=True)
    assert again.reused_from is None and len(fits) == 2


def test_a_resumed_sweep_counts_a_reused_job_done(tmp_path, fits):
    """A crash after the copy was made but before state.json said so: the resume adopts the
    copy (and its source), and trains nothing."""
    path, runs = write_sweep(tmp_path, ["tanh"]), tmp_path / "runs"
    sweep(path, runs)
    again = sweep(path, runs)
    state_file = again.path / "state.json"
    state = json.loads(state_file.read_text())
    job = state["jobs"]["activation=tanh,seed=0"]
    source = job.pop("reused")
    job["status"], state["status"] = "running", "running"
    del state["pid"], state["host"]  # its driver is gone (this process is not)
    state_file.write_text(json.dumps(state))
    fits.clear()
    resumed = run_sweep(resume=again.path, executor=InProcess())
    assert fits == []
    assert resumed.state["jobs"]["activation=tanh,seed=0"]["reused"] == source
    assert resumed.state["status"] == "completed"


def _csv_config(folder: Path) -> Path:
    (folder / "table.csv").write_text(
        "a,b,label\n" + "".join(f"{i % 7},{(i * 3) % 5},{'xy'[i % 2]}\n" for i in range(40))
    )
    config = folder / "table.yaml"
    config.write_text(
        "data: {name: csv, path: table.csv, target: label}\n"
        "model: {layers: [2, 3, 2]}\ntrain: {iterations: 40, log_every: 20, threads: 1}\n"
    )
    return config


def test_train_reuse_prints_the_source_and_a_changed_data_file_trains_again(tmp_path):
    config, runs = _csv_config(tmp_path), tmp_path / "runs"
    first = nnlab("train", config, "--runs-dir", runs, "--reuse", "-q")
    assert first.returncode == 0, first.stderr
    source = Path(first.stdout.strip().splitlines()[-1])
    again = nnlab("train", config, "--runs-dir", runs, "--reuse", "-q")
    assert again.returncode == 0, again.stderr
    said = [line for line in again.stderr.splitlines() if "reused" in line]
    assert len(said) == 1 and str(source.resolve()) in said[0], again.stderr
    assert Path(again.stdout.strip().splitlines()[-1]).resolve() == source.resolve()
    assert len(list(runs.glob("2*"))) == 1  # no new folder
    plain = nnlab("train", config, "--runs-dir", runs, "-q")  # off by default for train
    assert "reused" not in plain.stderr and len(list(runs.glob("2*"))) == 2
    with (tmp_path / "table.csv").open("a") as f:  # one more row: other data
        f.write("1,1,x\n")
    changed = nnlab("train", config, "--runs-dir", runs, "--reuse", "-q")
    assert changed.returncode == 0, changed.stderr
    assert "reused" not in changed.stderr and len(list(runs.glob("2*"))) == 3


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_a_changed_diff_or_commit_of_the_code_trains_again(tmp_path, monkeypatch, fits):
    """The code's fingerprint is taken from NNLAB_CODE_DIR, here a git repository standing
    for nnlab's checkout: an uncommitted change, then a commit, each make another run."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.py").write_text("x = 1\n")
    _git(code, "init", "-q")
    _git(code, "add", "model.py")
    _git(code, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    monkeypatch.setenv(CODE_DIR_VARIABLE, str(code))
    cfg = {"name": "code", "data": {"name": "moons"}, "model": {"layers": [2, 3, 2]},
           "train": {"iterations": 40, "log_every": 20, "threads": 1}}  # fmt: skip
    runs = tmp_path / "runs"

    def trained() -> bool:
        before = len(fits)
        run = train(cfg, runs_dir=runs, reuse=True)
        assert (run.reused_from is None) == (len(fits) > before)
        return len(fits) > before

    assert trained()
    assert not trained()  # the same code: reused
    (code / "model.py").write_text("x = 2\n")  # an uncommitted diff
    assert trained()
    assert not trained()
    (code / "new.py").write_text("y = 1\n")  # an untracked file counts too
    assert trained()
    _git(code, "add", "-A")
    _git(code, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "three")
    assert trained()  # the same files, another commit
    assert not trained()
