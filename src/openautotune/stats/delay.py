"""Delayed conversions: how much of an immature unit's outcome is already observable.

A unit's outcome is known only once its attribution window `W` has passed, but most conversions
arrive well before that. With `F(a)` the probability that a converting unit has converted by age
`a` (the conversion-delay distribution, conditional on converting within `W`), a unit of age `a`
has shown `F(a)` of its chance to convert. So an immature unit counts as `F(a)` of a unit, and the
conversions it has already sent count in full:

    rate_k = (S_mature + S_immature) / (N_mature + sum over immature units of F(age))

which has the true rate as its expectation ratio (E[S_immature] = p x sum F(age)); for value the
same holds with values instead of conversions. This is the censored-count estimator of delayed-
feedback bandits (Vernade, Cappe, Perchet, "Stochastic bandit models for delayed conversions", 2017).

`F` is learnt from mature units only (their delays are complete): an empirical CDF on `bins` equal
bins of `[0, W]`, smoothed by `prior_weight` pseudo-conversions spread evenly over the window, and
interpolated linearly inside a bin. An immature unit's share is the average of `F` over its age bin
(the two edges' mean, exact under the linear interpolation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_BINS = 48
"""Half-hour bins for a 24-hour window: fine enough that F barely changes within a bin."""
DEFAULT_PRIOR_WEIGHT = 5.0
"""Pseudo-conversions, spread evenly over the window, that F starts from (a uniform delay)."""


@dataclass(frozen=True)
class DelayCdf:
    """The conversion-delay CDF at the `bins + 1` bin edges (0 at age 0, 1 at age W)."""

    edges: tuple[float, ...]
    conversions: int
    prior_weight: float

    @property
    def bins(self) -> int:
        return len(self.edges) - 1

    def share(self, age_bin: int) -> float:
        """The average F over ages in bin `age_bin`: the share of a converter's conversions observable."""
        j = min(max(age_bin, 0), self.bins - 1)
        return 0.5 * (self.edges[j] + self.edges[j + 1])

    def at(self, age_fraction: float) -> float:
        """F at an age given as a fraction of W (linear inside a bin)."""
        x = min(max(age_fraction, 0.0), 1.0) * self.bins
        j = min(int(x), self.bins - 1)
        return self.edges[j] + (x - j) * (self.edges[j + 1] - self.edges[j])

    def mean_delay_fraction(self) -> float:
        """The mean delay as a fraction of W (for the record: integral of 1 - F)."""
        return sum(1.0 - 0.5 * (a + b) for a, b in zip(self.edges, self.edges[1:], strict=False)) / self.bins


def fit_cdf(histogram: Sequence[int], prior_weight: float = DEFAULT_PRIOR_WEIGHT) -> DelayCdf:
    """The smoothed empirical CDF of delays counted in `histogram` (bin j covers [j, j+1) x W/bins)."""
    bins = len(histogram)
    if bins < 1:
        raise ValueError("a delay histogram needs at least one bin")
    if any(count < 0 for count in histogram) or prior_weight < 0:
        raise ValueError("delay counts and the prior weight must be non-negative")
    n = sum(histogram)
    total = n + prior_weight
    if total <= 0:
        return DelayCdf(tuple(j / bins for j in range(bins + 1)), 0, prior_weight)
    edges = [0.0]
    seen = 0
    for j, count in enumerate(histogram, start=1):
        seen += count
        edges.append((seen + prior_weight * j / bins) / total)
    edges[-1] = 1.0
    return DelayCdf(tuple(edges), n, prior_weight)


@dataclass(frozen=True)
class Effective:
    """Immature units of one (variant, period) as the fraction of units their outcomes represent."""

    units: int
    effective_units: float
    successes: int
    total: float
    total_sq: float


def effective(cells: Sequence[tuple[int, int, int, float, float]], cdf: DelayCdf) -> Effective:
    """Sum `(age_bin, units, successes, total, total_sq)` cells of one (variant, period) into effective units.

    The effective units never fall below the conversions already seen: those units' outcomes are
    known (a unit that converted at age a counts as one whole unit at the latest), which keeps the
    rate at or below 1 when early conversions outrun a CDF that is still mostly prior.
    """
    units = sum(cell[1] for cell in cells)
    share = sum(cell[1] * cdf.share(cell[0]) for cell in cells)
    successes = sum(cell[2] for cell in cells)
    return Effective(
        units=units,
        effective_units=min(float(units), max(share, float(successes))),
        successes=successes,
        total=sum(cell[3] for cell in cells),
        total_sq=sum(cell[4] for cell in cells),
    )
