"""Training throughput of the DCN: the reference pipeline against nnlab's trainer.

Both train the same model (nnlab.models.dcn.network.DCN, the course network) with the same
optimizer and batch size on the same images, alternating rounds so that machine noise hits
both alike:

- reference: the course code / pytorch/examples pipeline — torchvision's MNIST dataset with
  ToTensor + Normalize applied per sample, a DataLoader with shuffle, NCHW tensors — in a
  fresh process of its own, so that nothing nnlab sets for its process (the C library's
  allocator thresholds, nnlab.models.allocator) reaches it; and once more with those thresholds
  set, for their share of nnlab's lead;
- nnlab: `nnlab.train` in this process with the images held in memory as tensors, batches by
  indexing, channels-last memory; summary.json's images_per_second (training images over the
  training loop's time without its evaluations: steps, rows, progress, statistics and
  checkpoints count), once with layer statistics and TensorBoard off and once with the
  default monitoring (statistics and histograms every 100 steps), and, in the first round
  only, in bfloat16 mixed precision (`train.precision: bfloat16`), which changes the
  arithmetic and is reported apart;
- nnlab CLI: the monitored config as a YAML file through `nnlab train` in a fresh process,
  with 1,000 validation images evaluated every 500 steps and at the epoch's end; its
  images_per_second, its training, evaluation and start-up seconds (start-up: from the
  process's start to the first training step — imports, reading the IDX files, normalising),
  and the minor page faults of the whole command; once more with NNLAB_KEEP_FREED_MEMORY=0
  (glibc's default allocator thresholds), for what keeping freed memory is worth.

The reference and command-line rows are fresh processes, timed from their first step (cold);
the in-process trainer rows are warm after the first round, which favours them slightly.

With --full, one more command: one epoch of the shipped configs/fashion_mnist_dcn.yaml on all
55,000 training images, `-s train.eval_every=1000000 -s train.stats_every=1000000`, for its
start-up against the epoch.

    python bench/dcn_throughput.py [--images 10000] [--rounds 2] [--root DIR] [--full]

The images are the first --images of Fashion-MNIST from Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist), or of --root, rewritten as uncompressed IDX files in a
temporary torchvision layout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from time_to_accuracy import NORMALIZE  # bench/, beside this

import nnlab
from nnlab.data.idx import find_idx_files, read_idx
from nnlab.models.allocator import keep_freed_memory
from nnlab.models.dcn.network import DCN

BATCH = 50
ROOT = Path(__file__).resolve().parents[1]


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


def reference(root: Path, keep_freed: bool = False) -> float:
    """Images per second of the course's pipeline, training loop only, in a fresh process;
    with ``keep_freed``, that process first sets the allocator thresholds nnlab sets for a
    CPU run (nnlab.models.allocator), to tell their share from the rest of nnlab's."""
    flag = ["--keep-freed-memory"] if keep_freed else []
    done = subprocess.run(
        [sys.executable, __file__, "--reference-only", str(root), *flag],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"the reference pipeline failed:\n{done.stderr}")
    return float(done.stdout.split()[-1])


def reference_rate(root: Path) -> float:
    """The reference pipeline itself (run by ``--reference-only ROOT``)."""
    from torchvision import datasets, transforms

    torch.manual_seed(0)
    mean, std = NORMALIZE["fashion_mnist"]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
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


