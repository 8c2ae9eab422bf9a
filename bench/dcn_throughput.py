"""Training throughput of the DCN: the reference pipeline against nnlab's trainer.

Both train the same model (nnlab.models.dcn.network.DCN, the course network) with the same
optimizer and batch size on the same images, in this one process, alternating rounds so that
machine noise hits both alike:

- reference: the course code / pytorch/examples pipeline — torchvision's MNIST dataset with
  ToTensor + Normalize applied per sample, a DataLoader with shuffle, NCHW tensors;
- nnlab: `nnlab.train` with the images held in memory as tensors, batches by indexing,
  channels-last memory; its own count of training images per second (evaluation excluded),
  once with layer statistics and TensorBoard off and once with the default monitoring
  (statistics and histograms every 100 steps), and once in bfloat16 mixed precision
  (`train.precision: bfloat16`), which changes the arithmetic and is reported apart.

    python bench/dcn_throughput.py [--images 10000] [--rounds 2] [--root DIR]

The images are the first --images of Fashion-MNIST from Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist), or of --root, rewritten as uncompressed IDX files in a
temporary torchvision layout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import nnlab
from nnlab.idx import find_idx_files, read_idx
from nnlab.models.dcn.network import DCN

BATCH = 50


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def prepare(root: str | None, n: int, folder: Path, n_test: int = 1000) -> Path:
    """The first ``n`` training and ``n_test`` test images of Fashion-MNIST (Debian's, or
    ``root``'s) as uncompressed IDX files in a torchvision layout under ``folder``."""
    files = find_idx_files("fashion_mnist", root)
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, (images, labels) in files.items():
        count = n if split == "train" else n_test
        write_idx(raw / images.name.removesuffix(".gz"), read_idx(images)[:count])
        write_idx(raw / labels.name.removesuffix(".gz"), read_idx(labels)[:count])
    return folder


def reference(root: Path) -> float:
    """Images per second of the course's pipeline, training loop only."""
    from torchvision import datasets, transforms

    torch.manual_seed(0)
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))]
    )
    dataset = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
    model = DCN((28, 28), 10, [32, 64], 5, 1024, 0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=0.01)
    model.train()
    seen, t0 = 0, time.perf_counter()
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        seen += len(y)
    return seen / (time.perf_counter() - t0)


def nnlab_trainer(root: Path, runs: Path, monitoring: bool, precision: str = "float32") -> float:
    cfg = {
        "name": "bench",
        "data": {"name": "mnist", "root": str(root), "val_size": 0},
        "model": {"kind": "dcn"},
        "train": {
            "optimizer": "sgd",
            "epsilon": 0.01,
            "momentum": 0.9,
            "reg_lambda": 0.01,
            "epochs": 1,
            "batch_size": BATCH,
            "eval_every": 10**9,
            "log_every": 100,
            "stats_every": 100 if monitoring else 0,
            "tensorboard": monitoring,
            "device": "cpu",
            "precision": precision,
        },
    }
    run = nnlab.train(cfg, runs_dir=runs)
    assert run.status == "completed", run.error
    return run.summary["train_images_per_second"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--root", default=None, help="folder of Fashion-MNIST IDX files")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
        f"{args.images} training images per run"
    )
    results: dict[str, list[float]] = {
        "reference": [],
        "nnlab": [],
        "nnlab+stats": [],
        "nnlab bf16": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = prepare(args.root, args.images, Path(tmp))
        for r in range(args.rounds):
            results["reference"].append(reference(root))
            results["nnlab"].append(nnlab_trainer(root, Path(tmp) / "runs", monitoring=False))
            results["nnlab+stats"].append(nnlab_trainer(root, Path(tmp) / "runs", monitoring=True))
            results["nnlab bf16"].append(
                nnlab_trainer(root, Path(tmp) / "runs", monitoring=False, precision="bfloat16")
            )
            print(
                f"round {r + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f} img/s" for k, v in results.items())
            )
    ref = statistics.mean(results["reference"])
    print(f"\n{'pipeline':<14} {'images/s':>10} {'× reference':>12}")
    for name, values in results.items():
        mean = statistics.mean(values)
        print(f"{name:<14} {mean:>10,.0f} {mean / ref:>11.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
