"""stats/holdout.py: the bandit's lift over its holdout, its interval, and the regret avoided."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openautotune.stats.holdout import Arm, compare


def test_too_few_units_give_no_comparison() -> None:
    assert compare(Arm(1, 1.0, 1.0), Arm(100, 5.0, 5.0)) is None
    assert compare(Arm(100, 5.0, 5.0), Arm(0, 0.0, 0.0)) is None


def test_lift_interval_and_regret_avoided_by_hand() -> None:
    bandit, holdout = Arm(9000, 540.0, 540.0), Arm(1000, 50.0, 50.0)
    comparison = compare(bandit, holdout)
    assert comparison is not None
    assert comparison.lift.value == pytest.approx(0.01)
    v = 0.06 * 0.94 * 9000 / 8999 / 9000 + 0.05 * 0.95 * 1000 / 999 / 1000
    assert comparison.lift.high - comparison.lift.value == pytest.approx(1.959964 * math.sqrt(v), rel=1e-5)
    assert comparison.regret_avoided.value == pytest.approx(90.0)
    assert comparison.regret_avoided.low == pytest.approx(9000 * comparison.lift.low)
    assert comparison.relative_lift is not None and comparison.relative_lift.value == pytest.approx(0.2)


def test_lower_is_better_turns_the_regret_avoided_around() -> None:
    comparison = compare(Arm(100, 10.0, 10.0), Arm(100, 20.0, 20.0), lower_is_better=True)
    assert comparison is not None
    assert comparison.lift.value == pytest.approx(-0.1)
    assert comparison.regret_avoided.value == pytest.approx(10.0)
    assert comparison.regret_avoided.low <= comparison.regret_avoided.value <= comparison.regret_avoided.high


def test_the_interval_covers_the_true_lift_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    trials = 400
    for _ in range(trials):
        b = rng.random(3000) < 0.06
        h = rng.random(600) < 0.05
        comparison = compare(Arm(3000, float(b.sum()), float(b.sum())), Arm(600, float(h.sum()), float(h.sum())))
        assert comparison is not None
        covered += comparison.lift.low <= 0.01 <= comparison.lift.high
    assert 0.92 <= covered / trials <= 0.98
