"""The evaluator answers what the SDK rules say: overrides first, then buckets, drafts and winners."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openautotune.serving import specs_v1
from openautotune.serving.bucketing import bucket, unit_id
from openautotune.serving.evaluate import Evaluator, UnsupportedSpec, compile_entry
from tests.serving.fixtures import T0, golden_pairs

SPECS = specs_v1.render(golden_pairs(), T0)
EVALUATOR = Evaluator.from_specs(SPECS)
IDS = ["v_red", "v_green", "v_blue"]
users = st.fixed_dictionaries(
    {"userID": st.text(max_size=20)},
    optional={"customIDs": st.fixed_dictionaries({"companyID": st.text(max_size=20)})},
)


def by_thresholds(salt: str, unit: str, thresholds: list[int]) -> str:
    b = bucket(salt, unit)
    return next(variant for variant, t in zip(IDS, thresholds, strict=True) if b < t)


@given(users)
def test_running_autotunes_follow_the_thresholds(user: dict[str, Any]) -> None:
    sized = EVALUATOR.evaluate(user, "sized_one")
    assert sized is not None
    assert sized.rule_id == by_thresholds("salt-sized_one", unit_id(user, "userID"), [200, 500, 1000])
    assert sized.variant_id == sized.rule_id and sized.version == 1
    updated = EVALUATOR.evaluate(user, "updated_one")
    assert updated is not None
    assert updated.rule_id == by_thresholds("salt-updated_one", unit_id(user, "companyID"), [125, 725, 1000])
    assert updated.version == 3


@given(users)
def test_drafts_and_finished(user: dict[str, Any]) -> None:
    draft = EVALUATOR.evaluate(user, "draft_one")
    assert draft is not None
    assert (draft.rule_id, draft.group_name, draft.value, draft.variant_id) == (
        "prestart",
        None,
        {"color": "red"},
        None,
    )
    finished = EVALUATOR.evaluate(user, "finished_one")
    assert finished is not None
    assert (finished.rule_id, finished.group_name, finished.value) == (
        "v_green",
        "green",
        {"color": "green", "shade": 2},
    )


def test_overrides_come_first_and_match_ids_case_insensitively() -> None:
    def rule(user: dict[str, Any]) -> str:
        evaluation = EVALUATOR.evaluate(user, "overridden_one")
        assert evaluation is not None
        return evaluation.rule_id

    assert rule({"userID": "alice"}) == "v_blue:override"
    assert rule({"userID": "BOB"}) == "v_blue:override"
    carol = {"userID": "x", "customIDs": {"stableID": "Carol"}}
    assert rule({**carol, "statsigEnvironment": {"tier": "production"}}) == "v_red:override"
    assert rule({**carol, "statsigEnvironment": {"tier": "staging"}}) in IDS
    assert rule(carol) in IDS
    forced = EVALUATOR.evaluate({"userID": "alice"}, "overridden_one")
    assert forced is not None and forced.variant_id == "v_blue" and forced.group_name == "blue"


def test_unknown_and_disabled() -> None:
    assert EVALUATOR.evaluate({"userID": "u"}, "nope") is None
    entry = {**SPECS["dynamic_configs"][1], "enabled": False}
    disabled = compile_entry(entry).evaluate({"userID": "u"})
    assert (disabled.rule_id, disabled.value) == ("disabled", {"color": "red"})


@pytest.mark.parametrize(
    "condition",
    [
        {"type": "user_field", "field": "country", "operator": "any", "targetValue": ["DE"], "idType": "userID"},
        {"type": "user_bucket", "operator": "gt", "targetValue": 10, "idType": "userID"},
        {"type": "pass_gate", "targetValue": "g", "idType": "userID"},
    ],
)
def test_shapes_we_never_publish_are_refused(condition: dict[str, Any]) -> None:
    entry = {**SPECS["dynamic_configs"][1]}
    entry["rules"] = [{**entry["rules"][0], "conditions": [condition]}]
    with pytest.raises(UnsupportedSpec):
        compile_entry(entry)


def test_override_after_bucket_rules_is_refused() -> None:
    entry = SPECS["dynamic_configs"][4]
    with pytest.raises(UnsupportedSpec):
        compile_entry({**entry, "rules": entry["rules"][2:] + entry["rules"][:2]})
