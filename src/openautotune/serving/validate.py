"""Strict checks run on every rendered specs document before any SDK can download it.

A rendering bug must never reach SDKs: the core SDK rejects a whole v2 document for one missing
field, and both SDKs silently drop an entry with an unknown condition type or operator. These
checks are stricter than either SDK: only the shapes openautotune means to publish pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openautotune.serving.entries import Json
from openautotune.serving.validate_cmab import cmab_problems

U32_MAX = 2**32 - 1
CONDITION_TYPES = frozenset({"public", "user_bucket", "unit_id", "environment_field"})
OPERATORS = frozenset({"lt", "any"})
V1_TOP = {
    "has_updates": bool,
    "time": int,
    "feature_gates": list,
    "dynamic_configs": list,
    "layer_configs": list,
    "layers": dict,
    "sdk_flags": dict,
    "sdk_configs": dict,
    "diagnostics": dict,
}
V2_TOP = {
    "has_updates": bool,
    "time": int,
    "feature_gates": dict,
    "dynamic_configs": dict,
    "layer_configs": dict,
    "condition_map": dict,
    "experiment_to_layer": dict,
    "checksum": str,
    "diagnostics": dict,
}
SPEC_FIELDS = {
    "type": str,
    "entity": str,
    "salt": str,
    "enabled": bool,
    "defaultValue": dict,
    "idType": str,
    "rules": list,
    "version": int,
}
RULE_FIELDS = {
    "name": str,
    "id": str,
    "salt": str,
    "passPercentage": int,
    "returnValue": dict,
    "conditions": list,
    "idType": str,
}


class InvalidSpecs(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:10]))
        self.problems = problems


def _fields(where: str, data: Any, required: dict[str, type], problems: list[str]) -> bool:
    if not isinstance(data, dict):
        problems.append(f"{where}: not an object")
        return False
    for name, kind in required.items():
        value = data.get(name)
        # bool is an int in Python: never accept one where a number is meant
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{where}.{name}: missing or not {kind.__name__}")
    return True


def _of(value: Any, kind: type) -> Any:
    """`value` when it has the expected container type, else an empty one (already reported)."""
    return value if isinstance(value, kind) else kind()


def _condition(where: str, condition: Any, problems: list[str]) -> None:
    if not _fields(where, condition, {"type": str, "idType": str}, problems):
        return
    kind = condition.get("type")
    if kind not in CONDITION_TYPES:
        problems.append(f"{where}.type: {kind!r} is not published by openautotune")
    if kind == "public":
        return
    operator = condition.get("operator")
    if operator not in OPERATORS:
        problems.append(f"{where}.operator: {operator!r} is not published by openautotune")
    target = condition.get("targetValue")
    if kind == "user_bucket":
        if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target <= 1000:
            problems.append(f"{where}.targetValue: a bucket threshold must be an integer in 0..1000")
        salt = (condition.get("additionalValues") or {}).get("salt")
        if not isinstance(salt, str) or not salt:
            problems.append(f"{where}.additionalValues.salt: missing")
    elif not isinstance(target, list) or not all(isinstance(v, str) for v in target):
        problems.append(f"{where}.targetValue: must be a list of strings")


def _spec(where: str, spec: Any, conditions: Callable[[str, Any], None], problems: list[str]) -> None:
    if not _fields(where, spec, SPEC_FIELDS, problems):
        return
    if isinstance(spec.get("version"), int) and not 0 <= spec["version"] <= U32_MAX:
        problems.append(f"{where}.version: must fit an unsigned 32-bit integer")
    if spec.get("enabled") is not True:
        problems.append(f"{where}.enabled: openautotune always publishes enabled entries")
    rules = _of(spec.get("rules"), list)
    if not rules:
        problems.append(f"{where}.rules: empty")
    for index, rule in enumerate(rules):
        rule_where = f"{where}.rules[{index}]"
        if _fields(rule_where, rule, RULE_FIELDS, problems):
            if rule.get("passPercentage") != 100:
                problems.append(f"{rule_where}.passPercentage: must be 100")
            conditions(rule_where, _of(rule.get("conditions"), list))


def _finish(problems: list[str]) -> None:
    if problems:
        raise InvalidSpecs(problems)


def validate_v1(document: Json) -> None:
    problems: list[str] = []
    _fields("specs", document, V1_TOP, problems)

    def conditions(where: str, items: Any) -> None:
        for index, condition in enumerate(items):
            _condition(f"{where}.conditions[{index}]", condition, problems)

    names: set[str] = set()
    for index, entry in enumerate(_of(document.get("dynamic_configs"), list)):
        where = f"dynamic_configs[{index}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or name in names:
            problems.append(f"{where}.name: missing or repeated")
        names.add(str(name))
        _spec(where, entry, conditions, problems)
    _finish(problems)


def validate_v2(document: Json) -> None:
    problems: list[str] = []
    _fields("specs", document, V2_TOP, problems)
    checksum = document.get("checksum")
    if isinstance(checksum, str) and not (checksum.isascii() and checksum.isalnum()):
        problems.append("specs.checksum: must be alphanumeric")
    condition_map = _of(document.get("condition_map"), dict)
    for key, condition in condition_map.items():
        _condition(f"condition_map[{key!r}]", condition, problems)

    def conditions(where: str, keys: Any) -> None:
        for index, key in enumerate(keys):
            if not isinstance(key, str) or key not in condition_map:
                problems.append(f"{where}.conditions[{index}]: {key!r} is not a key of condition_map")

    for name, spec in _of(document.get("dynamic_configs"), dict).items():
        if isinstance(spec, dict) and "name" in spec:
            problems.append(f"dynamic_configs[{name!r}]: v2 specs carry no name field")
        _spec(f"dynamic_configs[{name!r}]", spec, conditions, problems)
    if "cmab_configs" in document:
        problems.extend(cmab_problems(document["cmab_configs"]))
    _finish(problems)
