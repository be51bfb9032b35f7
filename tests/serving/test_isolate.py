"""One autotune that cannot be rendered is left out of the specs; every other one is served, and the
evaluator answers any JSON user without raising."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openautotune.api.spec_cache import publish
from openautotune.domain.autotune import Status
from openautotune.service.specs import SpecState
from openautotune.serving import specs_v1
from openautotune.serving.evaluate import Evaluator
from openautotune.serving.isolate import render_problem, unrenderable
from tests.serving.fixtures import RED, T0, autotune, golden_pairs


def bad_pair(name: str, payload: dict[str, Any]) -> Any:
    made = autotune(name, Status.RUNNING)
    variants = (replace(RED, json=payload), *made.definition.variants[1:])
    return (replace(made, definition=replace(made.definition, variants=variants)), None)


@pytest.mark.parametrize(
    "payload", [{"n": 2**64}, {"s": "\ud800"}, {"n": -(2**70)}], ids=["2^64", "surrogate", "-2^70"]
)
def test_a_bad_autotune_is_left_out_and_every_other_one_published(payload: dict[str, Any]) -> None:
    good = golden_pairs()
    pairs = (*good[:2], bad_pair("broken", payload), *good[2:])
    assert set(unrenderable(pairs, {})) == {"broken"}
    published = publish(SpecState(changed_ms=T0, pairs=pairs))
    assert list(published.unrenderable) == ["broken"]
    v1 = orjson.loads(published.v1.identity)
    v2 = orjson.loads(published.v2.identity)
    expected = [pair[0].id for pair in good]
    assert [entry["name"] for entry in v1["dynamic_configs"]] == expected
    assert list(v2["dynamic_configs"]) == expected
    assert sorted(published.evaluator.names()) == sorted(expected)
    assert published.evaluator.evaluate({"userID": "u"}, "broken") is None


def test_good_autotunes_have_no_render_problem() -> None:
    assert all(render_problem(pair, {}) is None for pair in golden_pairs())


EVALUATOR = Evaluator.from_specs(specs_v1.render(golden_pairs(), T0))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
users = st.dictionaries(
    st.sampled_from(["userID", "customIDs", "statsigEnvironment", "custom", "email"]) | st.text(max_size=8),
    json_values | st.dictionaries(st.sampled_from(["companyID", "companyid", "tier"]), json_values),
    max_size=5,
)


@given(users)
def test_the_evaluator_answers_any_json_user(user: dict[str, Any]) -> None:
    for name in EVALUATOR.names():
        evaluation = EVALUATOR.evaluate(user, name)
        assert evaluation is not None
        orjson.dumps(evaluation.value)  # what get_config answers can always be encoded


def test_suspects_are_checked_alone_and_cleared_once_fixed() -> None:
    good = golden_pairs()
    broken = bad_pair("broken", {"n": 2**64})
    with_bad = publish(SpecState(changed_ms=T0, pairs=(*good, broken)), suspects={"broken"})
    assert list(with_bad.unrenderable) == ["broken"]
    fixed = (autotune("broken", Status.RUNNING), None)
    after_fix = publish(SpecState(changed_ms=T0, pairs=(*good, fixed)), suspects={"broken"})
    assert after_fix.unrenderable == {}
    assert "broken" in after_fix.evaluator.names()
