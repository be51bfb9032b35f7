"""The bandit against its holdout: lift with an interval, and the regret the bandit avoided.

Both arms are served at the same time, all run long, and a unit's arm is decided by a hash that
ignores time, so the two pooled means (rate or value per unit of the mature units) compare like with
like, whatever the base rates did meanwhile. With `n`, `m`, `s^2` each arm's units, mean and
unbiased per-unit variance (b: bandit, h: holdout):

- absolute lift `d = m_b - m_h`, `Var(d) = s_b^2 / n_b + s_h^2 / n_h`, a Normal interval. Given
  which variants the bandit served, the bandit arm's outcomes are independent with variance at most
  the pooled one, so this interval is conservative rather than optimistic;
- relative lift `d / m_h` with the delta-method interval of `stats.lift.relative_lift`;
- regret avoided `n_b x d` (`n_b x -d` when lower is better): outcomes the bandit's units gained over
  what the holdout's fixed split would have given the same units, with `n_b` times d's interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from openautotune.stats.lift import relative_lift

MIN_ARM_UNITS = 2
"""Fewest mature units in each arm for a comparison (a variance needs two)."""


@dataclass(frozen=True, slots=True)
class Arm:
    """An arm's mature units: count, sum of outcomes and sum of squares (occurrence: both = successes)."""

    units: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float:
        return self.total / self.units if self.units else 0.0

    @property
    def unit_variance(self) -> float:
        n = self.units
        if n < 2:
            return 0.0
        return max(0.0, (self.total_sq - n * self.mean * self.mean) / (n - 1))


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Comparison:
    bandit_mean: float
    holdout_mean: float
    lift: Interval
    relative_lift: Interval | None
    regret_avoided: Interval
    level: float


def compare(bandit: Arm, holdout: Arm, *, lower_is_better: bool = False, level: float = 0.95) -> Comparison | None:
    """The comparison, or None while an arm has fewer than `MIN_ARM_UNITS` mature units."""
    if bandit.units < MIN_ARM_UNITS or holdout.units < MIN_ARM_UNITS:
        return None
    z = float(sps.norm.isf((1.0 - level) / 2.0))
    variance_b = bandit.unit_variance / bandit.units
    variance_h = holdout.unit_variance / holdout.units
    difference = bandit.mean - holdout.mean
    spread = z * math.sqrt(variance_b + variance_h)
    lift = Interval(difference, difference - spread, difference + spread)
    relative = relative_lift(bandit.mean, variance_b, holdout.mean, variance_h, level)
    sign = -1.0 if lower_is_better else 1.0
    ends = sorted((sign * bandit.units * lift.low, sign * bandit.units * lift.high))
    return Comparison(
        bandit_mean=bandit.mean,
        holdout_mean=holdout.mean,
        lift=lift,
        relative_lift=Interval(relative.value, relative.low, relative.high) if relative is not None else None,
        regret_avoided=Interval(sign * bandit.units * difference, ends[0], ends[1]),
        level=level,
    )
