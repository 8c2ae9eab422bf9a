"""Grid against random search against TPE with median pruning, on the shipped DCN search's space.

The space is configs/sweeps/digits_dcn_search.yaml's (learning rate and weight decay
log-uniform, momentum, optimizer), searched on Fashion-MNIST instead of digits: the first
--train training images of Debian's dataset-fashion-mnist (or --root), written as IDX files to
a temporary folder, --val of them held out for validation, and the first --test test images
(every evaluation reads them, so fewer make a trial cheaper); --epochs
epochs per trial, the rest of the base config as configs/digits_dcn.yaml (batch 50, dropout
0.5, Xavier) with layer statistics and TensorBoard off. Three sweeps run through
`nnlab.sweep`, the code behind `nnlab sweep`:

- grid: 3 learning rates × 2 weight decays × 2 momenta × 2 optimizers = 24 points;
- random: --budget trials of Optuna's random sampler over the space, no pruning;
- tpe: --budget trials of TPE (--startup random trials first) with the median pruner
  (--prune-startup finished trials before it judges; it judges every evaluation, which
  happens every 100 steps and at each epoch's end).

Each is scored on validation accuracy: the best one found, the chosen trial's test accuracy,
and the compute spent, counted as training images processed (steps × batch size, summed over
trials; evaluation excluded). Seconds are reported too, but the machine is shared: compare the
images.

    python bench/search.py [--train 12000] [--val 2000] [--test 5000] [--epochs 3]
                           [--budget 12] [--startup 4] [--prune-startup 3] [--jobs 2]
                           [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml
from dcn_throughput import prepare

import nnlab
from nnlab.runfolder.records import read_metrics

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "configs" / "sweeps" / "digits_dcn_search.yaml"
BATCH = 50
GRID = {
    "train.epsilon": [1e-3, 1e-2, 1e-1],
    "train.reg_lambda": [1e-5, 1e-3],
    "train.momentum": [0.0, 0.9],
    "train.optimizer": ["sgd", "adam"],
}


def base_config(root: Path, images: int, val: int, epochs: int) -> dict:
    digits = yaml.safe_load((REPO / "configs" / "digits_dcn.yaml").read_text())
    train = digits["train"] | {
        "epochs": epochs,
        "log_every": 100,
        "eval_every": 100,
        "stats_every": 0,
        "tensorboard": False,
        "device": "cpu",
    }
    return {
        "seed": 0,
        # a fraction: a count of validation images is capped at 10% of the training images
        "data": {"name": "mnist", "root": str(root), "val_size": val / images},
        "model": digits["model"],
        "train": train,
    }


def sweep_files(folder: Path, args) -> dict[str, Path]:
    shipped = yaml.safe_load(SHIPPED.read_text())["sweep"]
    search = {"trials": args.budget, "metric": "val_acc", "direction": "maximize", "seed": 0}
    pruner = {"kind": "median", "startup_trials": args.prune_startup, "warmup_steps": 0}
    bodies = {
        "grid": {"grid": GRID},
        "random": {"search": search | {"method": "random"}, "params": shipped["params"]},
        "tpe": {
            "search": search | {"method": "tpe", "startup_trials": args.startup},
            "params": shipped["params"],
            "pruner": pruner,
        },
    }
    paths = {}
    for name, body in bodies.items():
        paths[name] = folder / f"{name}.yaml"
        sweep = {"name": f"bench_{name}", "base": "base.yaml", **body}
        paths[name].write_text(yaml.safe_dump({"sweep": sweep}, sort_keys=False))
    return paths


def score(folder: Path) -> dict:
    """Best validation accuracy, the chosen trial's test accuracy, training images, trials."""
    state = yaml.safe_load((folder / "state.json").read_text())
    images, best, counts = 0, None, {}
    for job_id, job in state["jobs"].items():
        counts[job["status"]] = counts.get(job["status"], 0) + 1
        rows = read_metrics(folder / job["run"] / "metrics.csv")
        images += int(rows[-1]["step"]) * BATCH
        final = job.get("final") or {}
        if job["status"] == "completed" and (best is None or final["val_acc"] > best[1]):
            best = (job_id, final["val_acc"], final["test_acc"])
    return {"best": best, "images": images, "counts": counts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=12000, help="training images used")
    parser.add_argument("--val", type=int, default=2000, help="of them, held out")
    parser.add_argument("--test", type=int, default=5000, help="test images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--budget", type=int, default=12, help="trials of random and tpe")
    parser.add_argument("--startup", type=int, default=4, help="TPE's random trials")
    parser.add_argument("--prune-startup", type=int, default=3, help="trials before pruning")
    parser.add_argument("--jobs", type=int, default=2, help="trials at once")
    parser.add_argument("--only", nargs="*", default=["grid", "random", "tpe"])
    parser.add_argument("--root", default=None, help="folder of Fashion-MNIST IDX files")
    parser.add_argument("--keep", default=None, help="keep the sweep folders here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = prepare(args.root, args.train, work / "data", n_test=args.test)
        base = base_config(root, args.train, args.val, args.epochs)
        (work / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
        files = sweep_files(work, args)
        runs = Path(args.keep) if args.keep else work / "runs"
        results = {}
        for name in args.only:
            t0 = time.perf_counter()
            done = nnlab.sweep(files[name], runs_dir=runs, jobs=args.jobs)
            results[name] = score(done.path) | {"seconds": time.perf_counter() - t0}
            best = results[name]["best"]
            print(f"{name}: {done.path}: best {best}, {results[name]}", flush=True)
    grid = results.get("grid")
    print(
        f"\nFashion-MNIST: {args.train - args.val} training images, {args.val} validation, "
        f"{args.test:,} test; {args.epochs} epochs per trial; budget {args.budget} trials"
    )
    print("| search | trials (status) | best val acc | its test acc | training images | "
          "× grid's images | seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        job, val, test = r["best"]
        ratio = f"{r['images'] / grid['images']:.2f}" if grid else "-"
        counts = ", ".join(f"{n} {s}" for s, n in sorted(r["counts"].items()))
        print(
            f"| {name} | {counts} | {val:.2%} (`{job}`) | {test:.2%} | {r['images']:,} | "
            f"{ratio} | {r['seconds']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