def bench_config(root: Path, monitoring: bool, precision: str = "float32") -> dict:
    """The config of every nnlab row: the reference's optimizer and batch, one epoch."""
    return {
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


def nnlab_trainer(root: Path, runs: Path, monitoring: bool, precision: str = "float32") -> float:
    """Images per second of `nnlab.train` in this process (summary.json's images_per_second:
    the training loop without its evaluations)."""
    run = nnlab.train(bench_config(root, monitoring, precision), runs_dir=runs)
    assert run.status == "completed", run.error
    return run.summary.images_per_second


def command_line(args: list[str], runs: Path, env: dict[str, str] | None = None) -> dict:
    """`nnlab train ARGS` in a fresh process: its summary.json, with the command's wall time
    from launch to exit and its minor page faults added."""
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nnlab", "train", *args, "--runs-dir", str(runs), "-q"],
        capture_output=True, text=True, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip
    wall = time.perf_counter() - t0
    faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - faults
    if done.returncode != 0:
        sys.exit(f"nnlab train {' '.join(args)} failed:\n{done.stderr}")
    folder = Path(done.stdout.strip().splitlines()[-1])
    summary = json.loads((folder / "summary.json").read_text())
    return summary | {"wall": wall, "faults": faults}


def nnlab_cli(
    root: Path,
    runs: Path,
    folder: Path,
    env: dict[str, str] | None = None,
    precision: str = "float32",
) -> dict:
    """The monitored config through the real command line, with a validation split of
    1,000 images evaluated at the default eval_every (500 steps) and each epoch's end."""
    cfg = bench_config(root, monitoring=True, precision=precision)
    cfg["data"]["val_size"] = 1000
    cfg["train"]["eval_every"] = 500
    path = folder / "cli.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return command_line([str(path)], runs, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--root", default=None, help="folder of Fashion-MNIST IDX files")
    parser.add_argument(
        "--full",
        action="store_true",
        help="also: one epoch of the shipped fashion_mnist_dcn.yaml on all "
        "55,000 training images, through the command line (startup)",
    )
    parser.add_argument("--reference-only", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--keep-freed-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()  # fmt: skip
    if args.reference_only:  # the reference's own process (see reference())
        if args.keep_freed_memory and not keep_freed_memory():
            sys.exit("glibc's allocator thresholds could not be set here (no glibc?)")
        print(reference_rate(Path(args.reference_only)))
        return 0
    # nnlab's rows keep freed memory (its default) whatever this shell says; one row leaves
    # glibc's defaults, and says so
    os.environ["NNLAB_KEEP_FREED_MEMORY"] = "1"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
        f"{args.images} training images per run"
    )
    results: dict[str, list[float]] = {
        "reference": [],
        "reference, nnlab's allocator thresholds": [],
        "nnlab": [],
        "nnlab+stats": [],
        "nnlab CLI": [],
        "nnlab CLI, glibc's default allocator thresholds": [],
        "nnlab bf16": [],
    }
    cli_runs: dict[str, list[dict]] = {"kept": [], "default": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = prepare(args.root, args.images, Path(tmp))
        runs = Path(tmp) / "runs"
        for r in range(args.rounds):
            results["reference"].append(reference(root))
            results["reference, nnlab's allocator thresholds"].append(reference(root, True))
            results["nnlab"].append(nnlab_trainer(root, runs, monitoring=False))
            results["nnlab+stats"].append(nnlab_trainer(root, runs, monitoring=True))
            for key, row, env in (
                ("kept", "nnlab CLI", None),
                ("default", "nnlab CLI, glibc's default allocator thresholds",
                 {"NNLAB_KEEP_FREED_MEMORY": "0"}),
            ):  # fmt: skip
                cli_runs[key].append(nnlab_cli(root, runs, Path(tmp), env))
                results[row].append(cli_runs[key][-1]["images_per_second"])
            if r == 0:  # a tenth of float32's rate on a CPU without fast bfloat16: once
                results["nnlab bf16"].append(
                    nnlab_trainer(root, runs, monitoring=False, precision="bfloat16")
                )
            print(
                f"round {r + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f} img/s" for k, v in results.items())
            )
        full = None
        if args.full:
            shipped = ROOT / "configs" / "fashion_mnist_dcn.yaml"
            sets = ["-s", "train.epochs=1", "-s", "train.eval_every=1000000",
                    "-s", "train.stats_every=1000000"]  # fmt: skip
            full = command_line([str(shipped), *sets], runs)
    ref = statistics.mean(results["reference"])
    trainer = statistics.mean(results["nnlab"])
    print("\n| pipeline | images/s | × reference | × nnlab's trainer |")
    print("|---|---:|---:|---:|")
    for name, values in results.items():
        mean = statistics.mean(values)
        print(f"| {name} | {mean:,.0f} | {mean / ref:.2f}× | {mean / trainer:.2f}× |")
    for key, runs_of in cli_runs.items():
        cli = {k: statistics.mean(c[k] for c in runs_of)
               for k in ("train_seconds", "eval_seconds", "startup_seconds", "wall",
                         "faults")}  # fmt: skip
        print(f"\nnnlab CLI, {key} allocator thresholds (mean of {len(runs_of)}): training "
              f"{cli['train_seconds']:.2f} s, evaluation {cli['eval_seconds']:.2f} s, start-up "
              f"{cli['startup_seconds']:.2f} s, whole command {cli['wall']:.2f} s, "
              f"{cli['faults']:,.0f} minor page faults in all")  # fmt: skip
    if full is not None:
        share = full["startup_seconds"] / full["train_seconds"]
        print(f"\nfull Fashion-MNIST, one epoch through the CLI: {full['images_per_second']:,.0f} "
              f"images/s, training {full['train_seconds']:.1f} s, evaluation "
              f"{full['eval_seconds']:.1f} s, start-up {full['startup_seconds']:.2f} s "
              f"({share:.1%} of the epoch's training, "
              f"{full['startup_seconds'] / full['wall']:.1%} of the command), "
              f"command {full['wall']:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
