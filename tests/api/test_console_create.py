"""Creating autotunes: required fields, enums, ranges and naming rules (console-api.md)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openautotune.testing import TestApp
from tests.api.helpers import BASE, body, create, invalid_properties


def test_create_answers_201_with_a_draft(client: TestClient, test_app: TestApp) -> None:
    response = create(client, test_app)
    assert response.status_code == 201
    payload = response.json()
    assert payload["message"] == "Autotune Experiments created successfully."
    data = payload["data"]
    assert data["id"] == "button_color_test"
    assert data["isStarted"] is False
    assert data["winner"] is None
    assert data["successEventValue"] == ""
    assert data["idType"] == "userID"
    assert [v["name"] for v in data["variants"]] == ["red", "blue"]
    assert all(v["id"] for v in data["variants"])
    assert data["tags"] == [] and data["targetApps"] == [] and data["holdoutIDs"] == []
    assert data["team"] is None and data["teamID"] is None
    assert data["createdTime"] == test_app.clock.now_ms()


def test_id_is_derived_from_the_name(client: TestClient, test_app: TestApp) -> None:
    response = create(client, test_app, name="  A Autotune  ")
    assert response.json()["data"]["id"] == "a_autotune"
    response = create(client, test_app, name="Price/Test: v2.1 (EU)")
    assert response.json()["data"]["id"] == "price_test_v2.1_eu_"


def test_duplicate_name_is_400(client: TestClient, test_app: TestApp) -> None:
    assert create(client, test_app).status_code == 201
    response = create(client, test_app, name="Button Color Test")
    assert response.status_code == 400
    assert response.json() == {"status": 400, "message": "Name is already in use"}


@pytest.mark.parametrize(
    "field", ["name", "variants", "successEvent", "explorationWindow", "attributionWindow", "winnerThreshold"]
)
def test_required_fields(client: TestClient, test_app: TestApp, field: str) -> None:
    payload = body()
    del payload[field]
    response = client.post(BASE, json=payload, headers=test_app.console_headers())
    assert invalid_properties(response) == [field]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("explorationWindow", "2hr"),
        ("attributionWindow", "3hr"),
        ("attributionWindow", "48hr"),
        ("winnerThreshold", "96%"),
        ("attributionWindowUnit", "week"),
        ("optimizationParameter", "revenue"),
        ("explorationWindowRate", 0),
        ("explorationWindowRate", 1.5),
        ("longtermExplorationAllocation", 0.0001),
        ("longtermExplorationAllocation", 2),
        ("successEvent", ""),
        ("name", ""),
        ("name", "x" * 101),
        ("higherIsBetter", "yes"),
        ("featureList", "country"),
    ],
)
def test_invalid_values(client: TestClient, test_app: TestApp, field: str, value: object) -> None:
    response = create(client, test_app, **{field: value})
    assert invalid_properties(response) == [field]


@pytest.mark.parametrize("window", ["1", "24hr", "48hrs", "168", "336hr"])
def test_exploration_window_spellings(client: TestClient, test_app: TestApp, window: str) -> None:
    response = create(client, test_app, explorationWindow=window)
    assert response.status_code == 201
    assert response.json()["data"]["explorationWindow"] == window


@pytest.mark.parametrize(("window", "unit"), [("1", "min"), ("2hr", "hour"), ("4hrs", "day"), ("24", None)])
def test_attribution_window_spellings(client: TestClient, test_app: TestApp, window: str, unit: str | None) -> None:
    extra = {"attributionWindowUnit": unit} if unit else {}
    response = create(client, test_app, attributionWindow=window, **extra)
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["attributionWindow"] == window
    assert data.get("attributionWindowUnit") == unit


def test_at_least_two_variants(client: TestClient, test_app: TestApp) -> None:
    response = create(client, test_app, variants=[{"name": "only", "json": {}}])
    assert invalid_properties(response) == ["variants"]


def test_variant_names_are_unique(client: TestClient, test_app: TestApp) -> None:
    variants = [{"name": "a", "json": {}}, {"name": "a", "json": {}}]
    assert invalid_properties(create(client, test_app, variants=variants)) == ["variants[1].name"]


def test_variant_needs_name_and_json_object(client: TestClient, test_app: TestApp) -> None:
    variants = [{"json": {}}, {"name": "b", "json": "not an object"}]
    assert invalid_properties(create(client, test_app, variants=variants)) == ["variants[0].name", "variants[1].json"]


def test_sizes_must_sum_to_100(client: TestClient, test_app: TestApp) -> None:
    variants = [{"name": "a", "json": {}, "size": 60}, {"name": "b", "json": {}, "size": 30}]
    response = create(client, test_app, variants=variants)
    assert invalid_properties(response) == ["variants"]
    assert "100" in response.json()["errors"][0]["errorMessage"]


def test_sizes_that_sum_to_100_are_kept(client: TestClient, test_app: TestApp) -> None:
    variants = [{"name": "a", "json": {}, "size": 70}, {"name": "b", "json": {}, "size": 30}]
    data = create(client, test_app, variants=variants).json()["data"]
    assert [v["size"] for v in data["variants"]] == [70, 30]


def test_unknown_field_is_named(client: TestClient, test_app: TestApp) -> None:
    response = create(client, test_app, sucessEvent="typo")
    assert invalid_properties(response) == ["sucessEvent"]
    assert "sucessEvent" in response.json()["errors"][0]["errorMessage"]


def test_optional_fields_are_echoed(client: TestClient, test_app: TestApp) -> None:
    extra = {
        "idType": "stableID",
        "successEventValue": "checkout",
        "attributionWindowUnit": "min",
        "explorationWindowRate": 0.5,
        "longtermExplorationAllocation": 0.05,
        "metadataField": "revenue",
        "higherIsBetter": False,
        "isContextual": True,
        "metricSourceID": "src",
        "linkedExperimentName": "exp",
        "goalRichText": "<b>goal</b>",
        "optimizationParameter": "value",
        "valueColumn": "amount",
        "featureList": ["country", "plan"],
    }
    data = create(client, test_app, **extra).json()["data"]
    for field, value in extra.items():
        assert data[field] == value, field
    read = client.get(f"{BASE}/button_color_test", headers=test_app.console_headers()).json()["data"]
    assert read == data
