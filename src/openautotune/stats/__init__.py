"""Numbers only: posteriors, intervals, exact probability of best, traffic weights, the winner.

Pure functions and frozen dataclasses over plain values and numpy arrays (numpy and scipy only):
no I/O, no clock, no global state, no randomness except a generator passed in by the caller.
Imports nothing of ours. (The statistics of contextual autotunes live in `contextual`.)
"""

from openautotune.stats.allocation import leader, weights, winner
from openautotune.stats.estimators import DEFAULT_ESTIMATOR, ESTIMATORS, Estimate, EstimatorName, VariantAggregate
from openautotune.stats.pob import SUM_TOLERANCE, QuadratureError, monte_carlo_pob, probability_of_best
from openautotune.stats.posteriors import (
    DEFAULT_WEAK_PRIOR,
    NORMAL_MIN_UNITS,
    SCALE_FLOOR_REL,
    BetaPosterior,
    NormalPosterior,
    Posterior,
    StudentTPosterior,
    WeakPrior,
    beta_posterior,
    normal_posterior,
    posterior_from_params,
)
from openautotune.stats.summary import METRIC_KINDS, MetricKind, Summary, VariantSummary, summarize
from openautotune.stats.winner_rule import DEFAULT_WINNER_RULE, WINNER_RULES, Decision, WinnerRuleName, decide

__all__ = [
    "DEFAULT_ESTIMATOR",
    "DEFAULT_WEAK_PRIOR",
    "DEFAULT_WINNER_RULE",
    "ESTIMATORS",
    "METRIC_KINDS",
    "NORMAL_MIN_UNITS",
    "SCALE_FLOOR_REL",
    "SUM_TOLERANCE",
    "WINNER_RULES",
    "BetaPosterior",
    "Decision",
    "Estimate",
    "EstimatorName",
    "MetricKind",
    "NormalPosterior",
    "Posterior",
    "QuadratureError",
    "StudentTPosterior",
    "Summary",
    "VariantAggregate",
    "VariantSummary",
    "WeakPrior",
    "WinnerRuleName",
    "beta_posterior",
    "decide",
    "leader",
    "monte_carlo_pob",
    "normal_posterior",
    "posterior_from_params",
    "probability_of_best",
    "summarize",
    "weights",
    "winner",
]
