"""For any autotune state, the rendered specs validate, compile, and evaluate by the thresholds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openautotune.domain.allocation import cumulative_thresholds
from openautotune.domain.autotune import Allocation, Autotune, Stage, Status, UserIdOverride, Variant
from openautotune.serving import specs_v1, specs_v2
from openautotune.serving.bucketing import bucket, unit_id
from openautotune.serving.evaluate import Evaluator
from openautotune.serving.validate import validate_v1, validate_v2
from tests.serving.fixtures import T0, autotune, definition

ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)


@st.composite
def states(draw: st.DrawFn) -> tuple[Autotune, Allocation, list[dict[str, Any]]]:
    count = draw(st.integers(2, 6))
    variants = tuple(Variant(id=f"v{i}", name=f"n{i}", json={"i": i}) for i in range(count))
    raw = draw(st.lists(st.floats(0, 1), min_size=count, max_size=count))
    total = sum(raw)
    weights = tuple(w / total for w in raw) if total > 0 else tuple(1 / count for _ in range(count))
    id_type = draw(st.sampled_from(["userID", "companyID", "stableID"]))
    overrides = tuple(
        UserIdOverride(group_id=f"v{draw(st.integers(0, count - 1))}", ids=tuple(draw(st.lists(ids, max_size=3))))
        for _ in range(draw(st.integers(0, 2)))
    )
    subject = autotune("prop", Status.RUNNING, overrides=overrides, id_type=id_type)
    subject = replace(subject, definition=definition("prop", variants, id_type))
    allocation = Allocation(
        autotune_id="prop",
        run=1,
        version=draw(st.integers(1, 2**31)),
        as_of_ms=T0,
        stage=Stage.EXPLOITING,
        weights=weights,
        thresholds=cumulative_thresholds(weights),
    )
    users = draw(
        st.lists(
            st.fixed_dictionaries({"userID": ids}, optional={"customIDs": st.fixed_dictionaries({id_type: ids})}),
            min_size=1,
            max_size=20,
        )
    )
    return subject, allocation, users


@settings(max_examples=150, deadline=None)
@given(states())
def test_any_state_renders_validates_and_evaluates_by_thresholds(
    state: tuple[Autotune, Allocation, list[dict[str, Any]]],
) -> None:
    subject, allocation, users = state
    pairs = [(subject, allocation)]
    v1 = specs_v1.render(pairs, T0)
    validate_v1(v1)
    validate_v2(specs_v2.render(pairs, T0))
    evaluator = Evaluator.from_specs(v1)
    forced = {i.casefold(): o.group_id for o in subject.user_id_overrides for i in o.ids}
    id_type = subject.definition.id_type
    for user in users:
        evaluation = evaluator.evaluate(user, "prop")
        assert evaluation is not None
        unit = unit_id(user, id_type)
        if unit.casefold() in forced:
            continue  # the first matching override wins; covered in test_evaluate
        b = bucket(subject.salt, unit)
        index = next(i for i, t in enumerate(allocation.thresholds) if b < t)
        assert evaluation.rule_id == f"v{index}" and evaluation.version == allocation.version
