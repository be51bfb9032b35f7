"""Each variant's rate (or value per unit) from its per-period aggregates (spec: engine.md, "Estimator").

Allocations change every hour while base rates drift, so pooling a variant's periods weights its data
by *when* it happened to get traffic, and pooled rates can rank variants wrong (Simpson's paradox).
The default estimator is therefore **period-weighted** (post-stratified): with ``N_p`` units in
stratum ``p`` across all variants and ``w_p = N_p / sum N``,

    theta_k = sum_p w_p * r_kp,      Var(theta_k) = sum_p w_p^2 * v_kp / n_kp,

``r_kp`` the mean outcome of ``k``'s ``n_kp`` units in ``p`` and ``v_kp`` their unbiased per-unit
variance (``s (n - s) / (n (n - 1))`` for occurrence, the sample variance for value).

Small and empty cells: strata are **adjacent periods merged** (in period order) until every variant has
at least ``MIN_CELL_UNITS`` units in each; a tail that never reaches it joins the stratum before it.
Merging rather than dropping keeps every unit in the estimate. The boundaries depend only on unit
counts (the allocation), never on outcomes, so within each stratum ``r_kp`` stays unbiased. When some
variant has fewer than ``MIN_CELL_UNITS`` units in all, there is one stratum, and one stratum is the
pooled estimator: today's posteriors (Beta for occurrence) exactly.

``estimator: "pooled"`` sums all periods first (one stratum by construction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from openautotune.stats.posteriors import BetaPosterior, NormalPosterior, Posterior, StudentTPosterior

EstimatorName = Literal["periodWeighted", "pooled"]
ESTIMATORS: Final[tuple[EstimatorName, ...]] = ("periodWeighted", "pooled")
DEFAULT_ESTIMATOR: Final[EstimatorName] = "periodWeighted"

MIN_CELL_UNITS: Final = 15
"""Fewest units of every variant in a stratum; 15 keeps two strata at >= 30 units (the Normal regime)."""


@dataclass(frozen=True, slots=True)
class VariantAggregate:
    """A variant's sums over some units (one period, a stratum, or all): ``successes`` for
    occurrence, the sums for value. Counts are floats so that an immature unit can count for the share
    of its outcome already observable (stats/delay.py); mature data always has whole counts."""

    units: float
    successes: float = 0
    total: float = 0.0
    total_sq: float = 0.0

    def __add__(self, other: VariantAggregate) -> VariantAggregate:
        return VariantAggregate(
            self.units + other.units,
            self.successes + other.successes,
            self.total + other.total,
            self.total_sq + other.total_sq,
        )


@dataclass(frozen=True, slots=True)
class Estimate:
    """A variant's estimated rate (value per unit), the variance of that estimate, and how it was made."""

    mean: float
    variance: float
    strata: int
    estimator: EstimatorName


def _outcome_sum(cell: VariantAggregate, occurrence: bool) -> float:
    return float(cell.successes) if occurrence else cell.total


def cell_mean(cell: VariantAggregate, occurrence: bool) -> float:
    """The observed rate (value per unit) of a cell; 0 for an empty cell."""
    return _outcome_sum(cell, occurrence) / cell.units if cell.units else 0.0


def cell_unit_variance(cell: VariantAggregate, occurrence: bool) -> float:
    """Unbiased per-unit variance of a cell's outcomes (0 below two units)."""
    n = cell.units
    if n < 2:
        return 0.0
    if occurrence:
        return cell.successes * (n - cell.successes) / (n * (n - 1))
    mean = cell.total / n
    return max(0.0, (cell.total_sq - n * mean * mean) / (n - 1))


def merge_strata(
    periods: Sequence[Sequence[VariantAggregate]], min_units: int = MIN_CELL_UNITS
) -> list[list[VariantAggregate]]:
    """Merge adjacent periods (each a cell per variant, in period order) until every variant has at
    least ``min_units`` units in each stratum; an unfinished tail joins the last stratum."""
    strata: list[list[VariantAggregate]] = []
    current: list[VariantAggregate] | None = None
    for period in periods:
        current = list(period) if current is None else [a + b for a, b in zip(current, period, strict=True)]
        if all(cell.units >= min_units for cell in current):
            strata.append(current)
            current = None
    if current is not None:
        if strata:
            strata[-1] = [a + b for a, b in zip(strata[-1], current, strict=True)]
        else:
            strata.append(current)
    return strata


def pool(periods: Sequence[Sequence[VariantAggregate]], variants: int) -> list[VariantAggregate]:
    """Each variant's cells summed over all periods."""
    totals = [VariantAggregate(0)] * variants
    for period in periods:
        totals = [a + b for a, b in zip(totals, period, strict=True)]
    return totals


def period_weighted(strata: Sequence[Sequence[VariantAggregate]], occurrence: bool) -> list[Estimate]:
    """The post-stratified mean and its variance for every variant, from already merged ``strata``."""
    if not strata:
        raise ValueError("period_weighted needs at least one stratum")
    variants = len(strata[0])
    sizes = [sum(cell.units for cell in stratum) for stratum in strata]
    everyone = sum(sizes)
    estimates = []
    for k in range(variants):
        mean = 0.0
        variance = 0.0
        for size, stratum in zip(sizes, strata, strict=True):
            cell = stratum[k]
            if cell.units == 0:
                continue  # only when every stratum is one (merged) stratum with an empty variant
            weight = size / everyone
            mean += weight * cell_mean(cell, occurrence)
            variance += weight * weight * cell_unit_variance(cell, occurrence) / cell.units
        estimates.append(Estimate(mean=mean, variance=variance, strata=len(strata), estimator="periodWeighted"))
    return estimates


def posterior_variance(posterior: Posterior) -> float:
    """The variance of a posterior (a t with df <= 2 has none: its squared scale stands in)."""
    if isinstance(posterior, BetaPosterior):
        a, b = posterior.alpha, posterior.beta
        return a * b / ((a + b) ** 2 * (a + b + 1.0))
    if isinstance(posterior, NormalPosterior):
        return posterior.scale**2
    if isinstance(posterior, StudentTPosterior):
        factor = posterior.df / (posterior.df - 2.0) if posterior.df > 2.0 else 1.0
        return posterior.scale**2 * factor
    raise TypeError(f"unknown posterior {type(posterior).__name__}")


def pooled_estimate(
    cell: VariantAggregate, posterior: Posterior, occurrence: bool, estimator: EstimatorName
) -> Estimate:
    """One stratum: the observed rate, with the variance of today's posterior (never 0 for a Beta)."""
    return Estimate(
        mean=cell_mean(cell, occurrence), variance=posterior_variance(posterior), strata=1, estimator=estimator
    )


def normal_from_moments(mean: float, variance: float, floor: float) -> NormalPosterior:
    """The Normal posterior of a post-stratified estimate; its scale floored as value posteriors are."""
    return NormalPosterior(loc=mean, scale=max(math.sqrt(max(variance, 0.0)), floor))
