"""What besides the config changes a run's numbers, applied the same way every time and
recorded in meta.json (docs/reliability.md, 'Reproducing a run').

- **Threads.** A run's CPU thread count is the config key ``train.threads``: the intra-op
  threads of PyTorch and the BLAS threads of NumPy. Sweeping the sums of a convolution's
  gradient over two threads instead of one changes the last bits, and training amplifies
  them, so a run repeated with another count ends with other numbers. ``null`` (the
  default) is resolved by one rule for ``nnlab train`` and a sweep's workers alike — the
  cores this process may use, shared out among the runs that run at once — and the count
  used is written into the run's config.yaml, so ``nnlab train RUN/config.yaml`` (and a
  search's best.yaml) applies it again.
- **Everything else**, which a config cannot choose but a repeat should match: the device
  and its deterministic flags, the numeric libraries' versions, the BLAS and its kernel, the
  CPU's vector instructions, and the environment variables that pick kernels. They go to
  meta.json's ``environment``; ``nnlab train --repeat`` and ``nnlab compare`` show where two
  runs' differ.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nnlab.models import kind_of

# Variables that choose kernels (and so the last bits), recorded when set. The thread-count
# variables are not among them: the count nnlab applies is recorded instead.
NUMERIC_VARIABLES = (
    "OPENBLAS_CORETYPE",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "CUBLAS_WORKSPACE_CONFIG",
)


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity (``taskset``, a batch scheduler's
    cpuset) where the system has one, else every core."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def visible_gpus() -> int:
    """The CUDA GPUs this process may use (``CUDA_VISIBLE_DEVICES`` honoured; 0 without CUDA).
    PyTorch asks the driver for the count (cudaGetDeviceCount) without making a CUDA context
    or initialising its own CUDA state, so a sweep's driver may count before spawning the
    workers that use them. Imports PyTorch: call it only for jobs that run on a GPU."""
    import torch

    return torch.cuda.device_count()


def thread_share(parallel: int = 1) -> int:
    """The thread rule: the usable cores shared out among ``parallel`` runs at once (1 for
    ``nnlab train``, a sweep's worker count for its jobs), at least one each."""
    return max(1, usable_cores() // max(1, parallel))


def with_threads(cfg: dict[str, Any], share: int | None = None) -> dict[str, Any]:
    """``cfg`` with ``train.threads`` resolved: kept when set, else ``share`` (a sweep
    worker's, from :func:`thread_share`) or this process's whole share."""
    train = cfg.setdefault("train", {})
    if train.get("threads") is None:
        train["threads"] = share or thread_share(1)
    return cfg


@contextlib.contextmanager
def applied_threads(cfg: Mapping[str, Any]) -> Iterator[None]:
    """Run inside with the config's thread count: every BLAS and OpenMP pool loaded in this
    process, and the kind's own pool (PyTorch's intra-op threads), restored after."""
    from threadpoolctl import threadpool_limits

    threads = int(cfg["train"]["threads"])
    with threadpool_limits(threads), kind_of(cfg).limit_threads(dict(cfg), threads):
        yield


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def _blas() -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_info

    found = [
        {
            "library": f"{p.get('internal_api')} {p.get('version') or ''}".strip(),
            "kernel": p.get("architecture"),
            "threads": p.get("num_threads"),
        }
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    return sorted(found, key=lambda b: (b["library"], str(b["kernel"])))  # load order varies


def _torch() -> dict[str, Any] | None:
    """PyTorch's side, when this run imported it (a NumPy run does not pay for the import)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return {
        "intra_op_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }


def record(cfg: Mapping[str, Any], trainer: Any) -> dict[str, Any]:
    """The run's environment for meta.json, read inside :func:`applied_threads` once the
    trainer is built (so its libraries are loaded and its device chosen): ``threads`` (the
    config's), the trainer's own part (device, precision: :meth:`Trainer.environment`),
    ``blas``, ``torch`` (or null), ``cpu``, ``machine`` and the kernel ``variables`` set."""
    from importlib import metadata

    libraries = {}
    for pkg in ("numpy", "torch", "scikit-learn", "numba"):
        try:
            libraries[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            libraries[pkg] = None
    return {
        "threads": int(cfg["train"]["threads"]),
        **trainer.environment(),
        "libraries": libraries,
        "blas": _blas(),
        "torch": _torch(),
        "cpu": _cpu_name(),
        "machine": platform.machine(),
        "variables": {k: os.environ[k] for k in NUMERIC_VARIABLES if k in os.environ},
    }


def flatten(env: Any, prefix: str = "") -> dict[str, Any]:
    """A recorded environment as dotted keys (``torch.intra_op_threads``, ``blas.0.kernel``)."""
    if isinstance(env, Mapping):
        out: dict[str, Any] = {}
        for key, value in env.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(env, list):
        out = {}
        for i, value in enumerate(env):
            out.update(flatten(value, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): env}


def differences(recorded: Any, current: Any) -> list[str]:
    """Where two recorded environments differ, as ``key: a → b`` lines (empty: the same)."""
    a, b = flatten(recorded or {}), flatten(current or {})
    missing = "not set"
    return [
        f"{key}: {a.get(key, missing)} → {b.get(key, missing)}"
        for key in sorted(set(a) | set(b))
        if a.get(key, missing) != b.get(key, missing)
    ]
