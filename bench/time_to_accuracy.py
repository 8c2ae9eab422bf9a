"""Seconds for the course DCN to reach a test accuracy: nnlab's shipped config, nnlab's fastest
recipe (a shipped config too), and the plain PyTorch reference trained with that same recipe,
each over several seeds, side by side.

    python bench/time_to_accuracy.py [--data fashion_mnist] [--root DIR] [--target 0.90]
                                     [--seeds 0 1 2] [--max-epochs 6]

- nnlab, shipped: configs/fashion_mnist_dcn.yaml (configs/mnist_dcn.yaml for --data mnist)
  as it is, but for the seed and `train.epochs` (--max-epochs, so that the run can get there);
- nnlab, fastest: configs/fashion_mnist_dcn_fast.yaml, the recipe that got there soonest of
  those tried (bench/README.md, 'time_to_accuracy.py'), with the seed and epochs set alike;
- reference, fastest recipe: the course code / pytorch/examples pipeline — torchvision's MNIST
  dataset with ToTensor + Normalize per sample, a DataLoader with shuffle, NCHW tensors, the
  layers in their written order, PyTorch's default optimizer implementation — with the fast
  config's model, optimizer, learning rate and its schedule, batch size, precision (autocast)
  and evaluation interval, on the same training and test images.

Each contender runs in a fresh process of its own, PyTorch and torchvision imported; its clock
starts before it reads the data (so what nnlab imports beyond them counts) and stops at the
end of the first evaluation of the test set at or above --target (the run then ends), so
start-up and evaluations count, as a user waits for them.
Seeds alternate between the contenders so that a noisy machine slows all of them alike; the
table gives the median seconds over the seeds that reached the target, the images trained on
by then and the accuracy reached. A run that does not reach the target in --max-epochs says
so, with its best accuracy.

Needs the dataset's IDX files: Fashion-MNIST from Debian's `apt-get install
dataset-fashion-mnist` (found by itself), or --root; MNIST from --root.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"fashion_mnist": "fashion_mnist_dcn.yaml", "mnist": "mnist_dcn.yaml"}
FAST = "fashion_mnist_dcn_fast.yaml"
TARGET = {"fashion_mnist": 0.90, "mnist": 0.98}
# the per-sample Normalize of the reference: the training images' mean and standard deviation
NORMALIZE = {"fashion_mnist": (0.2860, 0.3530), "mnist": (0.1307, 0.3081)}


def recipe(name: str, data: str, root: str | None, seed: int, epochs: int) -> dict:
    """The config of a contender: the shipped file, with the data set, seed and epochs."""
    from nnlab.config.resolve import load_config

    sets = {"seed": seed, "train.epochs": epochs, "data.name": data}
    if root:
        sets["data.root"] = root
    return load_config(ROOT / "configs" / name, sets)


def run_nnlab(cfg: dict, target: float) -> dict:
    """`nnlab.train` until the first test evaluation at or above ``target``."""
    import nnlab
    from nnlab.models import StopRun

    result = {"seconds": None, "images": None, "accuracy": 0.0}
    batch = cfg["train"]["batch_size"]

    def on_row(row: dict) -> None:
        if "test_acc" not in row:
            return
        result["accuracy"] = max(result["accuracy"], row["test_acc"])
        if row["test_acc"] >= target:
            result.update(seconds=time.perf_counter() - t0, images=int(row["step"]) * batch)
            raise StopRun(f"test accuracy {row['test_acc']:.4f} reached {target}")

    with tempfile.TemporaryDirectory() as runs:
        t0 = time.perf_counter()
        run = nnlab.train(cfg, runs_dir=runs, on_row=on_row)
        if run.status != "completed":
            sys.exit(f"nnlab's run ended {run.status}: {run.error}")
    return result


def run_reference(cfg: dict, data: str, root: str | None, target: float) -> dict:
    """The plain PyTorch loop with ``cfg``'s recipe (see the module's docstring)."""
    import torch
    import torch.nn.functional as F
    from torchvision import datasets, transforms

    from nnlab.data.idx import find_idx_files
    from nnlab.models.dcn.network import DCN, initialise, make_scheduler

    model_cfg, train = cfg["model"], cfg["train"]
    if cfg["data"]["val_size"]:
        sys.exit("the reference trains on every training image: the recipe needs val_size 0")
    batch, every = train["batch_size"], train["eval_every"]
    bf16 = train["precision"] == "bfloat16"
    result = {"seconds": None, "images": None, "accuracy": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        folder = torchvision_layout(find_idx_files(data, root), Path(tmp))
        t0 = time.perf_counter()
        mean, std = NORMALIZE[data]
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
        train_set = datasets.MNIST(str(folder), train=True, transform=transform)
        test_set = datasets.MNIST(str(folder), train=False, transform=transform)
        torch.manual_seed(cfg["seed"])
        loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True)
        tests = torch.utils.data.DataLoader(test_set, batch_size=1000)
        model = DCN((28, 28), 10, model_cfg["conv_channels"], model_cfg["kernel_size"],
                    model_cfg["fc_units"], model_cfg["dropout"])  # fmt: skip
        model.forward = lambda x: torch.nn.Sequential.forward(model, x)  # the written order
        initialise(model, model_cfg["init"])
        if train["optimizer"] == "adam":
            optimizer = torch.optim.Adam(
                model.parameters(), lr=train["epsilon"], betas=(train["beta1"], train["beta2"]),
                eps=train["adam_eps"], weight_decay=train["reg_lambda"],
            )  # fmt: skip
        else:
            optimizer = torch.optim.SGD(
                model.parameters(), lr=train["epsilon"], momentum=train["momentum"],
                nesterov=train["nesterov"], weight_decay=train["reg_lambda"],
            )  # fmt: skip
        scheduler = make_scheduler(optimizer, train)

        def amp():
            return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

        def accuracy() -> float:
            model.eval()
            correct = 0
            with torch.no_grad(), amp():
                for x, y in tests:
                    correct += (model(x).argmax(dim=1) == y).sum().item()
            model.train()
            return correct / len(test_set)

        step, per_epoch = 0, math.ceil(len(train_set) / batch)
        for _ in range(train["epochs"]):
            for i, (x, y) in enumerate(loader):
                with amp():
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                if step % every == 0 or i == per_epoch - 1:
                    acc = accuracy()
                    result["accuracy"] = max(result["accuracy"], acc)
                    if acc >= target:
                        seconds = time.perf_counter() - t0
                        return result | {"seconds": seconds, "images": step * batch}
            scheduler.step()
    return result


def torchvision_layout(files: dict, folder: Path) -> Path:
    """The IDX files, uncompressed, where torchvision's MNIST dataset looks for them."""
    from nnlab.data.idx import read_idx

    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for images, labels in files.values():
        for path in (images, labels):
            array = read_idx(path)
            header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
                d.to_bytes(4, "big") for d in array.shape
            )
            (raw / path.name.removesuffix(".gz")).write_bytes(header + array.tobytes())
    return folder


