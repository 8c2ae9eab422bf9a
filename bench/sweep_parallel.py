"""Wall time of an 8-job MLP sweep with --jobs 1 against --jobs 2, side by side.

    python bench/sweep_parallel.py [--rounds 2] [--iterations 20000]

The sweep: breast cancer, layers [30, 10, 2] and [30, 30, 2] × seeds 0-3, tanh, through the
real `nnlab sweep` command (worker start-up included). Rounds alternate the two settings so
that machine noise falls on both alike; the speed-up is the ratio of the mean wall times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """sweep:
  name: bench_parallel
  base: {base}
  grid:
    model.layers: [[30, 10, 2], [30, 30, 2]]
  seeds: [0, 1, 2, 3]
"""


def timed_sweep(path: Path, jobs: int, iterations: int, runs: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nnlab",
            "sweep",
            str(path),
            "-q",
            "--jobs",
            str(jobs),
            "--runs-dir",
            str(runs),
            "-s",
            f"train.iterations={iterations}",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=20000)
    args = parser.parse_args()
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(SWEEP.format(base=ROOT / "configs" / "breast_cancer_tanh.yaml"))
        for r in range(args.rounds):
            for jobs in (1, 2):
                times[jobs].append(timed_sweep(path, jobs, args.iterations, Path(tmp) / "runs"))
            print(f"round {r + 1}: --jobs 1 {times[1][-1]:.1f} s, --jobs 2 {times[2][-1]:.1f} s")
    one, two = statistics.mean(times[1]), statistics.mean(times[2])
    print(
        f"\n8 jobs, {args.iterations} iterations each: --jobs 1 {one:.1f} s, "
        f"--jobs 2 {two:.1f} s, speed-up {one / two:.2f}×"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
