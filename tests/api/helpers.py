"""Bodies and calls shared by the Console API tests."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from openautotune.testing import TestApp

BASE = "/console/v1/autotunes"

BUTTON_COLOR_TEST: dict[str, Any] = {
    "name": "button_color_test",
    "description": "Which color button gets the most clicks.",
    "variants": [
        {"name": "red", "json": {"color": "red"}},
        {"name": "blue", "json": {"color": "blue"}},
    ],
    "successEvent": "click",
    "explorationWindow": "24hr",
    "attributionWindow": "1hr",
    "winnerThreshold": "95%",
}

# The body of Statsig's "Fully Update Autotune" example, as its API reference shows it.
STATSIG_FULL_UPDATE: dict[str, Any] = {
    "id": "my_autotunes_are_best",
    "isStarted": False,
    "description": "helpful summary of what this Autotune is",
    "lastModifierID": "ahKwUoaNauHu9AmJPc2",
    "lastModifierName": "CONSOLE API",
    "variants": [
        {"name": "red", "json": {"foo": "boo"}, "size": 50},
        {"name": "blue", "json": {}, "size": 50},
    ],
    "successEvent": "purchase_item",
    "successEventValue": "",
    "explorationWindow": "1hr",
    "attributionWindow": "2hrs",
    "winnerThreshold": "99%",
    "idType": "userID",
}


def body(**changes: Any) -> dict[str, Any]:
    made = copy.deepcopy(BUTTON_COLOR_TEST)
    made.update(changes)
    return made


def create(client: TestClient, app: TestApp, **changes: Any) -> Response:
    return client.post(BASE, json=body(**changes), headers=app.console_headers())


def created_id(client: TestClient, app: TestApp, **changes: Any) -> str:
    response = create(client, app, **changes)
    assert response.status_code == 201, response.text
    autotune_id: str = response.json()["data"]["id"]
    return autotune_id


def put(client: TestClient, app: TestApp, path: str, json: Any = None) -> Response:
    return client.put(f"{BASE}/{path}", json=json, headers=app.console_headers())


def invalid_properties(response: Response) -> list[str]:
    assert response.status_code == 400, response.text
    data = response.json()
    assert data["message"] == "Invalid request. Please check the request input and try again."
    assert data["status"] == 400
    return [error["property"] for error in data["errors"]]