CONTENDERS = ("nnlab, shipped", "nnlab, fastest", "reference, fastest recipe")


def one(args: argparse.Namespace) -> dict:
    """One contender, one seed, in this (fresh) process, PyTorch and torchvision imported
    before any clock starts (what nnlab imports beyond them counts)."""
    import torch  # noqa: F401
    import torchvision.datasets  # noqa: F401

    name = SHIPPED[args.data] if args.contender == CONTENDERS[0] else FAST
    cfg = recipe(name, args.data, args.root, args.seed, args.max_epochs)
    if args.contender == CONTENDERS[2]:
        return run_reference(cfg, args.data, args.root, args.target)
    return run_nnlab(cfg, args.target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(SHIPPED), default="fashion_mnist")
    parser.add_argument("--root", default=None, help="folder of the dataset's IDX files")
    parser.add_argument("--target", type=float, default=None, help="test accuracy to reach")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--only", choices=CONTENDERS, default=None, help="one contender")
    parser.add_argument("--contender", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.target = args.target or TARGET[args.data]
    if args.contender:  # a child process: one run, its result as JSON on the last line
        print(json.dumps(one(args)))
        return 0
    contenders = [args.only] if args.only else list(CONTENDERS)
    results: dict[str, list[dict]] = {c: [] for c in contenders}
    print(f"{args.data}, target test accuracy {args.target}, seeds {args.seeds}, "
          f"at most {args.max_epochs} epochs")  # fmt: skip
    for seed in args.seeds:
        for contender in contenders:
            cmd = [sys.executable, __file__, "--contender", contender, "--seed", str(seed),
                   "--data", args.data, "--target", str(args.target),
                   "--max-epochs", str(args.max_epochs)] + (["--root", args.root] if args.root
                                                             else [])  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"{contender}, seed {seed} failed:\n{done.stderr[-2000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results[contender].append(result)
            secs = f"{result['seconds']:.1f} s" if result["seconds"] else "not reached"
            print(f"seed {seed}, {contender}: {secs}, {result['images']} images, "
                  f"accuracy {result['accuracy']:.4f}", flush=True)  # fmt: skip
    print(f"\n| contender | seconds to {args.target:.0%} (median) | each seed | images "
          "(median) |")  # fmt: skip
    print("|---|---:|---|---:|")
    for contender, runs in results.items():
        reached = [r for r in runs if r["seconds"] is not None]
        each = ", ".join(f"{r['seconds']:.1f}" if r["seconds"] else
                         f"not reached (best {r['accuracy']:.3f})" for r in runs)  # fmt: skip
        median = f"{statistics.median(r['seconds'] for r in reached):.1f}" if reached else "—"
        images = f"{statistics.median(r['images'] for r in reached):,.0f}" if reached else "—"
        print(f"| {contender} | {median} | {each} | {images} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
