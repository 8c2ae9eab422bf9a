"""A sweep whose jobs run on GPUs, on the local executor: at most one job per visible GPU at
once, each worker with a GPU of its own (CUDA_VISIBLE_DEVICES), a note when --jobs asked for
more, and a one-line error where no GPU is visible. The GPU count is passed in, so all of this
runs on a machine without one; tests/models/test_dcn_cuda.py runs a real one on a GPU."""

import os
import signal

import pytest
import torch
import yaml

from nnlab.config.resolve import load_config
from nnlab.errors import NnlabError
from nnlab.sweeps.driver import _gpus_per_job
from nnlab.sweeps.executors import LocalExecutor, Task
from nnlab.sweeps.executors.local import (
    THREAD_VARIABLES,
    gpu_groups,
    plan_slots,
    worker_variables,
)
from nnlab.sweeps.spec import load_sweep
from tests.conftest import CONFIGS, check_run, small_mnist
from tests.conftest import nnlab as run_nnlab

GPU_NOTE = "--jobs {asked} is more than the {gpus} visible here ({each}); running at most {n}"


@pytest.mark.parametrize(
    ("asked", "jobs", "cores", "gpus", "per_job", "slots", "note"),
    [
        (None, 8, 16, 1, 1, 1, None),  # the default is capped at the GPUs without a word
        (2, 8, 16, 2, 1, 2, None),
        (4, 8, 16, 2, 1, 2, GPU_NOTE.format(asked=4, gpus="2 GPUs", each="one per job", n=2)),
        (3, 8, 16, 1, 1, 1, GPU_NOTE.format(asked=3, gpus="1 GPU", each="one per job", n=1)),
        (4, 1, 16, 2, 1, 1, GPU_NOTE.format(asked=4, gpus="2 GPUs", each="one per job", n=1)),
        (None, 8, 16, 5, 2, 2, None),  # two GPUs a job: five hold two jobs
        (3, 8, 16, 5, 2, 2, GPU_NOTE.format(asked=3, gpus="5 GPUs", each="2 per job", n=2)),
        (8, 8, 2, 8, 1, 2, "--jobs 8 is more than the 2 cores"),  # fewer cores than GPUs
        (None, 8, 16, 0, 0, 8, None),  # CPU jobs: the GPUs do not count
        (4, 8, 2, 0, 0, 2, "--jobs 4 is more than the 2 cores"),
    ],
)
def test_jobs_on_gpus_run_at_most_one_per_visible_gpu(
    asked, jobs, cores, gpus, per_job, slots, note
):
    got, said = plan_slots(asked, jobs, cores, gpus, per_job)
    assert got == slots
    if note is None:
        assert said is None
    else:
        assert said is not None and said.startswith(note), said
        assert "\n" not in said


@pytest.mark.parametrize(("gpus", "per_job"), [(0, 1), (1, 2)])
def test_jobs_on_gpus_where_too_few_are_visible_are_a_one_line_error(gpus, per_job):
    with pytest.raises(NnlabError, match="the sweep's jobs run on CUDA GPUs") as exc:
        plan_slots(None, 4, 16, gpus, per_job)
    assert "train.device" in str(exc.value) and "\n" not in str(exc.value)
    assert f"{gpus or 'no'} GPU" in str(exc.value)


@pytest.mark.parametrize(
    ("gpus", "per_job", "visible", "groups"),
    [
        (2, 1, None, ["0", "1"]),
        (4, 2, None, ["0,1", "2,3"]),
        (5, 2, None, ["0,1", "2,3"]),  # the fifth is left idle rather than split
        (3, 1, "5,7,2", ["5", "7", "2"]),  # the parent's own list, in its order
        (2, 1, "GPU-aa, GPU-bb,GPU-cc", ["GPU-aa", "GPU-bb"]),  # only those CUDA counted
        (0, 1, "", []),
    ],
)
def test_each_gpu_worker_gets_devices_of_its_own(gpus, per_job, visible, groups):
    assert gpu_groups(gpus, per_job, visible) == groups


