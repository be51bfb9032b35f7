"""The holdout's rules: a fixed share of units gets an equal split for the whole run (engine.md, "Holdout").

Who is held out is decided by a hash that is independent of the variant bucket: a unit is in the
holdout when `h(f"{salt}:holdout.{unitID}") % 1000 < round(10 x holdoutPercent)`, the autotune's salt
(new at every run) plus the fixed suffix `:holdout`. Inside the holdout the variant comes from the
ordinary bucket (`h(f"{salt}.{unitID}") % 1000`) cut into equal parts that never change.

In the specs these are ordinary Statsig rules, before the adaptive bucket rules: rule k of the holdout
has two `user_bucket` conditions (both must pass): "holdout bucket < share" and "bucket < the k-th
equal threshold". The last threshold is 1000, so a held-out unit never falls through to the bandit's
rules, and every other unit never matches a holdout rule. The rule id `<variant id>:holdout` is what
SDKs log as `ruleID`, which is how ingestion marks the unit as held out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openautotune.domain.allocation import BUCKETS, cumulative_thresholds
from openautotune.domain.autotune import Autotune, Status, Variant

HOLDOUT_SUFFIX = ":holdout"
SALT_SUFFIX = ":holdout"

Json = dict[str, Any]
RuleMaker = Callable[[Variant, str, str, list[Json]], Json]


def holdout_rule_id(variant_id: str) -> str:
    return variant_id + HOLDOUT_SUFFIX


def holdout_salt(autotune_salt: str) -> str:
    """The salt of the holdout hash: the run's salt plus a fixed suffix, so membership is per run."""
    return autotune_salt + SALT_SUFFIX


def holdout_buckets(percent: float | None) -> int:
    """How many of the 1000 holdout buckets are held out (0 .. 500 for 0 .. 50 %)."""
    return round((percent or 0.0) * BUCKETS / 100.0)


def equal_thresholds(variants: int) -> tuple[int, ...]:
    """The holdout's fixed equal split, as cumulative bucket thresholds (the last is 1000)."""
    return cumulative_thresholds([1.0 / variants] * variants)


def holdout_rules(autotune: Autotune, make_rule: RuleMaker) -> list[Json]:
    """The holdout's rules while the run is running; none without a holdout, in a draft or once finished
    (a finished run serves its winner to everyone: nothing after the decision is analysed)."""
    limit = holdout_buckets(autotune.definition.holdout_percent)
    if limit <= 0 or autotune.status is not Status.RUNNING:
        return []
    definition = autotune.definition
    id_type = definition.id_type
    gate: Json = {
        "type": "user_bucket",
        "operator": "lt",
        "targetValue": limit,
        "additionalValues": {"salt": holdout_salt(autotune.salt)},
        "idType": id_type,
    }
    return [
        make_rule(
            variant,
            holdout_rule_id(variant.id),
            id_type,
            [
                dict(gate),
                {
                    "type": "user_bucket",
                    "operator": "lt",
                    "targetValue": threshold,
                    "additionalValues": {"salt": autotune.salt},
                    "idType": id_type,
                },
            ],
        )
        for variant, threshold in zip(definition.variants, equal_thresholds(len(definition.variants)), strict=True)
    ]
