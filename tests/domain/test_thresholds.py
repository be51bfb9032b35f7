"""Cumulative bucket thresholds in thousandths: rounding, monotonicity, the last bucket."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from openautotune.domain.allocation import cumulative_thresholds


def test_thresholds_are_cumulative_thousandths() -> None:
    assert cumulative_thresholds([0.25, 0.25, 0.5]) == (250, 500, 1000)
    assert cumulative_thresholds([0.5, 0.5]) == (500, 1000)
    assert cumulative_thresholds([1.0]) == (1000,)


def test_thresholds_round_the_cumulative_sum_not_each_weight() -> None:
    # Each third rounds to 333, but cumulative rounding gives 333, 667, 1000: no bucket is lost.
    assert cumulative_thresholds([1 / 3, 1 / 3, 1 / 3]) == (333, 667, 1000)
    # Rounding each weight would give 124 + 124 = 248; the cumulative 247.2 rounds to 247.
    assert cumulative_thresholds([0.1236, 0.1236, 0.7528]) == (124, 247, 1000)


def test_thresholds_round_half_up() -> None:
    assert cumulative_thresholds([0.0005, 0.9995]) == (1, 1000)
    assert cumulative_thresholds([0.0015, 0.0010, 0.9975]) == (2, 3, 1000)


def test_last_threshold_is_forced_to_1000() -> None:
    # The cumulative sum is 0.9999999999 here (within the accepted slack): still exactly 1000.
    assert cumulative_thresholds([0.4999999999, 0.5])[-1] == 1000


def test_zero_weights_give_empty_bucket_ranges() -> None:
    assert cumulative_thresholds([0.0, 1.0, 0.0]) == (0, 1000, 1000)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=20).filter(lambda xs: sum(xs) > 1e-3))
def test_thresholds_property(raw: list[float]) -> None:
    total = sum(raw)
    split = [x / total for x in raw]
    out = cumulative_thresholds(split)
    assert len(out) == len(split)
    assert out[-1] == 1000
    assert all(0 <= t <= 1000 for t in out)
    assert all(a <= b for a, b in itertools.pairwise(out))
    running = 0.0
    for i, t in enumerate(out[:-1]):
        running += split[i]
        assert abs(t - 1000 * running) <= 0.5 + 1e-6
