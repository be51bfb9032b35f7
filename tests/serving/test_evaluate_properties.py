"""The evaluator on arbitrary user objects: whatever the user holds (ids of any JSON type, customIDs that
are not objects, environments of any shape, nested custom fields), evaluation never raises, is
deterministic, ignores the fields rules do not read, and answers exactly what interpreting the published
rules one by one (as an SDK does) answers. The users are the values the JSON boundary lets through
(domain/json_limits.py: valid Unicode, 64-bit integers, finite numbers, bounded depth).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openautotune.serving.bucketing import bucket, raw_unit_id, unit_id
from openautotune.serving.evaluate import Evaluation, Evaluator
from tests.serving.test_evaluate import SPECS

EVALUATOR = Evaluator.from_specs(SPECS)
ENTRIES = {entry["name"]: entry for entry in SPECS["dynamic_configs"]}

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=16)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | st.sampled_from(["alice", "ALICE", "Bob", "carol", "CAROL", "production", "Production", "staging", ""])
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3))
ids = scalars | values
users = st.fixed_dictionaries(
    {},
    optional={
        "userID": ids,
        "customIDs": st.dictionaries(st.sampled_from(["stableID", "companyID", "companyid", "StableID"]) | text, ids)
        | values,
        "statsigEnvironment": st.fixed_dictionaries({}, optional={"tier": ids}) | values,
        "country": ids,
        "custom": values,
        "privateAttributes": values,
        "email": ids,
    },
) | st.dictionaries(text, values, max_size=4)


def _passes(condition: Mapping[str, Any], entry: Mapping[str, Any], user: Mapping[str, Any]) -> bool:
    """One condition as the SDKs interpret it (only the shapes openautotune publishes)."""
    kind = condition["type"]
    if kind == "public":
        return True
    if kind == "user_bucket":
        salt = condition["additionalValues"]["salt"]
        return bucket(salt, unit_id(user, condition["idType"])) < condition["targetValue"]
    if kind == "unit_id":
        unit = raw_unit_id(user, condition["idType"])
        return unit is not None and unit.casefold() in {str(v).casefold() for v in condition["targetValue"]}
    assert kind == "environment_field" and condition["field"] == "tier", condition
    environment = user.get("statsigEnvironment")
    tier = environment.get("tier") if isinstance(environment, Mapping) else None
    return tier is not None and str(tier).casefold() in {str(v).casefold() for v in condition["targetValue"]}


def interpreted(entry: Mapping[str, Any], user: Mapping[str, Any]) -> tuple[str, Any]:
    """(rule id, value) of the first rule whose conditions all pass, else the default."""
    for rule in entry["rules"]:
        if all(_passes(condition, entry, user) for condition in rule["conditions"]):
            return rule["id"], rule["returnValue"]
    return "default", entry["defaultValue"]


def _answer(user: Mapping[str, Any], name: str) -> Evaluation:
    evaluation = EVALUATOR.evaluate(user, name)
    assert evaluation is not None
    return evaluation


@settings(max_examples=300)
@given(users)
def test_any_user_gets_what_the_rules_say(user: dict[str, Any]) -> None:
    for name, entry in ENTRIES.items():
        evaluation = _answer(user, name)
        assert (evaluation.rule_id, evaluation.value) == interpreted(entry, user), name
        assert evaluation.config_name == name
        assert _answer(user, name) == evaluation  # deterministic


@given(users, values, values, values)
def test_fields_no_rule_reads_change_nothing(user: dict[str, Any], custom: Any, private: Any, country: Any) -> None:
    noisy = {**user, "custom": custom, "privateAttributes": private, "country": country, "ip": "10.0.0.1"}
    for name in ENTRIES:
        assert _answer(noisy, name) == _answer(user, name)


@given(users)
def test_unknown_configs_are_none_for_any_user(user: dict[str, Any]) -> None:
    assert EVALUATOR.evaluate(user, "no_such_autotune") is None
