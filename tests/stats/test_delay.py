"""The delay model of stats/delay.py: the smoothed CDF, an immature unit's share, and the estimator's
unbiasedness when the delays really follow the learnt CDF."""

from __future__ import annotations

import numpy as np
import pytest

from openautotune.stats.delay import effective, fit_cdf


def test_no_conversions_is_the_uniform_prior() -> None:
    cdf = fit_cdf([0] * 4)
    assert cdf.edges == pytest.approx((0.0, 0.25, 0.5, 0.75, 1.0))
    assert cdf.conversions == 0
    assert cdf.share(0) == pytest.approx(0.125)
    assert cdf.mean_delay_fraction() == pytest.approx(0.5)


def test_counts_dominate_the_prior_and_the_cdf_is_monotone_ending_at_one() -> None:
    cdf = fit_cdf([90, 10, 0, 0], prior_weight=4.0)
    assert cdf.edges[1] == pytest.approx((90 + 1) / 104)
    assert cdf.edges[-1] == 1.0 and list(cdf.edges) == sorted(cdf.edges)
    assert cdf.conversions == 100
    assert cdf.at(0.125) == pytest.approx(cdf.share(0))


def test_bad_histograms_are_refused() -> None:
    with pytest.raises(ValueError):
        fit_cdf([])
    with pytest.raises(ValueError):
        fit_cdf([1, -1])


def test_effective_units_never_below_known_conversions_nor_above_the_units() -> None:
    cdf = fit_cdf([0] * 10, prior_weight=5.0)  # share of the youngest bin: 0.05
    young = effective([(0, 10, 3, 3.0, 3.0)], cdf)
    assert (young.units, young.successes) == (10, 3)
    assert young.effective_units == 3.0  # 10 x 0.05 = 0.5 would put the rate above 1
    old = effective([(9, 10, 0, 0.0, 0.0)], cdf)
    assert old.effective_units == pytest.approx(10 * 0.95)


def test_the_effective_rate_is_unbiased_when_delays_follow_the_cdf() -> None:
    rng = np.random.default_rng(3)
    bins, rate = 24, 0.2
    mean_delay = 0.25  # of the window; exponential delays truncated to the window
    delays = rng.exponential(mean_delay, size=200_000)
    delays = delays[delays < 1.0]
    histogram = np.bincount((delays * bins).astype(int), minlength=bins).tolist()
    cdf = fit_cdf(histogram)
    estimates = []
    for _ in range(200):
        ages = rng.integers(0, bins, size=5000)
        converts = rng.random(5000) < rate
        delay = rng.choice(delays, size=5000)
        seen = converts & (delay * bins < ages + rng.random(5000))  # age uniform inside its bin
        cells = [(b, int(np.sum(ages == b)), int(np.sum(seen & (ages == b))), 0.0, 0.0) for b in range(bins)]
        cell = effective(cells, cdf)
        estimates.append(cell.successes / cell.effective_units)
    assert np.mean(estimates) == pytest.approx(rate, rel=0.01)
