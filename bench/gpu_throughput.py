"""Training throughput of the DCN on an NVIDIA GPU: the plain PyTorch loop against nnlab's
trainer, in float32 and bfloat16, with the GPU's matrix-multiply rates for scale.

The same model (nnlab.models.dcn.network.DCN, the course network), optimizer (SGD, momentum
0.9) and batch (50) on the same images, side by side, alternating rounds after an untimed
warm-up round on 1,000 images (or --images, if fewer):

- reference: the plainest PyTorch loop, in this process, with the normalised images already
  on the GPU (NCHW), a shuffled permutation per epoch, batches by indexing; cuDNN at
  PyTorch's defaults (not deterministic, no benchmarking), once more with cuDNN
  deterministic (as nnlab sets it, for that share of any gap), and in bfloat16 autocast;
- nnlab: `nnlab.train` in this process, `train.device: cuda`, monitoring off, in float32,
  float32 with the default monitoring (layer statistics and histograms every 100 steps,
  TensorBoard) and bfloat16 — summary.json's images_per_second (training images over the
  training loop's time without its evaluations).

Every rate is one epoch over --images images, the GPU synchronised before the clock starts
and stops. The FLOPs of one image's training step (forward and backward, counted by
torch.utils.flop_counter on one batch) times the images per second give each row's
achieved TFLOP/s, stated as a share of a large matrix multiply's rate measured here: float32
rows against TF32 (cuDNN runs float32 convolutions in TF32 by default), bfloat16 rows against
bfloat16. At batch 50 the DCN is far from those ceilings: its steps are many small kernels.

    python bench/gpu_throughput.py [--images 20000] [--rounds 3] [--root DIR] [--matmul 8192]
    python bench/gpu_throughput.py --write-idx DIR [--images N]

The images are synthetic (10 blocky class templates under noise, learnable; uncompressed IDX
files the script writes itself, so it runs offline on a bare GPU machine), or, with --root,
the first --images of Fashion-MNIST IDX files found there. --write-idx only writes the
synthetic IDX files (--images training, 1,000 test) into DIR and exits: bench/gpu_check.sh's
sweep reads them. --device cpu runs every row on the CPU, to check the script where no GPU
is lent: its rates say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from dcn_throughput import BATCH, bench_config, prepare, write_idx  # bench/, beside this file

import nnlab
from nnlab.data.idx import find_idx_files, read_idx
from nnlab.models.dcn.network import DCN

WARM_IMAGES = 1000
ROWS = {  # row: (pipeline, precision, cuDNN deterministic / nnlab monitoring)
    "reference float32": ("reference", "float32", False),
    "reference float32, cuDNN deterministic": ("reference", "float32", True),
    "reference bfloat16": ("reference", "bfloat16", False),
    "nnlab float32": ("nnlab", "float32", False),
    "nnlab float32, statistics and TensorBoard": ("nnlab", "float32", True),
    "nnlab bfloat16": ("nnlab", "bfloat16", False),
}


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 uint8 images of 10 classes and their labels: each class a blocky random
    template (7x7 cells of 4x4 pixels), 60% of each pixel, under 40% uniform noise."""
    rng = np.random.default_rng(seed)
    templates = np.kron(rng.random((10, 7, 7), dtype=np.float32), np.ones((4, 4), np.float32))
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = 0.6 * templates[labels] + 0.4 * rng.random((n, 28, 28), dtype=np.float32)
    return (images * 255).round().astype(np.uint8), labels


def write_synthetic(folder: Path, n_train: int, n_test: int = 1000) -> Path:
    """Synthetic train and test IDX files (MNIST's flat names) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = synthetic(n_train + n_test)
    for prefix, part in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images[part])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels[part])
    return folder


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def cudnn(deterministic: bool) -> Iterator[None]:
    """cuDNN's flags for a reference row (nnlab's runs in this process set their own, and
    leave them set): deterministic or not, never benchmarking; restored after."""
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = deterministic, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


def training_images(root: Path, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images of ``root``, normalised by their own mean and std, NCHW, on
    ``device`` — before any clock starts."""
    images, labels = find_idx_files("mnist", str(root))["train"]
    x = torch.from_numpy(read_idx(images).astype(np.float32) / 255).unsqueeze(1)
    x = (x - x.mean()) / x.std()
    return x.to(device), torch.from_numpy(read_idx(labels).astype(np.int64)).to(device)


def model_and_optimizer(device: torch.device) -> tuple[DCN, torch.optim.Optimizer]:
    model = DCN((28, 28), 10, [32, 64], 5, 1024, 0.5).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=0.01)
    return model, optimizer


