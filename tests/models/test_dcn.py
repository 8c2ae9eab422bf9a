"""The PyTorch DCN end to end on small IDX files the tests write: run folder, TensorBoard,
model.pt, resume, determinism, initialisation, learning-rate schedules, data loading."""

import json
import math
import platform
import signal
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nnlab
from nnlab.config.resolve import load_config
from nnlab.data.idx import find_idx_files, read_idx
from nnlab.data.images import load_images
from nnlab.errors import DataError
from nnlab.models.dcn import network
from nnlab.models.dcn.network import DCN, evaluate, initialise, make_optimizer, make_scheduler
from tests.conftest import (
    check_run,
    interrupt_after_rows,
    read_csv,
    run_child,
    run_dir_of,
    small_mnist,
    write_idx,
)
from tests.conftest import nnlab as run_nnlab

FAST = {  # a small network so that the tests stay quick on two cores
    "model.conv_channels": [8, 16],
    "model.fc_units": 64,
    "train.epochs": 3,
    "train.batch_size": 50,
    "train.log_every": 2,
    "train.eval_every": 4,
    "train.stats_every": 3,
}


def dcn_config(root: Path, **extra) -> dict:
    cfg = {
        "name": "small_dcn",
        "data": {"name": "mnist", "root": str(root), "val_size": 30},
        "model": {"kind": "dcn", "init": "xavier"},
        "train": {"optimizer": "sgd", "epsilon": 0.05, "reg_lambda": 0.0001},
    }
    return load_config(cfg, {**FAST, **extra})


@pytest.fixture(scope="module")
def idx_root(tmp_path_factory) -> Path:
    return small_mnist(tmp_path_factory.mktemp("mnist"))


# A test parametrized over the device runs its cuda case only where PyTorch sees a GPU
# (marked cuda: `python -m pytest -m cuda`, as bench/gpu_check.sh runs it).
CUDA_MARKS = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason=f"needs an NVIDIA GPU: PyTorch {torch.__version__} sees no CUDA device here",
    ),
]
CUDA = pytest.param("cuda", marks=CUDA_MARKS)

# Tolerances where the arithmetic differs. bfloat16 keeps 8 bits of mantissa; a CUDA run runs
# other kernels than the CPU (cuDNN's convolutions, in TF32 where PyTorch allows it, as it does
# by default for them), so neither repeats the CPU's float32 bits. Measured on the CPU, where
# bfloat16 against float32 is the larger perturbation of the two, in `converging` (seeds 0
# and 1): the final test accuracies 0.000 and 0.004 apart and the test losses 7% and 4%
# (dropout 0.5), 0.000 and 0.002 and 2% and 1% (dropout 0), the first evaluation's losses
# 0.3-1.0% apart (dropout 0); seeds 0-2 alone spread 0.022 in final test accuracy.
ACC_TOLERANCE = 0.03  # absolute, in final test accuracy (15 of 500 test images)
LOSS_TOLERANCE = 0.25  # relative, in final test loss
FIRST_LOSS_TOLERANCE = 0.02  # relative, in the first evaluation's losses (6 steps in)


def converging(root: Path, device: str, **extra) -> dict:
    """A config that settles: Adam with a decaying rate, 10 epochs, 100 validation images."""
    return dcn_config(
        root,
        **{
            "train.device": device,
            "train.epochs": 10,
            "train.optimizer": "adam",
            "train.epsilon": 0.003,
            "train.lr_decay.kind": "exponential",
            "train.lr_decay.gamma": 0.8,
            "train.eval_every": 6,
            "data.val_size": 100,
            **extra,
        },
    )


def assert_close(a: dict, b: dict) -> None:
    """Two runs' final summaries: both learned, and within the tolerances above."""
    assert a["test_acc"] > 0.85 and b["test_acc"] > 0.85, (a, b)  # both learned
    assert abs(a["test_acc"] - b["test_acc"]) <= ACC_TOLERANCE, (a, b)
    assert b["test_loss"] == pytest.approx(a["test_loss"], rel=LOSS_TOLERANCE), (a, b)


