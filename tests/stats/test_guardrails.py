"""Guardrail checks (stats/guardrails.py): who is worse than the best by more than the allowed harm,
and how an excluded variant's weight is redistributed."""

from __future__ import annotations

import pytest
from scipy.stats import norm

from openautotune.stats.guardrails import MIN_UNITS, beta_variance, check_guardrail, exclude


def test_a_variant_clearly_worse_than_the_allowed_harm_is_harmful() -> None:
    # error rates 5% vs 8% on 5,000 units each; 10% more errors allowed
    means, units = [0.05, 0.08], [5000, 5000]
    hits = [250, 400]
    variances = [m * (1 - m) / n for m, n in zip(means, units, strict=True)]
    check = check_guardrail(means, variances, units, hits, higher_is_better=False, max_relative_harm=0.1)
    assert check.reference == 0 and check.harmful == (1,)
    expected = norm.cdf((0.08 - 1.1 * 0.05) / (variances[1] + 1.21 * variances[0]) ** 0.5)
    assert check.variants[1].probability_of_harm == pytest.approx(expected)
    assert check.variants[0].probability_of_harm is None and not check.variants[0].harmful


def test_a_difference_within_the_allowed_harm_is_not_harmful() -> None:
    means, units, hits = [0.05, 0.052], [20000, 20000], [1000, 1040]
    variances = [m * (1 - m) / n for m, n in zip(means, units, strict=True)]
    check = check_guardrail(means, variances, units, hits, higher_is_better=False, max_relative_harm=0.1)
    assert check.harmful == ()


def test_higher_is_better_looks_for_drops() -> None:
    means, units, hits = [0.30, 0.20], [4000, 4000], [1200, 800]
    variances = [m * (1 - m) / n for m, n in zip(means, units, strict=True)]
    check = check_guardrail(means, variances, units, hits, higher_is_better=True, max_relative_harm=0.05)
    assert check.reference == 0 and check.harmful == (1,)


def test_nothing_is_judged_below_the_minimum_units_or_without_events() -> None:
    check = check_guardrail(
        [0.0, 0.5], [0.0, 0.0], [MIN_UNITS - 1, 500], [0, 250], higher_is_better=False, max_relative_harm=0.0
    )
    assert check.harmful == () and all(v.probability_of_harm is None for v in check.variants)
    # A guardrail event never seen: every rate 0, nobody harmful, no division by zero.
    unseen = check_guardrail([0.0, 0.0], [0.0, 0.0], [500, 500], [0, 0], higher_is_better=False, max_relative_harm=0.1)
    assert unseen.harmful == ()
    # One event against none: the Beta floor on the variance keeps it from looking certain.
    one = check_guardrail([0.0, 0.002], [0.0, 0.0], [500, 500], [0, 1], higher_is_better=False, max_relative_harm=0.0)
    assert one.harmful == () and one.variants[1].variance >= beta_variance(1, 500)


def test_exclude_holds_the_excluded_at_the_floor_and_scales_the_rest() -> None:
    assert exclude([0.2, 0.5, 0.3], [1], 0.0) == pytest.approx((0.4, 0.0, 0.6))
    assert exclude([0.2, 0.5, 0.3], [1], 0.05) == pytest.approx((0.95 * 0.4, 0.05, 0.95 * 0.6))
    assert exclude([0.0, 1.0, 0.0], [1], 0.0) == pytest.approx((0.5, 0.0, 0.5))
    assert exclude([0.5, 0.5], [], 0.0) == (0.5, 0.5)
    with pytest.raises(ValueError):
        exclude([0.5, 0.5], [0, 1], 0.0)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        check_guardrail([0.1], [0.0, 0.0], [1], [1], higher_is_better=False, max_relative_harm=0.1)
    with pytest.raises(ValueError):
        check_guardrail([0.1, 0.2], [0.0, 0.0], [1, 1], [1, 1], higher_is_better=False, max_relative_harm=-1)


def test_a_probability_above_95_percent_is_not_enough_without_always_valid_evidence() -> None:
    # z about 2: P(harm) 0.98 at this one look, but far from the mixture ratio's boundary
    means, units, hits = [0.05, 0.062], [3000, 3000], [150, 186]
    variances = [m * (1 - m) / n for m, n in zip(means, units, strict=True)]
    one_look = check_guardrail(
        means, variances, units, hits, higher_is_better=False, max_relative_harm=0.0, sequential=False
    )
    assert one_look.harmful == (1,)
    checked = check_guardrail(means, variances, units, hits, higher_is_better=False, max_relative_harm=0.0)
    probability = checked.variants[1].probability_of_harm
    assert probability is not None and probability > 0.95
    assert checked.harmful == () and checked.variants[1].log_evidence is not None
