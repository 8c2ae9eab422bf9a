"""The DCN against this CPU's own limit: issue 27's table, measured side by side in one run.

Rows, in alternating rounds (the median of the rounds is reported):
- the limit: a 2048 x 2048 matrix product in float32 and in bfloat16 (torch's, this process's
  threads), as GFLOP/s and as training images per second at one image's training FLOPs
  (forward and backward, counted by torch.utils.flop_counter: ~82 MFLOP for the course
  network);
- the plain PyTorch reference pipeline (dcn_throughput.py's: torchvision's dataset and a
  shuffling DataLoader, NCHW, SGD with momentum), in a fresh process;
- `nnlab train` through the command line in a fresh process, float32 and then
  `train.precision: bfloat16`, with the default monitoring (layer statistics and histograms
  every 100 steps, TensorBoard) and 1,000 validation images evaluated every 500 steps:
  summary.json's images_per_second (training images over the training loop's time without
  its evaluations);
- evaluation of 15,000 images (the 10,000 test images and 5,000 training images, as an
  epoch's end evaluates a 5,000-image validation split and the test set), in a fresh process
  each: this tree's `assess` in float32 and in bfloat16, and `assess` of the commit before
  issue 27's work (--before, default 2d0bfc3) in float32, checked out in a temporary git
  worktree. Each process times three evaluations after one untimed, and reports the median.

Each training row is one epoch of the first --images Fashion-MNIST training images (Debian's
dataset-fashion-mnist, or --root), batch 50, SGD with momentum 0.9, learning rate 0.01,
weight decay 0.01, as dcn_throughput.py trains.

    python bench/dcn_limit.py [--images 10000] [--rounds 3] [--root DIR] [--before 2d0bfc3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from dcn_throughput import nnlab_cli, prepare, reference  # bench/, beside this
from gpu_throughput import matmul_rates, step_flops
from time_to_accuracy import NORMALIZE

ROOT = Path(__file__).resolve().parents[1]

# One evaluation process: PYTHONPATH picks the tree whose nnlab it times.
EVALUATE = """
import json, statistics, sys, time
import torch
from nnlab.data.idx import find_idx_files, read_idx
from nnlab.models.allocator import keep_freed_memory
from nnlab.models.dcn.network import DCN, assess
keep_freed_memory()
root, precision = sys.argv[1] or None, sys.argv[2]
mean, std = float(sys.argv[3]), float(sys.argv[4])
files = find_idx_files("fashion_mnist", root)
def images(split, n):
    x = torch.from_numpy(read_idx(files[split][0])[:n].copy()).float().div(255)
    return (x - mean) / std, torch.from_numpy(read_idx(files[split][1])[:n].astype("int64"))
(xt, yt), (xs, ys) = images("test", 10000), images("train", 5000)
X, y = torch.cat([xt, xs]).unsqueeze(1), torch.cat([yt, ys])
torch.manual_seed(0)
model = DCN((28, 28), 10, [32, 64], 5, 1024, 0.5).to(memory_format=torch.channels_last)
assess(model, X, y, precision=precision)
times = []
for _ in range(3):
    t0 = time.perf_counter()
    assess(model, X, y, precision=precision)
    times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": statistics.median(times), "images": len(y)}))
"""


def evaluation_seconds(tree: Path, root: str | None, precision: str) -> float:
    """The median seconds of one evaluation of 15,000 images by ``tree``'s nnlab."""
    mean, std = NORMALIZE["fashion_mnist"]
    done = subprocess.run(
        [sys.executable, "-c", EVALUATE, root or "", precision, str(mean), str(std)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"the evaluation by {tree} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def worktree(commit: str, folder: Path) -> Path:
    path = folder / f"before-{commit}"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), commit],
        check=True,
    )  # fmt: skip
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default=None, help="folder of Fashion-MNIST IDX files")
    parser.add_argument("--before", default="2d0bfc3", help="the commit evaluation is compared to")
    args = parser.parse_args()
    os.environ["NNLAB_KEEP_FREED_MEMORY"] = "1"
    flops = step_flops(torch.device("cpu"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; one training image: "
          f"{flops / 1e6:.1f} MFLOP; {args.images} images an epoch")  # fmt: skip
    rows: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        root = prepare(args.root, args.images, folder)
        before = worktree(args.before, folder)
        try:
            for r in range(args.rounds):
                rates = matmul_rates(torch.device("cpu"), 2048)
                add("matmul float32 GFLOP/s", rates["float32"] * 1e3)
                add("matmul bfloat16 GFLOP/s", rates["bfloat16"] * 1e3)
                add("reference", reference(root))
                for precision in ("float32", "bfloat16"):
                    cli = nnlab_cli(root, folder / "runs", folder, precision=precision)
                    add(f"nnlab train, {precision}", cli["images_per_second"])
                add("evaluation, before, float32", evaluation_seconds(before, args.root, "float32"))
                add("evaluation, float32", evaluation_seconds(ROOT, args.root, "float32"))
                add("evaluation, bfloat16", evaluation_seconds(ROOT, args.root, "bfloat16"))
                print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.2f}" for k, v in rows.items()),
                      flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)],
                           check=False)  # fmt: skip
    med = {k: statistics.median(v) for k, v in rows.items()}
    limit32 = med["matmul float32 GFLOP/s"] * 1e9 / flops
    limit16 = med["matmul bfloat16 GFLOP/s"] * 1e9 / flops
    f32 = med["nnlab train, float32"]
    print(f"\nmedians of {args.rounds} rounds\n")
    print("| training | images/s | share of its limit | × nnlab float32 |")
    print("|---|---:|---:|---:|")
    print(f"| float32 limit: 2048² product, {med['matmul float32 GFLOP/s']:.0f} GFLOP/s "
          f"| {limit32:,.0f} | 100% | |")  # fmt: skip
    print(f"| bfloat16 limit: 2048² product, {med['matmul bfloat16 GFLOP/s']:.0f} GFLOP/s "
          f"| {limit16:,.0f} | 100% | |")  # fmt: skip
    for name, limit in (("reference", limit32), ("nnlab train, float32", limit32),
                        ("nnlab train, bfloat16", limit16)):  # fmt: skip
        print(f"| {name} | {med[name]:,.0f} | {med[name] / limit:.0%} | {med[name] / f32:.2f}× |")
    before = med["evaluation, before, float32"]
    print("\n| evaluation of 15,000 images | seconds | × before |")
    print("|---|---:|---:|")
    for name in ("evaluation, before, float32", "evaluation, float32", "evaluation, bfloat16"):
        print(
            f"| {name.removeprefix('evaluation, ')} | {med[name]:.2f} | {before / med[name]:.2f}× |"
        )
    print("\nevery round: " + json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
