"""Exact P(best) against an independent adaptive-quadrature reference (tests/stats/_reference.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautotune.stats import (
    BetaPosterior,
    NormalPosterior,
    Posterior,
    QuadratureError,
    StudentTPosterior,
    beta_posterior,
    monte_carlo_pob,
    normal_posterior,
    probability_of_best,
)
from openautotune.stats import pob as pob_module

from ._reference import reference_pob

TOLERANCE = 1e-8


def beta_arms(k: int, n: int, seed: int, rate: float = 0.1, spread: float = 1.0) -> list[BetaPosterior]:
    """K occurrence arms with n units each, true rates within ~``spread`` standard errors."""
    rng = np.random.default_rng(seed)
    se = np.sqrt(rate * (1 - rate) / n)
    successes = np.clip(np.rint(n * (rate + spread * se * rng.standard_normal(k))), 0, n).astype(int)
    return [beta_posterior(int(s), n) for s in successes]


def value_arms(
    k: int, n: int, seed: int, mean: float = 5.0, sd: float = 3.0, spread: float = 1.0
) -> list[NormalPosterior | StudentTPosterior]:
    """K value arms with n units each, sample means within ~``spread`` standard errors."""
    rng = np.random.default_rng(seed)
    means = mean + spread * sd / np.sqrt(n) * rng.standard_normal(k)
    return [normal_posterior(n, n * m, (n - 1) * sd * sd + n * m * m) for m in means]


def assert_matches_reference(posteriors: Sequence[Posterior], *, lower_is_better: bool = False) -> np.ndarray:
    exact = probability_of_best(posteriors, lower_is_better=lower_is_better)
    reference = reference_pob(posteriors, lower_is_better=lower_is_better)
    assert exact.shape == (len(posteriors),)
    np.testing.assert_allclose(exact, reference, rtol=0, atol=TOLERANCE)
    assert abs(exact.sum() - 1.0) < 1e-12
    return exact


@pytest.mark.parametrize(
    ("k", "n", "seed"),
    [(2, 10, 1), (3, 100, 2), (5, 1_000, 3), (20, 10_000, 5), (4, 1_000_000, 6), (8, 1_000_000, 7)],
)
def test_beta_matches_reference(k: int, n: int, seed: int) -> None:
    posteriors = beta_arms(k, n, seed)
    assert all(isinstance(p, BetaPosterior) for p in posteriors)
    assert_matches_reference(posteriors)


@pytest.mark.parametrize(
    ("k", "n", "seed"),
    [(2, 10, 11), (6, 29, 12), (6, 30, 13), (12, 1_000, 14), (5, 1_000_000, 15), (20, 1_000_000, 16)],
)
def test_value_matches_reference(k: int, n: int, seed: int) -> None:
    posteriors = value_arms(k, n, seed)
    expected_type = StudentTPosterior if n < 30 else NormalPosterior
    assert all(isinstance(p, expected_type) for p in posteriors)
    assert_matches_reference(posteriors)


@pytest.mark.parametrize("family", ["occurrence", "value"])
def test_lower_is_better_matches_reference(family: str) -> None:
    posteriors: Sequence[Posterior] = beta_arms(6, 1_000, 21) if family == "occurrence" else value_arms(5, 12, 22)
    assert_matches_reference(posteriors, lower_is_better=True)


def test_heavy_tailed_t_with_one_and_two_degrees_of_freedom() -> None:
    # n = 2 and 3 units: Cauchy-like tails, where a truncated grid would lose mass.
    posteriors = value_arms(3, 2, 31) + value_arms(2, 3, 32)
    assert [p.df for p in posteriors if isinstance(p, StudentTPosterior)] == [1.0, 1.0, 1.0, 2.0, 2.0]
    assert_matches_reference(posteriors)
    assert_matches_reference(posteriors, lower_is_better=True)


def test_peaked_neighbours_at_a_million_units() -> None:
    # sd 0.2 over 1e6 units: posterior sd 2e-4, means 0.5, 0.5001, 0.5003 -> heavily overlapping spikes.
    n = 1_000_000
    posteriors = [normal_posterior(n, n * m, (n - 1) * 0.04 + n * m * m) for m in (0.5, 0.5001, 0.5003)]
    assert posteriors[0].interval(0.6827)[1] - posteriors[0].mean == pytest.approx(2e-4, rel=1e-3)
    exact = assert_matches_reference(posteriors)
    assert exact[2] > exact[1] > exact[0] > 0.0


def test_peaked_beta_against_an_empty_beta() -> None:
    posteriors = [beta_posterior(0, 1_000_000), beta_posterior(1, 1_000_000), beta_posterior(0, 10)]
    exact = assert_matches_reference(posteriors)
    assert 0.9999 < exact[2] < 1.0  # Beta(1, 11) still has ~2.5e-5 of its mass below ~2e-6
    lowest = assert_matches_reference(posteriors, lower_is_better=True)
    assert lowest[2] < 1e-4


def test_zero_variance_arms_are_near_point_masses() -> None:
    # Every unit scored exactly 3.0 (or 3.000001): the floored scale keeps P(best) defined and exact.
    n = 50
    posteriors = [normal_posterior(n, n * m, n * m * m) for m in (3.0, 3.000001, 3.0)]
    exact = assert_matches_reference(posteriors)
    assert exact[0] == pytest.approx(exact[2], abs=1e-14)
    assert exact[1] > exact[0] > 0.2  # 1e-6 apart at a floored scale of 3e-6: still a close race
    everyone_zero = [normal_posterior(n, 0.0, 0.0), normal_posterior(n, 0.0, 0.0), normal_posterior(n, 1.0, 1.0)]
    assert probability_of_best(everyone_zero)[2] > 0.5


def test_identical_posteriors_split_equally() -> None:
    for posteriors in ([beta_posterior(10, 100)] * 7, [normal_posterior(50, 100.0, 500.0)] * 4):
        exact = probability_of_best(posteriors)
        np.testing.assert_allclose(exact, np.full(len(posteriors), 1 / len(posteriors)), rtol=0, atol=1e-13)


def test_one_arm_far_ahead_gets_everything() -> None:
    posteriors = [beta_posterior(100, 1000), beta_posterior(500, 1000), beta_posterior(120, 1000)]
    exact = assert_matches_reference(posteriors)
    assert exact[1] == pytest.approx(1.0, abs=1e-15)
    assert exact[0] < 1e-30
    lowest = probability_of_best(posteriors, lower_is_better=True)
    assert lowest[1] < 1e-30
    assert lowest[0] > 0.9


def test_a_single_posterior_is_best_for_sure() -> None:
    assert probability_of_best([beta_posterior(3, 10)]).tolist() == [1.0]


def test_lower_is_better_mirrors_higher_is_better() -> None:
    # The lowest of X is the highest of -X: mirror every posterior and compare.
    betas = beta_arms(5, 500, 41)
    mirrored_betas = [BetaPosterior(p.beta, p.alpha) for p in betas]
    np.testing.assert_allclose(
        probability_of_best(betas, lower_is_better=True), probability_of_best(mirrored_betas), rtol=0, atol=1e-13
    )
    values = value_arms(4, 20, 42)
    mirrored_values = [StudentTPosterior(p.df, -p.loc, p.scale) for p in values if isinstance(p, StudentTPosterior)]
    assert len(mirrored_values) == len(values)
    np.testing.assert_allclose(
        probability_of_best(values, lower_is_better=True), probability_of_best(mirrored_values), rtol=0, atol=1e-13
    )


def test_deterministic_to_the_last_bit() -> None:
    posteriors = value_arms(7, 5_000, 51) + value_arms(1, 40, 52)
    first = probability_of_best(posteriors)
    for _ in range(3):
        assert probability_of_best(posteriors).tobytes() == first.tobytes()


def test_order_of_arms_does_not_change_their_probabilities() -> None:
    posteriors = beta_arms(6, 2_000, 61)
    forward = probability_of_best(posteriors)
    backward = probability_of_best(posteriors[::-1])[::-1]
    np.testing.assert_allclose(forward, backward, rtol=0, atol=1e-14)


def test_accuracy_check_is_real(monkeypatch: pytest.MonkeyPatch) -> None:
    # With one node per panel and no refinement the midpoint rule is far off: it must be refused,
    # not normalised away.
    monkeypatch.setattr(pob_module, "_NODES", 1)
    monkeypatch.setattr(pob_module, "_MAX_REFINEMENTS", 0)
    with pytest.raises(QuadratureError):
        probability_of_best(value_arms(3, 100, 71))


def test_refinement_recovers_accuracy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Too few nodes for the sum check: halving panels must bring the answer back within tolerance.
    monkeypatch.setattr(pob_module, "_NODES", 3)
    posteriors = value_arms(3, 100, 72)
    assert_matches_reference(posteriors)


def test_monte_carlo_is_close_but_not_exact() -> None:
    posteriors = beta_arms(4, 1_000, 81)
    exact = probability_of_best(posteriors)
    estimate = monte_carlo_pob(posteriors, 20_000, np.random.default_rng(0))
    assert estimate.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(estimate, exact, rtol=0, atol=0.02)
    again = monte_carlo_pob(posteriors, 20_000, np.random.default_rng(0))
    assert again.tolist() == estimate.tolist()


def test_no_posteriors_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        probability_of_best([])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=st.sampled_from(["occurrence", "value"]),
    k=st.integers(min_value=2, max_value=5),
    log10_n=st.floats(min_value=1.0, max_value=6.0),
    spread=st.floats(min_value=0.0, max_value=4.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    lower_is_better=st.booleans(),
)
def test_property_matches_reference(
    family: str, k: int, log10_n: float, spread: float, seed: int, lower_is_better: bool
) -> None:
    n = round(10**log10_n)
    if family == "occurrence":
        posteriors: Sequence[Posterior] = beta_arms(k, n, seed, rate=0.3, spread=spread)
    else:
        posteriors = value_arms(k, n, seed, spread=spread)
    assert_matches_reference(posteriors, lower_is_better=lower_is_better)
