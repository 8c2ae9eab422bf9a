"""Search sweeps under faults, through the real CLI: search values validated as run configs
before the sweep folder exists, a searched seed, the study journal against state.json after
faults, one driver per sweep folder, a sweep that ended through an error, and data files
among a search's choices (issue 24, items 5 to 8)."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnlab.common.files import overwrite_in_place
from nnlab.common.status import JobStatus, SweepStatus
from nnlab.sweeps.state import RESERVE_BYTES, SweepState
from tests.conftest import CONFIGS, check_run, child_process, nnlab, nnlab_process, run_dir_of
from tests.experiment.test_signals import LONG, _status_shown, two_job_sweep
from tests.sweeps.test_search import load_study
from tests.sweeps.test_sweep import _wait_for, state_of

QUICK = ["-s", "data.val_size=0.25", "-s", "train.iterations=200", "-s", "train.log_every=100"]


def _search(folder: Path, params: dict, trials: int = 2, name: str = "s", **extra) -> Path:
    body = {
        "name": name,
        "base": str(CONFIGS / "moons_tanh.yaml"),
        "search": {"method": "random", "trials": trials, "metric": "val_acc", "seed": 1},
        "params": params,
        **extra,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"sweep": body}))
    return path


def _one_line_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error:"), result.stderr
    return lines[0]


# -- 5. search values are run configs ------------------------------------------------------------

RANGES = {
    "integer key, fractional step": (
        {"train.iterations": {"low": 100, "high": 1000, "step": 0.5}},
        "train.iterations is an integer key",
    ),
    "range crossing a bound between low and high": (
        {"data.val_size": {"low": 0.1, "high": 3}},
        "crosses the key's bounds",
    ),
}


@pytest.mark.parametrize("case", RANGES)
def test_a_search_range_its_key_cannot_take_is_refused_before_the_sweep_folder_exists(
    case, tmp_path
):
    params, message = RANGES[case]
    path = _search(tmp_path, params, trials=6)
    result = nnlab("sweep", path, "--runs-dir", "runs", "-q", *QUICK, cwd=tmp_path)
    assert message in _one_line_error(result)
    assert not (tmp_path / "runs").exists()  # nothing left `running`, nothing to resume


@pytest.mark.slow
def test_a_searched_seed_is_in_the_table_and_best_yaml(tmp_path):
    path = _search(tmp_path, {"seed": {"low": 0, "high": 1000}, "train.epsilon": {
        "low": 0.001, "high": 0.1, "log": True}}, trials=2)  # fmt: skip
    result = nnlab("sweep", path, "--runs-dir", "runs", "-q", *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = run_dir_of(result, tmp_path)
    jobs = state_of(folder)["jobs"]
    seeds = {k: j["overrides"]["seed"] for k, j in jobs.items()}
    assert len(set(seeds.values())) == 2
    text = (folder / "summary.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| 1 |")]
    best = rows[0].split("|")[2].strip()
    best_seed = seeds[f"trial-{int(best):04d}"]
    assert f"| {best_seed} |" in rows[0] and "None" not in text
    assert yaml.safe_load((folder / "best.yaml").read_text())["seed"] == best_seed
    # sweep.seeds would replace the searched seed: refused
    both = _search(tmp_path, {"seed": {"low": 0, "high": 9}}, name="both", seeds=[0, 1])
    refused = nnlab("sweep", both, "--runs-dir", "runs2", "-q", *QUICK, cwd=tmp_path)
    assert "seed is both searched" in _one_line_error(refused)
    assert not (tmp_path / "runs2").exists()


# -- 6. the study journal and state.json after faults ----------------------------------------------


def _finished_search(tmp_path: Path, trials: int = 2) -> tuple[Path, Path]:
    path = _search(tmp_path, {"train.epsilon": {"low": 0.001, "high": 0.1, "log": True}}, trials)
    result = nnlab("sweep", path, "--runs-dir", "runs", "-q", *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return path, run_dir_of(result, tmp_path)


def _stamps(folder: Path) -> dict[str, int]:
    jobs = state_of(folder)["jobs"]
    return {k: (folder / j["run"] / "meta.json").stat().st_mtime_ns for k, j in jobs.items()}


def _resume_one_more_trial(tmp_path: Path, path: Path, folder: Path):
    """Resume with a third trial (--force: the search grew), from another folder."""
    path.write_text(path.read_text().replace("trials: 2", "trials: 3"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    return nnlab("sweep", path, "--resume", folder, "--force", "-q", *QUICK, cwd=elsewhere)


def _agree(folder: Path, trials: int, before: dict[str, int]) -> None:
    """state.json and the study agree, every trial completed and told its value, and the
    trials that had completed before were not run again."""
    jobs = state_of(folder)["jobs"]
    assert sorted(jobs) == [f"trial-{i:04d}" for i in range(trials)]
    assert all(j["status"] == "completed" and j["attempts"] == 1 for j in jobs.values()), jobs
    study = load_study(folder).trials
    assert [t.state.name for t in study] == ["COMPLETE"] * trials
    for t in study:
        assert t.value == pytest.approx(jobs[f"trial-{t.number:04d}"]["final"]["val_acc"])
    assert {k: v for k, v in _stamps(folder).items() if k in before} == before
    check_run(folder)


def _drop_last_record(journal: Path) -> None:
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]))


@pytest.mark.slow
def test_a_job_adopted_on_resume_is_told_to_the_study(tmp_path):
    _, folder = _finished_search(tmp_path)
    before = _stamps(folder)
    # the driver died after the job's folder completed, before state.json or the study knew
    _drop_last_record(folder / "search.journal")  # the last trial's result, never told
    running = [t.number for t in load_study(folder).trials if t.state.name == "RUNNING"]
    assert len(running) == 1
    state = state_of(folder)
    state["status"] = "running"
    state["jobs"][f"trial-{running[0]:04d}"].update(status="running", final={})
    (folder / "state.json").write_text(json.dumps(state))
    result = nnlab("sweep", "--resume", folder, "-q")
    assert result.returncode == 0, result.stderr
    _agree(folder, 2, before)


@pytest.mark.slow
@pytest.mark.parametrize("tail", [b'{"op_code": 6, "worker', b"\x00\x00garbage\n", b"[1]\n"])
def test_a_cut_or_garbled_journal_tail_is_cut_back_to_its_last_whole_record(tmp_path, tail):
    path, folder = _finished_search(tmp_path)
    before = _stamps(folder)
    journal = folder / "search.journal"
    whole = journal.read_bytes()
    journal.write_bytes(whole[: whole.rindex(b"\n", 0, len(whole) - 1) + 1] + tail)
    result = _resume_one_more_trial(tmp_path, path, folder)
    assert result.returncode == 0, result.stderr
    _agree(folder, 3, before)


@pytest.mark.slow
def test_a_damaged_record_inside_the_journal_is_refused_in_one_line(tmp_path):
    path, folder = _finished_search(tmp_path)
    journal = folder / "search.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = b"not json\n"
    journal.write_bytes(b"".join(lines))
    state = (folder / "state.json").read_bytes()
    error = _one_line_error(_resume_one_more_trial(tmp_path, path, folder))
    assert "search.journal: line 2 is not a journal record" in error
    assert (folder / "state.json").read_bytes() == state  # nothing written over


@pytest.mark.slow
def test_a_deleted_journal_is_rebuilt_from_state_json_keeping_every_completed_trial(tmp_path):
    path, folder = _finished_search(tmp_path)
    before = _stamps(folder)
    (folder / "search.journal").unlink()
    result = _resume_one_more_trial(tmp_path, path, folder)
    assert result.returncode == 0, result.stderr
    _agree(folder, 3, before)


# -- 7. one driver per sweep folder; a dead sweep is recognisable ------------------------------


@pytest.mark.slow
def test_two_resumes_at_once_one_is_refused_naming_the_driver_that_holds_the_sweep(tmp_path):
    path = two_job_sweep(tmp_path, "twice")
    runs = tmp_path / "runs"
    with nnlab_process("sweep", path, "-q", "--jobs", "1", "--runs-dir", runs, *LONG) as proc:
        _wait_for(lambda: list(runs.glob("*/jobs/*/*/metrics.csv")))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    folder = next(runs.glob("*-sweep-twice"))
    assert "running (dead?)" in _status_shown(runs)
    args = [sys.executable, "-m", "nnlab", "sweep", "--resume", folder, "-q", "--jobs", "1"]
    with child_process(args) as a, child_process(args) as b:
        ended = None
        deadline = time.time() + 120
        while ended is None and time.time() < deadline:
            ended = next((p for p in (a, b) if p.poll() is not None), None)
            time.sleep(0.05)
        assert ended is not None, "neither resume was refused"
        other = b if ended is a else a
        error = _one_line_error(subprocess.CompletedProcess([], ended.returncode, "",
                                                            ended.stderr.read()))  # fmt: skip
        assert f"pid {other.pid} on host {socket.gethostname()}" in error
        assert other.poll() is None  # the other one runs the sweep
        _wait_for(lambda: state_of(folder).get("pid") == other.pid)
        assert " running " in _status_shown(runs) + " " and "dead?" not in _status_shown(runs)
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()
    assert "running (dead?)" in _status_shown(runs)  # its pid is in state.json
    (folder / "heartbeat").unlink(missing_ok=True)
    assert "running (dead?)" in _status_shown(runs)


@pytest.mark.slow
def test_a_sweep_ended_by_an_error_is_marked_failed_keeping_its_completed_jobs(tmp_path):
    path = _search(tmp_path, {"train.epsilon": {"low": 0.001, "high": 0.1, "log": True}}, 40)
    runs = tmp_path / "runs"
    args = ["sweep", path, "--runs-dir", runs, "-q", "--jobs", "1", *QUICK]
    with nnlab_process(*args, cwd=tmp_path) as proc:

        def one_done() -> bool:
            states = list(runs.glob("*/state.json"))
            try:
                jobs = json.loads(states[0].read_text())["jobs"] if states else {}
            except ValueError:
                return False
            return any(j["status"] == "completed" for j in jobs.values())

        _wait_for(one_done)
        folder = next(runs.glob("*-sweep-s"))
        with open(folder / "search.journal", "ab") as f:  # the study unreadable mid-run
            f.write(b"garbage\n")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "the sweep stopped" in lines[0] and "marked failed" in lines[0]
    state = state_of(folder)
    assert state["status"] == "failed" and state["error"] and state["pid"] == proc.pid
    assert "running" not in {j["status"] for j in state["jobs"].values()}
    done = [k for k, j in state["jobs"].items() if j["status"] == "completed"]
    assert done
    assert " failed " in _status_shown(runs) and "running" not in _status_shown(runs)


# -- 8. data files among a search's choices ------------------------------------------------------


def _csv(path: Path, seed: int) -> None:
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, 60)
    X = rng.randn(60, 2) + 3 * y[:, None]
    rows = [f"{a!r},{b!r},{k}" for (a, b), k in zip(X.tolist(), y.tolist(), strict=True)]
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")


@pytest.mark.slow
def test_search_choices_of_data_path_are_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "sweeps" / "csv").mkdir(parents=True)
    for name, seed in (("a.csv", 0), ("b.csv", 1)):
        _csv(tmp_path / "sweeps" / "csv" / name, seed)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({
        "data": {"name": "csv", "path": str(tmp_path / "sweeps" / "csv" / "a.csv"),
                 "target": "label", "test_size": 0.25, "val_size": 0.25},
        "model": {"layers": [2, 4, 2]}, "train": {"iterations": 200, "log_every": 100},
    }))  # fmt: skip
    path = tmp_path / "sweeps" / "s.yaml"
    path.write_text(yaml.safe_dump({"sweep": {
        "name": "paths", "base": str(base),
        "search": {"method": "random", "trials": 4, "metric": "val_acc", "seed": 0},
        "params": {"data.path": {"choices": ["csv/a.csv", "csv/b.csv"]}},
    }}))  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = nnlab("sweep", path, "--runs-dir", "runs", "-q", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    folder = run_dir_of(result, elsewhere)
    jobs = state_of(folder)["jobs"]
    allowed = {str(tmp_path / "sweeps" / "csv" / n) for n in ("a.csv", "b.csv")}
    assert {j["overrides"]["data.path"] for j in jobs.values()} <= allowed
    assert all(j["status"] == "completed" for j in jobs.values())
    recorded = yaml.safe_load((folder / "sweep.yaml").read_text())["sweep"]["search"]
    assert set(recorded["params"]["data.path"]["choices"]) == allowed
    # resumed from a third folder, with two trials more: the same files
    path.write_text(path.read_text().replace("trials: 4", "trials: 6"))
    third = tmp_path / "third"
    third.mkdir()
    again = nnlab("sweep", "--resume", folder, "--force", "-q", cwd=third)
    assert again.returncode == 0, again.stderr
    jobs = state_of(folder)["jobs"]
    assert len(jobs) == 6 and all(j["status"] == "completed" for j in jobs.values())
    assert {j["overrides"]["data.path"] for j in jobs.values()} <= allowed


def _no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_reserve_that_cannot_grow_keeps_what_it_holds(tmp_path, monkeypatch):
    """state.json grew and the disk is full: the reserve stays as it is (it used to be
    removed, leaving the next save on a full disk nothing to give up)."""
    state = SweepState.new(tmp_path, "s", {"a": {"x": 1}})
    held = state.reserve.stat().st_size
    assert held >= RESERVE_BYTES
    monkeypatch.setattr(os, "posix_fallocate", _no_space)
    state.update_job("a", error="x" * 5000)  # past what the reserve was sized for
    assert state.reserve.stat().st_size == held
    assert json.loads(state.path.read_text())["jobs"]["a"]["error"] == "x" * 5000


def test_with_the_reserve_spent_a_full_disk_still_records_the_sweep_in_place(tmp_path, monkeypatch):
    state = SweepState.new(tmp_path, "s", {"a": {"x": 1}, "b": {"x": 2}})
    assert state.release_reserve()  # spent by an earlier save
    monkeypatch.setattr("nnlab.sweeps.state.atomic_write_json", _no_space)
    state.update_job("a", status=JobStatus.FAILED, error="OSError: No space left on device")
    state.status = SweepStatus.FAILED
    state.save()
    on_disk = json.loads(state.path.read_text())
    assert on_disk["status"] == "failed" and on_disk["jobs"]["a"]["status"] == "failed"
    assert on_disk["jobs"]["b"]["status"] == "pending"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left


def test_an_in_place_rewrite_that_would_need_more_blocks_is_refused(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"status": "running"}\n')
    allocated = path.stat().st_blocks * 512
    assert overwrite_in_place(path, b'{"status": "failed"}\n')
    assert path.read_text() == '{"status": "failed"}\n'  # shorter: the tail is cut
    assert not overwrite_in_place(path, b"x" * (allocated + 1))
    assert path.read_text() == '{"status": "failed"}\n'  # unchanged
    assert not overwrite_in_place(tmp_path / "missing.json", b"{}")
