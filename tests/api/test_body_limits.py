"""Bodies over the size limit get 413 in the error shape whether their length is declared or they arrive
chunked (no Content-Length), and write nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from openautotune.api.limits import MAX_BODY_BYTES
from openautotune.domain.field_limits import MAX_DESCRIPTION
from openautotune.testing import TestApp
from tests.api.helpers import BASE, body

CHUNK = 64 * 1024
JSON_HEADERS = {"content-type": "application/json"}


def _chunked(payload: bytes) -> Iterator[bytes]:
    """A generator body: httpx sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(payload), CHUNK):
        yield payload[start : start + CHUNK]


def _oversized_create() -> bytes:
    return orjson.dumps(body(description="x" * (MAX_BODY_BYTES + 10)))


@pytest.mark.parametrize(
    ("method", "path"), [("POST", BASE), ("PATCH", f"{BASE}/x"), ("PUT", f"{BASE}/x/make_decision")]
)
def test_a_chunked_console_body_over_the_limit_is_413(
    client: TestClient, test_app: TestApp, method: str, path: str
) -> None:
    response = client.request(
        method, path, content=_chunked(_oversized_create()), headers=JSON_HEADERS | test_app.console_headers()
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413, response.text
    assert response.json() == {"status": 413, "message": f"The request body is larger than {MAX_BODY_BYTES} bytes"}
    listing = client.get(BASE, headers=test_app.console_headers()).json()
    assert listing["data"] == []


def test_a_chunked_body_within_the_limit_is_served(client: TestClient, test_app: TestApp) -> None:
    payload = orjson.dumps(body(description="x" * MAX_DESCRIPTION))  # the longest a description may be
    response = client.post(BASE, content=_chunked(payload), headers=JSON_HEADERS | test_app.console_headers())
    assert response.status_code == 201, response.text


def test_a_chunked_dashboard_form_over_the_limit_is_413(client: TestClient) -> None:
    form = b"key=" + b"x" * (MAX_BODY_BYTES + 10)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    response = client.post("/login", content=_chunked(form), headers=headers)
    assert response.status_code == 413
    assert response.json()["status"] == 413
