"""Reading, updating and deleting autotunes (console-api.md)."""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service
from openautotune.testing import TestApp
from tests.api.helpers import BASE, STATSIG_FULL_UPDATE, body, created_id, invalid_properties, put

NOT_FOUND = {"status": 404, "message": "Autotune Experiment not found."}


def test_read(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    response = client.get(f"{BASE}/{autotune_id}", headers=test_app.console_headers())
    assert response.status_code == 200
    assert response.json()["message"] == "Autotune Experiment read successfully."
    assert response.json()["data"]["id"] == autotune_id


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("POST", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("PUT", "/start"),
        ("PUT", "/reset"),
        ("GET", "/overrides"),
    ],
)
def test_unknown_id_is_404(client: TestClient, test_app: TestApp, method: str, suffix: str) -> None:
    payload = {"description": "x"} if method == "PATCH" else (body() if method == "POST" else None)
    response = client.request(method, f"{BASE}/missing{suffix}", json=payload, headers=test_app.console_headers())
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_statsigs_full_update_example_succeeds_as_sent(client: TestClient, test_app: TestApp) -> None:
    created_id(client, test_app, name="my_autotunes_are_best")
    response = client.post(
        f"{BASE}/my_autotunes_are_best", json=STATSIG_FULL_UPDATE, headers=test_app.console_headers()
    )
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Autotune Experiment read successfully."
    data = response.json()["data"]
    assert data["successEvent"] == "purchase_item"
    assert data["attributionWindow"] == "2hrs"
    assert [(v["name"], v["size"]) for v in data["variants"]] == [("red", 50), ("blue", 50)]
    # The server records the real actor, not the echoed one.
    assert data["lastModifierID"] != "ahKwUoaNauHu9AmJPc2"
    assert data["lastModifierName"] == "CONSOLE API"


