"""Posteriors: families, parameters, intervals against scipy's own distributions, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from openautotune.stats import (
    DEFAULT_WEAK_PRIOR,
    NORMAL_MIN_UNITS,
    SCALE_FLOOR_REL,
    BetaPosterior,
    NormalPosterior,
    StudentTPosterior,
    WeakPrior,
    beta_posterior,
    normal_posterior,
    posterior_from_params,
)


def sums(values: list[float]) -> tuple[int, float, float]:
    arr = np.asarray(values, dtype=float)
    return arr.size, float(arr.sum()), float((arr * arr).sum())


def test_beta_posterior_from_counts() -> None:
    p = beta_posterior(successes=30, units=100)
    assert (p.alpha, p.beta) == (31.0, 71.0)
    assert p.mean == pytest.approx(31 / 102)
    assert p.interval(0.95) == pytest.approx(sps.beta(31, 71).interval(0.95), rel=1e-12)


def test_beta_without_units_is_uniform() -> None:
    p = beta_posterior(0, 0)
    assert (p.alpha, p.beta) == (1.0, 1.0)
    assert p.interval(0.95) == pytest.approx((0.025, 0.975), abs=1e-14)


@pytest.mark.parametrize(("successes", "units"), [(-1, 10), (11, 10), (0, -1)])
def test_beta_rejects_impossible_counts(successes: int, units: int) -> None:
    with pytest.raises(ValueError):
        beta_posterior(successes, units)


def test_beta_functions_are_vectorised_and_match_scipy() -> None:
    p = beta_posterior(120, 1_000)
    ref = sps.beta(121, 881)
    x = np.linspace(0.08, 0.16, 9)
    np.testing.assert_allclose(p.pdf(x), ref.pdf(x), rtol=1e-12)
    np.testing.assert_allclose(p.cdf(x), ref.cdf(x), rtol=1e-12)
    np.testing.assert_allclose(p.sf(x), ref.sf(x), rtol=1e-12)
    q = np.array([1e-12, 0.1, 0.5, 0.9])
    np.testing.assert_allclose(p.ppf(q), ref.ppf(q), rtol=1e-12)
    np.testing.assert_allclose(p.isf(q), ref.isf(q), rtol=1e-12)
    assert p.support == (0.0, 1.0)


def test_value_below_30_units_is_student_t_with_n_minus_1_df() -> None:
    values = [3.0, 5.0, 4.0, 9.0, 1.0, 6.0, 2.0, 7.0, 5.0, 8.0]
    n, total, total_sq = sums(values)
    p = normal_posterior(n, total, total_sq)
    assert isinstance(p, StudentTPosterior)
    s = float(np.std(values, ddof=1))
    assert p.df == n - 1
    assert p.loc == pytest.approx(np.mean(values))
    assert p.scale == pytest.approx(s / math.sqrt(n), rel=1e-12)
    expected = sps.t(n - 1, loc=np.mean(values), scale=s / math.sqrt(n)).interval(0.95)
    assert p.interval(0.95) == pytest.approx(expected, rel=1e-12)
    # The t interval is wider than the normal one would be: few units, uncertain variance.
    normal_width = 2 * 1.959963984540054 * s / math.sqrt(n)
    assert p.interval(0.95)[1] - p.interval(0.95)[0] > normal_width * 1.1


def test_value_from_30_units_is_normal() -> None:
    rng = np.random.default_rng(7)
    for n_units in (NORMAL_MIN_UNITS, 1_000):
        values = list(rng.exponential(2.0, size=n_units))
        n, total, total_sq = sums(values)
        p = normal_posterior(n, total, total_sq)
        assert isinstance(p, NormalPosterior)
        sd = float(np.std(values, ddof=1)) / math.sqrt(n)
        assert p.loc == pytest.approx(float(np.mean(values)), rel=1e-12)
        assert p.scale == pytest.approx(sd, rel=1e-9)
        assert p.interval(0.95) == pytest.approx(sps.norm(p.loc, sd).interval(0.95), rel=1e-9)
    n, total, total_sq = sums([1.0] * 14 + [0.0] * 15)
    assert isinstance(normal_posterior(n, total, total_sq), StudentTPosterior)  # 29 units


def test_value_with_no_units_is_the_wide_weak_prior() -> None:
    p = normal_posterior(0, 0.0, 0.0)
    assert isinstance(p, NormalPosterior)
    assert (p.loc, p.scale) == (DEFAULT_WEAK_PRIOR.loc, DEFAULT_WEAK_PRIOR.scale) == (0.0, 1e6)
    custom = normal_posterior(0, 0.0, 0.0, prior=WeakPrior(loc=10.0, scale=50.0))
    assert custom.params() == {"family": "normal", "loc": 10.0, "scale": 50.0}


def test_value_with_one_unit_is_centred_on_it_with_the_prior_scale() -> None:
    p = normal_posterior(1, 4.5, 20.25)
    assert isinstance(p, NormalPosterior)
    assert (p.loc, p.scale) == (4.5, 1e6)


def test_zero_variance_gets_a_tiny_floor_scale() -> None:
    p = normal_posterior(50, 0.0, 0.0)  # 50 units, all scored 0
    assert isinstance(p, NormalPosterior)
    assert p.loc == 0.0
    assert p.scale == SCALE_FLOOR_REL
    q = normal_posterior(10, 30.0, 90.0)  # ten units of exactly 3.0
    assert isinstance(q, StudentTPosterior)
    assert q.scale == pytest.approx(3.0 * SCALE_FLOOR_REL)
    low, high = q.interval(0.95)
    assert low < 3.0 < high
    assert high - low == pytest.approx(2 * float(sps.t.isf(0.025, 9)) * 3.0 * SCALE_FLOOR_REL, rel=1e-9)


def test_rounding_below_zero_variance_is_clamped() -> None:
    # total_sq slightly below n * mean^2, as float sums from a database can be.
    p = normal_posterior(40, 40 * 0.1, 40 * 0.1 * 0.1 * (1 - 1e-15))
    assert p.scale == pytest.approx(SCALE_FLOOR_REL)


@pytest.mark.parametrize(("n", "total", "total_sq"), [(-1, 0.0, 0.0), (5, math.nan, 1.0), (5, 1.0, -1.0)])
def test_value_rejects_impossible_sums(n: int, total: float, total_sq: float) -> None:
    with pytest.raises(ValueError):
        normal_posterior(n, total, total_sq)


def test_student_t_functions_match_scipy() -> None:
    p = StudentTPosterior(df=4.0, loc=2.0, scale=0.5)
    ref = sps.t(4.0, loc=2.0, scale=0.5)
    x = np.array([-10.0, 0.0, 2.0, 2.7, 40.0])
    np.testing.assert_allclose(p.pdf(x), ref.pdf(x), rtol=1e-12)
    np.testing.assert_allclose(p.cdf(x), ref.cdf(x), rtol=1e-12)
    np.testing.assert_allclose(p.sf(x), ref.sf(x), rtol=1e-12)
    assert p.interval(0.9) == pytest.approx(ref.interval(0.9), rel=1e-12)
    assert p.mean == 2.0


def test_upper_interval_end_keeps_precision_in_far_tails() -> None:
    p = NormalPosterior(loc=0.0, scale=1.0)
    # A 1 - 1e-12 interval: computing the upper end as ppf(1 - tail) would lose about 4 digits.
    level = 1 - 1e-12
    low, high = p.interval(level)
    assert high == pytest.approx(-low, rel=1e-14)
    assert high == pytest.approx(float(sps.norm.isf((1 - level) / 2)), rel=1e-14)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_interval_level_must_be_a_probability(level: float) -> None:
    with pytest.raises(ValueError, match="credible level"):
        beta_posterior(1, 2).interval(level)


@pytest.mark.parametrize(
    "posterior",
    [BetaPosterior(3.0, 9.0), NormalPosterior(1.5, 0.25), StudentTPosterior(df=7.0, loc=-2.0, scale=3.0)],
)
def test_params_round_trip(posterior: BetaPosterior | NormalPosterior | StudentTPosterior) -> None:
    params = posterior.params()
    assert params["family"] == posterior.family
    rebuilt = posterior_from_params(params)
    assert rebuilt == posterior
    assert rebuilt.interval(0.95) == posterior.interval(0.95)


@pytest.mark.parametrize(
    "params",
    [
        {"family": "gamma", "shape": 1.0},
        {"family": "beta", "alpha": 1.0},
        {"family": "beta", "alpha": 1.0, "beta": 2.0, "extra": 3.0},
        {"family": "normal", "loc": "1.0", "scale": 1.0},
        {"family": "normal", "loc": 1.0, "scale": -1.0},
    ],
)
def test_params_that_do_not_describe_a_posterior_are_rejected(params: dict[str, str | float]) -> None:
    with pytest.raises(ValueError):
        posterior_from_params(params)


def test_posteriors_are_frozen() -> None:
    p = beta_posterior(1, 2)
    with pytest.raises(AttributeError):
        p.alpha = 5.0  # type: ignore[misc]


def test_sampling_uses_the_generator_passed_in() -> None:
    for p in (BetaPosterior(30.0, 70.0), NormalPosterior(2.0, 0.5), StudentTPosterior(5.0, 1.0, 0.2)):
        a = p.sample(50_000, np.random.default_rng(3))
        b = p.sample(50_000, np.random.default_rng(3))
        assert a.tolist() == b.tolist()
        assert float(np.median(a)) == pytest.approx(float(p.ppf(0.5)), abs=0.02)
