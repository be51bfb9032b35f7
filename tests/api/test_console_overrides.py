"""User-id overrides through the Console API (console-api.md, Overrides body)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from openautotune.testing import TestApp
from tests.api.helpers import BASE, created_id, invalid_properties


def _url(autotune_id: str) -> str:
    return f"{BASE}/{autotune_id}/overrides"


def test_empty_overrides(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    response = client.get(_url(autotune_id), headers=test_app.console_headers())
    assert response.status_code == 200
    assert response.json()["data"] == {"overrides": [], "userIDOverrides": []}


def test_post_replaces_and_patch_merges(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    headers = test_app.console_headers()
    first = {"overrides": [], "userIDOverrides": [{"groupID": "red", "ids": ["u1", "u2"]}]}
    response = client.post(_url(autotune_id), json=first, headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["userIDOverrides"] == [
        {"groupID": "red", "ids": ["u1", "u2"], "environment": None, "unitType": None}
    ]
    merge = {"userIDOverrides": [{"groupID": "blue", "ids": ["u2", "u3"]}]}
    data = client.patch(_url(autotune_id), json=merge, headers=headers).json()["data"]
    # u2 moved to blue: a unit is forced into one variant only.
    assert [(o["groupID"], o["ids"]) for o in data["userIDOverrides"]] == [("red", ["u1"]), ("blue", ["u2", "u3"])]
    replace = {"userIDOverrides": [{"groupID": "blue", "ids": ["u9"]}]}
    data = client.post(_url(autotune_id), json=replace, headers=headers).json()["data"]
    assert [(o["groupID"], o["ids"]) for o in data["userIDOverrides"]] == [("blue", ["u9"])]
    assert client.get(_url(autotune_id), headers=headers).json()["data"] == data


def test_delete_user_override_is_idempotent(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    headers = test_app.console_headers()
    client.post(_url(autotune_id), json={"userIDOverrides": [{"groupID": "red", "ids": ["u1", "u2"]}]}, headers=headers)
    for _ in range(2):
        response = client.delete(f"{_url(autotune_id)}/userID/u1?groupID=red", headers=headers)
        assert response.status_code == 200
        assert response.json()["data"]["userIDOverrides"][0]["ids"] == ["u2"]
    response = client.delete(f"{_url(autotune_id)}/userID/u2", headers=headers)
    assert response.status_code == 400  # groupID is required


def test_delete_conditional_override_is_idempotent(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    response = client.delete(
        f"{_url(autotune_id)}/conditional/gate/my_gate?groupID=red", headers=test_app.console_headers()
    )
    assert response.status_code == 200


def test_gate_and_segment_overrides_are_refused(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    payload = {"overrides": [{"type": "gate", "id": "g", "groupID": "red"}], "userIDOverrides": []}
    response = client.post(_url(autotune_id), json=payload, headers=test_app.console_headers())
    assert invalid_properties(response) == ["overrides"]
    assert "gates or segments" in response.json()["errors"][0]["errorMessage"]


def test_unknown_group_is_refused(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    payload = {"userIDOverrides": [{"groupID": "purple", "ids": ["u1"]}]}
    response = client.post(_url(autotune_id), json=payload, headers=test_app.console_headers())
    assert invalid_properties(response) == ["userIDOverrides[0].groupID"]