def test_a_worker_sets_its_gpus_only_for_jobs_on_gpus():
    assert worker_variables(3, None) == {name: "3" for name in THREAD_VARIABLES}
    assert worker_variables(3, "1") == {
        **{name: "3" for name in THREAD_VARIABLES},
        "CUDA_VISIBLE_DEVICES": "1",
    }
    assert worker_variables(1, "")["CUDA_VISIBLE_DEVICES"] == ""


def _task(tmp_path, name: str) -> Task:
    cfg = load_config(CONFIGS / "moons_tanh.yaml", {"train.iterations": 20, "train.log_every": 10})
    return Task(name, 1, cfg, str(tmp_path / name))


def _outcomes(executor: LocalExecutor, n: int) -> list:
    out: list = []
    for _ in range(600):
        out += executor.wait(timeout=0.5)
        if len(out) >= n:
            return out
    raise AssertionError(f"{len(out)} of {n} outcomes")


@pytest.mark.slow
def test_workers_take_distinct_gpus_and_a_dead_ones_goes_to_the_next(tmp_path, monkeypatch):
    """Real worker processes (running small CPU runs) with two GPUs passed in: the two workers
    hold GPUs 0 and 1, a worker that dies between tasks gives its GPU back, and the worker
    started in its place gets it."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    notes: list[str] = []
    executor = LocalExecutor(workers=4, jobs=8, warn=notes.append, gpus_per_job=1, gpus=2)
    try:
        assert executor.slots == 2 and executor.free_gpus == ["0", "1"]
        assert len(notes) == 1 and notes[0].startswith("--jobs 4 is more than the 2 GPUs")
        executor.submit(_task(tmp_path, "a"))
        executor.submit(_task(tmp_path, "b"))  # a is busy: a second worker starts
        assert sorted(w["gpus"] for w in executor._workers) == ["0", "1"]
        assert executor.free_gpus == []
        assert [str(o.status) for o in _outcomes(executor, 2)] == ["completed"] * 2
        first = executor._workers[0]
        os.kill(first["proc"].pid, signal.SIGKILL)
        first["proc"].join(timeout=30)
        executor.submit(_task(tmp_path, "c"))  # the live idle worker takes it
        executor.submit(_task(tmp_path, "d"))  # a new worker, on the dead one's GPU
        assert first not in executor._workers
        assert sorted(w["gpus"] for w in executor._workers) == ["0", "1"]
        assert [str(o.status) for o in _outcomes(executor, 2)] == ["completed"] * 2
    finally:
        executor.shutdown()
    assert sorted(executor.free_gpus) == ["0", "1"] and not executor._workers
    check_run(*(tmp_path / name for name in "abcd"))


def test_cpu_jobs_get_no_gpus_and_count_none():
    executor = LocalExecutor(workers=1, jobs=3)
    assert executor.free_gpus is None and executor.slots == 1


def _dcn_sweep(tmp_path, devices: list[str]):
    root = small_mnist(tmp_path / "data")
    base = tmp_path / "dcn.yaml"
    base.write_text(
        yaml.safe_dump(
            {"data": {"name": "mnist", "root": str(root)}, "model": {"kind": "dcn"}},
        )
    )
    path = tmp_path / "s.yaml"
    grid = {"train.device": devices, "seed": [0, 1]}
    path.write_text(yaml.safe_dump({"sweep": {"name": "gpu", "base": str(base), "grid": grid}}))
    return path


@pytest.mark.parametrize(
    ("devices", "gpus"), [(["cpu"], 0), (["auto"], 0), (["cpu", "cuda"], 1), (["cuda"], 1)]
)
def test_a_sweep_needs_gpus_when_any_job_runs_on_cuda(tmp_path, devices, gpus):
    assert _gpus_per_job(load_sweep(_dcn_sweep(tmp_path, devices))) == gpus


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_sweep_without_a_gpu_stops_before_its_folder_is_made(tmp_path):
    runs = tmp_path / "runs"
    result = run_nnlab("sweep", _dcn_sweep(tmp_path, ["cuda"]), "-q", "--runs-dir", runs)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the sweep's jobs run on CUDA GPUs" in lines[0], lines
    assert "no GPUs are visible here" in lines[0]
    assert not runs.exists()
