"""One analysis of an autotune's variants: aggregates in, posteriors, P(best) and weights out.

``summarize`` is what the engine calls once per update. It never raises for lack of data:
"not enough data" is a ``Summary`` with ``enough_data=False`` and a ``message``, and its P(best)
and weights are still defined, so traffic keeps flowing while data accrues:

- every variant has 0 units: P(best) is exactly 1/K each (no quadrature needed: the posteriors are
  identical), and the weights are the equal split;
- some variants have 0 units (value metric: fewer than 2, since one value has no spread): P(best)
  is computed from the fallback posteriors (uniform Beta / weak prior), which keeps an optimistic
  exploration share on the empty variants, but ``enough_data`` is False: no winner must be
  declared while a variant is unmeasured.

Invalid aggregates (negative counts, more successes than units) are caller bugs, not lack of
data, and raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from openautotune.stats.allocation import leader, weights
from openautotune.stats.estimators import (
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    Estimate,
    EstimatorName,
    VariantAggregate,
    merge_strata,
    normal_from_moments,
    period_weighted,
    pooled_estimate,
)
from openautotune.stats.pob import probability_of_best
from openautotune.stats.posteriors import (
    DEFAULT_WEAK_PRIOR,
    SCALE_FLOOR_REL,
    Posterior,
    WeakPrior,
    beta_posterior,
    normal_posterior,
)

MetricKind = Literal["occurrence", "value"]
METRIC_KINDS: Final[tuple[MetricKind, ...]] = ("occurrence", "value")

_MIN_UNITS: Final[dict[MetricKind, int]] = {"occurrence": 1, "value": 2}
# Fewest units for a variant's posterior to come from its own data rather than the fallback.


@dataclass(frozen=True, slots=True)
class VariantSummary:
    """One variant's estimate (observed rate or value per unit, and its variance), posterior, its 95%
    (by default) equal-tailed interval, P(best) and weight. ``mean`` is the posterior mean."""

    units: float
    posterior: Posterior
    estimate: Estimate
    mean: float
    ci_low: float
    ci_high: float
    pob: float
    weight: float


@dataclass(frozen=True, slots=True)
class Summary:
    """The analysis of all variants, in the order given."""

    metric: MetricKind
    lower_is_better: bool
    long_term: float
    credible_level: float
    variants: tuple[VariantSummary, ...]
    enough_data: bool
    message: str | None = None
    estimator: EstimatorName = DEFAULT_ESTIMATOR
    strata: int = 1

    @property
    def pob(self) -> tuple[float, ...]:
        return tuple(v.pob for v in self.variants)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(v.weight for v in self.variants)

    @property
    def leader(self) -> int:
        """Index of the variant most likely to be best (first on a tie)."""
        return leader(self.pob)


def _posterior(metric: MetricKind, aggregate: VariantAggregate, prior: WeakPrior) -> Posterior:
    if metric == "occurrence":
        return beta_posterior(aggregate.successes, aggregate.units)
    return normal_posterior(aggregate.units, aggregate.total, aggregate.total_sq, prior=prior)


def _shortfall_message(metric: MetricKind, short: Sequence[int], empty: bool) -> str | None:
    if empty:
        return "not enough data: no variant has mature units yet; traffic stays equally split"
    if not short:
        return None
    needed = _MIN_UNITS[metric]
    names = ", ".join(str(i) for i in short)
    unit_word = "unit" if needed == 1 else "units"
    return (
        f"not enough data: variant(s) {names} have fewer than {needed} mature {unit_word}; "
        "their posteriors are the fallback prior and no winner can be declared"
    )


def _estimates(
    metric: MetricKind,
    aggregates: Sequence[VariantAggregate],
    periods: Sequence[Sequence[VariantAggregate]] | None,
    estimator: EstimatorName,
    prior: WeakPrior,
) -> tuple[list[Posterior], list[Estimate], int]:
    """Posteriors and estimates by ``estimator``; one stratum is exactly the pooled model."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    occurrence = metric == "occurrence"
    strata = merge_strata(periods) if estimator == "periodWeighted" and periods else []
    if len(strata) > 1:
        estimates = period_weighted(strata, occurrence)
        posteriors: list[Posterior] = [
            normal_from_moments(e.mean, e.variance, SCALE_FLOOR_REL * max(1.0, abs(e.mean))) for e in estimates
        ]
        return posteriors, estimates, len(strata)
    posteriors = [_posterior(metric, a, prior) for a in aggregates]
    estimates = [pooled_estimate(a, p, occurrence, estimator) for a, p in zip(aggregates, posteriors, strict=True)]
    return posteriors, estimates, 1


def summarize(
    metric: MetricKind,
    aggregates: Sequence[VariantAggregate],
    *,
    lower_is_better: bool = False,
    long_term: float = 0.0,
    credible_level: float = 0.95,
    prior: WeakPrior = DEFAULT_WEAK_PRIOR,
    periods: Sequence[Sequence[VariantAggregate]] | None = None,
    estimator: EstimatorName = DEFAULT_ESTIMATOR,
) -> Summary:
    """Posteriors, intervals, exact P(best) and traffic weights for ``aggregates`` (one per variant).

    ``periods`` (one aggregate per variant in each allocation period, in period order, summing to
    ``aggregates``) feed the period-weighted estimator; without them it has one stratum.
    """
    if metric not in METRIC_KINDS:
        raise ValueError(f"metric must be one of {METRIC_KINDS}, got {metric!r}")
    if not aggregates:
        raise ValueError("summarize needs at least one variant")
    posteriors, estimates, strata = _estimates(metric, aggregates, periods, estimator, prior)
    k = len(posteriors)
    short = [i for i, a in enumerate(aggregates) if a.units < _MIN_UNITS[metric]]
    empty = all(a.units == 0 for a in aggregates)
    if empty:
        # Identical posteriors: 1/K exactly, rather than 1/K up to quadrature rounding.
        pob: Sequence[float] = [1.0 / k] * k
    else:
        pob = [float(p) for p in probability_of_best(posteriors, lower_is_better=lower_is_better)]
    split = weights(pob, long_term=long_term)
    variants = []
    for aggregate, posterior, estimate, p, w in zip(aggregates, posteriors, estimates, pob, split, strict=True):
        low, high = posterior.interval(credible_level)
        variants.append(
            VariantSummary(
                units=aggregate.units,
                posterior=posterior,
                estimate=estimate,
                mean=posterior.mean,
                ci_low=low,
                ci_high=high,
                pob=p,
                weight=w,
            )
        )
    return Summary(
        metric=metric,
        lower_is_better=lower_is_better,
        long_term=long_term,
        credible_level=credible_level,
        variants=tuple(variants),
        enough_data=not short,
        message=_shortfall_message(metric, short, empty),
        estimator=estimator,
        strata=strata,
    )
