"""nnlab.common.stats against scipy and by hand, on fixed numbers."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from nnlab.common.stats import (
    difference_ci,
    mean_ci,
    pooled_sd,
    probability_of_improvement,
    seeds_needed,
    t_test_power,
    welch,
)


def test_mean_ci_is_students_t_interval():
    x = [0.971, 0.962, 0.983, 0.951, 0.969]
    half = sps.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x))
    assert mean_ci(x) == pytest.approx((np.mean(x) - half, np.mean(x) + half))


def test_the_intervals_hold_the_truth_95_percent_of_the_time_at_a_labs_few_seeds():
    """Why t and not the bootstrap: over normal draws of 3 seeds, scipy's BCa bootstrap
    interval of the mean holds the true mean far less often than it says."""
    rng = np.random.default_rng(1)
    draws = rng.normal(0.9, 0.02, size=(400, 3))
    held = np.mean([lo <= 0.9 <= hi for lo, hi in map(mean_ci, draws)])
    assert 0.92 <= held <= 0.98
    boot = [
        sps.bootstrap(
            (x,), np.mean, n_resamples=999, random_state=np.random.default_rng(0)
        ).confidence_interval
        for x in draws[:100]
    ]
    assert np.mean([ci.low <= 0.9 <= ci.high for ci in boot]) < 0.85
    pairs = rng.normal(0.0, 1.0, size=(400, 2, 4)) + np.array([[0.0], [1.0]])  # Δ = -1
    held = np.mean([lo <= -1.0 <= hi for lo, hi in (difference_ci(a, b) for a, b in pairs)])
    assert 0.92 <= held <= 0.98


def test_an_interval_stays_where_its_metrics_mean_can_lie():
    losses, accuracies = [0.01, 0.08, 0.002], [0.99, 1.0, 0.93]
    assert mean_ci(losses)[0] < 0 and mean_ci(losses, metric="val_loss")[0] == 0.0
    assert mean_ci(losses, metric="val_loss")[1] == mean_ci(losses)[1]
    assert mean_ci(accuracies)[1] > 1 and mean_ci(accuracies, metric="best.test_acc")[1] == 1.0


def test_mean_ci_of_too_few_or_equal_values():
    assert mean_ci([0.5]) is None
    assert mean_ci([0.5, float("nan")]) is None
    assert mean_ci([0.25, 0.25, 0.25]) == (0.25, 0.25)


A = [0.971, 0.962, 0.983, 0.951, 0.969]  # five seeds of one setting
B = [0.955, 0.948, 0.962, 0.955, 0.941, 0.958]  # six of another (0.962: a tie with A)


def test_difference_ci_is_welchs_interval():
    va, vb = np.var(A, ddof=1) / len(A), np.var(B, ddof=1) / len(B)
    df = (va + vb) ** 2 / (va**2 / (len(A) - 1) + vb**2 / (len(B) - 1))  # Welch–Satterthwaite
    half = sps.t.ppf(0.975, df) * np.sqrt(va + vb)
    low, high = difference_ci(A, B)
    assert (low, high) == pytest.approx(
        (np.mean(A) - np.mean(B) - half, np.mean(A) - np.mean(B) + half)
    )
    reversed_low, reversed_high = difference_ci(B, A)
    assert (reversed_low, reversed_high) == pytest.approx((-high, -low))  # B - A: mirrored
    assert difference_ci(A, [0.9]) is None
    assert difference_ci([0.5, 0.5], [0.25, 0.25]) == (0.25, 0.25)


def _pairs(a, b, better):
    """P(a beats b) + P(tie) / 2 by a plain double loop over every pair."""
    wins = sum(1.0 if better(x, y) else 0.5 if x == y else 0.0 for x in a for y in b)
    return wins / (len(a) * len(b))


def test_probability_of_improvement_counts_pairs_and_ties_half_either_way():
    tied = [*A[:3], B[0], B[0]]  # more ties
    assert probability_of_improvement(tied, B) == pytest.approx(_pairs(tied, B, lambda x, y: x > y))
    # by hand: 0.971, 0.983, 0.969 beat all six; 0.962 beats five, ties one; 0.951 beats two
    assert probability_of_improvement(A, B) == pytest.approx((6 + 5.5 + 6 + 2 + 6) / 30)
    # a loss: lower is better, so the same numbers read the other way
    assert probability_of_improvement(tied, B, higher_is_better=False) == pytest.approx(
        _pairs(tied, B, lambda x, y: x < y)
    )
    assert probability_of_improvement([1.0, 1.0], [1.0]) == 0.5
    assert probability_of_improvement([], B) is None


def test_welch_is_scipys_unequal_variance_t_test():
    expected = sps.ttest_ind(A, B, equal_var=False)
    assert welch(A, B) == pytest.approx((expected.statistic, expected.pvalue))
    # by hand: t = difference / sqrt(s1²/n1 + s2²/n2)
    se = math.sqrt(np.var(A, ddof=1) / 5 + np.var(B, ddof=1) / 6)
    assert welch(A, B)[0] == pytest.approx((np.mean(A) - np.mean(B)) / se)
    assert welch(A, [0.9]) is None and welch([1.0, 1.0], [1.0, 1.0]) is None


@pytest.mark.parametrize("effect, cohen", [(0.2, 394), (0.5, 64), (0.8, 26), (1.0, 17)])
def test_seeds_needed_matches_cohens_table(effect, cohen):
    """Two runs a group at ±1/√2 around their mean have a pooled SD of 1: the difference of
    the means is the effect size; Cohen's table (two-sided, α = 0.05, power 0.8) gives n."""
    h = 1 / math.sqrt(2)
    assert seeds_needed([effect - h, effect + h], [-h, h]) == cohen


def test_seeds_needed_is_the_first_n_with_80_percent_power():
    n = seeds_needed(A, B)
    effect = abs(np.mean(A) - np.mean(B)) / pooled_sd(A, B)
    assert pooled_sd(A, B) == pytest.approx(
        math.sqrt((4 * np.var(A, ddof=1) + 5 * np.var(B, ddof=1)) / 9)
    )

    def simulated_power(m: int) -> float:
        """Monte Carlo: how often Student's t-test rejects with m normal runs a group."""
        rng = np.random.default_rng(1)
        x = rng.normal(effect, 1, size=(40_000, m))
        y = rng.normal(0, 1, size=(40_000, m))
        return float(np.mean(sps.ttest_ind(x, y, axis=1).pvalue < 0.05))

    assert simulated_power(n) >= 0.79 and simulated_power(n - 1) < 0.81
    assert t_test_power(n, effect) >= 0.8 > t_test_power(n - 1, effect)
    assert seeds_needed(A, A) is None  # no difference to resolve
    assert seeds_needed(A, [0.9]) is None  # one run: no spread to judge by
    assert seeds_needed([1.0, 1.0], [0.5, 0.5]) == 2  # no spread: any two runs tell
