"""The DCN on an NVIDIA GPU (`train.device: cuda`): a run completes and names its GPU; float32
repeats bit for bit; the CPU comes close to it within stated tolerances; a sweep runs one job
per GPU at a time. (Resume and bfloat16 on a GPU are the cuda cases of tests parametrized
over the device in tests/models/test_dcn.py.)

Every test here is marked ``cuda`` (and ``slow``: each trains) and is skipped, with its
reason, where PyTorch sees no CUDA GPU. ``python -m pytest -m cuda`` runs them and those
cases; bench/gpu_check.sh runs them on a machine with a GPU."""

import json
from datetime import datetime
from pathlib import Path

import pytest
import torch
import yaml

import nnlab
from tests.conftest import check_run, small_mnist
from tests.models.test_dcn import FIRST_LOSS_TOLERANCE, assert_close, converging, dcn_config

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.slow,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason=f"needs an NVIDIA GPU: PyTorch {torch.__version__} sees no CUDA device here",
    ),
]


@pytest.fixture(scope="module")
def idx_root(tmp_path_factory) -> Path:
    return small_mnist(tmp_path_factory.mktemp("mnist"))


def _evaluations(rows: list[dict]) -> list[dict]:
    return [r for r in rows if "test_loss" in r]


def _meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text())


def test_a_cuda_run_completes_and_names_its_gpu(idx_root, tmp_path):
    run = nnlab.train(dcn_config(idx_root, **{"train.device": "cuda"}), runs_dir=tmp_path)
    assert run.status == "completed", run.error
    assert run.summary.device == "cuda"
    assert run.summary.images_per_second > 0
    env = _meta(run.path)["environment"]
    assert env["device"] == f"cuda ({torch.cuda.get_device_name(0)})"
    assert env["torch"]["cudnn_deterministic"] is True
    assert env["torch"]["cudnn_benchmark"] is False
    check_run(run.path)


def test_float32_on_cuda_repeats_bit_for_bit(idx_root, tmp_path):
    """nnlab sets cuDNN deterministic (and no benchmarking) for a CUDA run: the same config
    twice gives the same metrics, layer statistics and weights, to the last bit."""
    cfg = dcn_config(idx_root, **{"train.device": "cuda"})
    a = nnlab.train(cfg, runs_dir=tmp_path / "a")
    b = nnlab.train(cfg, runs_dir=tmp_path / "b")
    for name in ("metrics.csv", "stats.csv"):
        assert (a.path / name).read_text() == (b.path / name).read_text(), name
    wa = torch.load(a.path / "model.pt", weights_only=True)
    wb = torch.load(b.path / "model.pt", weights_only=True)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_cuda_run_ends_close_to_the_cpu_run(digits_root, tmp_path):
    """Other kernels, so not the same bits: the first evaluation's losses within 2%, the
    final test accuracy and loss within the tolerances above. Dropout is off: the CPU and
    CUDA draw other random numbers from one seed, and only the kernels are compared."""
    rows: dict[str, list[dict]] = {"cpu": [], "cuda": []}
    runs = {
        device: nnlab.train(
            converging(digits_root, device, **{"model.dropout": 0.0}),
            runs_dir=tmp_path,
            on_row=rows[device].append,
        )
        for device in rows
    }
    first = {device: _evaluations(r)[0] for device, r in rows.items()}
    assert first["cpu"]["step"] == first["cuda"]["step"] == 6
    for key in ("val_loss", "test_loss"):
        assert first["cuda"][key] == pytest.approx(first["cpu"][key], rel=FIRST_LOSS_TOLERANCE)
    assert_close(runs["cpu"].summary.final, runs["cuda"].summary.final)


def _overlap(times: list[tuple[datetime, datetime]]) -> int:
    """The most of these (start, end) spans that are under way at one moment."""
    return max(sum(s <= start < e for s, e in times) for start, _ in times)


def test_a_cuda_sweep_runs_one_job_per_gpu_at_a_time(idx_root, tmp_path):
    """--jobs above the GPUs: a note, and never more jobs running at once than GPUs (each
    job's meta.json start and end times), every job on the GPU."""
    gpus = torch.cuda.device_count()
    base = tmp_path / "dcn.yaml"
    base.write_text(yaml.safe_dump(dcn_config(idx_root, **{"train.device": "cuda"})))
    path = tmp_path / "s.yaml"
    grid = {"seed": list(range(gpus + 2))}
    path.write_text(yaml.safe_dump({"sweep": {"name": "cuda", "base": str(base), "grid": grid}}))
    notes: list[str] = []
    sweep = nnlab.sweep(path, runs_dir=tmp_path / "runs", jobs=gpus + 1, warn=notes.append)
    assert not sweep.failed, sweep.failed
    assert [n for n in notes if "GPU" in n] == [
        f"--jobs {gpus + 1} is more than the {gpus} GPU{'s' * (gpus != 1)} visible here "
        f"(one per job); running at most {gpus} job{'s' * (gpus != 1)} at once"
    ]
    times = []
    for job in sweep.state["jobs"].values():
        meta = _meta(sweep.path / job["run"])
        assert meta["status"] == "completed"
        assert meta["environment"]["device"].startswith("cuda (")
        times.append((datetime.fromisoformat(meta["start_time"]),
                      datetime.fromisoformat(meta["end_time"])))  # fmt: skip
    assert len(times) == gpus + 2
    assert _overlap(times) <= gpus
    check_run(sweep.path)
