"""The real legacy `statsig` SDK (0.72.1) against a real server: same variants as our evaluator."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from openautotune.domain.autotune import Stage
from openautotune.serving.bucketing import bucket, unit_id
from openautotune.serving.evaluate import Evaluator
from tests.e2e.live import LiveServer, SdkProcess
from tests.e2e.users import generated_users

pytestmark = pytest.mark.e2e


def autotune_body(name: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "variants": [
            {"name": "red", "json": {"color": "red"}},
            {"name": "green", "json": {"color": "green"}},
            {"name": "blue", "json": {"color": "blue"}},
        ],
        "successEvent": "click",
        "explorationWindow": "24hr",
        "attributionWindow": "1hr",
        "winnerThreshold": "95%",
    }
    body.update(changes)
    return body


def create(server: LiveServer, name: str, *, start: bool = True, **changes: Any) -> dict[str, Any]:
    with server.console() as console:
        response = console.post("/console/v1/autotunes", json=autotune_body(name, **changes))
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        if start:
            assert console.put(f"/console/v1/autotunes/{data['id']}/start").status_code == 200
    return data


def expected(evaluator: Evaluator, config: str, users: list[dict[str, Any]]) -> list[list[Any]]:
    answers = []
    for user in users:
        evaluation = evaluator.evaluate(user, config)
        assert evaluation is not None
        answers.append([evaluation.rule_id, evaluation.group_name, evaluation.value])
    return answers


def test_bucketing_matches_the_sdk_for_100k_users(shared_live_server: LiveServer) -> None:
    live_server = shared_live_server
    sized = create(
        live_server,
        "sized",
        variants=[
            {"name": "red", "json": {"color": "red"}, "size": 20},
            {"name": "green", "json": {"color": "green"}, "size": 30},
            {"name": "blue", "json": {"color": "blue"}, "size": 50},
        ],
    )
    by_company = create(live_server, "by company", idType="companyID")
    users = generated_users(100_000)
    specs = live_server.v1_specs()
    evaluator = Evaluator.from_specs(specs)
    with SdkProcess("legacy", live_server) as sdk:
        sdk_sized = sdk.evaluate(sized["id"], users)
        sdk_company = sdk.evaluate(by_company["id"], users[:20_000])
    assert sdk_sized == expected(evaluator, sized["id"], users)
    assert sdk_company == expected(evaluator, by_company["id"], users[:20_000])
    # And both agree with the bucketing formula applied directly to the thresholds 200/500/1000.
    entry = next(e for e in specs["dynamic_configs"] if e["name"] == sized["id"])
    ids = [v["id"] for v in sized["variants"]]
    for user, (rule_id, _group, _value) in zip(users[:5000], sdk_sized[:5000], strict=True):
        b = bucket(entry["salt"], unit_id(user, "userID"))
        assert rule_id == ids[0 if b < 200 else 1 if b < 500 else 2]
    counts = Counter(rule_id for rule_id, _g, _v in sdk_sized)
    assert abs(counts[ids[0]] / 100_000 - 0.2) < 0.01 and abs(counts[ids[2]] / 100_000 - 0.5) < 0.01


def test_sdk_follows_start_allocation_changes_and_drafts(shared_live_server: LiveServer) -> None:
    live_server = shared_live_server
    running = create(live_server, "running one")
    draft = create(live_server, "draft one", start=False)
    ids = [v["id"] for v in running["variants"]]
    users = generated_users(2000, seed=11)
    with SdkProcess("legacy", live_server) as sdk:
        before = sdk.evaluate(running["id"], users)
        assert before == expected(Evaluator.from_specs(live_server.v1_specs()), running["id"], users)
        assert {rule for rule, _g, _v in before} == set(ids)

        drafted = sdk.evaluate(draft["id"], users[:50])
        assert all(answer == ["prestart", None, {"color": "red"}] for answer in drafted)

        # The engine publishes a new split: 10% / 10% / 80%.
        live_server.publish_allocation(running["id"], (0.1, 0.1, 0.8), Stage.EXPLOITING)
        evaluator = Evaluator.from_specs(live_server.v1_specs())
        after_expected = expected(evaluator, running["id"], users)
        mover = next(u for u, old, new in zip(users, before, after_expected, strict=True) if old[0] != new[0])
        waited = sdk.wait_for_rule(running["id"], mover, after_expected[users.index(mover)][0])
        assert waited < 10
        after = sdk.evaluate(running["id"], users)
    assert after == after_expected
    share = Counter(rule for rule, _g, _v in after)[ids[2]] / len(users)
    assert 0.76 < share < 0.84
    # The thresholds only moved down (333/667 -> 100/200): nobody leaves blue, nobody joins red.
    assert all(new[0] == ids[2] for old, new in zip(before, after, strict=True) if old[0] == ids[2])
    assert all(old[0] == ids[0] for old, new in zip(before, after, strict=True) if new[0] == ids[0])


def test_get_config_answers_like_the_sdk(shared_live_server: LiveServer) -> None:
    live_server = shared_live_server
    running = create(live_server, "http only")
    users = generated_users(200, seed=3)
    with SdkProcess("legacy", live_server) as sdk:
        sdk_answers = sdk.evaluate(running["id"], users)
    with httpx.Client(base_url=live_server.url, headers={"statsig-api-key": live_server.client_key}) as client:
        for user, (rule_id, group_name, value) in zip(users, sdk_answers, strict=True):
            answer = client.post("/v1/get_config", json={"configName": running["id"], "user": user}).json()
            assert answer == {
                "name": running["id"],
                "value": value,
                "rule_id": rule_id,
                "group": rule_id,
                "group_name": group_name,
            }


def test_both_sdks_on_a_postgresql_server(postgres_live_server: LiveServer) -> None:
    live_server = postgres_live_server
    running = create(live_server, "on postgres")
    users = generated_users(1000, seed=17)
    wanted = expected(Evaluator.from_specs(live_server.v1_specs()), running["id"], users)
    for kind in ("legacy", "core"):
        with SdkProcess(kind, live_server) as sdk:
            assert sdk.evaluate(running["id"], users) == wanted, kind