def test_full_update_keeps_variant_ids_by_name(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    before = client.get(f"{BASE}/{autotune_id}", headers=test_app.console_headers()).json()["data"]
    update = body()
    del update["name"]
    update["variants"] = [{"name": "blue", "json": {"c": 1}}, {"name": "green", "json": {}}]
    after = client.post(f"{BASE}/{autotune_id}", json=update, headers=test_app.console_headers()).json()["data"]
    blue_before = next(v["id"] for v in before["variants"] if v["name"] == "blue")
    assert after["variants"][0]["id"] == blue_before
    assert after["variants"][1]["id"] not in {v["id"] for v in before["variants"]}


def test_full_update_requires_its_fields(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    response = client.post(f"{BASE}/{autotune_id}", json={"description": "x"}, headers=test_app.console_headers())
    assert sorted(invalid_properties(response)) == sorted(
        ["variants", "successEvent", "explorationWindow", "attributionWindow", "winnerThreshold"]
    )


@pytest.mark.parametrize(
    ("field", "value"), [("id", "another_id"), ("isStarted", True), ("name", "Renamed"), ("tags", ["x"])]
)
def test_read_only_echoes_must_match(client: TestClient, test_app: TestApp, field: str, value: object) -> None:
    autotune_id = created_id(client, test_app)
    update = {**body(), field: value}
    update.pop("name", None) if field != "name" else None
    response = client.post(f"{BASE}/{autotune_id}", json=update, headers=test_app.console_headers())
    assert invalid_properties(response) == [field]


def test_partial_update_changes_only_what_it_names(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    response = client.patch(
        f"{BASE}/{autotune_id}",
        json={"description": "new", "higherIsBetter": False},
        headers=test_app.console_headers(),
    )
    assert response.status_code == 200
    assert response.json()["message"] == "Autotune Experiment updated successfully."
    data = response.json()["data"]
    assert data["description"] == "new"
    assert data["higherIsBetter"] is False
    assert data["successEvent"] == "click"
    assert data["version"] == 2


def test_partial_update_validates(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    response = client.patch(
        f"{BASE}/{autotune_id}", json={"winnerThreshold": "50%"}, headers=test_app.console_headers()
    )
    assert invalid_properties(response) == ["winnerThreshold"]


FROZEN = [
    ("idType", "stableID"),
    ("successEvent", "purchase"),
    ("successEventValue", "x"),
    ("attributionWindow", "4hr"),
    ("attributionWindowUnit", "min"),
    ("metadataField", "price"),
    ("optimizationParameter", "value"),
    ("isContextual", True),
    ("featureList", ["country"]),
    ("variants", [{"name": "red", "json": {}}, {"name": "green", "json": {}}]),
    ("variants", [{"name": "red", "json": {}}, {"name": "blue", "json": {}}, {"name": "c", "json": {}}]),
]


@pytest.mark.parametrize(("field", "value"), FROZEN)
def test_frozen_fields_after_start(client: TestClient, test_app: TestApp, field: str, value: object) -> None:
    autotune_id = created_id(client, test_app)
    assert put(client, test_app, f"{autotune_id}/start").status_code == 200
    response = client.patch(f"{BASE}/{autotune_id}", json={field: value}, headers=test_app.console_headers())
    assert invalid_properties(response) == [field]
    assert "reset" in response.json()["errors"][0]["errorMessage"]


def test_editable_fields_after_start(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    put(client, test_app, f"{autotune_id}/start")
    changes = {
        "description": "d",
        "goalRichText": "g",
        "winnerThreshold": "99%",
        "explorationWindow": "48hr",
        "variants": [{"name": "red", "json": {"color": "#f00"}}, {"name": "blue", "json": {"color": "#00f"}}],
    }
    response = client.patch(f"{BASE}/{autotune_id}", json=changes, headers=test_app.console_headers())
    assert response.status_code == 200, response.text
    assert response.json()["data"]["variants"][0]["json"] == {"color": "#f00"}


def test_full_update_of_a_started_autotune_echoing_its_state(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    put(client, test_app, f"{autotune_id}/start")
    current = client.get(f"{BASE}/{autotune_id}", headers=test_app.console_headers()).json()["data"]
    echoed = copy.deepcopy(current)
    echoed["description"] = "round trip"
    for variant in echoed["variants"]:
        variant.pop("id")
    response = client.post(f"{BASE}/{autotune_id}", json=echoed, headers=test_app.console_headers())
    assert response.status_code == 200, response.text
    assert response.json()["data"]["description"] == "round trip"


def test_delete(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    response = client.delete(f"{BASE}/{autotune_id}", headers=test_app.console_headers())
    assert response.status_code == 200
    assert response.json() == {"message": "Autotune Experiment deleted successfully."}
    assert client.get(f"{BASE}/{autotune_id}", headers=test_app.console_headers()).json() == NOT_FOUND
    # The name is free again.
    assert created_id(client, test_app) == autotune_id


def test_modifier_fields_come_from_the_audit(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    other = key_service.create_key(test_app.db, test_app.clock, KeyKind.CONSOLE)
    test_app.clock.advance(5_000)
    response = client.patch(
        f"{BASE}/{autotune_id}", json={"description": "by other"}, headers={"STATSIG-API-KEY": other.secret}
    )
    data = response.json()["data"]
    assert data["lastModifierID"] == other.record.id
    assert data["creatorID"] != other.record.id
    assert data["lastModifiedTime"] == data["createdTime"] + 5_000
    assert other.secret not in response.text


def test_every_mutation_is_audited(client: TestClient, test_app: TestApp) -> None:
    from openautotune.service import autotunes

    autotune_id = created_id(client, test_app)
    client.patch(f"{BASE}/{autotune_id}", json={"description": "x"}, headers=test_app.console_headers())
    put(client, test_app, f"{autotune_id}/start")
    put(client, test_app, f"{autotune_id}/make_decision", {"id": "blue", "decisionReason": "clear winner"})
    put(client, test_app, f"{autotune_id}/reset")
    entries = autotunes.audit_history(test_app.db, autotune_id)
    assert [e.action for e in reversed(entries)] == ["create", "update", "start", "make_decision", "reset"]
    decision = next(e for e in entries if e.action == "make_decision")
    assert decision.detail == "clear winner"
    assert decision.before is not None and decision.before["status"] == "running"
    assert decision.after is not None and decision.after["status"] == "finished"
