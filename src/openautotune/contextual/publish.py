"""The published form of a contextual policy: the core SDK's ``cmab_configs`` weights.

The SDK scores a user, per group (variant), as (sdk-core-protocol.md, "Contextual autotunes")::

    intercept + alpha + sum_f weightsCategorical[f][str(user[f])] + sum_f weightsNumerical[f] * float(user[f])

with a missing feature or an unseen category adding 0. The server trains on centred and scaled columns
(``features.Encoding``), so the published weights fold the transform back into raw units:

- numeric feature ``j`` (column ``(x - c_j) / s_j``, weight ``w_j``): raw weight ``w_j / s_j``, and
  ``-w_j c_j / s_j`` moves into the intercept;
- category ``v`` of a categorical feature (column ``1[value = v] - p_v``, weight ``w_v``): weight
  ``w_v``, and ``-w_v p_v`` moves into the intercept.

A missing numeric value is 0 in the server's encoding too, so for every user the SDK's score equals the
server's linear score plus alpha (up to floating-point rounding, far below 1e-9 for sensible values).
A model without any feature publishes ``{"__bias": 0.0}`` so that the SDK still scores the group.

Exploration bonus: ``alpha = z * sd``, where ``sd`` is the posterior standard deviation of the variant's
linear score at the average context, signed towards the objective (negative when lower is better), and
``z`` comes from ``explorationWindowRate`` r (0.001..1) by log-linear interpolation between the two
anchors of the spec::

    z(r) = 3.09 * log(r / 0.001) / log(1000)      (z(0.001) = 0, z(0.0316) = 1.545, z(1) = 3.09)

and ``z = 1.96`` when the rate is unset.

Explore share (``sampleRate``): with N units trained on in total over K variants,

    s = min(1, max(floor, sqrt(20 K / N)))     (s = 1 while N <= 20 K, i.e. until every variant could
                                                 have its minimum of 20 units)

so it starts at 1, decays like 1/sqrt(N) (the rate at which the models' uncertainty shrinks) and
settles at ``floor = longtermExplorationAllocation`` (default 0.01).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import numpy as np

from openautotune.contextual.features import CategoricalFeature, Encoding, NumericFeature
from openautotune.contextual.models import MIN_UNITS, ModelFit

MIN_EXPLORATION_RATE: Final = 0.001
MAX_EXPLORATION_Z: Final = 3.09
DEFAULT_EXPLORATION_Z: Final = 1.96
DEFAULT_EXPLORE_FLOOR: Final = 0.01
BIAS_FEATURE: Final = "__bias"

JsonValue = float | int | dict[str, float] | dict[str, dict[str, float]]


def exploration_z(exploration_window_rate: float | None) -> float:
    """The z of the exploration bonus for ``explorationWindowRate`` (see the module doc)."""
    if exploration_window_rate is None:
        return DEFAULT_EXPLORATION_Z
    rate = min(max(exploration_window_rate, MIN_EXPLORATION_RATE), 1.0)
    return MAX_EXPLORATION_Z * math.log(rate / MIN_EXPLORATION_RATE) / math.log(1.0 / MIN_EXPLORATION_RATE)


def sample_rate(total_records: int, n_variants: int, floor: float | None = None) -> float:
    """The explore share for ``total_records`` trained units over ``n_variants`` (see the module doc)."""
    lowest = DEFAULT_EXPLORE_FLOOR if floor is None else floor
    if total_records <= 0:
        return 1.0
    decayed = math.sqrt(MIN_UNITS * max(n_variants, 1) / total_records)
    return min(1.0, max(lowest, decayed))


def exploration_bonus(encoding: Encoding, fit: ModelFit, z: float, higher_is_better: bool = True) -> float:
    """``alpha``: z times the score's posterior sd at the average context, towards the objective."""
    bonus = z * fit.score_sd(encoding.average_context)
    return bonus if higher_is_better else -bonus


def raw_weights(encoding: Encoding, weights: np.ndarray) -> tuple[float, dict[str, float], dict[str, dict[str, float]]]:
    """Fold ``weights`` on the encoded columns into (intercept, numerical, categorical) raw-unit weights."""
    if weights.shape != (encoding.n_columns,):
        raise ValueError(f"{weights.shape[0]} weights for {encoding.n_columns} columns")
    intercept = float(weights[0])
    numerical: dict[str, float] = {}
    categorical: dict[str, dict[str, float]] = {}
    column = 1
    for feature in encoding.features:
        if isinstance(feature, NumericFeature):
            w = float(weights[column]) / feature.scale
            numerical[feature.name] = w
            intercept -= w * feature.centre
            column += 1
        elif isinstance(feature, CategoricalFeature):
            block = weights[column : column + len(feature.values)]
            categorical[feature.name] = {value: float(w) for value, w in zip(feature.values, block, strict=True)}
            intercept -= float(np.dot(block, np.asarray(feature.centres)))
            column += len(feature.values)
    return intercept, numerical, categorical


def group_config(encoding: Encoding, fit: ModelFit, alpha: float) -> dict[str, JsonValue]:
    """One variant's entry of ``cmab_configs[...].config``."""
    intercept, numerical, categorical = raw_weights(encoding, fit.mean)
    if not numerical and not categorical:
        numerical = {BIAS_FEATURE: 0.0}
    return {
        "alpha": float(alpha),
        "intercept": intercept,
        "records": int(fit.units),
        "weightsNumerical": numerical,
        "weightsCategorical": categorical,
    }


def cmab_config(
    encoding: Encoding,
    fits: Mapping[str, ModelFit],
    exploration_window_rate: float | None = None,
    higher_is_better: bool = True,
) -> dict[str, dict[str, JsonValue]]:
    """The ``config`` map ``{variant id: weights}`` for every fitted variant."""
    z = exploration_z(exploration_window_rate)
    return {
        variant: group_config(encoding, fit, exploration_bonus(encoding, fit, z, higher_is_better))
        for variant, fit in fits.items()
    }
