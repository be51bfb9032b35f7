"""Console API authentication and authorization (console-api.md, Conventions)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openautotune.service import keys as key_service
from openautotune.testing import TestApp
from tests.api.helpers import BASE, body, created_id

INVALID = "This endpoint only accepts an active CONSOLE key, but an invalid key was sent. Key: "


def test_missing_key_is_401_with_statsigs_message(client: TestClient) -> None:
    response = client.get(BASE)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": INVALID}


def test_unknown_key_is_401_and_echoes_the_key(client: TestClient) -> None:
    response = client.get(BASE, headers={"STATSIG-API-KEY": "console-nope"})
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": INVALID + "console-nope"}


@pytest.mark.parametrize("kind", ["server_key", "client_key"])
def test_sdk_keys_are_refused_by_the_console_api(client: TestClient, test_app: TestApp, kind: str) -> None:
    key = getattr(test_app, kind)
    response = client.get(BASE, headers={"STATSIG-API-KEY": key})
    assert response.status_code == 401
    assert response.json()["message"] == INVALID + key


def test_revoked_key_is_401(client: TestClient, test_app: TestApp) -> None:
    record = next(
        k for k in key_service.list_keys(test_app.db) if key_service.hash_key(test_app.console_key) == k.key_hash
    )
    key_service.revoke_key(test_app.db, test_app.clock, record.id)
    response = client.get(BASE, headers=test_app.console_headers())
    assert response.status_code == 401


def test_read_only_key_reads_but_cannot_mutate(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    ro = test_app.console_headers(read_only=True)
    assert client.get(BASE, headers=ro).status_code == 200
    assert client.get(f"{BASE}/{autotune_id}", headers=ro).status_code == 200
    mutations = [
        ("POST", BASE, body(name="other")),
        ("POST", f"{BASE}/{autotune_id}", body()),
        ("PATCH", f"{BASE}/{autotune_id}", {"description": "x"}),
        ("DELETE", f"{BASE}/{autotune_id}", None),
        ("PUT", f"{BASE}/{autotune_id}/start", None),
        ("PUT", f"{BASE}/{autotune_id}/make_decision", {"id": "red", "decisionReason": "r"}),
        ("PUT", f"{BASE}/{autotune_id}/reset", None),
        ("POST", f"{BASE}/{autotune_id}/overrides", {"overrides": [], "userIDOverrides": []}),
    ]
    for method, path, payload in mutations:
        response = client.request(method, path, json=payload, headers=ro)
        assert response.status_code == 403, (method, path)
        assert response.json() == {"status": 403, "message": "Forbidden resource"}
    assert client.get(f"{BASE}/{autotune_id}", headers=ro).json()["data"]["isStarted"] is False


def test_api_version_header(client: TestClient, test_app: TestApp) -> None:
    headers = test_app.console_headers()
    assert client.get(BASE, headers={**headers, "STATSIG-API-VERSION": "20240601"}).status_code == 200
    response = client.get(BASE, headers={**headers, "STATSIG-API-VERSION": "20990101"})
    assert response.status_code == 400
    assert "20240601" in response.json()["message"]


def test_review_settings_header_is_accepted(client: TestClient, test_app: TestApp) -> None:
    headers = {**test_app.console_headers(), "x-respect-review-settings": "true"}
    assert client.post(BASE, json=body(), headers=headers).status_code == 201
