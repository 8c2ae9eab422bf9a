"""nnlab.stats against scipy and by hand, on fixed numbers."""

import numpy as np
from scipy import stats as sps

from nnlab.stats import mean_ci


def test_mean_ci_is_scipys_bca_bootstrap_with_a_fixed_random_state():
    x = [0.971, 0.962, 0.983, 0.951, 0.969]
    res = sps.bootstrap(
        (np.array(x),),
        np.mean,
        confidence_level=0.95,
        n_resamples=9_999,
        method="BCa",
        random_state=np.random.default_rng(0),
    )
    low, high = mean_ci(x)
    assert (low, high) == (res.confidence_interval.low, res.confidence_interval.high)
    assert low < np.mean(x) < high
    assert mean_ci(x) == (low, high)  # the same runs, the same interval


def test_mean_ci_of_too_few_or_equal_values():
    assert mean_ci([0.5]) is None
    assert mean_ci([0.5, float("nan")]) is None
    assert mean_ci([0.25, 0.25, 0.25]) == (0.25, 0.25)
