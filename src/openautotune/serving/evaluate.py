"""Server-side evaluation: the SDKs' answer for the same config specs, precomputed per autotune.

An `Evaluator` is compiled from a rendered v1 document (the very document SDKs download), so what
the server answers can never drift from what an SDK would answer. Compilation turns each entry's
bucket rules into a 1000-slot table, and each rule into a ready answer; evaluating a user is one
hash and one lookup. Only the condition shapes openautotune renders are accepted; anything else
raises `UnsupportedSpec`, which also makes compilation a check of the renderer.

Holdout rules (serving/holdout.py) carry a second `user_bucket` condition under another salt, the
"gate": they compile into a second 1000-slot table that a unit reads when its gate hash passes
(a bucket no gated rule takes falls through to the ordinary table, as in the SDKs). A unit outside
the holdout costs one hash more than before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openautotune.serving.bucketing import BUCKETS, hash64, raw_unit_id
from openautotune.serving.entries import Json, variant_of_rule


class UnsupportedSpec(ValueError):
    """A spec entry uses a shape the evaluator (and the renderer) does not produce."""


@dataclass(frozen=True)
class Evaluation:
    """What `get_experiment` answers: value, rule id (logged as `ruleID`), group name, version."""

    config_name: str
    rule_id: str
    variant_id: str | None
    group_name: str | None
    value: Json
    version: int | None
    id_type: str


@dataclass(frozen=True)
class _Override:
    id_type: str
    ids: frozenset[str]
    environments: frozenset[str] | None
    answer: Evaluation


@dataclass(frozen=True)
class _Gate:
    """Rules that also need `h(f"{salt}.{unit}") % 1000 < limit` (the holdout), as their own table."""

    salt: str
    limit: float
    table: tuple[Evaluation, ...]


@dataclass(frozen=True)
class CompiledConfig:
    name: str
    id_type: str
    overrides: tuple[_Override, ...]
    salt: str | None  # None: the table does not depend on the bucket (public rules only)
    bucket_id_type: str
    table: tuple[Evaluation, ...]  # BUCKETS answers, by bucket
    gate: _Gate | None = None

    def evaluate(self, user: Mapping[str, Any]) -> Evaluation:
        for override in self.overrides:
            if _matches(override, user):
                return override.answer
        if self.salt is None:
            return self.table[0]
        unit = raw_unit_id(user, self.bucket_id_type) or ""
        bucket = hash64(f"{self.salt}.{unit}") % BUCKETS
        gate = self.gate
        if gate is not None and hash64(f"{gate.salt}.{unit}") % BUCKETS < gate.limit:
            return gate.table[bucket]
        return self.table[bucket]


def _matches(override: _Override, user: Mapping[str, Any]) -> bool:
    unit = raw_unit_id(user, override.id_type)
    if unit is None or unit.casefold() not in override.ids:
        return False
    if override.environments is None:
        return True
    environment = user.get("statsigEnvironment")
    tier = environment.get("tier") if isinstance(environment, Mapping) else None
    return tier is not None and str(tier).casefold() in override.environments


def _answer(entry: Json, rule: Json | None, rule_id: str) -> Evaluation:
    value = rule["returnValue"] if rule is not None else entry.get("defaultValue", {})
    version = entry.get("version")
    return Evaluation(
        config_name=entry["name"],
        rule_id=rule_id,
        variant_id=variant_of_rule(rule_id) if rule is not None else None,
        group_name=rule.get("groupName") if rule is not None else None,
        value=value,
        version=int(version) if version is not None else None,
        id_type=str(entry.get("idType", "")),
    )


def _folded(values: Any, where: str) -> frozenset[str]:
    if not isinstance(values, list):
        raise UnsupportedSpec(f"{where}: targetValue must be a list")
    return frozenset(str(v).casefold() for v in values)


def _override(entry: Json, rule: Json, conditions: Sequence[Json]) -> _Override:
    ids: frozenset[str] | None = None
    id_type = ""
    environments: frozenset[str] | None = None
    for condition in conditions:
        kind, operator = condition.get("type"), condition.get("operator")
        if kind == "unit_id" and operator == "any" and ids is None:
            ids, id_type = _folded(condition.get("targetValue"), entry["name"]), str(condition.get("idType", "userID"))
        elif kind == "environment_field" and operator == "any" and condition.get("field") == "tier":
            environments = _folded(condition.get("targetValue"), entry["name"])
        else:
            raise UnsupportedSpec(f"{entry['name']}: unsupported override condition {condition!r}")
    assert ids is not None
    return _Override(id_type=id_type, ids=ids, environments=environments, answer=_answer(entry, rule, rule["id"]))


def _bucket_limit(
    entry: Json, conditions: Sequence[Json], key: list[tuple[str, str]], gates: list[tuple[str, str, float]]
) -> float:
    """The exclusive upper bucket a rule accepts (BUCKETS for public-only rules); a condition under
    another salt than the entry's (a holdout gate) goes to `gates` instead."""
    limit: float = BUCKETS
    for condition in conditions:
        kind = condition.get("type")
        if kind == "public":
            continue
        if kind != "user_bucket" or condition.get("operator") != "lt":
            raise UnsupportedSpec(f"{entry['name']}: unsupported condition {condition!r}")
        salt = str((condition.get("additionalValues") or {}).get("salt") or "")
        id_type = str(condition.get("idType", "userID"))
        if salt != entry.get("salt") and any(c is not condition and c.get("type") == "user_bucket" for c in conditions):
            gates.append((salt, id_type, float(condition["targetValue"])))
            continue
        key.append((salt, id_type))
        limit = min(limit, float(condition["targetValue"]))
    return limit


