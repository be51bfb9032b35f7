"""One autotune as a Statsig `dynamic_config` entry, shared by config specs v1 and v2.

The entry is built once here (v1 form, conditions inline); `specs_v1` lists the entries and
`specs_v2` moves their conditions into a `condition_map`. Rule ids are what SDKs log as
`ruleID`, so they are chosen for the analysis:

- `prestart`: not started; everyone gets the default (first) variant; never analysed.
- `<variant id>`: the variant a bucket (or, once finished, everyone) was assigned.
- `<variant id>:override`: a unit forced into a variant by a user-id override; not randomised,
  so not analysable either.
- `<variant id>:holdout`: a unit of the holdout (serving/holdout.py), analysed apart from the bandit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openautotune.domain.allocation import cumulative_thresholds, exploration_weights
from openautotune.domain.autotune import Allocation, Autotune, Status, UserIdOverride, Variant
from openautotune.serving.holdout import HOLDOUT_SUFFIX, holdout_rules

PRESTART = "prestart"
OVERRIDE_SUFFIX = ":override"
ENVIRONMENT_FIELD = "tier"

Json = dict[str, Any]


def override_rule_id(variant_id: str) -> str:
    return variant_id + OVERRIDE_SUFFIX


def variant_of_rule(rule_id: str) -> str | None:
    """The variant id a rule id stands for; None for `prestart` and rule ids of no variant."""
    if rule_id == PRESTART or not rule_id:
        return None
    return rule_id.removesuffix(OVERRIDE_SUFFIX).removesuffix(HOLDOUT_SUFFIX)


def _prestart_rule(default_value: Json, id_type: str) -> Json:
    return {
        "name": PRESTART,
        "id": PRESTART,
        "salt": PRESTART,
        "passPercentage": 100,
        "conditions": [{"type": "public", "idType": id_type}],
        "returnValue": default_value,
        "idType": id_type,
    }


def _variant_rule(variant: Variant, rule_id: str, id_type: str, conditions: list[Json]) -> Json:
    return {
        "name": rule_id,
        "id": rule_id,
        "salt": rule_id,
        "groupName": variant.name,
        "passPercentage": 100,
        "conditions": conditions,
        "returnValue": variant.json,
        "idType": id_type,
    }


def _override_rule(autotune: Autotune, override: UserIdOverride) -> Json | None:
    variant = autotune.definition.variant_by_ref(override.group_id)
    if variant is None or not override.ids:
        return None
    id_type = override.unit_type or autotune.definition.id_type
    conditions: list[Json] = [
        {"type": "unit_id", "operator": "any", "targetValue": list(override.ids), "idType": id_type}
    ]
    if override.environment:
        conditions.append(
            {
                "type": "environment_field",
                "field": ENVIRONMENT_FIELD,
                "operator": "any",
                "targetValue": [override.environment],
                "idType": id_type,
            }
        )
    return _variant_rule(variant, override_rule_id(variant.id), id_type, conditions)


def serving_thresholds(autotune: Autotune, allocation: Allocation | None) -> tuple[int, ...]:
    """The cumulative thresholds to serve: the allocation's, or the exploration split when it has none
    that fits the variants (an allocation always fits unless the variants changed after it)."""
    variants = autotune.definition.variants
    if allocation is not None and len(allocation.thresholds) == len(variants):
        return tuple(int(t) for t in allocation.thresholds)
    return cumulative_thresholds(exploration_weights(autotune.definition))


def _bucket_rules(autotune: Autotune, thresholds: Sequence[int]) -> list[Json]:
    id_type = autotune.definition.id_type
    return [
        _variant_rule(
            variant,
            variant.id,
            id_type,
            [
                {
                    "type": "user_bucket",
                    "operator": "lt",
                    "targetValue": threshold,
                    "additionalValues": {"salt": autotune.salt},
                    "idType": id_type,
                }
            ],
        )
        for variant, threshold in zip(autotune.definition.variants, thresholds, strict=True)
    ]


def _winner_rule(autotune: Autotune, winner: Variant) -> Json:
    id_type = autotune.definition.id_type
    return _variant_rule(winner, winner.id, id_type, [{"type": "public", "idType": id_type}])


def config_entry(autotune: Autotune, allocation: Allocation | None) -> Json:
    """The autotune's `dynamic_configs` entry in v1 form (sdk-protocol.md, Config specs)."""
    definition = autotune.definition
    id_type = definition.id_type
    default_value = definition.variants[0].json
    version = allocation.version if allocation is not None else autotune.allocation_version
    rules: list[Json]
    winner = autotune.winner
    if autotune.status is Status.DRAFT:
        rules = [_prestart_rule(default_value, id_type)]
    else:
        rules = [rule for o in autotune.user_id_overrides if (rule := _override_rule(autotune, o)) is not None]
        if autotune.status is Status.FINISHED and winner is not None:
            rules.append(_winner_rule(autotune, winner))
        else:
            rules.extend(holdout_rules(autotune, _variant_rule))
            rules.extend(_bucket_rules(autotune, serving_thresholds(autotune, allocation)))
    return {
        "name": autotune.id,
        "type": "dynamic_config",
        "entity": "autotune",
        "enabled": True,
        "salt": autotune.salt,
        "defaultValue": default_value,
        "idType": id_type,
        "version": version,
        "rules": rules,
    }
