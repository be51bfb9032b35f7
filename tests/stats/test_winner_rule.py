"""The winner rules at and just below each boundary, and the traffic the sequential rule keeps for its test."""

from __future__ import annotations

import math

import pytest
from scipy.optimize import brentq

from openautotune.stats import decide
from openautotune.stats.winner_rule import (
    MIXTURE_RELATIVE_EFFECTS,
    TRAFFIC_FLOOR,
    Comparison,
    Decision,
    log_mixture_ratio,
    log_normal_mixture_ratio,
    traffic_weights,
)

VARIANCE = 4e-6  # each variant's estimate; a difference has 8e-6


def test_normal_mixture_ratio_is_the_closed_form() -> None:
    d, v, tau2 = 0.01, 8e-6, 3.4e-5
    expected = math.sqrt(v / (v + tau2)) * math.exp(tau2 * d * d / (2 * v * (v + tau2)))
    assert math.exp(log_normal_mixture_ratio(d, v, tau2)) == pytest.approx(expected, rel=1e-12)
    assert log_normal_mixture_ratio(d, 0.0, tau2) == -math.inf


def test_the_ratio_averages_the_three_mixtures() -> None:
    d, v, scale = 0.01, 8e-6, 0.06
    parts = [math.exp(log_normal_mixture_ratio(d, v, (r * scale) ** 2)) for r in MIXTURE_RELATIVE_EFFECTS]
    assert math.exp(log_mixture_ratio(d, v, scale)) == pytest.approx(sum(parts) / 3, rel=1e-12)
    assert log_mixture_ratio(d, v, 0.0) == -math.inf  # nothing observed: never passes


def _sequential(difference: float, pob_leader: float, threshold: float = 0.95, k: int = 2) -> Decision:
    means = [0.06 + difference] + [0.06] * (k - 1)
    rest = (1.0 - pob_leader) / (k - 1)
    return decide(
        "sequential",
        means=means,
        variances=[VARIANCE] * k,
        pob=[pob_leader] + [rest] * (k - 1),
        leader=0,
        threshold=threshold,
        enough_data=True,
    )


def _boundary_difference(threshold: float, k: int) -> float:
    """The difference at which the leader's mixture ratio reaches (K - 1) / (1 - threshold)."""
    target = math.log((k - 1) / (1.0 - threshold))

    def gap(d: float) -> float:
        means = [0.06 + d] + [0.06] * (k - 1)
        return log_mixture_ratio(d, 2 * VARIANCE, abs(sum(means) / k)) - target

    return float(brentq(gap, 1e-6, 0.05, xtol=1e-15, rtol=1e-15))


@pytest.mark.parametrize(("threshold", "k"), [(0.95, 2), (0.95, 3), (0.8, 5), (0.99, 2)])
def test_sequential_test_at_and_just_below_its_boundary(threshold: float, k: int) -> None:
    d = _boundary_difference(threshold, k)
    at = _sequential(d * (1 + 1e-9), pob_leader=0.999, threshold=threshold, k=k)
    below = _sequential(d * (1 - 1e-6), pob_leader=0.999, threshold=threshold, k=k)
    assert at.winner == 0 and all(c.passed for c in at.comparisons) and len(at.comparisons) == k - 1
    assert below.winner is None and not any(c.passed for c in below.comparisons)
    assert below.reason.startswith("sequential test against variant 1 not yet passed")
    assert at.comparisons[0].log_boundary == pytest.approx(math.log((k - 1) / (1 - threshold)))


def test_sequential_also_needs_the_probability_of_best() -> None:
    d = 2 * _boundary_difference(0.95, 2)  # the test passes easily
    assert _sequential(d, pob_leader=0.95).winner == 0
    below = _sequential(d, pob_leader=math.nextafter(0.95, 0.0))
    assert below.winner is None and below.comparisons[0].passed and not below.pob_passed
    assert "probability of best" in below.reason


def test_no_winner_without_data_for_every_variant() -> None:
    for rule in ("sequential", "statsig"):
        decision = decide(
            rule, means=[0.5, 0.0], variances=[1e-6, 1e-6], pob=[1.0, 0.0], leader=0, threshold=0.8, enough_data=False
        )
        assert decision.winner is None and decision.reason == "not every variant has data yet"


@pytest.mark.parametrize(("pob", "declared"), [(0.95, True), (math.nextafter(0.95, 0.0), False)])
def test_statsig_rule_at_and_just_below_the_threshold(pob: float, declared: bool) -> None:
    # Tiny difference, huge variance: the sequential test would never pass, Statsig's rule ignores it.
    decision = decide(
        "statsig",
        means=[0.06, 0.06],
        variances=[1.0, 1.0],
        pob=[pob, 1 - pob],
        leader=0,
        threshold=0.95,
        enough_data=True,
    )
    assert (decision.winner == 0) is declared and decision.comparisons == ()


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="winner rule"):
        decide("fast", means=[0, 0], variances=[1, 1], pob=[0.5, 0.5], leader=0, threshold=0.9, enough_data=True)  # type: ignore[arg-type]


def _decision(rule: str, beaten: tuple[int, ...], k: int = 3) -> Decision:
    comparisons = tuple(Comparison(i, 5.0 if i in beaten else 0.0, 3.0) for i in range(1, k))
    return Decision(rule, 0, None, False, comparisons if rule == "sequential" else (), "")  # type: ignore[arg-type]


def test_statsig_weights_are_todays_formula() -> None:
    pob = (0.7, 0.2, 0.1)
    assert traffic_weights(_decision("statsig", ()), pob, 0.0) == pob
    assert traffic_weights(_decision("statsig", ()), pob, 0.3) == pytest.approx([0.1 + 0.7 * p for p in pob])


def test_sequential_weights_keep_the_floor_for_the_open_comparisons() -> None:
    pob = (0.7, 0.2, 0.1)
    nothing_beaten = traffic_weights(_decision("sequential", ()), pob, 0.0)
    assert nothing_beaten == pytest.approx([TRAFFIC_FLOOR / 3 + (1 - TRAFFIC_FLOOR) * p for p in pob])
    one_beaten = traffic_weights(_decision("sequential", (2,)), pob, 0.0)
    assert one_beaten == pytest.approx([TRAFFIC_FLOOR / 2 + 0.7 * 0.7, TRAFFIC_FLOOR / 2 + 0.7 * 0.2, 0.7 * 0.1])
    assert sum(one_beaten) == pytest.approx(1.0)
    # A configured long-term share above the floor is kept as it is, spread over every variant.
    assert traffic_weights(_decision("sequential", (2,)), pob, 0.5) == pytest.approx([0.5 / 3 + 0.5 * p for p in pob])
