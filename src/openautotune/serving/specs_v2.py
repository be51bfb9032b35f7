"""Config specs v2 (`/v2/download_config_specs`), the document Statsig's server-core SDKs read.

The same entries as v1 (`entries.config_entry`), in map form: specs keyed by name and every
condition moved into `condition_map` under a readable key, rules listing those keys
(sdk-core-protocol.md). A finished autotune is already one `public` rule returning the winner,
which matters here: the core SDK does not stop at `enabled: false`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from openautotune.serving.entries import Json, config_entry
from openautotune.serving.specs_v1 import DIAGNOSTICS, Pair

CHECKSUM_LENGTH = 20


def _condition_key(owner: str, condition: Json) -> str:
    kind = condition["type"]
    if kind == "public":
        return f"public:{condition['idType']}"
    if kind == "user_bucket":
        return f"{owner}:bucket_lt_{condition['targetValue']}"
    if kind == "unit_id":
        return f"{owner}:ids"
    return f"{owner}:{kind}"


class _ConditionMap:
    """Readable, unique keys: equal conditions share a key, different ones never do."""

    def __init__(self) -> None:
        self.conditions: dict[str, Json] = {}

    def key(self, owner: str, condition: Json) -> str:
        base = _condition_key(owner, condition)
        key, number = base, 1
        while key in self.conditions and self.conditions[key] != condition:
            number += 1
            key = f"{base}#{number}"
        self.conditions[key] = condition
        return key


def _map_entry(entry: Json, conditions: _ConditionMap) -> Json:
    spec = {key: value for key, value in entry.items() if key != "name"}
    spec["rules"] = [
        {
            **rule,
            "conditions": [conditions.key(f"{entry['name']}:{rule['id']}", c) for c in rule["conditions"]],
        }
        for rule in entry["rules"]
    ]
    return spec


def checksum(document: Json) -> str:
    """Alphanumeric (SDKs percent-encode it twice), different for every different document and time."""
    digest = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:CHECKSUM_LENGTH]


def render(pairs: Sequence[Pair], time_ms: int, cmab_configs: Mapping[str, Json] | None = None) -> Json:
    """The whole v2 document for `pairs` of (autotune, its latest allocation or None).

    `cmab_configs`, when given, is published as is (contextual autotunes, keyed by autotune id);
    `validate.validate_v2` checks it strictly, since one bad entry makes the SDK reject everything.
    """
    conditions = _ConditionMap()
    configs: dict[str, Any] = {}
    for autotune, allocation in pairs:
        entry = config_entry(autotune, allocation)
        configs[entry["name"]] = _map_entry(entry, conditions)
    document: Json = {
        "has_updates": True,
        "time": time_ms,
        "feature_gates": {},
        "dynamic_configs": configs,
        "layer_configs": {},
        "condition_map": conditions.conditions,
        "experiment_to_layer": {},
        "diagnostics": dict(DIAGNOSTICS),
    }
    if cmab_configs:
        document["cmab_configs"] = dict(cmab_configs)
    document["checksum"] = checksum(document)
    return document
