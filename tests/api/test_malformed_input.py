"""Bad bodies get a 4xx in the error shape, never a 500 or a stack trace."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openautotune.testing import TestApp
from tests.api.helpers import BASE, body

BAD_BODIES = [
    pytest.param(b"{not json", "application/json", id="malformed-json"),
    pytest.param(b"\xff\xfe\xfa", "application/json", id="not-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "application/json", id="deeply-nested"),
    pytest.param(b'{"name": "x"', "application/json", id="truncated"),
    pytest.param(b"name=x", "application/x-www-form-urlencoded", id="form-content-type"),
    pytest.param(b"hello", "text/plain", id="text-content-type"),
    pytest.param(b"[]", "application/json", id="array-not-object"),
    pytest.param(b"null", "application/json", id="null"),
    pytest.param(b"", "application/json", id="empty"),
]


@pytest.mark.parametrize(("payload", "content_type"), BAD_BODIES)
def test_bad_bodies_are_4xx_in_the_error_shape(
    client: TestClient, test_app: TestApp, payload: bytes, content_type: str
) -> None:
    headers = {**test_app.console_headers(), "content-type": content_type}
    for method, path in [("POST", BASE), ("PATCH", f"{BASE}/x"), ("PUT", f"{BASE}/x/make_decision")]:
        response = client.request(method, path, content=payload, headers=headers)
        assert 400 <= response.status_code < 500, (method, response.status_code, response.text)
        data = response.json()
        assert data["status"] == response.status_code
        assert isinstance(data["message"], str)
        assert "Traceback" not in response.text


def test_body_over_one_mebibyte_is_413(client: TestClient, test_app: TestApp) -> None:
    huge = body(description="x" * (1024 * 1024 + 10))
    response = client.post(BASE, json=huge, headers=test_app.console_headers())
    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_huge_string_within_the_limit_is_rejected_cleanly(client: TestClient, test_app: TestApp) -> None:
    response = client.post(BASE, json=body(name="n" * 500_000), headers=test_app.console_headers())
    assert response.status_code == 400
    assert response.json()["errors"][0]["property"] == "name"


def test_unknown_route_is_404_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/console/v1/nothing")
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_wrong_method_is_405_in_the_error_shape(client: TestClient, test_app: TestApp) -> None:
    response = client.put(BASE, headers=test_app.console_headers())
    assert response.status_code == 405
    assert response.json()["status"] == 405
