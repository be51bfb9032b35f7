"""Contextual autotunes as v2 `cmab_configs` entries (sdk-core-protocol.md, "Contextual autotunes").

A running contextual autotune is published as a CMAB entry, which the core SDK checks before
`dynamic_configs`: without a trained policy (the exploration window) the entry has no `config`, so the
SDK splits units equally by `sha256(salt.unitID) % 10000`; afterwards it carries the policy published
with the allocation version it names (`version`, echoed as `configVersion`), its explore share
(`sampleRate`) and the raw-unit weights of every variant. Draft and finished autotunes get no entry: the
`dynamic_configs` entry already serves them (the default, or the variant chosen by hand).

`equal_split` is the SDK's untrained path itself, so that `/v1/get_config` assigns exactly as the SDKs do
from the entry they download.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openautotune.domain.autotune import Allocation, Autotune, Status
from openautotune.serving.bucketing import cmab_bucket, cmab_equal_split, unit_id
from openautotune.serving.entries import Json

EXPLORE_SUFFIX = ":explore"

Pair = tuple[Autotune, Allocation | None]


def _served_variants(autotune: Autotune, allocation: Allocation | None, policy: Mapping[str, Any] | None) -> list[Any]:
    """The variants the entry lists (its `groups`): a guardrail exclusion withholds a variant entirely
    (contextual.md, "Guardrails"). Trained: the variants the policy's `config` scores (the engine leaves
    the withheld ones out). Untrained: the variants with a positive share in the latest allocation of the
    run (an excluded variant's weight is 0); every variant when there is none."""
    variants = list(autotune.definition.variants)
    if policy is not None:
        scored = [variant for variant in variants if variant.id in policy["config"]]
        return scored or variants
    if allocation is None or allocation.run != autotune.run or len(allocation.thresholds) != len(variants):
        return variants
    bounds = [0, *allocation.thresholds]
    positive = [variant for k, variant in enumerate(variants) if bounds[k + 1] > max(bounds[: k + 1])]
    return positive or variants


def cmab_entry(autotune: Autotune, allocation: Allocation | None, policy: Mapping[str, Any] | None) -> Json:
    """One `cmab_configs` entry; `policy` is `{"version", "sampleRate", "config"}` of the latest policy of
    the current run, or None before the first one."""
    definition = autotune.definition
    served = _served_variants(autotune, allocation, policy)
    entry: Json = {
        "salt": autotune.salt,
        "defaultValue": definition.variants[0].json,
        "idType": definition.id_type,
        "enabled": True,
        "version": int(policy["version"]) if policy is not None else (allocation.version if allocation else 0),
        "sampleRate": float(policy["sampleRate"]) if policy is not None else 1.0,
        "higherIsBetter": not definition.lower_is_better,
        "groups": [{"name": variant.name, "id": variant.id, "parameterValues": variant.json} for variant in served],
    }
    if policy is not None:
        entry["config"] = policy["config"]
    return entry


def cmab_configs(pairs: Sequence[Pair], policies: Mapping[str, Mapping[str, Any]]) -> dict[str, Json]:
    """Entries for every running contextual autotune (`policies` keyed by autotune id, current run only)."""
    return {
        autotune.id: cmab_entry(autotune, allocation, policies.get(autotune.id))
        for autotune, allocation in pairs
        if autotune.definition.is_contextual and autotune.status is Status.RUNNING
    }


@dataclass(frozen=True)
class ExploreAssignment:
    """What the SDK serves from an untrained entry: `group` as published (`name`, `id`, `parameterValues`),
    `rule_id` `<group id>:explore`, the entry's `version`, and `propensity` = 1/K (see `equal_split`)."""

    group: Json
    rule_id: str
    version: int
    propensity: float


def equal_split(entry: Json, user: Mapping[str, Any]) -> ExploreAssignment | None:
    """The core SDK's answer for `user` (Statsig JSON form) from an untrained `cmab_configs` entry, None once
    the entry carries a trained `config`.

    The group is `groups[floor(h / (10000 / K))]` for `h = sha256(salt.unitID) % 10000` (a missing unit id
    hashes as `""`). Its propensity is 1/K: the hash is independent of the user's features and spreads units
    evenly (each group holds 1/K of the 10,000 buckets up to one bucket, i.e. within 1e-4).
    """
    if "config" in entry:
        return None
    groups: list[Json] = entry["groups"]
    bucket = cmab_bucket(entry["salt"], unit_id(user, entry["idType"]))
    group = groups[cmab_equal_split(bucket, len(groups))]
    return ExploreAssignment(group, group["id"] + EXPLORE_SUFFIX, int(entry["version"]), 1.0 / len(groups))
