"""The real server-core SDK (`statsig-python-core` 0.24.2, config specs v2) against a real server."""

from __future__ import annotations

from collections import Counter

import pytest

from openautotune.domain.autotune import Stage
from openautotune.serving.evaluate import Evaluator
from tests.e2e.live import LiveServer, SdkProcess
from tests.e2e.test_legacy_sdk import create, expected
from tests.e2e.users import generated_users

pytestmark = pytest.mark.e2e


def test_core_and_legacy_sdks_and_our_evaluator_agree(shared_live_server: LiveServer) -> None:
    live_server = shared_live_server
    running = create(live_server, "agreement")
    by_company = create(live_server, "agreement by company", idType="companyID")
    users = generated_users(10_000, seed=5)
    evaluator = Evaluator.from_specs(live_server.v1_specs())
    with SdkProcess("core", live_server) as core, SdkProcess("legacy", live_server) as legacy:
        core_answers = core.evaluate(running["id"], users)
        legacy_answers = legacy.evaluate(running["id"], users)
        core_company = core.evaluate(by_company["id"], users[:2000])
        legacy_company = legacy.evaluate(by_company["id"], users[:2000])
    assert core_answers[:2000] == expected(evaluator, running["id"], users[:2000])
    assert core_answers == legacy_answers
    assert core_company == legacy_company == expected(evaluator, by_company["id"], users[:2000])


def test_core_sdk_drafts_finished_and_allocation_changes(shared_live_server: LiveServer) -> None:
    live_server = shared_live_server
    running = create(live_server, "core running")
    draft = create(live_server, "core draft", start=False)
    finished = create(live_server, "core finished")
    ids = [v["id"] for v in running["variants"]]
    with live_server.console() as console:
        response = console.put(
            f"/console/v1/autotunes/{finished['id']}/make_decision", json={"id": "green", "decisionReason": "test"}
        )
        assert response.status_code == 200, response.text
    users = generated_users(2000, seed=13)
    with SdkProcess("core", live_server) as sdk:
        assert all(a == ["prestart", None, {"color": "red"}] for a in sdk.evaluate(draft["id"], users[:100]))
        winner = finished["variants"][1]
        assert all(a == [winner["id"], "green", {"color": "green"}] for a in sdk.evaluate(finished["id"], users[:100]))
        before = sdk.evaluate(running["id"], users)

        live_server.publish_allocation(running["id"], (0.8, 0.1, 0.1), Stage.EXPLOITING)
        after_expected = expected(Evaluator.from_specs(live_server.v1_specs()), running["id"], users)
        index = next(i for i, (old, new) in enumerate(zip(before, after_expected, strict=True)) if old != new)
        assert sdk.wait_for_rule(running["id"], users[index], after_expected[index][0]) < 10
        after = sdk.evaluate(running["id"], users)
    assert after == after_expected
    assert 0.76 < Counter(rule for rule, _g, _v in after)[ids[0]] / len(users) < 0.84
