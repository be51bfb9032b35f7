"""Relative lift of one variant over another, with an interval, from two estimates and their variances.

``lift = m_k / m_L - 1``; its variance by the delta method,
``Var = v_k / m_L^2 + m_k^2 v_L / m_L^4`` (the estimates are independent: different units), and a
Normal interval. Undefined (None) when the reference mean is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from scipy import stats as sps

EQUIVALENCE_MARGIN: Final = 0.1
"""Relative difference below which two variants are "not meaningfully different" (a verdict, not a winner)."""


@dataclass(frozen=True, slots=True)
class Lift:
    value: float
    low: float
    high: float

    def within(self, margin: float = EQUIVALENCE_MARGIN) -> bool:
        """The whole interval inside +-margin."""
        return -margin <= self.low and self.high <= margin


def relative_lift(
    mean: float, variance: float, reference: float, reference_variance: float, level: float = 0.95
) -> Lift | None:
    """The lift of (mean, variance) over (reference, reference_variance) with a ``level`` interval."""
    if reference == 0.0 or not all(math.isfinite(x) for x in (mean, variance, reference, reference_variance)):
        return None
    value = mean / reference - 1.0
    spread = math.sqrt(max(0.0, variance / reference**2 + mean**2 * reference_variance / reference**4))
    z = float(sps.norm.isf((1.0 - level) / 2.0))
    return Lift(value=value, low=value - z * spread, high=value + z * spread)
