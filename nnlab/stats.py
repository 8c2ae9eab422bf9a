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
    x = _finite(values)
    if x.size < 2:
        return None
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    return _bootstrap((x,), np.mean, confidence)


POWER = 0.80  # seeds_needed: the chance of resolving the difference it is asked for
ALPHA = 0.05  # ... at this two-sided significance level
MOST_SEEDS = 1_000_000  # seeds_needed: past this many per group, "more than anyone runs"


def _bootstrap(samples: tuple[np.ndarray, ...], statistic, confidence: float):
    """scipy's bootstrap interval of ``statistic`` (BCa, percentile where BCa is undefined),
    each sample resampled on its own, with the fixed random state; None if neither is finite."""
    from scipy import stats

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's degenerate-sample warning: we fall back
            res = stats.bootstrap(
                samples,
                statistic,
                confidence_level=confidence,
                n_resamples=RESAMPLES,
                method=method,
                random_state=np.random.default_rng(SEED),
            )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return None


def _difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def difference_ci(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The ``confidence`` bootstrap interval of mean(a) - mean(b), the two samples resampled
    independently (they are different runs, not pairs); None when either has fewer than two
    finite values. Samples of equal values each give a zero-width interval."""
    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2:
        return None
    if np.all(x == x[0]) and np.all(y == y[0]):
        return float(x[0] - y[0]), float(x[0] - y[0])
    return _bootstrap((x, y), _difference, confidence)


def probability_of_improvement(
    a: Sequence[float], b: Sequence[float], higher_is_better: bool = True
) -> float | None:
    """P(a run of ``a`` beats a run of ``b``) over all pairs, ties counting one half (as in
    rliable): the Mann–Whitney U of the better-oriented samples over n·m. None when either
    sample is empty."""
    from scipy import stats

    x, y = _finite(a), _finite(b)
    if x.size == 0 or y.size == 0:
        return None
    better, worse = (x, y) if higher_is_better else (y, x)
    u = stats.mannwhitneyu(better, worse, alternative="two-sided").statistic
    return float(u) / (x.size * y.size)


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float] | None:
    """Welch's t-test of mean(a) = mean(b) (unequal variances): (t, two-sided p); None when
    either sample has fewer than two finite values or both have no spread."""
    from scipy import stats

    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero variance: nan, reported as None
        res = stats.ttest_ind(x, y, equal_var=False)
    t, p = float(res.statistic), float(res.pvalue)
    return (t, p) if math.isfinite(t) and math.isfinite(p) else None


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float | None:
    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2:
        return None
    ss = (x.size - 1) * np.var(x, ddof=1) + (y.size - 1) * np.var(y, ddof=1)
    return float(math.sqrt(ss / (x.size + y.size - 2)))


def t_test_power(n: int, effect: float, alpha: float = ALPHA) -> float:
    """The power of a two-sided two-sample t-test with ``n`` runs per group when the true
    difference is ``effect`` pooled standard deviations (equal variances): the chance that
    |T| exceeds the critical value, T following the noncentral t."""
    from scipy import stats

    df = 2 * n - 2
    critical = stats.t.ppf(1 - alpha / 2, df)
    noncentrality = effect * math.sqrt(n / 2)
    return float(
        stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
    )


def seeds_needed(
    a: Sequence[float], b: Sequence[float], power: float = POWER, alpha: float = ALPHA
) -> int | None:
    """The fewest runs (seeds) per group with which a two-sided two-sample t-test at ``alpha``
    finds the observed difference of means with probability ``power``, taking that difference
    as the true one and the pooled standard deviation as the spread of both groups (normal
    results, equal variances). An estimate, optimistic when the observed difference is lucky.
    None when either group has fewer than two runs or the means are equal; 2 when there is
    no spread at all; MOST_SEEDS + 1 when even MOST_SEEDS are not enough."""
    x, y = _finite(a), _finite(b)
    sd = pooled_sd(x, y)
    if sd is None:
        return None
    difference = abs(float(np.mean(x) - np.mean(y)))
    if difference == 0:
        return None
    if sd == 0:
        return 2
    effect = difference / sd
    low, high = 1, 2  # power(low) < power <= power(high), once high is found
    while t_test_power(high, effect, alpha) < power:
        low, high = high, high * 2
        if high > MOST_SEEDS:
            return MOST_SEEDS + 1
    while high - low > 1:
        middle = (low + high) // 2
        if t_test_power(middle, effect, alpha) >= power:
            high = middle
        else:
            low = middle
    return high
