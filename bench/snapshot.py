"""Behaviour snapshots: run every shipped config and keep what must not change in a refactor.

    python bench/snapshot.py take SNAPSHOT_DIR [--no-dcn]   run the configs, keep the outputs
    python bench/snapshot.py compare BEFORE_DIR AFTER_DIR     byte-compare two snapshots

``take`` runs every shipped MLP config (``configs/*.yaml`` with model.kind mlp) and
``digits_dcn.yaml`` through the real ``nnlab train`` command, and copies each run's metrics.csv
and model file into SNAPSHOT_DIR/<config>/. ``compare`` then checks that every metrics.csv is
byte-identical and every model.npz holds equal arrays; it exits 1 on the first difference.
Take one snapshot before a change and one after it.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def shipped_configs(dcn: bool) -> list[Path]:
    out = []
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        kind = ((yaml.safe_load(path.read_text()) or {}).get("model") or {}).get("kind", "mlp")
        if kind == "mlp" or (dcn and path.stem == "digits_dcn"):
            out.append(path)
    return out


def take(out: Path, dcn: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as runs:
        for config in shipped_configs(dcn):
            result = subprocess.run(
                [sys.executable, "-m", "nnlab", "train", "-q", str(config), "--runs-dir", runs],
                capture_output=True,
                text=True,
            )
            if result.returncode == 2:  # data not on this machine (Fashion-MNIST): say so
                print(f"{config.stem}: skipped: {result.stderr.strip()}")
                continue
            result.check_returncode()
            run = Path(result.stdout.strip().splitlines()[-1])
            keep = out / config.stem
            keep.mkdir(exist_ok=True)
            for name in ("metrics.csv", "model.npz"):
                if (run / name).exists():
                    shutil.copy(run / name, keep / name)
            print(f"{config.stem}: {result.stdout.strip().splitlines()[-2]}")


def compare(before: Path, after: Path) -> int:
    names = sorted(p.name for p in before.iterdir() if p.is_dir())
    if not names:
        print(f"{before}: no snapshot")
        return 1
    bad = 0
    for name in names:
        a, b = before / name, after / name
        if not (b / "metrics.csv").exists():
            print(f"{name}: not in {after}")
            bad += 1
            continue
        problems = []
        if not filecmp.cmp(a / "metrics.csv", b / "metrics.csv", shallow=False):
            problems.append("metrics.csv differs")
        if (a / "model.npz").exists():
            with np.load(a / "model.npz") as x, np.load(b / "model.npz") as y:
                if set(x) != set(y) or any(not np.array_equal(x[k], y[k]) for k in x):
                    problems.append("model.npz arrays differ")
        bad += bool(problems)
        print(f"{name}: " + ("identical" if not problems else "; ".join(problems)))
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("take")
    t.add_argument("out", type=Path)
    t.add_argument("--no-dcn", action="store_true", help="skip digits_dcn.yaml (about 20 s)")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "take":
        take(args.out, not args.no_dcn)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