def test_idx_reader_reads_what_the_tests_wrote_gzipped_or_not(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
        assert np.array_equal(read_idx(write_idx(tmp_path / name, a)), a)


def test_idx_files_are_found_flat_or_in_torchvisions_layout(tmp_path):
    small_mnist(tmp_path / "flat")
    small_mnist(tmp_path / "tv" / "MNIST" / "raw", gz=True)
    assert find_idx_files("mnist", str(tmp_path / "flat"))["train"][0].parent == tmp_path / "flat"
    found = find_idx_files("mnist", str(tmp_path / "tv"))
    assert found["test"][1].name == "t10k-labels-idx1-ubyte.gz"


def test_bad_idx_files_are_named(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00\x00\x1c")
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(tmp_path / "bad")
    (tmp_path / "magic").write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    with pytest.raises(DataError, match=r"magic number 0x12345678"):
        read_idx(tmp_path / "magic")
    path = write_idx(tmp_path / "short", np.zeros((10, 28, 28)))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"truncated: .* 7840 bytes .* holds 7740"):
        read_idx(path)


def test_images_are_split_and_normalised_with_training_statistics(idx_root):
    data = load_images(dcn_config(idx_root))
    assert data.X_train.shape == (270, 1, 28, 28) and data.X_val.shape == (30, 1, 28, 28)
    assert data.X_test.shape == (100, 1, 28, 28)
    assert abs(data.X_train.mean().item()) < 1e-5 and data.X_train.std().item() == pytest.approx(1)
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64


def test_digits_are_resized_to_28x28_with_a_capped_validation_split():
    cfg = load_config({"model": {"kind": "dcn"}, "data": {"name": "digits"}})
    data = load_images(cfg)
    assert data.image_size == (28, 28)
    assert len(data.y_test) == 360 and len(data.y_val) == 143  # 10% of 1,437
    assert len(data.y_train) == 1437 - 143


def test_a_fractional_validation_split_takes_that_share_of_the_training_images(idx_root):
    data = load_images(load_config(dcn_config(idx_root), {"data.val_size": 0.25}))
    assert len(data.y_val) == 75 and len(data.y_train) == 225  # of 300, no 10% cap
    both = torch.cat([data.X_train, data.X_val]).flatten(1)
    assert torch.unique(both, dim=0).shape[0] == 300  # every image in exactly one split


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_fashion_mnist_is_found_in_debians_folder_by_itself():
    files = find_idx_files("fashion_mnist", None)
    assert str(files["train"][0]).startswith("/usr/share/datasets/fashion-mnist")
    assert read_idx(files["test"][1]).shape == (10000,)


@pytest.mark.slow
def test_cli_train_produces_every_file_tensorboard_and_a_reloadable_model(idx_root, tmp_path):
    cfg_path = tmp_path / "small_dcn.yaml"
    cfg_path.write_text(nnlab.config.resolve.dump_config(dcn_config(idx_root)))
    result = run_nnlab("train", cfg_path, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    # stderr is a pipe here: metric rows, no bar (tests/cli/test_cli.py checks the bar on a tty)
    assert "epoch      3" in result.stderr and "img/s" not in result.stderr
    run = run_dir_of(result, tmp_path)
    for name in (
        "config.yaml",
        "meta.json",
        "metrics.csv",
        "summary.json",
        "model.pt",
        "stats.csv",
        "plots/loss.png",
        "plots/accuracy.png",
        "plots/confusion_matrix.png",
        "plots/layer_stats.png",
    ):
        assert (run / name).is_file(), name
    assert not (run / "checkpoint.pt").exists()  # a completed run needs none
    check_run(run)

    rows = read_csv(run / "metrics.csv")
    assert list(rows[0]) == [
        "step",
        "epoch",
        "lr",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "test_loss",
        "test_acc",
    ]
    steps_per_epoch = math.ceil(270 / 50)
    eval_steps = [int(r["step"]) for r in rows if r["test_acc"]]
    assert {steps_per_epoch * e for e in (1, 2, 3)} <= set(eval_steps)
    assert {4, 8, 12} <= set(eval_steps)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["test_acc"] > 0.5  # 3 short epochs of a tiny net on 270 images
    assert summary["best"]["test_acc"] >= summary["final"]["test_acc"]

    stats = read_csv(run / "stats.csv")
    seen = {(r["layer"], r["quantity"]) for r in stats}
    for layer in ("conv1", "conv2"):
        for q in ("weights", "biases", "net_input", "activation", "pool"):
            assert (layer, q) in seen
    assert ("fc1", "activation") in seen and ("fc2", "net_input") in seen
    relu = [r for r in stats if r["quantity"] == "activation"]
    assert all(float(r["min"]) >= 0 for r in relu)

    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    for tag in (
        "metrics/test_acc",
        "metrics/train_loss",
        "metrics/lr",
        "conv1/weights/mean",
        "conv2/pool/std",
        "fc1/activation/max",
        "fc2/biases/min",
    ):
        assert tag in tags["scalars"], tag
    for tag in (
        "conv1/weights",
        "conv1/biases",
        "conv1/net_input",
        "conv1/activation",
        "conv1/pool",
        "fc1/weights",
        "fc2/net_input",
    ):
        assert tag in tags["histograms"], tag
    test_acc = events.Scalars("metrics/test_acc")
    assert test_acc[-1].value == pytest.approx(summary["final"]["test_acc"], rel=1e-6)
    hist = events.Histograms("conv1/weights")[0].histogram_value
    assert hist.num == 8 * 1 * 5 * 5

    cfg = dcn_config(idx_root)
    model = DCN((28, 28), 10, [8, 16], 5, 64, 0.5)
    model.load_state_dict(torch.load(run / "model.pt", weights_only=True))
    data = load_images(cfg)
    _, acc = evaluate(model, data.X_test, data.y_test)
    assert acc == pytest.approx(summary["final"]["test_acc"], abs=1e-12)


@pytest.mark.slow
def test_layer_statistics_start_at_step_0_where_the_initialisation_shows(idx_root, tmp_path):
    """Step 0 holds the initial weights: fc1 (784 -> 64) has Glorot's spread under Xavier,
    sqrt(2 / (784 + 64)), and PyTorch's default 1 / sqrt(3 * 784) otherwise; and the
    training that follows is the same as with the statistics off."""
    spread = {}
    for init in ("xavier", "default"):
        cfg = dcn_config(idx_root, **{"model.init": init, "train.epochs": 1})
        run = nnlab.train(cfg, runs_dir=tmp_path / init)
        stats = read_csv(run.path / "stats.csv")
        assert int(stats[0]["step"]) == 0 and int(stats[-1]["step"]) == 6
        first = {(r["layer"], r["quantity"]): r for r in stats if r["step"] == "0"}
        assert len(first) == len({(r["layer"], r["quantity"]) for r in stats})  # all of them
        spread[init] = float(first[("fc1", "weights")]["std"])
        assert float(first[("conv1", "activation")]["min"]) >= 0
        quiet = nnlab.train(cfg, {"train.stats_every": 0}, runs_dir=tmp_path / f"{init}-off")
        assert (run.path / "metrics.csv").read_text() == (quiet.path / "metrics.csv").read_text()
    assert spread["xavier"] == pytest.approx(math.sqrt(2 / (784 + 64)), rel=0.03)
    assert spread["default"] == pytest.approx(1 / math.sqrt(3 * 784), rel=0.03)
    events = EventAccumulator(str(run.path / "tb"), size_guidance={"histograms": 0})
    events.Reload()
    assert events.Histograms("fc1/weights")[0].step == 0


@pytest.mark.slow
def test_layer_statistics_and_histograms_match_a_direct_computation(idx_root, tmp_path):
    """The last step's statistics of the saved weights, recomputed from model.pt: stats.csv's
    min, max, mean and std, and TensorBoard's histogram (count, sum, sum of squares, and a
    30-bucket histogram over [min, max])."""
    cfg = dcn_config(idx_root, **{"train.epochs": 1, "train.stats_every": 6})  # last step: 6
    run = nnlab.train(cfg, runs_dir=tmp_path)
    weights = torch.load(run.path / "model.pt", weights_only=True)
    stats = {(r["layer"], r["quantity"]): r for r in read_csv(run.path / "stats.csv")
             if r["step"] == "6"}  # fmt: skip
    events = EventAccumulator(str(run.path / "tb"), size_guidance={"histograms": 0})
    events.Reload()
    for layer, quantity, name in (("conv1", "weights", "conv1.weight"),
                                  ("fc2", "biases", "fc2.bias")):  # fmt: skip
        t = weights[name].float()
        row = stats[(layer, quantity)]
        for stat, value in (("min", t.min()), ("max", t.max()), ("mean", t.mean()),
                            ("std", t.std())):  # fmt: skip
            assert float(row[stat]) == pytest.approx(value.item(), rel=1e-6, abs=1e-9), stat
        hist = next(h for h in events.Histograms(f"{layer}/{quantity}") if h.step == 6)
        hist = hist.histogram_value
        assert hist.num == t.numel()
        assert hist.min == pytest.approx(t.min().item()) and hist.max == pytest.approx(
            t.max().item()
        )
        assert hist.sum == pytest.approx(t.sum().item(), rel=1e-5, abs=1e-6)
        assert hist.sum_squares == pytest.approx(t.square().sum().item(), rel=1e-5)
        assert list(hist.bucket) == torch.histc(t, bins=30).tolist()
        assert hist.bucket_limit[-1] == pytest.approx(t.max().item())


def plain_run(cfg: dict) -> tuple[dict[int, tuple[float, ...]], dict[str, torch.Tensor]]:
    """The DCN a config describes, trained by the plainest PyTorch loop over the same batches:
    no hooks, no statistics, no checkpoints, and each evaluation one forward pass over the
    whole split. Returns {step: (val_loss, val_acc, test_loss, test_acc)} at the steps the
    trainer evaluates, and the final weights."""
    data = load_images(cfg)
    torch.manual_seed(cfg["seed"])
    model_cfg, train = cfg["model"], cfg["train"]
    model = DCN(
        data.image_size,
        len(data.class_names),
        model_cfg["conv_channels"],
        model_cfg["kernel_size"],
        model_cfg["fc_units"],
        model_cfg["dropout"],
    )
    initialise(model, model_cfg["init"])
    model.to(memory_format=torch.channels_last)
    model.forward = partial(torch.nn.Sequential.forward, model)  # the written order, plainly
    optimizer = make_optimizer(model, train)
    scheduler = make_scheduler(optimizer, train)

    bf16 = train["precision"] == "bfloat16"

    def amp():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def assess(X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        # float32: one forward pass over the split; bfloat16: passes of 100 images, as
        # oneDNN's bfloat16 kernels end in other last bits at other batch sizes
        size = 100 if bf16 else len(X)
        model.eval()
        with torch.no_grad(), amp():
            logits = torch.cat(
                [
                    model(X[i : i + size].contiguous(memory_format=torch.channels_last))
                    for i in range(0, len(X), size)
                ]
            ).float()
        model.train()
        loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
        return loss / len(y), (logits.argmax(dim=1) == y).sum().item() / len(y)

    shuffle, batch = torch.Generator().manual_seed(cfg["seed"]), train["batch_size"]
    n, step, evaluations = len(data.y_train), 0, {}
    steps_per_epoch = math.ceil(n / batch)
    for _ in range(train["epochs"]):
        perm = torch.randperm(n, generator=shuffle)
        for i in range(steps_per_epoch):
            idx = perm[i * batch : (i + 1) * batch]
            x = data.X_train[idx].contiguous(memory_format=torch.channels_last)
            with amp():
                logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits.float(), data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % train["eval_every"] == 0 or i == steps_per_epoch - 1:
                evaluations[step] = assess(data.X_val, data.y_val) + assess(
                    data.X_test, data.y_test
                )
        scheduler.step()
    return evaluations, {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_monitoring_and_batched_evaluation_leave_every_number_as_a_plain_loop_has_it(
    tmp_path, precision
):
    """Unchanged numerics: with statistics and histograms, TensorBoard, checkpoints written
    by a thread and evaluation in batches of 100 (the splits here take two and three), the
    trainer's evaluations and final weights equal, to the last bit, those of the plainest
    loop over the same batches evaluating each split in one forward pass. In bfloat16 the
    plain loop runs under autocast, evaluating in passes of 100 images, and the trainer's
    evaluation through a bfloat16 copy of the weights cast once still equals it bit for bit."""
    root = small_mnist(tmp_path / "data", n_train=500, n_test=250)
    cfg = dcn_config(
        root,
        **{
            "train.device": "cpu",  # plain_run's
            "train.precision": precision,
            "data.val_size": 0.3,  # 150 images
            "train.optimizer": "adam",
            "train.epsilon": 0.003,
            "train.lr_decay.kind": "exponential",
            "train.lr_decay.gamma": 0.5,
            "train.eval_every": 3,
            "train.stats_every": 2,
        },
    )
    rows: list[dict] = []
    run = nnlab.train(cfg, runs_dir=tmp_path / "runs", on_row=rows.append)
    assert (run.path / "stats.csv").is_file() and any((run.path / "tb").iterdir())
    evaluated = {
        int(r["step"]): (r["val_loss"], r["val_acc"], r["test_loss"], r["test_acc"])
        for r in rows
        if "test_loss" in r
    }
    plain, weights = plain_run(cfg)
    # 350 training images: 7 steps an epoch; steps 3, 6, 7, 9, 12, 14, 15, 18 and 21
    assert len(evaluated) == len(plain) == 9
    assert evaluated == plain
    saved = torch.load(run.path / "model.pt", weights_only=True)
    assert saved.keys() == weights.keys()
    for name, tensor in weights.items():
        assert torch.equal(saved[name], tensor), name


KEPT = """
import json, sys
import nnlab.models.allocator
from nnlab.models.dcn.trainer import DCNTrainer
print(nnlab.models.allocator._kept)
DCNTrainer(json.loads(sys.argv[1]))
print(nnlab.models.allocator._kept)
"""

CYCLES = """
import ctypes, resource, sys
if sys.argv[1] == "kept":
    from nnlab.models.allocator import keep_freed_memory
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
SIZE = 5 << 20  # a step's worth of 5 MiB activations, four at a time, touched, then freed
def step():
    blocks = [libc.malloc(SIZE) for _ in range(4)]
    for b in blocks:
        libc.memset(b, 1, SIZE)
    for b in blocks:
        libc.free(b)
step(), step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


@pytest.mark.slow
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_cpu_run_keeps_the_memory_its_steps_free_unless_told_not_to(idx_root, monkeypatch):
    """A CPU trainer sets glibc's mmap and trim thresholds once for its process
    (nnlab.models.allocator), unless NNLAB_KEEP_FREED_MEMORY is 0. What they change: steps that
    allocate and free 20 MiB each fault 5,120 fresh pages every step under glibc's adaptive
    thresholds (the freed top of the heap goes back to the kernel) and none with them."""
    argv = [sys.executable, "-c", KEPT, json.dumps(dcn_config(idx_root, **{"train.device": "cpu"}))]
    for value, after in ((None, "True"), ("1", "True"), ("0", "None")):
        if value is None:
            monkeypatch.delenv("NNLAB_KEEP_FREED_MEMORY", raising=False)
        else:
            monkeypatch.setenv("NNLAB_KEEP_FREED_MEMORY", value)
        done = run_child(argv)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["None", after], value
    monkeypatch.delenv("NNLAB_KEEP_FREED_MEMORY")
    faults = {}
    for mode in ("adaptive", "kept"):
        done = run_child([sys.executable, "-c", CYCLES, mode])
        assert done.returncode == 0, done.stderr
        faults[mode] = float(done.stdout)
    assert faults["adaptive"] > 4000 and faults["kept"] < 100, faults


@pytest.mark.slow
def test_the_summary_splits_training_evaluation_and_start_up_time(idx_root, tmp_path):
    run = nnlab.train(dcn_config(idx_root), runs_dir=tmp_path)
    summary = run.summary
    images = 3 * (300 - 30)  # three epochs of the training images left after validation
    assert summary.images_per_second == pytest.approx(images / summary.train_seconds, rel=0.01)
    assert summary.eval_seconds > 0 and summary.train_seconds > 0
    assert 0 < summary.startup_seconds < run.meta.duration_seconds + 600


@pytest.mark.slow
def test_same_config_twice_gives_identical_metrics(idx_root, tmp_path):
    cfg = dcn_config(idx_root, **{"train.stats_every": 0, "train.tensorboard": False})
    a = nnlab.train(cfg, runs_dir=tmp_path)
    b = nnlab.train(cfg, runs_dir=tmp_path)
    assert (a.path / "metrics.csv").read_text() == (b.path / "metrics.csv").read_text()
    c = nnlab.train(cfg, {"seed": 1}, runs_dir=tmp_path)
    assert (a.path / "metrics.csv").read_text() != (c.path / "metrics.csv").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    "device, precision, stop_at",
    [
        ("cpu", "float32", 8),
        ("cpu", "float32", 3),
        ("cpu", "bfloat16", 8),
        pytest.param("cuda", "float32", 8, marks=CUDA_MARKS),
    ],
)
def test_resume_after_an_interruption_equals_an_uninterrupted_run(
    idx_root, tmp_path, device, precision, stop_at
):
    """Epoch 2 is steps 7-12: a run cut at step 8 resumes from epoch 1's checkpoint, one cut
    at step 3 from the checkpoint of the start (whose step 0 statistics it keeps, once). The
    same files and weights to the bit in bfloat16, and on a GPU (CUDA's random state, for
    dropout, restored too)."""
    cfg = dcn_config(
        idx_root,
        **{
            "train.device": device,
            "train.precision": precision,
            "train.lr_decay.kind": "exponential",
            "train.lr_decay.gamma": 0.7,
            "train.optimizer": "adam",
            "train.epsilon": 0.002,
        },
    )
    whole = nnlab.train(cfg, runs_dir=tmp_path / "whole")

    def stop(row):
        if row["step"] >= stop_at:
            raise KeyboardInterrupt

    with pytest.raises(nnlab.RunInterrupted) as exc:
        nnlab.train(cfg, runs_dir=tmp_path / "cut", on_row=stop)
    cut = exc.value.run
    assert cut.status == "interrupted" and (cut.path / "checkpoint.pt").is_file()
    assert json.loads((cut.path / "meta.json").read_text())["status"] == "interrupted"

    resumed = nnlab.train(resume=cut.path)
    assert resumed.path == cut.path and resumed.status == "completed"
    for name in ("metrics.csv", "stats.csv"):
        assert (resumed.path / name).read_text() == (whole.path / name).read_text(), name
    meta = json.loads((resumed.path / "meta.json").read_text())
    assert len(meta["resumed"]) == 1
    a = torch.load(whole.path / "model.pt", weights_only=True)
    b = torch.load(resumed.path / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    check_run(resumed.path)


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_bfloat16_ends_within_tolerance_of_float32(digits_root, tmp_path, device):
    """bfloat16 (autocast in training, a bfloat16 copy of the weights in evaluation) is not
    float32's arithmetic: the same config in both ends within the tolerances above."""
    if device == "cuda" and not torch.cuda.is_bf16_supported():
        pytest.skip(f"{torch.cuda.get_device_name(0)} has no bfloat16")
    f32 = nnlab.train(converging(digits_root, device), runs_dir=tmp_path)
    bf16 = nnlab.train(
        converging(digits_root, device, **{"train.precision": "bfloat16"}), runs_dir=tmp_path
    )
    assert f32.status == bf16.status == "completed"
    meta = json.loads((bf16.path / "meta.json").read_text())
    assert meta["environment"]["precision"] == "bfloat16"
    assert_close(f32.summary.final, bf16.summary.final)


@pytest.mark.slow
def test_early_stopping_keeps_the_best_weights_and_survives_a_resume(idx_root, tmp_path):
    """min_delta 10: nothing after the first evaluation counts as better, so with patience 1
    the run stops at the second (epoch 2's end) and keeps epoch 1's weights — also when it
    was interrupted in epoch 2 and resumed from epoch 1's checkpoint."""
    cfg = dcn_config(
        idx_root,
        **{
            "train.epochs": 5,
            "train.eval_every": 1000,  # evaluations at epoch ends only: steps 6, 12, ...
            "train.stats_every": 0,
            "train.early_stopping": {"metric": "val_loss", "patience": 1, "min_delta": 10.0},
        },
    )
    whole = nnlab.train(cfg, runs_dir=tmp_path / "whole")
    meta = json.loads((whole.path / "meta.json").read_text())
    assert whole.status == "completed" and meta["stopped"]["step"] == 12
    es = whole.summary.early_stopping
    assert es.stopped_early and es.weights_from_step == es.best_step == 6
    rows = read_csv(whole.path / "metrics.csv")
    best = next(r for r in rows if r["step"] == "6")
    model = DCN((28, 28), 10, [8, 16], 5, 64, 0.5)
    model.load_state_dict(torch.load(whole.path / "model.pt", weights_only=True))
    data = load_images(cfg)
    val_loss, _ = evaluate(model, data.X_val, data.y_val)
    assert val_loss == pytest.approx(float(best["val_loss"]), rel=1e-5)
    assert not (whole.path / "checkpoint.pt").exists()

    def stop_in_epoch_two(row):
        if row["step"] >= 8:
            raise KeyboardInterrupt

    with pytest.raises(nnlab.RunInterrupted) as exc:
        nnlab.train(cfg, runs_dir=tmp_path / "cut", on_row=stop_in_epoch_two)
    resumed = nnlab.train(resume=exc.value.run.path)
    assert resumed.summary.early_stopping == es
    assert (resumed.path / "metrics.csv").read_text() == (whole.path / "metrics.csv").read_text()
    a = torch.load(whole.path / "model.pt", weights_only=True)
    b = torch.load(resumed.path / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_then_cli_resume_completes_the_run(idx_root, tmp_path, sig):
    cfg = dcn_config(idx_root, **{"train.epochs": 30, "train.stats_every": 0})
    cfg_path = tmp_path / "long.yaml"
    cfg_path.write_text(nnlab.config.resolve.dump_config(cfg))
    code, out, err = interrupt_after_rows(
        ["train", cfg_path, "--runs-dir", tmp_path], tmp_path, rows=8, sig=sig
    )
    assert code == 130, err
    run = Path(out.strip().splitlines()[-1])
    assert json.loads((run / "meta.json").read_text())["status"] == "interrupted"
    done = run_nnlab("train", "--resume", run, "-q", "-s", "train.epochs=3")
    assert done.returncode == 2 and "give no CONFIG or -s overrides" in done.stderr
    done = run_nnlab("train", "--resume", run, "-q", timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"
    assert int(read_csv(run / "metrics.csv")[-1]["epoch"]) == 30


def test_pooling_before_relu_gives_the_written_orders_values_and_gradients_to_the_bit():
    """DCN.forward pools each conv stage before its ReLU (a quarter of the elements for the
    ReLU) unless a hook watches them: outputs and every gradient equal the written order's,
    on windows whose maximum is positive, negative and exactly 0; with a hook on conv1_relu
    the order is the written one, so the statistics see the ReLU's whole 28 x 28 map."""
    torch.manual_seed(3)
    model = DCN((28, 28), 10, [4, 8], 5, 32, 0.0).to(memory_format=torch.channels_last)
    x = torch.randn(16, 1, 28, 28)
    x[0] = -x[0].abs()  # mostly negative net inputs: many windows with a maximum <= 0
    x[1] = 0.0  # an image of zeros (conv1's output is its bias, ties in every window)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (16,))

    def grads(forward):
        model.zero_grad(set_to_none=True)
        out = forward(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        return out.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}

    written_out, written = grads(partial(torch.nn.Sequential.forward, model))
    out, fast = grads(model)
    assert torch.equal(out, written_out)
    assert all(torch.equal(fast[k], written[k]) for k in written)
    seen = []
    handle = model.conv1_relu.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        hooked_out, hooked = grads(model)
    finally:
        handle.remove()
    assert seen == [torch.Size([16, 4, 28, 28])]  # before the pool: the ReLU's whole map
    inputs = []  # any hook counts: a pre-hook on the pool sees the ReLU's output
    handle = model.conv1_pool.register_forward_pre_hook(lambda m, i: inputs.append(i[0]))
    try:
        model(x)
    finally:
        handle.remove()
    assert inputs[0].shape == (16, 4, 28, 28) and inputs[0].min() == 0
    assert torch.equal(hooked_out, written_out)
    assert all(torch.equal(hooked[k], written[k]) for k in written)


def awkward_images(n: int, size: tuple[int, int]) -> torch.Tensor:
    """Images for the evaluation tests: noise, one of zeros (ties in every pooling window),
    one of negatives, one with a NaN and one with an infinity."""
    x = torch.randn(n, 1, *size)
    x[0], x[1], x[2, 0, 3, 4], x[3, 0, 5, 1] = 0.0, -x[1].abs(), float("nan"), float("inf")
    return x


def model_logits(model: DCN, X: torch.Tensor, batch: int, precision: str) -> torch.Tensor:
    """The model's own forward in batches, in the written layer order, under autocast in
    bfloat16: what an evaluation's logits must equal."""
    model.eval()
    written = partial(torch.nn.Sequential.forward, model)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bfloat16"):
        parts = [
            written(X[i : i + batch].contiguous(memory_format=torch.channels_last))
            for i in range(0, len(X), batch)
        ]
    return torch.cat(parts).float()


def evaluation_logits(model: DCN, X: torch.Tensor, precision: str) -> torch.Tensor:
    """An evaluation's logits, batches of 100."""
    return torch.cat([logits for *_, logits in network._logits(model, X, 100, precision)])


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize(
    "size, channels, kernel, units",
    [((28, 28), [32, 64], 5, 1024), ((13, 11), [4, 8], 3, 32)],  # the course network; odd maps
)
def test_evaluation_gives_the_models_own_logits_to_the_bit(
    precision, size, channels, kernel, units, monkeypatch
):
    """An evaluation's fast path — conv stages in batches of 100, the layers after them over
    each chunk of 1,000 images, each ReLU and max-pool one pairwise maximum, bfloat16
    parameters cast once — gives the logits of the model's own forward in batches of 100 in
    its written order (autocast in bfloat16), NaN and infinity included, at the course
    network's sizes and on odd maps (pooling drops a row and a column); it never calls
    max_pool2d, which the model's own forward does."""
    torch.manual_seed(4)
    model = DCN(size, 10, channels, kernel, units, 0.5).to(memory_format=torch.channels_last)
    X = awkward_images(1250, size)  # two chunks of SUM_CHUNK, the last batch short
    expected = model_logits(model, X, 100, precision)
    monkeypatch.setattr(torch.nn.functional, "max_pool2d", None)  # the fast path's promise
    got = evaluation_logits(model, X, precision)
    torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)
    assert got[2:4].isnan().all() and not got[4:].isnan().any()


def test_halving_equals_max_pool2d_on_ties_nan_infinities_and_odd_maps():
    x = torch.randn(3, 5, 9, 7)
    x[0] = 0.0
    x[1, :, :4] = float("-inf")
    x[2, 0, 2, 2], x[2, 1, 8, 6] = float("nan"), float("nan")  # the second is in a dropped row
    x = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(
        network._halve(x), torch.nn.functional.max_pool2d(x, 2), rtol=0, atol=0, equal_nan=True
    )


@pytest.mark.parametrize("other", ["a forward set on the model", "a subclass", "a shared ReLU"])
def test_an_evaluation_runs_any_other_forward_as_it_is(other):
    """The fast path is a DCN's own forward only: a forward set on the model, a subclass's
    forward, or a ReLU instance shared by two stages (which the model's children list once)
    is run as it is, batch by batch, and the logits are that forward's."""
    torch.manual_seed(6)

    class Residual(DCN):
        def forward(self, x):
            return super().forward(x) * 2

    model = (Residual if other == "a subclass" else DCN)((28, 28), 10, [4, 8], 3, 32, 0.5)
    if other == "a forward set on the model":
        model.forward = lambda x: torch.nn.Sequential.forward(model, x) + 1
    if other == "a shared ReLU":
        model.conv2_relu = model.conv1_relu
    model.to(memory_format=torch.channels_last).eval()
    X = awkward_images(250, (28, 28))
    with torch.no_grad():
        expected = torch.cat(
            [
                model(X[i : i + 100].contiguous(memory_format=torch.channels_last))
                for i in range(0, 250, 100)
            ]
        )
    got = evaluation_logits(model, X, "float32")
    torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("watched", ["fc1", "the model"])
def test_a_hook_on_a_layer_sees_each_batch_of_an_evaluation(watched):
    """Where a hook watches a layer or the model, the evaluation runs the model's own forward
    batch by batch, so the hook sees what it would see in a plain loop; the logits are the
    same."""
    torch.manual_seed(5)
    model = DCN((28, 28), 10, [4, 8], 3, 32, 0.5).to(memory_format=torch.channels_last)
    X = awkward_images(250, (28, 28))
    seen = []
    layer = model.fc1 if watched == "fc1" else model
    handle = layer.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    try:
        got = evaluation_logits(model, X, "float32")
    finally:
        handle.remove()
    assert seen == [100, 100, 50]
    expected = model_logits(model, X, 100, "float32")
    torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)


def test_xavier_init_gives_the_glorot_variance():
    torch.manual_seed(0)
    model = DCN((28, 28), 10, [32, 64], 5, 1024, 0.5)
    initialise(model, "xavier")
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            w = module.weight
            receptive = w[0, 0].numel() if w.dim() == 4 else 1
            fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
            # a uniform sample's variance estimate has relative std sqrt(0.8 / n): allow 4 of them
            tolerance = 4 * math.sqrt(0.8 / w.numel())
            assert w.var().item() == pytest.approx(2 / (fan_in + fan_out), rel=tolerance)
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert w.abs().max().item() <= bound  # uniform, not normal
            assert not module.bias.any()


@pytest.mark.parametrize("kind, expected", [
    ("none", lambda e: 0.1),
    ("step", lambda e: 0.1 * 0.5 ** (e // 2)),
    ("exponential", lambda e: 0.1 * 0.5**e),
    ("cosine", lambda e: 0.1 * (1 + math.cos(math.pi * e / 6)) / 2),
])  # fmt: skip
def test_each_lr_decay_gives_the_expected_rate_per_epoch(kind, expected):
    train_cfg = load_config(
        {
            "model": {"kind": "dcn"},
            "train": {
                "optimizer": "sgd",
                "epsilon": 0.1,
                "reg_lambda": 0.0,
                "momentum": 0.9,
                "epochs": 6,
                "lr_decay": {"kind": kind, "gamma": 0.5, "step_size": 2},
            },
        }
    )["train"]
    opt = make_optimizer(torch.nn.Linear(2, 2), train_cfg)
    sched = make_scheduler(opt, train_cfg)
    for epoch in range(6):
        assert opt.param_groups[0]["lr"] == pytest.approx(expected(epoch), abs=1e-12), epoch
        opt.step()
        sched.step()


def test_metrics_record_the_decayed_rate_of_each_epoch(idx_root, tmp_path):
    cfg = dcn_config(
        idx_root,
        **{
            "train.lr_decay.kind": "exponential",
            "train.lr_decay.gamma": 0.5,
            "train.stats_every": 0,
        },
    )
    run = nnlab.train(cfg, runs_dir=tmp_path)
    for row in run.metrics:
        assert row["lr"] == pytest.approx(0.05 * 0.5 ** (row["epoch"] - 1))


DCN_BAD = {
    "files missing": (
        ["-s", "data.root={tmp}/nowhere"],
        "mnist IDX files not found; looked in {tmp}/nowhere",
    ),
    "wrong magic": (["-s", "data.root={tmp}/magic"], "not an IDX file of unsigned bytes"),
    "truncated": (["-s", "data.root={tmp}/short"], "truncated"),
    "image too small": (
        ["-s", "model.conv_channels=[4,4,4,4,4]"],
        "images are 28x28 but model.conv_channels has 5 conv + max-pool stages",
    ),
    "batch_size < 1": (["-s", "train.batch_size=0"], "train.batch_size must be an integer >= 1"),
    "epochs < 1": (["-s", "train.epochs=0"], "train.epochs must be an integer >= 1; got 0"),
    "optimizer": (
        ["-s", "train.optimizer=rmsprop"],
        "train.optimizer must be one of sgd, adam for model.kind dcn; got 'rmsprop'",
    ),
    "decay kind": (
        ["-s", "train.lr_decay.kind=linear"],
        "train.lr_decay.kind must be one of none, step, exponential, cosine",
    ),
    "resume a folder that is not a run": (["--resume", "{tmp}"], "is not a run folder"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(DCN_BAD), ids=list(DCN_BAD))
def test_dcn_bad_input_is_one_line_exit_2(case, idx_root, tmp_path):
    small_mnist(tmp_path / "magic")
    (tmp_path / "magic" / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01" + bytes(8))
    small_mnist(tmp_path / "short")
    short = tmp_path / "short" / "t10k-images-idx3-ubyte"
    short.write_bytes(short.read_bytes()[:5000])
    cfg_path = tmp_path / "dcn.yaml"
    cfg_path.write_text(nnlab.config.resolve.dump_config(dcn_config(idx_root)))
    args, message = DCN_BAD[case]
    args = [a.format(tmp=tmp_path) for a in args]
    if args[0] != "--resume":
        args = [str(cfg_path), *args]
    result = run_nnlab("train", *args, "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnlab: error: ")
    assert message.format(tmp=tmp_path) in lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    result = run_nnlab(
        "train",
        "-q",
        str(Path(__file__).parents[2] / "configs" / "fashion_mnist_dcn.yaml"),
        "-s",
        f"data.root={tmp_path}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "data.download: true" in result.stderr
    assert "apt-get install dataset-fashion-mnist" in result.stderr


@pytest.mark.slow
def test_resume_refuses_completed_and_mlp_runs(idx_root, tmp_path):
    cfg = dcn_config(idx_root, **{"train.epochs": 1, "train.stats_every": 0})
    done = nnlab.train(cfg, runs_dir=tmp_path)
    result = run_nnlab("train", "--resume", done.path)
    assert result.returncode == 2 and "is a completed run" in result.stderr
    mlp = nnlab.train({"train": {"iterations": 10}}, runs_dir=tmp_path)
    result = run_nnlab("train", "--resume", mlp.path)
    assert result.returncode == 2 and "only DCN runs checkpoint" in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error(idx_root, tmp_path):
    with pytest.raises(nnlab.NnlabError, match="train.device is cuda but CUDA is not available"):
        nnlab.train(dcn_config(idx_root, **{"train.device": "cuda"}), runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def _online() -> bool:
    import socket

    try:
        socket.getaddrinfo("ossci-datasets.s3.amazonaws.com", 443)
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(_online(), reason="the download would succeed: this machine is online")
def test_download_without_internet_is_a_one_line_error(tmp_path):
    result = run_nnlab(
        "train",
        "-q",
        Path(__file__).parents[2] / "configs" / "mnist_adam.yaml",
        "-s",
        "data.download=true",
        "-s",
        f"data.root={tmp_path / 'dl'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "downloading mnist with torchvision" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_a_huge_learning_rate_diverges_with_the_step_named(idx_root, tmp_path):
    cfg = dcn_config(idx_root, **{"train.epsilon": 1e6, "train.stats_every": 0})
    run = nnlab.train(cfg, runs_dir=tmp_path)
    assert run.status == "diverged" and "diverged at step" in run.error
    check_run(run.path)