def reference(x: torch.Tensor, y: torch.Tensor, precision: str, deterministic: bool) -> float:
    """Images per second of one epoch of the plain loop over ``x``, ``y`` (on the device)."""
    torch.manual_seed(0)
    model, optimizer = model_and_optimizer(x.device)
    model.train()
    bf16 = precision == "bfloat16"
    with cudnn(deterministic):
        sync(x.device)
        t0 = time.perf_counter()
        perm = torch.randperm(len(y), device=x.device)
        for start in range(0, len(y), BATCH):
            idx = perm[start : start + BATCH]
            with torch.autocast(x.device.type, torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(x.device)
        return len(y) / (time.perf_counter() - t0)


def nnlab_rate(root: Path, runs: Path, device: torch.device, precision: str, monitoring: bool):
    """summary.json's images_per_second of `nnlab.train`, one epoch, on ``device``."""
    cfg = bench_config(root, monitoring, precision)
    cfg["train"]["device"] = device.type
    run = nnlab.train(cfg, runs_dir=runs)
    if run.status != "completed":
        sys.exit(f"nnlab's {precision} run {run.status}: {run.error}")
    return run.summary.images_per_second


def row_rate(row: str, root: Path, runs: Path, data: tuple, device: torch.device) -> float:
    pipeline, precision, flag = ROWS[row]
    if pipeline == "reference":
        return reference(*data, precision, deterministic=flag)
    return nnlab_rate(root, runs, device, precision, monitoring=flag)


def step_flops(device: torch.device) -> float:
    """FLOPs of one image's training step (forward and backward), counted on one batch."""
    from torch.utils.flop_counter import FlopCounterMode

    model, _ = model_and_optimizer(device)
    x = torch.randn(BATCH, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (BATCH,), device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / BATCH


def matmul_rates(device: torch.device, n: int) -> dict[str, float]:
    """TFLOP/s of an n x n matrix multiply: float32 (TF32 off), TF32, bfloat16."""
    rates = {}
    tf32_before = torch.backends.cuda.matmul.allow_tf32
    try:
        for name, dtype, tf32 in (("float32", torch.float32, False),
                                  ("tf32", torch.float32, True),
                                  ("bfloat16", torch.bfloat16, False)):  # fmt: skip
            torch.backends.cuda.matmul.allow_tf32 = tf32
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            a @ b  # warm-up: the kernel chosen, the library loaded
            sync(device)
            repeats, t0 = 0, time.perf_counter()
            while repeats < 3 or time.perf_counter() - t0 < 1.0:
                a @ b
                repeats += 1
                if repeats % 10 == 0:
                    sync(device)
            sync(device)
            rates[name] = 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32_before
    return rates


def describe(device: torch.device) -> str:
    if device.type != "cuda":
        return f"{device} (a check of the script: these rates say nothing about a GPU)"
    props = torch.cuda.get_device_properties(device)
    return (
        f"{props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability "
        f"{props.major}.{props.minor}; CUDA {torch.version.cuda}, cuDNN "
        f"{torch.backends.cudnn.version()}; cuDNN TF32 {torch.backends.cudnn.allow_tf32}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default=None, help="folder of Fashion-MNIST IDX files")
    parser.add_argument("--matmul", type=int, default=8192, help="matrix size (n x n)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--write-idx", metavar="DIR", help="write synthetic IDX files, exit")
    args = parser.parse_args()
    if args.write_idx:
        print(write_synthetic(Path(args.write_idx), args.images))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"gpu_throughput.py: PyTorch {torch.__version__} sees no CUDA GPU here")
    device = torch.device(args.device)
    print(f"{describe(device)}\ntorch {torch.__version__}, batch {BATCH}, {args.images} "
          f"training images per run, {args.rounds} round{'s' * (args.rounds != 1)}")  # fmt: skip
    results: dict[str, list[float]] = {row: [] for row in ROWS}
    with tempfile.TemporaryDirectory() as tmp:
        folder, runs = Path(tmp), Path(tmp) / "runs"
        if args.root:
            root = prepare(args.root, args.images, folder / "data")
            warm = prepare(args.root, min(WARM_IMAGES, args.images), folder / "warm")
        else:
            root = write_synthetic(folder / "data", args.images)
            warm = write_synthetic(folder / "warm", min(WARM_IMAGES, args.images))
        flops = step_flops(device)
        data = training_images(warm, device)
        for row in ROWS:  # untimed: kernels chosen, libraries loaded, caches warm
            row_rate(row, warm, runs, data, device)
        data = training_images(root, device)
        for r in range(args.rounds):
            for row in ROWS:
                results[row].append(row_rate(row, root, runs, data, device))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in results.items()))
        matmul = matmul_rates(device, args.matmul)
    print(
        f"\nmatmul {args.matmul}x{args.matmul}: float32 {matmul['float32']:.1f}, TF32 "
        f"{matmul['tf32']:.1f}, bfloat16 {matmul['bfloat16']:.1f} TFLOP/s; one image's "
        f"training step: {flops / 1e6:.1f} MFLOP"
    )
    ref = statistics.median(results["reference float32"])
    print("\n| pipeline | images/s | × reference float32 | TFLOP/s | share of the matmul rate |")
    print("|---|---:|---:|---:|---:|")
    for row, values in results.items():
        rate = statistics.median(values)
        tflops = rate * flops / 1e12
        ceiling = "bfloat16" if ROWS[row][1] == "bfloat16" else "tf32"
        print(f"| {row} | {rate:,.0f} | {rate / ref:.2f}× | {tflops:.2f} | "
              f"{tflops / matmul[ceiling]:.1%} of {ceiling} |")  # fmt: skip
    print(f"\n(medians of {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
