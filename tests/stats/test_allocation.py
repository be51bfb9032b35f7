"""Weights, bucket thresholds, exploration splits and the winner rule."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openautotune.stats import BUCKETS, equal_split, leader, size_split, thresholds, weights, winner


def test_weights_follow_pob_without_long_term_exploration() -> None:
    assert weights([0.7, 0.2, 0.1]) == pytest.approx((0.7, 0.2, 0.1), abs=1e-15)


def test_long_term_exploration_is_a_floor() -> None:
    # w = L/K + (1 - L) * PoB with L = 0.2, K = 4.
    w = weights([1.0, 0.0, 0.0, 0.0], long_term=0.2)
    assert w == pytest.approx((0.05 + 0.8, 0.05, 0.05, 0.05), abs=1e-15)
    assert min(w) == pytest.approx(0.2 / 4)
    assert sum(w) == pytest.approx(1.0, abs=1e-15)


def test_full_long_term_exploration_is_the_equal_split() -> None:
    assert weights([0.9, 0.1, 0.0], long_term=1.0) == pytest.approx(equal_split(3), abs=1e-15)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_long_term_out_of_range_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="long_term"):
        weights([0.5, 0.5], long_term=bad)


def test_pob_that_does_not_sum_to_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        weights([0.5, 0.6])


def test_thresholds_are_cumulative_thousandths() -> None:
    assert thresholds([0.25, 0.25, 0.5]) == (250, 500, 1000)
    assert thresholds([0.5, 0.5]) == (500, 1000)
    assert thresholds([1.0]) == (1000,)


def test_thresholds_round_the_cumulative_sum_not_each_weight() -> None:
    # Each third rounds to 333, but cumulative rounding gives 333, 667, 1000: no bucket is lost.
    assert thresholds(equal_split(3)) == (333, 667, 1000)
    # Rounding each weight would give 124 + 124 = 248; the cumulative 247.2 rounds to 247.
    assert thresholds([0.1236, 0.1236, 0.7528]) == (124, 247, 1000)


def test_thresholds_round_half_up() -> None:
    assert thresholds([0.0005, 0.9995]) == (1, 1000)
    assert thresholds([0.0015, 0.0010, 0.9975]) == (2, 3, 1000)


def test_last_threshold_is_forced_to_1000() -> None:
    # The cumulative sum is 0.9999999999 here (within the accepted slack): still exactly 1000.
    assert thresholds([0.4999999999, 0.5])[-1] == BUCKETS


def test_zero_weights_give_empty_bucket_ranges() -> None:
    assert thresholds([0.0, 1.0, 0.0]) == (0, 1000, 1000)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=20).filter(lambda xs: sum(xs) > 1e-3))
def test_thresholds_property(raw: list[float]) -> None:
    total = sum(raw)
    split = [x / total for x in raw]
    out = thresholds(split)
    assert len(out) == len(split)
    assert out[-1] == 1000
    assert all(0 <= t <= 1000 for t in out)
    assert all(a <= b for a, b in itertools.pairwise(out))
    running = 0.0
    for i, t in enumerate(out[:-1]):
        running += split[i]
        assert abs(t - 1000 * running) <= 0.5 + 1e-6


def test_equal_split() -> None:
    assert equal_split(4) == (0.25, 0.25, 0.25, 0.25)
    with pytest.raises(ValueError):
        equal_split(0)


def test_size_split_uses_percentages() -> None:
    assert size_split([10, 30, 60]) == pytest.approx((0.1, 0.3, 0.6), abs=1e-15)
    assert thresholds(size_split([10, 30, 60])) == (100, 400, 1000)


@pytest.mark.parametrize("sizes", [[50, 40], [50, 60], [-10, 110], []])
def test_size_split_rejects_sizes_not_summing_to_100(sizes: list[float]) -> None:
    with pytest.raises(ValueError, match="sizes"):
        size_split(sizes)


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
