"""The holdout through HTTP on SQLite and PostgreSQL (engine.md, "Holdout"): the extension's validation,
the rules every serving path gives held-out units, ingestion marking them, and the results' comparison."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautotune.engine.update import update_autotune
from openautotune.serving.bucketing import bucket
from openautotune.serving.holdout import holdout_salt
from openautotune.testing import START_MS, TestApp
from tests.api.helpers import BASE, created_id, invalid_properties, put

HOUR = 3_600_000
SERVER = "/v1/get_config"


def _server(app: TestApp) -> dict[str, str]:
    return {"STATSIG-API-KEY": app.server_key}


def _started(client: TestClient, app: TestApp, **fields: Any) -> dict[str, Any]:
    body = {"explorationWindow": "1hr", "attributionWindow": "1hr", "winnerThreshold": "99%", **fields}
    autotune_id = created_id(client, app, **body)
    assert put(client, app, f"{autotune_id}/start").status_code == 200
    data: dict[str, Any] = client.get(f"{BASE}/{autotune_id}", headers=app.console_headers()).json()["data"]
    return data


def _entry(client: TestClient, app: TestApp, autotune_id: str) -> dict[str, Any]:
    specs = client.get(f"/v1/download_config_specs/{app.server_key}.json", headers=_server(app)).json()
    (entry,) = [e for e in specs["dynamic_configs"] if e["name"] == autotune_id]
    return dict(entry)


def _rule_of(client: TestClient, app: TestApp, autotune_id: str, user: str) -> str:
    answer = client.post(SERVER, json={"configName": autotune_id, "user": {"userID": user}}, headers=_server(app))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["rule_id"])


def _log(client: TestClient, app: TestApp, events: list[dict[str, Any]]) -> None:
    answer = client.post("/v1/log_event", json={"events": events}, headers=_server(app))
    assert answer.status_code == 200, answer.text


def _exposure(autotune_id: str, user: str, rule: str, version: int, at: int) -> dict[str, Any]:
    return {
        "eventName": "statsig::config_exposure",
        "user": {"userID": user},
        "time": at,
        "metadata": {"config": autotune_id, "ruleID": rule, "rulePassed": "true", "configVersion": str(version)},
    }


def _results(client: TestClient, app: TestApp, autotune_id: str) -> dict[str, Any]:
    answer = client.get(f"{BASE}/{autotune_id}/results", headers=app.console_headers(read_only=True))
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


@pytest.mark.parametrize(
    ("fields", "prop"),
    [
        ({"holdoutPercent": -1}, "holdoutPercent"),
        ({"holdoutPercent": 50.5}, "holdoutPercent"),
        ({"holdoutPercent": "10"}, "holdoutPercent"),
        ({"holdoutPercent": True}, "holdoutPercent"),
        ({"holdoutPercent": 10, "isContextual": True}, "holdoutPercent"),
        ({"delayedConversions": "sometimes"}, "delayedConversions"),
        ({"delayedConversions": 1}, "delayedConversions"),
    ],
)
def test_bad_extension_values_are_400_in_the_documented_shape(
    client: TestClient, test_app: TestApp, fields: dict[str, Any], prop: str
) -> None:
    response = client.post(BASE, json={**_body(), **fields}, headers=test_app.console_headers())
    assert prop in invalid_properties(response)


def _body() -> dict[str, Any]:
    from tests.api.helpers import body

    return body()


def test_holdout_percent_is_echoed_and_frozen_once_started(client: TestClient, test_app: TestApp) -> None:
    data = _started(client, test_app, holdoutPercent=12.5, delayedConversions="ignored")
    assert (data["holdoutPercent"], data["delayedConversions"], data["holdoutIDs"]) == (12.5, "ignored", [])
    patched = client.patch(f"{BASE}/{data['id']}", json={"holdoutPercent": 20}, headers=test_app.console_headers())
    assert invalid_properties(patched) == ["holdoutPercent"]


def test_holdout_zero_serves_no_holdout_rule_and_reports_none(client: TestClient, test_app: TestApp) -> None:
    data = _started(client, test_app, holdoutPercent=0)
    entry = _entry(client, test_app, data["id"])
    assert not [rule for rule in entry["rules"] if rule["id"].endswith(":holdout")]
    assert not any(_rule_of(client, test_app, data["id"], f"u{i}").endswith(":holdout") for i in range(50))
    assert _results(client, test_app, data["id"])["holdout"] is None


def test_half_held_out_by_hash_in_every_serving_path_and_compared_in_results(
    client: TestClient, test_app: TestApp
) -> None:
    data = _started(client, test_app, holdoutPercent=50)
    autotune_id = data["id"]
    red, blue = (variant["id"] for variant in data["variants"])
    entry = _entry(client, test_app, autotune_id)
    held = [rule for rule in entry["rules"] if rule["id"].endswith(":holdout")]
    assert [rule["id"] for rule in held] == [f"{red}:holdout", f"{blue}:holdout"]
    assert [rule["conditions"][1]["targetValue"] for rule in held] == [500, 1000]  # the fixed equal split
    v2 = client.get(f"/v2/download_config_specs/{test_app.server_key}.json", headers=_server(test_app)).json()
    assert [r["id"] for r in v2["dynamic_configs"][autotune_id]["rules"]][:2] == [r["id"] for r in held]

    users = [f"user{i}" for i in range(400)]
    rules = {user: _rule_of(client, test_app, autotune_id, user) for user in users}
    salt = holdout_salt(entry["salt"])
    for user, rule in rules.items():
        assert rule.endswith(":holdout") == (bucket(salt, user) < 500), user
    for user in users[:40]:  # the JS client's /v1/initialize answers from the same evaluator
        initialized = client.post(
            "/v1/initialize",
            json={"user": {"userID": user}, "hash": "none"},
            headers={"STATSIG-API-KEY": test_app.client_key},
        ).json()
        assert initialized["dynamic_configs"][autotune_id]["rule_id"] == rules[user]
    share = sum(rule.endswith(":holdout") for rule in rules.values()) / len(users)
    assert 0.4 < share < 0.6

    # About a quarter convert (so no winner ends the run); the bandit's split moves off the equal one
    # with the data, the holdout's never does. The hash decides who lands where, so the bandit's red
    # arm gets extra buyers until its rate leads blue's by ten points: with equal counts the two arms
    # would tie and the split would stay at 500 by symmetry.
    at = START_MS + 60_000
    version = entry["version"]
    exposures = [_exposure(autotune_id, user, rule, version, at) for user, rule in rules.items()]
    buyers = {user for i, user in enumerate(rules) if i % 4 == 0}
    red_users = [user for user, rule in rules.items() if rule == red]
    blue_users = [user for user, rule in rules.items() if rule == blue]
    blue_rate = sum(user in buyers for user in blue_users) / len(blue_users)
    for user in red_users:
        if sum(u in buyers for u in red_users) >= (blue_rate + 0.1) * len(red_users):
            break
        buyers.add(user)
    buys = [{"eventName": "click", "user": {"userID": user}, "time": at + 60_000} for user in rules if user in buyers]
    _log(client, test_app, exposures + buys)
    as_of = START_MS + 2 * HOUR
    test_app.clock.set(as_of)
    assert update_autotune(test_app.db, test_app.clock, autotune_id, as_of).updated

    results = _results(client, test_app, autotune_id)
    in_holdout = [user for user, rule in rules.items() if rule.endswith(":holdout")]
    assert sum(v["units"] for v in results["variants"]) == len(users) - len(in_holdout)
    block = results["holdout"]
    assert (block["percent"], block["units"], block["banditUnits"]) == (
        50,
        len(in_holdout),
        len(users) - len(in_holdout),
    )
    by_variant = {item["id"]: item for item in block["variants"]}
    assert by_variant[blue]["units"] == sum(rules[u] == f"{blue}:holdout" for u in in_holdout)
    assert sum(item["successes"] for item in block["variants"]) == sum(
        1 for buy in buys if rules[buy["user"]["userID"]].endswith(":holdout")
    )
    assert results["stage"] == "exploiting"
    assert block["lift"]["low"] <= block["lift"]["value"] <= block["lift"]["high"]
    assert block["regretAvoided"]["value"] == pytest.approx(block["banditUnits"] * block["lift"]["value"])

    after = _entry(client, test_app, autotune_id)
    still = [rule for rule in after["rules"] if rule["id"].endswith(":holdout")]
    assert [rule["conditions"][1]["targetValue"] for rule in still] == [500, 1000]
    bandit_rules = [rule for rule in after["rules"] if not rule["id"].endswith(":holdout")]
    assert bandit_rules[0]["conditions"][0]["targetValue"] != 500  # the bandit adapted outside the holdout
    for user in users[:100]:  # held-out users keep their variant, the others may move
        if rules[user].endswith(":holdout"):
            assert _rule_of(client, test_app, autotune_id, user) == rules[user]


def test_a_decision_ends_the_holdout_but_not_its_results(client: TestClient, test_app: TestApp) -> None:
    data = _started(client, test_app, holdoutPercent=10)
    autotune_id = data["id"]
    assert _results(client, test_app, autotune_id)["holdout"]["message"] == "no update yet"
    blue = data["variants"][1]["id"]
    decided = put(client, test_app, f"{autotune_id}/make_decision", {"id": blue, "decisionReason": "by hand"})
    assert decided.status_code == 200, decided.text
    entry = _entry(client, test_app, autotune_id)
    assert [rule["id"] for rule in entry["rules"]] == [blue]  # everyone gets the winner, held out or not
    assert all(_rule_of(client, test_app, autotune_id, f"u{i}") == blue for i in range(30))
    block = _results(client, test_app, autotune_id)["holdout"]
    assert (block["percent"], block["units"], block["lift"]) == (10, 0, None)
