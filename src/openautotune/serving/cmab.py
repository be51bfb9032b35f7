"""Contextual autotunes as v2 `cmab_configs` entries (sdk-core-protocol.md, "Contextual autotunes").

A running contextual autotune is published as a CMAB entry, which the core SDK checks before
`dynamic_configs`: without a trained policy (the exploration window) the entry has no `config`, so the
SDK splits units equally by `sha256(salt.unitID) % 10000`; afterwards it carries the policy published
with the allocation version it names (`version`, echoed as `configVersion`), its explore share
(`sampleRate`) and the raw-unit weights of every variant. Draft and finished autotunes get no entry: the
`dynamic_configs` entry already serves them (the default, or the variant chosen by hand).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openautotune.domain.autotune import Allocation, Autotune, Status
from openautotune.serving.entries import Json

Pair = tuple[Autotune, Allocation | None]


def cmab_entry(autotune: Autotune, allocation: Allocation | None, policy: Mapping[str, Any] | None) -> Json:
    """One `cmab_configs` entry; `policy` is `{"version", "sampleRate", "config"}` of the latest policy of
    the current run, or None before the first one."""
    definition = autotune.definition
    entry: Json = {
        "salt": autotune.salt,
        "defaultValue": definition.variants[0].json,
        "idType": definition.id_type,
        "enabled": True,
        "version": int(policy["version"]) if policy is not None else (allocation.version if allocation else 0),
        "sampleRate": float(policy["sampleRate"]) if policy is not None else 1.0,
        "higherIsBetter": not definition.lower_is_better,
        "groups": [
            {"name": variant.name, "id": variant.id, "parameterValues": variant.json} for variant in definition.variants
        ],
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
