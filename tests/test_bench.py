"""bench/gpu_check.sh and what it runs, checked where no GPU is lent: the script parses (and
passes shellcheck where it is installed), gpu_throughput.py's synthetic IDX files read back
as learnable images, the sweep it runs asks for one GPU a job, and the whole script runs
its steps on the CPU (GPU_CHECK_DEVICE=cpu) to a summary of passed steps."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nnlab.data.idx import find_idx_files, read_idx
from nnlab.sweeps.driver import _gpus_per_job
from nnlab.sweeps.spec import load_sweep
from tests.conftest import ROOT, run_child

BENCH = ROOT / "bench"
GPU_CHECK = BENCH / "gpu_check.sh"


def test_gpu_check_parses_as_bash():
    done = subprocess.run(["bash", "-n", GPU_CHECK], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_gpu_check_passes_shellcheck():
    done = subprocess.run(["shellcheck", GPU_CHECK], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.fixture
def gpu_throughput(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # it imports dcn_throughput, beside it
    import gpu_throughput

    return gpu_throughput


def test_synthetic_idx_files_read_back_as_learnable_digits_of_ten_classes(gpu_throughput, tmp_path):
    gpu_throughput.write_synthetic(tmp_path, 300, n_test=200)
    files = find_idx_files("mnist", str(tmp_path))
    (x, y), (xt, yt) = ([read_idx(p) for p in files[s]] for s in ("train", "test"))
    images, labels = gpu_throughput.synthetic(500)
    assert x.shape == (300, 28, 28) and x.dtype == np.uint8 and xt.shape == (200, 28, 28)
    assert np.array_equal(x, images[:300]) and np.array_equal(yt, labels[300:])
    assert set(y.tolist()) == set(range(10))
    # learnable: the nearest class mean of the training images names most test images
    means = np.stack([x[y == c].reshape(-1, 784).mean(axis=0) for c in range(10)])
    distance = ((xt.reshape(-1, 1, 784).astype(float) - means) ** 2).sum(axis=2)
    assert (distance.argmin(axis=1) == yt).mean() > 0.9


def test_the_gpu_sweep_asks_for_one_gpu_a_job(gpu_throughput, tmp_path):
    gpu_throughput.write_synthetic(tmp_path, 600)
    sweep = load_sweep(BENCH / "gpu_sweep.yaml", {"data.root": str(tmp_path)})
    assert len(sweep.jobs) == 4
    assert {j.config["train"]["device"] for j in sweep.jobs} == {"cuda"}
    assert _gpus_per_job(sweep) == 1


@pytest.mark.slow
def test_gpu_check_runs_every_step_on_the_cpu(tmp_path, monkeypatch):
    """The script end to end, shrunk, on the CPU: every step passes (the cuda tests skip),
    and the summary lists them in order."""
    monkeypatch.setenv("GPU_CHECK_DEVICE", "cpu")
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))  # this checkout's nnlab
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    done = run_child(["bash", GPU_CHECK, tmp_path / "out"], timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = (tmp_path / "out" / "summary.txt").read_text().splitlines()
    steps = ["torch", "cuda-tests", "throughput", "data", "sweep", "runs", "sweep-check"]
    assert [line.split()[:2] for line in summary] == [["ok", step] for step in steps]
    assert "== gpu_check.sh summary:" in done.stdout and "device cpu" in done.stdout
    assert "| nnlab bfloat16 |" in (tmp_path / "out" / "throughput.log").read_text()


@pytest.mark.slow
def test_time_to_accuracy_runs_its_three_contenders_to_a_table(gpu_throughput, tmp_path):
    """bench/time_to_accuracy.py on 600 synthetic digits, one seed, a low target: each
    contender's line and the table, every one of them at the target."""
    gpu_throughput.write_synthetic(tmp_path, 600, n_test=200)
    done = run_child(
        [sys.executable, str(BENCH / "time_to_accuracy.py"), "--data", "mnist",
         "--root", str(tmp_path), "--target", "0.3", "--seeds", "0", "--max-epochs", "2"],
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows[1:]] == [
        "| nnlab, shipped",
        "| nnlab, fastest",
        "| reference, fastest recipe",
    ]
    assert "not reached" not in done.stdout, done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs this repository's git history")
def test_dcn_limit_measures_every_row_of_its_tables(gpu_throughput, tmp_path):
    """bench/dcn_limit.py on 300 synthetic digits, one round, compared with this commit's
    own evaluation (a worktree of HEAD): both tables, every row measured."""
    gpu_throughput.write_synthetic(tmp_path, 600, n_test=200)
    done = run_child(
        [sys.executable, str(BENCH / "dcn_limit.py"), "--root", str(tmp_path),
         "--images", "300", "--rounds", "1", "--before", "HEAD"],
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {
        line.split(" | ")[0].removeprefix("| "): line.split(" | ")[1]
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| training")
    }
    for name in ("reference", "nnlab train, float32", "nnlab train, bfloat16",
                 "before, float32", "float32", "bfloat16"):  # fmt: skip
        assert float(rows[name].replace(",", "")) > 0, name
    worktrees = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"],
                               capture_output=True, text=True).stdout  # fmt: skip
    assert "before-HEAD" not in worktrees  # removed again