def _table(answers: Sequence[tuple[float, Evaluation]], fallback: Sequence[Evaluation]) -> tuple[Evaluation, ...]:
    """The first answer whose limit the bucket is under, else the fallback's answer for that bucket."""
    return tuple(
        next((answer for limit, answer in answers if bucket < limit), fallback[bucket]) for bucket in range(BUCKETS)
    )


def compile_entry(entry: Json) -> CompiledConfig:
    name = entry["name"]
    id_type = str(entry.get("idType", ""))
    if not entry.get("enabled", False):
        disabled = _answer(entry, None, "disabled")
        return CompiledConfig(name, id_type, (), None, "userID", (disabled,) * BUCKETS)
    overrides: list[_Override] = []
    limits: list[tuple[float, Json]] = []
    gated: list[tuple[float, Json]] = []
    gate_keys: list[tuple[str, str, float]] = []
    keys: list[tuple[str, str]] = []
    for rule in entry.get("rules", []):
        if rule.get("passPercentage") != 100:
            raise UnsupportedSpec(f"{name}: every rule must pass 100%")
        conditions = rule.get("conditions", [])
        if any(c.get("type") == "unit_id" for c in conditions):
            if limits or gated:
                raise UnsupportedSpec(f"{name}: override rules must come before bucket rules")
            overrides.append(_override(entry, rule, conditions))
            continue
        gates: list[tuple[str, str, float]] = []
        limit = _bucket_limit(entry, conditions, keys, gates)
        if not gates:
            limits.append((limit, rule))
        elif limits or len(gates) > 1:
            raise UnsupportedSpec(f"{name}: gated (holdout) rules must come first and have one gate")
        else:
            gated.append((limit, rule))
            gate_keys.extend(gates)
    if len(set(keys)) > 1:
        raise UnsupportedSpec(f"{name}: bucket conditions must share one salt and id type")
    if gate_keys and (len(set(gate_keys)) > 1 or not keys or gate_keys[0][1] != keys[0][1]):
        raise UnsupportedSpec(f"{name}: holdout rules must share one gate and the bucket id type")
    default = _answer(entry, None, "default")
    answers = [(limit, _answer(entry, rule, rule["id"])) for limit, rule in limits]
    table = _table(answers, [default] * BUCKETS)
    salt, bucket_id_type = keys[0] if keys else (None, "userID")
    gate = None
    if gate_keys:
        gate_table = _table([(limit, _answer(entry, rule, rule["id"])) for limit, rule in gated], table)
        gate = _Gate(gate_keys[0][0], gate_keys[0][2], gate_table)
    return CompiledConfig(name, id_type, tuple(overrides), salt, bucket_id_type, table, gate)


class Evaluator:
    """Every autotune of one specs document, ready to evaluate."""

    def __init__(self, configs: Mapping[str, CompiledConfig]) -> None:
        self._configs = dict(configs)

    @classmethod
    def from_specs(cls, specs: Json) -> Evaluator:
        return cls({entry["name"]: compile_entry(entry) for entry in specs.get("dynamic_configs", [])})

    def names(self) -> list[str]:
        return list(self._configs)

    def evaluate(self, user: Mapping[str, Any], config_name: str) -> Evaluation | None:
        """The SDK's answer for `user` (Statsig JSON form); None for an unknown config."""
        config = self._configs.get(config_name)
        return config.evaluate(user) if config is not None else None
