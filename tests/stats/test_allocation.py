"""Weights and the winner rule."""

from __future__ import annotations

import pytest

from openautotune.stats import leader, weights, winner


def test_weights_follow_pob_without_long_term_exploration() -> None:
    assert weights([0.7, 0.2, 0.1]) == pytest.approx((0.7, 0.2, 0.1), abs=1e-15)


def test_long_term_exploration_is_a_floor() -> None:
    # w = L/K + (1 - L) * PoB with L = 0.2, K = 4.
    w = weights([1.0, 0.0, 0.0, 0.0], long_term=0.2)
    assert w == pytest.approx((0.05 + 0.8, 0.05, 0.05, 0.05), abs=1e-15)
    assert min(w) == pytest.approx(0.2 / 4)
    assert sum(w) == pytest.approx(1.0, abs=1e-15)


def test_full_long_term_exploration_is_the_equal_split() -> None:
    assert weights([0.9, 0.1, 0.0], long_term=1.0) == pytest.approx((1 / 3, 1 / 3, 1 / 3), abs=1e-15)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_long_term_out_of_range_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="long_term"):
        weights([0.5, 0.5], long_term=bad)


def test_pob_that_does_not_sum_to_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        weights([0.5, 0.6])


def test_winner_at_threshold_and_not_below() -> None:
    assert winner([0.95, 0.04, 0.01], threshold=0.95) == 0
    assert winner([0.03, 0.949_999_999, 0.020_000_001], threshold=0.95) is None
    assert winner([0.01, 0.02, 0.97], threshold=0.95) == 2


def test_winner_and_leader_break_ties_by_first_index() -> None:
    assert leader([0.4, 0.1, 0.4, 0.1]) == 0
    assert leader([0.1, 0.45, 0.45]) == 1
    assert winner([0.5, 0.5], threshold=0.5) == 0


@pytest.mark.parametrize("bad", [0.0, 1.01, float("nan")])
def test_winner_rejects_a_meaningless_threshold(bad: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        winner([0.5, 0.5], threshold=bad)
