"""A group's curve over its seeds: the median and the interquartile band at each step, and
which values an axis can take at all (finite, within ±DRAWN_LIMIT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from nnlab.common.metrics import is_accuracy

DRAWN_LIMIT = 1e300  # |values| an axis takes: beyond, its span, margins and ticks overflow


def drawable(value: float) -> bool:
    """Whether a value can be placed on an axis: finite and within ±DRAWN_LIMIT."""
    return bool(np.isfinite(value)) and abs(value) <= DRAWN_LIMIT


class SeedBand(NamedTuple):
    """A group's curve, at each step where any of its runs has a finite value: the median
    over the runs that have one, the band from their 25th to their 75th percentile (linear
    interpolation), and n, how many runs that is (a run that diverged or stopped early no
    longer counts). ``runs`` is the number of runs in the group."""

    steps: list[float]
    median: list[float]
    low: list[float]
    high: list[float]
    n: list[int]
    runs: int


BAND_NOTE = "line: median over seeds; band: interquartile range (25th–75th percentile)"


def seed_band(runs: Sequence[Sequence[dict]], metric: str) -> SeedBand:
    """The :class:`SeedBand` of ``runs`` (each a run's metric rows) for ``metric``. The
    median and its band stay within the values at each step, so one exploding seed moves
    neither much; an accuracy's band is clipped to [0, 1], and any other metric's lower edge
    to the smallest positive value the group shows (its values and its median), so a log axis
    never gets a value <= 0."""
    at: dict[float, list[float]] = {}
    for rows in runs:
        for r in rows:
            if metric in r and drawable(r[metric]):
                at.setdefault(r["step"], []).append(float(r[metric]))
    steps = sorted(at)
    q = np.array([np.percentile(at[s], [25, 50, 75]) for s in steps]).reshape(-1, 3)
    low, median, high = q[:, 0], q[:, 1], q[:, 2]
    if is_accuracy(metric):
        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    else:
        positive = [v for values in [*at.values(), median] for v in values if v > 0]
        if positive:
            low = np.maximum(low, min(positive))
    n = [len(at[s]) for s in steps]
    return SeedBand(steps, median.tolist(), low.tolist(), high.tolist(), n, len(runs))


def n_text(n: Sequence[int]) -> str:
    """'n=5' when every step has as many runs, else the range: 'n=4–5'."""
    lo, hi = min(n, default=0), max(n, default=0)
    return f"n={hi}" if lo == hi else f"n={lo}–{hi}"
