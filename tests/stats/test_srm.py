"""The sample-ratio check (stats/srm.py): Pearson with one period, exact covariance with several,
an always-valid p-value that stays valid under hourly looks, and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chisquare

from openautotune.stats.srm import shares_from_thresholds, srm_test


def test_one_period_is_pearsons_chi_square() -> None:
    test = srm_test([[300, 310, 390]], [[0.3, 0.3, 0.4]])
    reference = chisquare([300, 310, 390], [300, 300, 400])
    assert test.df == 2
    assert test.chi_square == pytest.approx(reference.statistic)
    assert test.fixed_p_value == pytest.approx(reference.pvalue)
    assert test.expected == pytest.approx((300.0, 300.0, 400.0))
    assert test.observed == (300, 310, 390)


def test_expected_sums_units_times_the_weight_of_each_period() -> None:
    test = srm_test([[50, 50], [90, 10], [20, 80]], [[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    assert test.expected == pytest.approx((50 + 90 + 20, 50 + 10 + 80))
    assert test.chi_square == pytest.approx(0.0)
    assert test.fixed_p_value == pytest.approx(1.0)
    assert test.sequential_p_value == 1.0


def test_changing_weights_use_the_exact_covariance_not_pearsons() -> None:
    counts, shares = [[480, 520], [880, 120]], [[0.5, 0.5], [0.9, 0.1]]
    test = srm_test(counts, shares)
    # Var(O_a - E_a) = sum_p N_p s_p (1 - s_p) = 1000 * 0.25 + 1000 * 0.09
    assert test.chi_square == pytest.approx((480 + 880 - 1400) ** 2 / 340.0)
    pearson = chisquare([1360, 640], [1400, 600]).statistic
    assert test.chi_square > pearson  # Pearson overstates the variance when the weights moved


def test_no_units_and_one_sided_traffic_test_nothing() -> None:
    assert srm_test([], []).fixed_p_value is None
    empty = srm_test([[0, 0]], [[0.5, 0.5]])
    assert (empty.df, empty.fixed_p_value, empty.sequential_p_value) == (0, None, None)
    everything_to_one = srm_test([[100, 0]], [[1.0, 0.0]])
    assert everything_to_one.df == 0 and everything_to_one.fixed_p_value is None


def test_units_where_the_published_weight_was_zero_are_a_certain_mismatch() -> None:
    test = srm_test([[100, 0], [60, 3]], [[0.5, 0.5], [1.0, 0.0]])
    assert test.impossible == (1,)
    assert test.fixed_p_value == 0.0 and test.sequential_p_value == 0.0


def test_a_clear_mismatch_is_flagged_by_both_p_values() -> None:
    test = srm_test([[5000, 4500]], [[0.5, 0.5]])
    assert test.fixed_p_value is not None and test.fixed_p_value < 1e-6
    assert test.sequential_p_value is not None and test.sequential_p_value < 1e-3


def test_the_sequential_p_value_is_more_conservative_than_one_look() -> None:
    test = srm_test([[5150, 4850]], [[0.5, 0.5]])
    assert test.fixed_p_value is not None and test.sequential_p_value is not None
    assert test.fixed_p_value < 0.01 < test.sequential_p_value


def test_running_minimum_over_hourly_looks_keeps_false_alarms_rare() -> None:
    """200 healthy runs, 96 hourly looks with changing weights: the fixed p-value at 0.001 alarms
    more often than the running-minimum sequential p-value (which must stay near its level)."""
    rng = np.random.default_rng(7)
    fixed_alarms = sequential_alarms = 0
    for _ in range(200):
        counts: list[np.ndarray] = []
        shares: list[np.ndarray] = []
        lowest, fixed = 1.0, False
        for hour in range(96):
            share = np.array([0.5, 0.5]) if hour < 24 else rng.dirichlet([2.0, 2.0])
            counts.append(rng.multinomial(500, share))
            shares.append(share)
            test = srm_test(counts, shares)
            fixed = fixed or (test.fixed_p_value or 1.0) < 1e-3
            lowest = min(lowest, test.sequential_p_value or 1.0)
        fixed_alarms += fixed
        sequential_alarms += lowest < 1e-3
    assert sequential_alarms <= 2
    assert sequential_alarms <= fixed_alarms


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        srm_test([[1, 2]], [])
    with pytest.raises(ValueError):
        srm_test([[1, 2]], [[0.5, 0.25, 0.25]])
    with pytest.raises(ValueError):
        srm_test([[1, 2]], [[0.5, 0.5]], tau=-1.0)
    with pytest.raises(ValueError):
        srm_test([[-1, 2]], [[0.5, 0.5]])


def test_shares_come_from_the_published_thousandths() -> None:
    assert shares_from_thresholds([333, 667, 1000]) == (0.333, 0.334, 0.333)
    assert shares_from_thresholds([0, 1000]) == (0.0, 1.0)
    assert math.fsum(shares_from_thresholds([125, 125, 1000])) == pytest.approx(1.0)
