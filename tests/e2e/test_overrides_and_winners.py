"""User-id overrides and winners through both real SDKs (and /v1/get_config) on a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from openautotune.serving.evaluate import Evaluator
from tests.e2e.live import LiveServer, SdkProcess
from tests.e2e.test_legacy_sdk import create, expected
from tests.e2e.users import generated_users

pytestmark = pytest.mark.e2e

ALICE = {"userID": "alice"}
BOB = {"userID": "BOB"}
COMPANY = {"userID": "someone", "customIDs": {"companyID": "c-1"}}
STAGED = {"userID": "dora"}


def test_overrides_and_winners_in_both_sdks(shared_live_server: LiveServer) -> None:
    live_server = shared_live_server
    running = create(live_server, "overridden")
    finished = create(live_server, "decided")
    red, green, blue = running["variants"]
    with live_server.console() as console:
        overrides = {
            "userIDOverrides": [
                {"groupID": "blue", "ids": ["Alice", "bob"]},
                {"groupID": red["id"], "ids": ["c-1"], "unitType": "companyID"},
                {"groupID": "green", "ids": ["dora"], "environment": "production"},
            ]
        }
        response = console.post(f"/console/v1/autotunes/{running['id']}/overrides", json=overrides)
        assert response.status_code == 200, response.text
        response = console.put(
            f"/console/v1/autotunes/{finished['id']}/make_decision", json={"id": "blue", "decisionReason": "e2e"}
        )
        assert response.status_code == 200, response.text
    users: list[dict[str, Any]] = [ALICE, BOB, COMPANY, STAGED]
    forced = [
        [f"{blue['id']}:override", "blue", blue["json"]],
        [f"{blue['id']}:override", "blue", blue["json"]],
        [f"{red['id']}:override", "red", red["json"]],
    ]
    staged = [f"{green['id']}:override", "green", green["json"]]
    winner = [finished["variants"][2]["id"], "blue", {"color": "blue"}]
    for kind in ("legacy", "core"):
        with SdkProcess(kind, live_server, tier="production") as sdk:
            assert sdk.evaluate(running["id"], users) == [*forced, staged], kind
            assert sdk.evaluate(finished["id"], users) == [winner] * len(users), kind
        with SdkProcess(kind, live_server) as sdk:
            answers = sdk.evaluate(running["id"], users)
            assert answers[:3] == forced, kind
            assert answers[3][0] in {v["id"] for v in running["variants"]}, kind  # no tier: bucketed
    with httpx.Client(base_url=live_server.url, headers={"statsig-api-key": live_server.server_key}) as client:
        production = {**STAGED, "statsigEnvironment": {"tier": "production"}}
        answer = client.post("/v1/get_config", json={"configName": running["id"], "user": production}).json()
        assert [answer["rule_id"], answer["group_name"], answer["value"]] == staged
        assert answer["group"] == green["id"]


def test_reset_rebuckets_with_the_new_salt_in_both_sdks(shared_live_server: LiveServer) -> None:
    live_server = shared_live_server
    running = create(live_server, "to be reset")
    users = generated_users(1000, seed=29)
    old_salt = next(e["salt"] for e in live_server.v1_specs()["dynamic_configs"] if e["name"] == running["id"])
    with live_server.console() as console:
        assert console.put(f"/console/v1/autotunes/{running['id']}/reset").status_code == 200
    specs = live_server.v1_specs()
    entry = next(e for e in specs["dynamic_configs"] if e["name"] == running["id"])
    assert entry["salt"] != old_salt and entry["version"] == 2
    wanted = expected(Evaluator.from_specs(specs), running["id"], users)
    for kind in ("legacy", "core"):
        with SdkProcess(kind, live_server) as sdk:
            assert sdk.evaluate(running["id"], users) == wanted, kind
