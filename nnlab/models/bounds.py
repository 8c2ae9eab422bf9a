"""Resource bounds, estimated from a config before anything is allocated (docs/reliability.md,
'Resource bounds').

A size no key bounds by itself — a layer of two billion units, ten billion generated points,
a kernel as wide as the image is tall — would otherwise end in a MemoryError traceback, a
run killed by the system, or a run folder marked failed long after it started. Each model
kind estimates what a run of a config needs (:meth:`nnlab.models.base.Kind.memory`: parameters
with their gradients and optimizer state, a step's activations, evaluation, the data, metric
rows, figure grids), each need naming the config key that sets its size. ``nnlab train``
(through :func:`nnlab.models.build`) and ``nnlab sweep`` (for every job, before the first
starts) refuse a config whose needs add up to more than the limit: this machine's memory, or
``NNLAB_MAX_MEMORY_GB`` where a user knows better (a shared machine, a GPU, swap).
"""

from __future__ import annotations

import math
import os
import reprlib
from dataclasses import dataclass
from typing import Any

from nnlab.config.overrides import flatten
from nnlab.errors import ConfigError
from nnlab.models import allocator

GB = 1e9
LIMIT_VARIABLE = "NNLAB_MAX_MEMORY_GB"
ASSUMED_MEMORY = 16 * GB  # where the machine does not say how much memory it has
PATH_MAX = 4096  # a string value this long is shown whole in a message (a path)

_show = reprlib.Repr()
_show.maxlist = _show.maxtuple = 6
_show.maxstring = _show.maxother = 40


@dataclass(frozen=True)
class Need:
    """Memory a run needs for one purpose: ``keys`` are the config keys that set its size
    (named in the error, with their values), ``what`` says what it holds."""

    keys: tuple[str, ...]
    what: str
    bytes: float


def gb(n_bytes: float) -> str:
    """A number of bytes in GB as people read it: 16, 23.4, 0.0017, 12,544."""
    value = n_bytes / GB
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _machine_memory() -> float | None:
    """This machine's physical memory in bytes, where the system says."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return None


def memory_limit() -> tuple[float, str]:
    """The most memory a run may need, in bytes, and where that number comes from (for the
    error message). ConfigError when NNLAB_MAX_MEMORY_GB is not a number of GB > 0."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            given = _show.repr(text)
            raise ConfigError(f"{LIMIT_VARIABLE} must be a number of GB > 0; got {given}")
        return value * GB, LIMIT_VARIABLE
    machine = _machine_memory()
    if machine is None:
        return ASSUMED_MEMORY, f"assumed: this system does not say; set {LIMIT_VARIABLE}"
    return machine, f"this machine's memory; set {LIMIT_VARIABLE} to change it"


def _named(keys: tuple[str, ...], cfg: dict[str, Any]) -> str:
    """``model.layers [2, 2000000000, 2]``: each key with its value, long values cut (not a
    path such as data.path: bounded by the system, and a user needs all of it)."""
    values = flatten(cfg)
    return " and ".join(f"{k} {_value(values[k])}" if k in values else k for k in keys)


def _value(value: Any) -> str:
    if isinstance(value, str) and len(value) <= PATH_MAX:
        return repr(value)
    return _show.repr(value)


def check_needs(cfg: dict[str, Any], needs: list[Need], cache: dict[str, Any]) -> None:
    """Refuse a resolved config whose estimated ``needs`` (its kind's estimate) add up to more
    than the limit: a ConfigError naming the key behind the largest need, that need and the
    total in GB, and the limit. ``cache`` keeps the limit for a sweep's jobs."""
    total = sum(need.bytes for need in needs)
    if "memory limit" not in cache:  # read once per sweep
        cache["memory limit"] = memory_limit()
        allocator.setting()  # the other memory variable: refused here, before anything runs
    limit, source = cache["memory limit"]
    if total <= limit:
        return
    top = max(needs, key=lambda need: need.bytes)
    raise ConfigError(
        f"{_named(top.keys, cfg)}: {top.what} need about {gb(top.bytes)} GB, and the run "
        f"about {gb(total)} GB in all, above the limit of {gb(limit)} GB ({source})"
    )
