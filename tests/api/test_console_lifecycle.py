"""start, make_decision, reset and list pagination (console-api.md, engine.md Lifecycle)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openautotune.testing import TestApp
from tests.api.helpers import BASE, created_id, invalid_properties, put


def _read(client: TestClient, app: TestApp, autotune_id: str) -> dict[str, object]:
    data: dict[str, object] = client.get(f"{BASE}/{autotune_id}", headers=app.console_headers()).json()["data"]
    return data


def _error(response: object, message: str) -> None:
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert response.json() == {"status": 400, "message": message}  # type: ignore[attr-defined]


def test_start(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    response = put(client, test_app, f"{autotune_id}/start")
    assert response.status_code == 200
    assert response.json() == {"message": "Autotune Experiment successfully started."}
    assert _read(client, test_app, autotune_id)["isStarted"] is True
    _error(put(client, test_app, f"{autotune_id}/start"), "Autotune experiment has already started")


def test_make_decision(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    decision = {"id": "blue", "decisionReason": "looks better"}
    _error(put(client, test_app, f"{autotune_id}/make_decision", decision), "Autotune experiment has not yet started")
    put(client, test_app, f"{autotune_id}/start")
    response = put(client, test_app, f"{autotune_id}/make_decision", decision)
    assert response.status_code == 200
    assert response.json() == {"message": "Decision made for Autotune Experiment."}
    data = _read(client, test_app, autotune_id)
    blue = next(v for v in data["variants"] if v["name"] == "blue")  # type: ignore[attr-defined]
    assert data["winner"] == {"id": blue["id"], "name": "blue"}
    assert data["isStarted"] is True
    _error(put(client, test_app, f"{autotune_id}/make_decision", decision), "Autotune experiment has already finished")
    _error(put(client, test_app, f"{autotune_id}/start"), "Autotune experiment has already finished")


@pytest.mark.parametrize("key", ["id", "groupID"])
def test_make_decision_by_variant_id_or_legacy_group_id(client: TestClient, test_app: TestApp, key: str) -> None:
    autotune_id = created_id(client, test_app)
    put(client, test_app, f"{autotune_id}/start")
    red_id = _read(client, test_app, autotune_id)["variants"][0]["id"]  # type: ignore[index]
    response = put(client, test_app, f"{autotune_id}/make_decision", {key: red_id, "decisionReason": "r", "holdout": 5})
    assert response.status_code == 200, response.text
    assert _read(client, test_app, autotune_id)["winner"]["name"] == "red"  # type: ignore[index]


def test_make_decision_needs_a_known_variant(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    put(client, test_app, f"{autotune_id}/start")
    response = put(client, test_app, f"{autotune_id}/make_decision", {"id": "purple", "decisionReason": "r"})
    assert invalid_properties(response) == ["id"]
    response = put(client, test_app, f"{autotune_id}/make_decision", {"decisionReason": "r"})
    assert invalid_properties(response) == ["id"]
    response = put(
        client, test_app, f"{autotune_id}/make_decision", {"id": "red", "decisionReason": "r", "holdout": 80}
    )
    assert invalid_properties(response) == ["holdout"]


def test_reset(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    _error(put(client, test_app, f"{autotune_id}/reset"), "Autotune experiment has not yet started")
    put(client, test_app, f"{autotune_id}/start")
    put(client, test_app, f"{autotune_id}/make_decision", {"id": "red", "decisionReason": "r"})
    response = put(client, test_app, f"{autotune_id}/reset")
    assert response.status_code == 200
    assert response.json() == {"message": "Autotune Experiment successfully restarted."}
    data = _read(client, test_app, autotune_id)
    assert data["winner"] is None
    assert data["isStarted"] is True


def test_reset_starts_a_new_run_with_a_new_salt(client: TestClient, test_app: TestApp) -> None:
    from openautotune.service import autotunes

    autotune_id = created_id(client, test_app)
    put(client, test_app, f"{autotune_id}/start")
    first = autotunes.get(test_app.db, autotune_id)
    put(client, test_app, f"{autotune_id}/reset")
    second = autotunes.get(test_app.db, autotune_id)
    assert (second.run, first.run) == (2, 1)
    assert second.salt != first.salt
    assert second.allocation_version > first.allocation_version


def test_list_and_pagination(client: TestClient, test_app: TestApp) -> None:
    for index in range(5):
        created_id(client, test_app, name=f"tune {index}")
    headers = test_app.console_headers()
    response = client.get(BASE, headers=headers)
    assert response.json()["message"] == "Autotune Experiments listed successfully."
    assert len(response.json()["data"]) == 5
    page = client.get(f"{BASE}?limit=2&page=2", headers=headers).json()
    assert [a["id"] for a in page["data"]] == ["tune_2", "tune_3"]
    assert page["pagination"] == {
        "itemsPerPage": 2,
        "pageNumber": 2,
        "nextPage": "/console/v1/autotunes?page=3&limit=2",
        "previousPage": "/console/v1/autotunes?page=1&limit=2",
        "totalItems": 5,
        "all": "/console/v1/autotunes",
    }
    last = client.get(f"{BASE}?limit=2&page=3", headers=headers).json()["pagination"]
    assert last["nextPage"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "page=0", "limit=abc", "page=-1"])
def test_bad_pagination_is_400(client: TestClient, test_app: TestApp, query: str) -> None:
    response = client.get(f"{BASE}?{query}", headers=test_app.console_headers())
    assert response.status_code == 400
    assert response.json()["status"] == 400
