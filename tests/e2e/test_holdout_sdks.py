"""The holdout's rules in the real SDKs: the legacy `statsig` SDK (specs v1), the server-core SDK
(specs v2) and our evaluator (get_config, /v1/initialize) hold out the same units, chosen by the
documented hash, and give them the fixed equal split while the bandit's split moves."""

from __future__ import annotations

from collections import Counter

import pytest

from openautotune.domain.autotune import Stage
from openautotune.serving.bucketing import bucket, unit_id
from openautotune.serving.evaluate import Evaluator
from openautotune.serving.holdout import holdout_salt
from tests.e2e.live import LiveServer, SdkProcess
from tests.e2e.test_legacy_sdk import create, expected
from tests.e2e.users import generated_users

pytestmark = pytest.mark.e2e


def test_sdks_and_evaluator_hold_out_the_same_units(shared_live_server: LiveServer) -> None:
    live_server = shared_live_server
    held = create(live_server, "held out a fifth", holdoutPercent=20)
    ids = [v["id"] for v in held["variants"]]
    live_server.publish_allocation(held["id"], (0.1, 0.1, 0.8), Stage.EXPLOITING)
    users = generated_users(6000, seed=17)
    specs = live_server.v1_specs()
    evaluator = Evaluator.from_specs(specs)
    with SdkProcess("core", live_server) as core, SdkProcess("legacy", live_server) as legacy:
        core_answers = core.evaluate(held["id"], users)
        legacy_answers = legacy.evaluate(held["id"], users)
    assert legacy_answers == core_answers == expected(evaluator, held["id"], users)

    entry = next(e for e in specs["dynamic_configs"] if e["name"] == held["id"])
    salt = holdout_salt(entry["salt"])
    held_out = Counter()
    served = Counter()
    for user, (rule_id, _group, _value) in zip(users, legacy_answers, strict=True):
        unit = unit_id(user, "userID")
        in_holdout = bucket(salt, unit) < 200
        assert rule_id.endswith(":holdout") == in_holdout
        (held_out if in_holdout else served)[rule_id.removesuffix(":holdout")] += 1
    total = sum(held_out.values())
    assert abs(total / len(users) - 0.2) < 0.02
    assert all(abs(held_out[v] / total - 1 / 3) < 0.05 for v in ids)  # the equal split, not 10/10/80
    assert abs(served[ids[2]] / sum(served.values()) - 0.8) < 0.03
