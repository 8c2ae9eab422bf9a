"""Statistics over groups of runs (their seeds), for "is the difference real?".

scipy does the statistics; this module only chooses them. Intervals are Student's t (for a
mean) and Welch's (for a difference of means), not the bootstrap: a lab has 2–5 seeds a
setting, and a bootstrap interval can never be wider than the range of so few values — over
normal draws of 3 seeds its "95%" interval of the mean held the true mean 71% of the time (5
seeds: 85%), where Student's held it 95% (tests/common/test_stats.py measures both).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def mean_ci(
    values: Sequence[float], confidence: float = CONFIDENCE, metric: str = ""
) -> tuple[float, float] | None:
    """The ``confidence`` Student-t interval of the mean of ``values`` (mean ± t·s/√n, from
    scipy's one-sample t-test); None for fewer than two finite values. Equal values give a
    zero-width interval at their value. Given the ``metric`` the values are of, the interval
    is cut to where its mean can lie — [0, 1] for an accuracy, ≥ 0 for a loss — which keeps
    its coverage (the true mean is inside those bounds)."""
    from scipy import stats

    x = _finite(values)
    if x.size < 2:
        return None
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    low, high = float(ci.low), float(ci.high)
    name = metric.rsplit(".", 1)[-1]  # best.test_acc is an accuracy too
    if name.endswith(("_acc", "_loss")):
        low = max(low, 0.0)
    if name.endswith("_acc"):
        high = min(high, 1.0)
    return low, high


POWER = 0.80  # seeds_needed: the chance of resolving the difference it is asked for
ALPHA = 0.05  # ... at this two-sided significance level
MOST_SEEDS = 1_000_000  # seeds_needed: past this many per group, "more than anyone runs"


def difference_ci(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The ``confidence`` Welch interval of mean(a) - mean(b) (unequal variances, the
    Welch–Satterthwaite degrees of freedom; scipy's ``ttest_ind(equal_var=False)``): the runs
    are different runs, not pairs. None when either has fewer than two finite values; samples
    of equal values each give a zero-width interval."""
    from scipy import stats

    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2:
        return None
    if np.all(x == x[0]) and np.all(y == y[0]):
        return float(x[0] - y[0]), float(x[0] - y[0])
    ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence)
    return float(ci.low), float(ci.high)


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
