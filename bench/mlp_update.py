"""Microseconds per Adam update of the MLP: optim.py's twelve NumPy passes against fused.py's
one compiled pass (numba), at several parameter counts, in float64 and float32; and what numba
costs a process once: its import and the kernel's compilation at its first call.
(optim.FUSED_FROM is set from these numbers.)

    python bench/mlp_update.py [--rounds 5] [--sizes 2000 10000 50000 203530 1000000]

The update alone, on one thread (OpenBLAS does not run here), the two forms alternating;
the median of the rounds, each round the mean of enough repeats to take ~0.2 s; "saved" is
the time saved per parameter per step. 203,530 is
[784, 256, 10], the network of mlp_minibatch.py. The start is timed in three fresh processes
(fused.py's kernel is not cached on disk, so every process compiles it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np


def per_step(ops: list[tuple], before, seconds: float = 0.2) -> float:
    """Mean microseconds of one update (its before_step included)."""
    repeats, elapsed = 1, 0.0
    while elapsed < seconds:
        repeats *= 2
        t0 = time.perf_counter()
        for _ in range(repeats):
            before()
            for op, *args in ops:
                op(*args)
        elapsed = time.perf_counter() - t0
    return elapsed / repeats * 1e6


def updates(size: int, dtype: str):
    from nnlab.config.resolve import load_config
    from nnlab.models.mlp.optim import make_update

    cfg = load_config({"train": {"epsilon": 1e-3, "optimizer": "adam"}})["train"]
    rng = np.random.RandomState(0)
    theta = rng.randn(size).astype(dtype)
    grad = (rng.randn(size) * 1e-2).astype(dtype)
    update = make_update(cfg, theta, grad)
    return update, {"NumPy passes": update.passes(), "one compiled pass": update.fused()}


START = """
import time
import numpy as np
import nnlab.models.mlp.optim
t0 = time.perf_counter()
from nnlab.models.mlp import fused
t1 = time.perf_counter()
x = np.zeros(10, dtype=np.DTYPE)
fused.adam(x, x, x.copy(), x.copy(), x[:1], x[:1], x[0], x[0], x[0], x[0])
t2 = time.perf_counter()
print(f"{(t1 - t0) * 1e3:.0f} {(t2 - t1) * 1e3:.0f}")
"""


def start_costs(dtype: str, runs: int = 3) -> list[tuple[float, float]]:
    """(import ms, first call ms) in each of ``runs`` fresh processes."""
    rows = []
    for _ in range(runs):
        code = START.replace("DTYPE", dtype)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
        rows.append((float(out[0]), float(out[1])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 50000, 203530,
                                                                 1000000])  # fmt: skip
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    print("| dtype | parameters | NumPy passes, µs | one compiled pass, µs | ratio | saved, ns |")
    print("|---|---:|---:|---:|---:|---:|")
    with threadpool_limits(1):
        for dtype in ("float64", "float32"):
            for size in args.sizes:
                update, forms = updates(size, dtype)
                times: dict[str, list[float]] = {name: [] for name in forms}
                for ops in forms.values():  # the kernel compiled (or loaded) untimed
                    per_step(ops, update.before_step, seconds=1e-9)
                for _ in range(args.rounds):
                    for name, ops in forms.items():
                        times[name].append(per_step(ops, update.before_step))
                a, b = (statistics.median(t) for t in times.values())
                print(f"| {dtype} | {size:,} | {a:,.0f} | {b:,.0f} | {a / b:.1f}× | "
                      f"{(a - b) * 1e3 / size:.2f} |", flush=True)  # fmt: skip
    print()
    print(
        "| numba's start, a fresh process | import of fused.py, ms | first call, ms | total, ms |"
    )
    print("|---|---:|---:|---:|")
    for dtype in ("float64", "float32"):
        for imported, first in start_costs(dtype):
            print(f"| {dtype} | {imported:.0f} | {first:.0f} | {imported + first:.0f} |")


if __name__ == "__main__":
    main()
