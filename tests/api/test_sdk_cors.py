"""CORS on the browser SDK endpoints only, and only for client keys (api/cors.py, docs/sdks.md#cors)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from openautotune.api.app import create_app
from openautotune.clock import FixedClock
from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service
from openautotune.settings import Settings
from openautotune.store.database import Database
from openautotune.testing import START_MS, TestApp

PAGE = "https://shop.example"
JS_CLIENT_HEADERS = "content-type,statsig-event-count,statsig-retry-count,statsig-sdk-type,statsig-sdk-version"
BODY = b'{"user": {"userID": "u"}}'


def preflight(client: TestClient, path: str, key: str | None, origin: str = PAGE) -> dict[str, str]:
    params = {"k": key} if key else {}
    response = client.options(
        path,
        params=params,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": JS_CLIENT_HEADERS,
        },
    )
    return {"status": str(response.status_code), **{k.lower(): v for k, v in response.headers.items()}}


def test_preflight_answers_for_client_keys(client: TestClient, test_app: TestApp) -> None:
    for path in ("/v1/rgstr", "/v1/initialize"):
        answer = preflight(client, path, test_app.client_key)
        assert answer["status"] == "204" and answer["access-control-allow-origin"] == "*"
        assert "POST" in answer["access-control-allow-methods"]
        allowed = {h.strip() for h in answer["access-control-allow-headers"].split(",")}
        assert set(JS_CLIENT_HEADERS.split(",")) <= allowed
    # The exception report carries its key in a header the preflight cannot show.
    assert preflight(client, "/v1/sdk_exception", None)["status"] == "204"


def test_no_cors_for_other_keys_or_other_endpoints(client: TestClient, test_app: TestApp) -> None:
    for key in (test_app.server_key, test_app.console_key, "client-unknown"):
        answer = preflight(client, "/v1/rgstr", key)
        assert answer["status"] == "403" and "access-control-allow-origin" not in answer
    for path in ("/console/v1/autotunes", "/v1/get_config", f"/v1/download_config_specs/{test_app.client_key}.json"):
        assert "access-control-allow-origin" not in preflight(client, path, test_app.client_key)


def test_answers_carry_the_origin_only_for_client_keys(client: TestClient, test_app: TestApp) -> None:
    origin = {"Origin": PAGE}
    allowed = client.post("/v1/initialize", params={"k": test_app.client_key}, content=BODY, headers=origin)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "*"
    # Even a refusal is readable by the page (so the SDK sees the status).
    broken = client.post("/v1/initialize", params={"k": test_app.client_key}, content=b"{", headers=origin)
    assert broken.status_code == 400 and broken.headers["access-control-allow-origin"] == "*"
    server = client.post("/v1/initialize", params={"k": test_app.server_key}, content=BODY, headers=origin)
    assert server.status_code == 200 and "access-control-allow-origin" not in server.headers
    console = client.get("/console/v1/autotunes", headers={**origin, **test_app.console_headers()})
    assert console.status_code == 200 and "access-control-allow-origin" not in console.headers
    specs = client.get(f"/v1/download_config_specs/{test_app.client_key}.json", headers=origin)
    assert specs.status_code == 401 and "access-control-allow-origin" not in specs.headers


@pytest.fixture
def listed_origins(sqlite_url: str) -> Iterator[tuple[TestClient, str]]:
    db = Database.from_url(sqlite_url)
    clock = FixedClock(START_MS)
    settings = Settings(database_url=sqlite_url, cors_allowed_origins=f"{PAGE}, https://www.shop.example/")
    app = create_app(settings, db=db, clock=clock)
    key = key_service.create_key(db, clock, KeyKind.CLIENT).secret
    with TestClient(app) as client:
        yield client, key
    db.dispose()


def test_a_configured_list_of_origins(listed_origins: tuple[TestClient, str]) -> None:
    client, key = listed_origins
    for origin in (PAGE, "https://www.shop.example"):
        answer = preflight(client, "/v1/rgstr", key, origin)
        assert answer["status"] == "204" and answer["access-control-allow-origin"] == origin
        assert answer["vary"] == "Origin"
        posted = client.post("/v1/initialize", params={"k": key}, content=BODY, headers={"Origin": origin})
        assert posted.headers["access-control-allow-origin"] == origin
    assert preflight(client, "/v1/rgstr", key, "https://evil.example")["status"] == "403"
    other = client.post("/v1/initialize", params={"k": key}, content=BODY, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
