"""The period-weighted (post-stratified) estimator: a hand-computed example, small and empty cells,
one period reducing to the pooled model, and unbiasedness under drifting rates and allocations."""

from __future__ import annotations

import numpy as np
import pytest

from openautotune.stats import VariantAggregate, summarize
from openautotune.stats.estimators import (
    MIN_CELL_UNITS,
    cell_unit_variance,
    merge_strata,
    period_weighted,
    pool,
)
from openautotune.stats.posteriors import BetaPosterior, NormalPosterior

A = VariantAggregate


def test_hand_computed_occurrence_example() -> None:
    # Period 1: a 10/100, b 20/100 (N1 = 200); period 2: a 15/300, b 10/100 (N2 = 400). w = 1/3, 2/3.
    periods = [[A(100, 10), A(100, 20)], [A(300, 15), A(100, 10)]]
    a, b = period_weighted(merge_strata(periods), occurrence=True)
    assert a.mean == pytest.approx(1 / 3 * 0.10 + 2 / 3 * 0.05)  # 0.0666..., pooled would say 25/400 = 0.0625
    assert b.mean == pytest.approx(1 / 3 * 0.20 + 2 / 3 * 0.10)
    # v = s (n - s) / (n (n - 1)): a1 = 10*90/(100*99), a2 = 15*285/(300*299); Var = sum w^2 v / n.
    assert a.variance == pytest.approx((1 / 9) * (900 / 9900) / 100 + (4 / 9) * (4275 / 89700) / 300)
    assert b.variance == pytest.approx((1 / 9) * (1600 / 9900) / 100 + (4 / 9) * (900 / 9900) / 100)
    assert (a.strata, a.estimator) == (2, "periodWeighted")


def test_hand_computed_value_example() -> None:
    # a: period 1 values summing 30 (sum sq 50) over 20 units; period 2: 20 over 20 (sum sq 40).
    periods = [[A(20, total=30.0, total_sq=50.0), A(20, total=10.0, total_sq=10.0)], [A(20, 0, 20.0, 40.0)] * 2]
    a, _ = period_weighted(merge_strata(periods), occurrence=False)
    assert a.mean == pytest.approx(0.5 * 1.5 + 0.5 * 1.0)
    var1 = (50.0 - 20 * 1.5**2) / 19
    var2 = (40.0 - 20 * 1.0**2) / 19
    assert cell_unit_variance(A(20, 0, 30.0, 50.0), occurrence=False) == pytest.approx(var1)
    assert a.variance == pytest.approx(0.25 * var1 / 20 + 0.25 * var2 / 20)


def test_a_period_where_a_variant_has_no_unit_merges_with_the_one_before() -> None:
    periods = [[A(100, 10), A(100, 20)], [A(50, 5), A(0)], [A(300, 15), A(100, 10)]]
    strata = merge_strata(periods)
    assert strata == [[A(100, 10), A(100, 20)], [A(350, 20), A(100, 10)]]
    a, b = period_weighted(strata, occurrence=True)
    assert a.mean == pytest.approx(200 / 650 * 0.10 + 450 / 650 * 20 / 350)
    assert np.isfinite(a.variance) and np.isfinite(b.variance) and a.strata == 2


def test_an_unfinished_tail_joins_the_last_stratum_and_too_little_data_is_one_stratum() -> None:
    periods = [[A(100, 10), A(100, 20)], [A(100, 10), A(MIN_CELL_UNITS - 1, 1)]]
    assert merge_strata(periods) == [[A(200, 20), A(100 + MIN_CELL_UNITS - 1, 21)]]
    small = [[A(5, 1), A(5, 0)], [A(5, 0), A(5, 2)]]
    assert merge_strata(small) == [pool(small, 2)]


def test_one_period_reduces_to_the_pooled_numbers() -> None:
    aggregates = [A(1000, 100), A(1000, 120)]
    today = summarize("occurrence", aggregates)
    one = summarize("occurrence", aggregates, periods=[aggregates])
    assert isinstance(one.variants[0].posterior, BetaPosterior)
    assert [v.posterior for v in one.variants] == [v.posterior for v in today.variants]
    assert one.pob == today.pob and one.strata == 1
    assert [v.estimate.mean for v in one.variants] == [0.1, 0.12]  # observed; the posterior mean is 101/1002
    assert one.variants[0].mean == pytest.approx(101 / 1002)
    # Too few units for two strata of every variant: also the pooled model.
    tiny = [[A(10, 1), A(10, 2)], [A(10, 1), A(10, 3)]]
    assert summarize("occurrence", pool(tiny, 2), periods=tiny).pob == summarize("occurrence", pool(tiny, 2)).pob


def test_several_periods_give_normal_posteriors_from_the_moments() -> None:
    periods = [[A(100, 10), A(100, 20)], [A(300, 15), A(100, 10)]]
    summary = summarize("occurrence", pool(periods, 2), periods=periods)
    a = summary.variants[0]
    assert isinstance(a.posterior, NormalPosterior) and summary.strata == 2
    assert a.posterior.loc == a.estimate.mean and a.posterior.scale == pytest.approx(a.estimate.variance**0.5)
    pooled = summarize("occurrence", pool(periods, 2), periods=periods, estimator="pooled")
    assert pooled.strata == 1 and pooled.variants[0].estimate.mean == 25 / 400
    with pytest.raises(ValueError, match="estimator"):
        summarize("occurrence", pool(periods, 2), periods=periods, estimator="median")  # type: ignore[arg-type]


def test_unbiased_under_drift_and_shifting_allocation() -> None:
    """Base rate doubles in the first period, allocation shifts; the estimand is the rate with every
    period's share of all units. The period-weighted mean is unbiased; the pooled one is not."""
    rng = np.random.default_rng(7)
    base = np.array([0.10, 0.10, 0.05, 0.05, 0.05])
    share_a = np.array([0.5, 0.5, 0.2, 0.1, 0.05])  # a loses traffic as the base rate falls
    n = 400
    lift = 1.2
    truth = float(np.mean(base * lift))  # every period has n units
    weighted, pooled = [], []
    for _ in range(2000):
        periods = []
        for p, s in zip(base, share_a, strict=True):
            n_a = int(n * s)
            periods.append([A(n_a, int(rng.binomial(n_a, p * lift))), A(n - n_a, int(rng.binomial(n - n_a, p)))])
        weighted.append(period_weighted(merge_strata(periods), occurrence=True)[0].mean)
        total = pool(periods, 2)[0]
        pooled.append(total.successes / total.units)
    assert np.mean(weighted) == pytest.approx(truth, rel=0.01)
    assert np.mean(pooled) > truth * 1.2  # a got most of its units while the base rate was high
