"""`GET /console/v1/autotunes/{id}/results` through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.testing import START_MS, TestApp

from .conftest import Env

BASE = "/console/v1/autotunes"
HOUR = 3_600_000
BODY = {
    "name": "button_color_test",
    "variants": [{"name": "red", "json": {"color": "red"}}, {"name": "blue", "json": {"color": "blue"}}],
    "successEvent": "click",
    "explorationWindow": "24hr",
    "attributionWindow": "1hr",
    "winnerThreshold": "99%",
}
KEYS = {"id", "stage", "asOf", "winner", "variants", "verdict", "estimator"}
VARIANT_KEYS = {
    "id",
    "name",
    "units",
    "successes",
    "mean",
    "ciLow",
    "ciHigh",
    "probabilityOfBest",
    "weight",
    "posteriorMean",
    "liftVsLeader",
}


def results(client: TestClient, app: TestApp, autotune_id: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/{autotune_id}/results", headers=app.console_headers(read_only=True))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["message"] == "Autotune results read successfully."
    data: dict[str, Any] = answer["data"]
    assert set(data) >= KEYS
    for variant in data["variants"]:
        assert set(variant) >= VARIANT_KEYS
    return data


def test_results_before_start_after_start_and_after_updates(client: TestClient, test_app: TestApp) -> None:
    created = client.post(BASE, json=BODY, headers=test_app.console_headers())
    assert created.status_code == 201, created.text
    autotune_id = created.json()["data"]["id"]

    draft = results(client, test_app, autotune_id)
    assert (draft["stage"], draft["asOf"], draft["winner"]) == ("draft", None, None)
    assert draft["verdict"] == "Not started: nothing is analysed until the autotune starts."
    assert [(v["name"], v["units"], v["probabilityOfBest"], v["weight"]) for v in draft["variants"]] == [
        ("red", 0, 0.0, 0.0),
        ("blue", 0, 0.0, 0.0),
    ]

    assert client.put(f"{BASE}/{autotune_id}/start", headers=test_app.console_headers()).status_code == 200
    started = results(client, test_app, autotune_id)
    assert (started["stage"], started["asOf"]) == ("exploring", None)
    assert started["verdict"] == "No data analysed yet." and started["variants"][0]["liftVsLeader"] is None
    assert [(v["units"], v["mean"], v["weight"]) for v in started["variants"]] == [(0, 0.0, 0.0), (0, 0.0, 0.0)]

    env = Env(db=test_app.db, clock=test_app.clock)
    autotune = autotune_service.get(test_app.db, autotune_id)
    env.units(
        autotune, [(f"r{i}", 0, START_MS + 1) for i in range(200)] + [(f"b{i}", 1, START_MS + 1) for i in range(200)]
    )
    env.events(
        [(f"r{i}", START_MS + 2) for i in range(20)] + [(f"b{i}", START_MS + 2) for i in range(60)], name="click"
    )
    outcome = update_autotune(test_app.db, test_app.clock, autotune_id, START_MS + 25 * HOUR)
    assert outcome.updated and outcome.winner_variant_id is not None  # 30% against 10%: decided

    finished = results(client, test_app, autotune_id)
    assert finished["stage"] == "finished" and finished["asOf"] == START_MS + 25 * HOUR
    assert finished["winner"] == {"id": autotune.definition.variants[1].id, "name": "blue"}
    red, blue = finished["variants"]
    assert (red["units"], red["successes"], blue["units"], blue["successes"]) == (200, 20, 200, 60)
    assert blue["probabilityOfBest"] == pytest.approx(outcome.pob[1])
    assert red["ciLow"] < red["mean"] < red["ciHigh"]
    assert red["mean"] == pytest.approx(20 / 200)  # the observed rate; its interval is Beta(1 + 20, 1 + 180)'s
    assert red["posteriorMean"] == pytest.approx(21 / 202)
    assert (red["weight"], blue["weight"]) == (0.0, 1.0)
    assert finished["estimator"] == "periodWeighted"
    # Lift over the leader (blue): 10% / 30% - 1 = -2/3, delta-method interval; blue's own is 0.
    assert blue["liftVsLeader"] == {"value": 0.0, "low": 0.0, "high": 0.0}
    lift = red["liftVsLeader"]
    assert lift["value"] == pytest.approx(-2 / 3) and lift["low"] < -2 / 3 < lift["high"] < 0
    assert finished["verdict"].startswith("'blue' is the winner: its probability of being best reached the threshold")
    assert "error at most 1.0%" in finished["verdict"]


def test_results_of_an_unknown_autotune_is_404(client: TestClient, test_app: TestApp) -> None:
    response = client.get(f"{BASE}/nope/results", headers=test_app.console_headers())
    assert response.status_code == 404
    assert set(response.json()) == {"status", "message"}


def test_results_need_a_console_key(client: TestClient, test_app: TestApp) -> None:
    response = client.get(f"{BASE}/nope/results", headers={"STATSIG-API-KEY": test_app.server_key})
    assert response.status_code == 401


def test_results_are_documented_in_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"][f"{BASE}/{{id}}/results"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ResultsAnswer")
    data = spec["components"]["schemas"]["ResultsData"]["properties"]
    assert set(data) >= KEYS


def test_weights_follow_the_latest_update_then_a_manual_decision(client: TestClient, test_app: TestApp) -> None:
    created = client.post(BASE, json=BODY, headers=test_app.console_headers())
    autotune_id = created.json()["data"]["id"]
    assert client.put(f"{BASE}/{autotune_id}/start", headers=test_app.console_headers()).status_code == 200
    env = Env(db=test_app.db, clock=test_app.clock)
    autotune = autotune_service.get(test_app.db, autotune_id)
    env.units(
        autotune, [(f"r{i}", 0, START_MS + 1) for i in range(300)] + [(f"b{i}", 1, START_MS + 1) for i in range(300)]
    )
    env.events(
        [(f"r{i}", START_MS + 2) for i in range(30)] + [(f"b{i}", START_MS + 2) for i in range(36)], name="click"
    )
    outcome = update_autotune(test_app.db, test_app.clock, autotune_id, START_MS + 25 * HOUR)
    assert outcome.updated and outcome.winner_variant_id is None  # 12% vs 10%: not decided at 99%

    exploiting = results(client, test_app, autotune_id)
    assert exploiting["stage"] == "exploiting"
    assert exploiting["verdict"].startswith("'blue' leads with a ")
    assert exploiting["verdict"].endswith("the evidence does not yet support a winner.")
    weights = [v["weight"] for v in exploiting["variants"]]
    assert weights == pytest.approx(list(outcome.weights)) and 0.0 < weights[0] < weights[1] < 1.0
    assert [v["probabilityOfBest"] for v in exploiting["variants"]] == pytest.approx(list(outcome.pob))

    decided = client.put(
        f"{BASE}/{autotune_id}/make_decision",
        json={"id": "red", "decisionReason": "cheaper"},
        headers=test_app.console_headers(),
    )
    assert decided.status_code == 200, decided.text
    finished = results(client, test_app, autotune_id)
    assert finished["stage"] == "finished"
    assert finished["winner"]["name"] == "red"
    assert [v["weight"] for v in finished["variants"]] == [1.0, 0.0]
    assert finished["asOf"] == exploiting["asOf"]  # the statistics are still the latest update's
    assert finished["verdict"] == "'red' was chosen by hand (make_decision); the engine had not declared a winner."
