"""Keep the memory a CPU training step frees for the next step, instead of handing it back to
the operating system after every step.

glibc's malloc serves large blocks (above a threshold that starts at 128 KiB and adapts to
what the process frees) with fresh ``mmap`` pages and returns them on ``free``, and trims the
top of its heap when more than a threshold lies free there. A DCN step allocates and frees
tens of megabytes of activations and gradients, so steps can touch fresh pages over and over:
a bare step of the course network faulted 500-1,200 pages a step on 2 cores of an AMD EPYC
(batch 50, 2026-12-03), ~5% of its time in the kernel, and next to none with the thresholds
fixed. How much that is worth varies with what the process did before: bench/README.md.
Fixing both thresholds keeps freed blocks in the heap for the next step: the same arithmetic
to the last bit, and a process that keeps its peak heap until it ends.

``NNLAB_KEEP_FREED_MEMORY=0`` leaves glibc's defaults (a machine short of memory, many
processes); the first CPU run of a process decides for the whole process, as glibc offers
no way back to its adaptive thresholds. Elsewhere (musl, macOS, Windows) there is no
``mallopt`` and nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import sys

from nnlab.errors import ConfigError

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
# glibc's documented maximum on 64-bit (older versions refuse more); blocks above it are still
# mapped afresh — a course-network step at batch 50 allocates none (its largest: 5 MB)
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30  # free memory above the heap's top kept, up to this much

VARIABLE = "NNLAB_KEEP_FREED_MEMORY"

_kept: bool | None = None  # the outcome of the one attempt per process


def setting() -> bool:
    """NNLAB_KEEP_FREED_MEMORY: True for 1 (the default), False for 0; a ConfigError naming
    the variable for anything else (checked before a run or a sweep starts, with the memory
    limit: nnlab.models.check_memory)."""
    value = os.environ.get(VARIABLE, "1").strip()
    if value not in ("0", "1"):
        raise ConfigError(
            f"{VARIABLE} is {value!r}; use 1 (the default: keep memory a CPU training step "
            "frees for the next step) or 0 (leave the C library's defaults)"
        )
    return value == "1"


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for this process, once, unless
    NNLAB_KEEP_FREED_MEMORY is 0; True where they are set."""
    global _kept
    if _kept is None and setting():
        _kept = _set_thresholds()
    return bool(_kept)


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # glibc answers 1 for a value taken; musl's stub answers 0 and changes nothing
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
