"""serving/holdout.py and the evaluator's gate: who is held out, what they get, and when there is no holdout."""

from __future__ import annotations

from dataclasses import replace

import pytest

from openautotune.domain.autotune import Allocation, Autotune, Stage, Status
from openautotune.serving import specs_v1, specs_v2
from openautotune.serving.bucketing import bucket
from openautotune.serving.entries import config_entry, variant_of_rule
from openautotune.serving.evaluate import UnsupportedSpec, compile_entry
from openautotune.serving.holdout import equal_thresholds, holdout_buckets, holdout_salt
from openautotune.serving.validate import validate_v1, validate_v2
from tests.serving.fixtures import T0, autotune


def _held(percent: float | None, status: Status = Status.RUNNING) -> Autotune:
    base = autotune("held", status, winner="v_blue" if status is Status.FINISHED else None)
    return replace(base, definition=replace(base.definition, holdout_percent=percent))


SKEWED = Allocation("held", 1, 2, T0, Stage.EXPLOITING, (0.05, 0.05, 0.9), (50, 100, 1000))


def test_share_in_buckets_and_the_equal_split() -> None:
    assert [holdout_buckets(p) for p in (None, 0, 0.04, 10, 12.5, 50)] == [0, 0, 0, 100, 125, 500]
    assert equal_thresholds(3) == (333, 667, 1000)
    assert holdout_salt("abc") == "abc:holdout"


@pytest.mark.parametrize("percent", [None, 0.0])
def test_no_holdout_changes_nothing(percent: float | None) -> None:
    assert config_entry(_held(percent), SKEWED) == config_entry(autotune("held", Status.RUNNING), SKEWED)


@pytest.mark.parametrize("status", [Status.DRAFT, Status.FINISHED])
def test_drafts_and_finished_runs_have_no_holdout_rule(status: Status) -> None:
    rules = config_entry(_held(20.0, status), SKEWED)["rules"]
    assert not any(rule["id"].endswith(":holdout") for rule in rules)


def test_held_out_units_get_the_equal_split_and_the_others_the_allocation() -> None:
    held = _held(20.0)
    entry = config_entry(held, SKEWED)
    validate_v1(specs_v1.render([(held, SKEWED)], T0))
    validate_v2(specs_v2.render([(held, SKEWED)], T0))
    compiled = compile_entry(entry)
    counts: dict[str, int] = {}
    for i in range(20_000):
        unit = f"u{i}"
        answer = compiled.evaluate({"userID": unit})
        inside = bucket(holdout_salt(held.salt), unit) < 200
        assert answer.rule_id.endswith(":holdout") == inside
        slot = bucket(held.salt, unit)
        thresholds = (333, 667, 1000) if inside else (50, 100, 1000)
        index = next(k for k, t in enumerate(thresholds) if slot < t)
        assert answer.variant_id == ("v_red", "v_green", "v_blue")[index] == variant_of_rule(answer.rule_id)
        counts[answer.rule_id] = counts.get(answer.rule_id, 0) + 1
    held_total = sum(n for rule, n in counts.items() if rule.endswith(":holdout"))
    assert abs(held_total / 20_000 - 0.2) < 0.01
    assert abs(counts["v_red:holdout"] / held_total - 1 / 3) < 0.03


def test_two_different_gates_are_refused() -> None:
    entry = config_entry(_held(20.0), SKEWED)
    entry["rules"][1]["conditions"][0] = {**entry["rules"][1]["conditions"][0], "targetValue": 300}
    with pytest.raises(UnsupportedSpec):
        compile_entry(entry)
