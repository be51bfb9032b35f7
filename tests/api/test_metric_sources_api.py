"""`/console/v1/metric_sources`: create, list, read, delete; injection attempts refused with 400 in the
documented shape; the connection URL's password never in any answer (docs/metric-sources.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautotune.engine.update import update_autotune
from openautotune.store.ingest_tables import units_table
from openautotune.testing import START_MS, TestApp

from .helpers import BASE as AUTOTUNES
from .helpers import body as autotune_body

BASE = "/console/v1/metric_sources"
PASSWORD = "pa55-W0rd-never-shown"
URL = f"postgresql+psycopg://shop:{PASSWORD}@127.0.0.1:1/shop?sslmode=disable"
INVALID = "Invalid request. Please check the request input and try again."


def source(**changes: Any) -> dict[str, Any]:
    made: dict[str, Any] = {
        "name": "orders",
        "url": URL,
        "table": "analytics.orders",
        "unitIdColumn": "user_id",
        "timestampColumn": "created_at",
        "valueColumn": "amount",
    }
    made.update(changes)
    return {key: value for key, value in made.items() if value is not None}


def test_create_read_list_delete(client: TestClient, test_app: TestApp) -> None:
    headers = test_app.console_headers()
    created = client.post(BASE, json=source(description="revenue"), headers=headers)
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert created.json()["message"] == "Metric source created successfully."
    assert data == {
        "id": "orders",
        "name": "orders",
        "url": "postgresql+psycopg://shop:***@127.0.0.1:1/shop?sslmode=disable",
        "table": "analytics.orders",
        "unitIdColumn": "user_id",
        "timestampColumn": "created_at",
        "valueColumn": "amount",
        "description": "revenue",
        "creatorID": data["creatorID"],
        "creatorName": "CONSOLE API",
        "createdTime": START_MS,
        "lastReadTime": None,
        "lastError": None,
    }
    read = client.get(f"{BASE}/orders", headers=test_app.console_headers(read_only=True))
    assert read.status_code == 200 and read.json()["data"] == data
    listed = client.get(BASE, params={"limit": 1}, headers=headers).json()
    assert listed["data"] == [data]
    assert listed["pagination"]["totalItems"] == 1 and listed["pagination"]["nextPage"] is None
    deleted = client.delete(f"{BASE}/orders", headers=headers)
    assert deleted.status_code == 200 and deleted.json() == {"message": "Metric source deleted successfully."}
    missing = client.get(f"{BASE}/orders", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"status": 404, "message": "Metric source not found."}


def test_name_in_use_read_only_keys_and_unknown_fields(client: TestClient, test_app: TestApp) -> None:
    headers = test_app.console_headers()
    assert client.post(BASE, json=source(), headers=headers).status_code == 201
    again = client.post(BASE, json=source(name="Orders"), headers=headers)
    assert again.status_code == 400 and again.json() == {"status": 400, "message": "Name is already in use"}
    read_only = client.post(BASE, json=source(name="other"), headers=test_app.console_headers(read_only=True))
    assert read_only.status_code == 403
    assert client.delete(f"{BASE}/orders", headers=test_app.console_headers(read_only=True)).status_code == 403
    unknown = client.post(BASE, json=source(name="other", passwrd="x"), headers=headers)
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["property"] == "passwrd"
    assert client.get(BASE).status_code == 401


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unitIdColumn": "user_id; DROP TABLE orders"}, "unitIdColumn"),
        ({"timestampColumn": 'created_at" --'}, "timestampColumn"),
        ({"valueColumn": "amount) FROM orders; --"}, "valueColumn"),
        ({"valueColumn": "1amount"}, "valueColumn"),
        ({"unitIdColumn": "x" * 64}, "unitIdColumn"),
        ({"table": "orders; DELETE FROM orders"}, "table"),
        ({"table": "a.b.c"}, "table"),
        ({"table": 'public."orders"'}, "table"),
        ({"table": None, "query": "SELECT * FROM orders; DROP TABLE orders"}, "query"),
        ({"table": None, "query": "DELETE FROM orders RETURNING *"}, "query"),
        ({"query": "SELECT * FROM orders"}, "query"),  # both a table and a query
        ({"table": None}, "query"),  # neither
        ({"name": "orders'; DROP TABLE metric_sources; --"}, "name"),
        ({"name": ""}, "name"),
        ({"url": "notadriver://x/y"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"description": "a\x00b"}, "description"),
        ({"table": None, "query": "SELECT 1\x00"}, "query"),
    ],
)
def test_injection_and_bad_fields_are_refused_in_the_validation_shape(
    client: TestClient, test_app: TestApp, changes: dict[str, Any], field: str
) -> None:
    response = client.post(BASE, json=source(**changes), headers=test_app.console_headers())
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["status"] == 400 and answer["message"] == INVALID
    assert field in [problem["property"] for problem in answer["errors"]]
    assert client.get(BASE, headers=test_app.console_headers()).json()["data"] == []  # nothing written
    assert PASSWORD not in response.text


def test_an_autotune_reading_a_source_refuses_a_value_column_that_is_not_a_plain_name(
    client: TestClient, test_app: TestApp
) -> None:
    headers = test_app.console_headers()
    bad = autotune_body(metricSourceID="orders", valueColumn="amount; DROP TABLE orders")
    response = client.post(AUTOTUNES, json=bad, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "property": "valueColumn",
            "errorMessage": "must be a plain column name: letters, digits and _, not starting with a digit, "
            "at most 63 characters",
        }
    ]
    good = autotune_body(metricSourceID="orders", valueColumn="amount", linkedExperimentName="checkout_exp")
    created = client.post(AUTOTUNES, json=good, headers=headers)
    assert created.status_code == 201
    assert created.json()["data"]["linkedExperimentName"] == "checkout_exp"
    assert created.json()["data"]["metricSourceID"] == "orders"


def test_a_source_in_use_cannot_be_deleted(client: TestClient, test_app: TestApp) -> None:
    headers = test_app.console_headers()
    assert client.post(BASE, json=source(), headers=headers).status_code == 201
    assert client.post(AUTOTUNES, json=autotune_body(metricSourceID="orders"), headers=headers).status_code == 201
    refused = client.delete(f"{BASE}/orders", headers=headers)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Metric source is used by autotune(s) button_color_test")
    assert client.delete(f"{AUTOTUNES}/button_color_test", headers=headers).status_code == 200
    assert client.delete(f"{BASE}/orders", headers=headers).status_code == 200


def test_credentials_never_appear_in_any_answer(client: TestClient, test_app: TestApp, tmp_path: Path) -> None:
    """Create, read, list, and after a failed read (the reason is kept on the source): never the password,
    not even in secret-looking query parameters."""
    headers = test_app.console_headers()
    url = f"postgresql+psycopg://shop:{PASSWORD}@127.0.0.1:1/shop?password={PASSWORD}&application_name=ms"
    answers = [client.post(BASE, json=source(url=url), headers=headers)]
    assert answers[0].status_code == 201
    assert answers[0].json()["data"]["url"] == (
        "postgresql+psycopg://shop:***@127.0.0.1:1/shop?application_name=ms&password=***"
    )
    created = client.post(
        AUTOTUNES, json=autotune_body(metricSourceID="orders", optimizationParameter="value"), headers=headers
    )
    autotune_id = created.json()["data"]["id"]
    assert client.put(f"{AUTOTUNES}/{autotune_id}/start", headers=headers).status_code == 200
    started = client.get(f"{AUTOTUNES}/{autotune_id}", headers=headers).json()["data"]
    variant = started["variants"][0]["id"]
    with test_app.db.write() as conn:
        conn.execute(
            units_table.insert(),
            [{"autotune_id": autotune_id, "run": 1, "unit_id": "u1", "variant_id": variant,
              "first_exposure_ms": START_MS + 1, "allocation_version": 1}],
        )  # fmt: skip
    outcome = update_autotune(test_app.db, test_app.clock, autotune_id, START_MS + 2 * 3_600_000)
    assert not outcome.updated
    answers.append(client.get(f"{BASE}/orders", headers=headers))
    error = answers[-1].json()["data"]["lastError"]
    assert error["autotuneID"] == autotune_id and "Connection refused" in error["reason"]
    answers.append(client.get(BASE, headers=headers))
    answers.append(client.get(f"{AUTOTUNES}/{autotune_id}", headers=headers))
    answers.append(client.get("/openapi.json"))
    for answer in answers:
        assert PASSWORD not in answer.text
