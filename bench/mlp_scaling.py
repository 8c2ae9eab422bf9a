"""How the NumPy MLP engine's cost per iteration grows with the work, and how close it comes to
what this machine can do.

1. µs per iteration of nnlab's engine (tanh, one hidden layer) as n_samples goes 200 → 20,000
   (width 3) and as the hidden width goes 3 → 512 (n_samples 2,000), with one BLAS thread and
   with all cores' threads.
2. The machine's throughput, measured here: np.tanh and a multiply-add in ns per float64
   element, and float64 matrix products (dgemm) in GFLOP/s at the shapes the engine uses.
3. For each case, the engine's time per hidden element (n_samples × width) against the
   element-wise floor of a step: one tanh and about eight passes of simple arithmetic per
   hidden element, at the measured rates.

    python bench/mlp_scaling.py
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from nnlab.models.mlp.engine import Engine
from nnlab.models.mlp.math import MLP

CORES = os.cpu_count() or 1


def per_iteration(n: int, width: int, threads: int, min_seconds: float = 0.4) -> float:
    rng = np.random.RandomState(0)
    X = rng.randn(n, 2)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    model = MLP.create([2, width, 2], "tanh", "classic", 0)
    engine = Engine(model, X, y, 1e-3, {"optimizer": "gd", "epsilon": 1e-4})
    with threadpool_limits(threads), np.errstate(all="ignore"):
        engine.step()
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < min_seconds:
            engine.step()
            count += 1
    return (time.perf_counter() - t0) / count * 1e6


def ns_per_element(fn, n: int = 4_000_000) -> float:
    a = np.random.RandomState(0).randn(n)
    out = np.empty_like(a)
    fn(a, out)
    t0 = time.perf_counter()
    for _ in range(5):
        fn(a, out)
    return (time.perf_counter() - t0) / 5 / n * 1e9


def gemm_gflops(m: int, k: int, n: int, threads: int) -> float:
    rng = np.random.RandomState(0)
    a, b = rng.randn(m, k), rng.randn(k, n)
    out = np.empty((m, n))
    with threadpool_limits(threads):
        np.matmul(a, b, out=out)
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.3:
            np.matmul(a, b, out=out)
            count += 1
    return 2 * m * k * n * count / (time.perf_counter() - t0) / 1e9


def main() -> int:
    tanh_ns = ns_per_element(lambda a, out: np.tanh(a, out=out))
    mul_ns = ns_per_element(lambda a, out: np.multiply(a, a, out=out))
    print(
        f"machine: np.tanh {tanh_ns:.2f} ns/element, np.multiply {mul_ns:.2f} ns/element "
        f"(float64, 4M elements, one core)"
    )
    print(
        "dgemm GFLOP/s, 1 thread / all threads: "
        + ", ".join(
            f"{m}x{k}@{k}x{n}: {gemm_gflops(m, k, n, 1):.1f} / {gemm_gflops(m, k, n, CORES):.1f}"
            for m, k, n in [(20000, 2, 512), (512, 20000, 2), (20000, 512, 2), (2000, 512, 512)]
        )
    )

    cases = [(n, 3) for n in (200, 1000, 5000, 20000)] + [
        (2000, w) for w in (3, 16, 64, 128, 256, 512)
    ]
    # the element-wise floor of a step per hidden element: one tanh and ~8 simple passes
    # (bias, derivative a*a and 1-a², delta product, and their share of the softmax), timed on
    # arrays of the case's own size (cache-resident ones run faster than the 4M above)
    print(
        f"\n{'n_samples':>9} {'width':>6} {'µs/it 1 thr':>12} {f'µs/it {CORES} thr':>12} "
        f"{'ns/elem':>8} {'floor ns':>9} {'floor/measured':>15}"
    )
    for n, width in cases:
        one, many = per_iteration(n, width, 1), per_iteration(n, width, CORES)
        per_elem = one * 1e3 / (n * width)
        size = max(n * width, 1)
        floor = ns_per_element(lambda a, out: np.tanh(a, out=out), size) + 8 * ns_per_element(
            lambda a, out: np.multiply(a, a, out=out), size
        )
        print(
            f"{n:>9} {width:>6} {one:>12.1f} {many:>12.1f} {per_elem:>8.2f} {floor:>9.2f} "
            f"{floor / per_elem:>14.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
