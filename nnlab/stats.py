"""Statistics over groups of runs (their seeds), for "is the difference real?".

scipy does the statistics; this module only chooses them and makes them reproducible: every
bootstrap uses a fixed random state, so the interval a table shows is the one a second reading
of the same folder shows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 9_999
SEED = 0  # the bootstrap's random state: the same runs always give the same interval


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The ``confidence`` bootstrap interval (BCa, percentile where BCa is undefined) of the
    mean of ``values``; None for fewer than two finite values. Equal values give a zero-width
    interval at their value."""
    from scipy import stats

    x = _finite(values)
    if x.size < 2:
        return None
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's degenerate-sample warning: we fall back
            res = stats.bootstrap(
                (x,),
                np.mean,
                confidence_level=confidence,
                n_resamples=RESAMPLES,
                method=method,
                random_state=np.random.default_rng(SEED),
            )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return None
