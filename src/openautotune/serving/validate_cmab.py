"""Strict checks of v2 `cmab_configs` (contextual autotunes), run before publishing.

The core SDK rejects the **whole** specs document when one CMAB entry misses a field or has a
version beyond 32 bits, and silently gives a group no score when both its weight maps are empty
(sdk-core-protocol.md, "Contextual autotunes"). A bad contextual entry must never take every other
autotune down with it, so every such shape is refused here.
"""

from __future__ import annotations

import math
from typing import Any

U32_MAX = 2**32 - 1


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _value_weights(values: Any) -> bool:
    return isinstance(values, dict) and all(isinstance(c, str) and _number(w) for c, w in values.items())


def _require(where: str, entry: dict[str, Any], name: str, check: Any, problems: list[str], what: str) -> None:
    if name not in entry or not check(entry[name]):
        problems.append(f"{where}.{name}: missing or not {what}")


def _group(where: str, group: Any, problems: list[str]) -> str | None:
    if not isinstance(group, dict):
        problems.append(f"{where}: not an object")
        return None
    _require(where, group, "name", lambda v: isinstance(v, str) and v, problems, "a non-empty string")
    _require(where, group, "id", lambda v: isinstance(v, str) and v, problems, "a non-empty string")
    _require(where, group, "parameterValues", lambda v: isinstance(v, dict), problems, "an object")
    group_id = group.get("id")
    return group_id if isinstance(group_id, str) else None


def _weights(where: str, weights: Any, problems: list[str]) -> None:
    if not isinstance(weights, dict):
        problems.append(f"{where}: not an object")
        return
    _require(where, weights, "alpha", _number, problems, "a finite number")
    _require(where, weights, "intercept", _number, problems, "a finite number")
    _require(
        where,
        weights,
        "records",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        problems,
        "a count",
    )
    numerical = weights.get("weightsNumerical")
    categorical = weights.get("weightsCategorical")
    if not isinstance(numerical, dict) or not all(isinstance(k, str) and _number(v) for k, v in numerical.items()):
        problems.append(f"{where}.weightsNumerical: must map features to finite numbers")
        numerical = {}
    if not isinstance(categorical, dict) or not all(
        isinstance(k, str)
        and isinstance(values, dict)
        and all(isinstance(c, str) and _number(w) for c, w in values.items())
        for k, values in categorical.items()
    ):
        problems.append(f"{where}.weightsCategorical: must map features to {{value: finite number}}")
        categorical = {}
    if not numerical and not categorical:
        problems.append(f"{where}: both weight maps are empty, so the SDK would not score this group")


def cmab_problems(cmab_configs: Any) -> list[str]:
    """Everything wrong with a `cmab_configs` value (empty when it may be published)."""
    if not isinstance(cmab_configs, dict):
        return ["cmab_configs: not an object"]
    problems: list[str] = []
    for name, entry in cmab_configs.items():
        where = f"cmab_configs[{name!r}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not an object")
            continue
        _require(where, entry, "salt", lambda v: isinstance(v, str) and v, problems, "a non-empty string")
        _require(where, entry, "defaultValue", lambda v: isinstance(v, dict), problems, "an object")
        _require(where, entry, "idType", lambda v: isinstance(v, str) and v, problems, "a non-empty string")
        _require(where, entry, "enabled", lambda v: isinstance(v, bool), problems, "a boolean")
        _require(where, entry, "higherIsBetter", lambda v: isinstance(v, bool), problems, "a boolean")
        _require(
            where,
            entry,
            "version",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U32_MAX,
            problems,
            "an unsigned 32-bit integer",
        )
        _require(where, entry, "sampleRate", lambda v: _number(v) and 0 <= v <= 1, problems, "a number in 0..1")
        groups = entry.get("groups")
        if not isinstance(groups, list):
            problems.append(f"{where}.groups: missing or not a list")
            groups = []
        ids = {_group(f"{where}.groups[{i}]", group, problems) for i, group in enumerate(groups)}
        config = entry.get("config")
        if config is not None:
            if not isinstance(config, dict):
                problems.append(f"{where}.config: not an object")
                continue
            for group_id, weights in config.items():
                if group_id not in ids:
                    problems.append(f"{where}.config[{group_id!r}]: no group has this id")
                _weights(f"{where}.config[{group_id!r}]", weights, problems)
        for optional, check in (("targetingGateName", str), ("targetAppIDs", list)):
            if optional in entry and not isinstance(entry[optional], check):
                problems.append(f"{where}.{optional}: not a {check.__name__}")
    return problems
