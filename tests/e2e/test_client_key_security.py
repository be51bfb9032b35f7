"""What a client key (public: it is in every page's source) can and cannot do on a real server."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.live import LiveServer
from tests.e2e.test_legacy_sdk import create

pytestmark = pytest.mark.e2e

ORIGIN = "https://shop.example"


def test_a_client_key_reaches_evaluated_values_and_nothing_else(shared_live_server: LiveServer) -> None:
    server = shared_live_server
    autotune_id = create(server, "security_banner")["id"]
    key = server.client_key
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        # The Console API, results included, refuses it whichever header carries it.
        for path in ("/console/v1/autotunes", f"/console/v1/autotunes/{autotune_id}/results"):
            for headers in ({"STATSIG-API-KEY": key}, {"statsig-api-key": key}):
                refused = http.get(path, headers=headers)
                assert refused.status_code == 401 and set(refused.json()) == {"status", "message"}
        refused = http.post("/console/v1/autotunes", json={"name": "x"}, headers={"STATSIG-API-KEY": key})
        assert refused.status_code == 401
        # Spec downloads (rules, salts, every autotune) need a server key.
        assert http.get(f"/v1/download_config_specs/{key}.json").status_code == 401
        assert http.get(f"/v2/download_config_specs/{key}.json").status_code == 401
        assert http.post("/v1/download_config_specs", headers={"STATSIG-API-KEY": key}).status_code == 401
        # Initialize answers one user's values, without a salt or a rule.
        answer = http.post("/v1/initialize", params={"k": key}, content=b'{"user": {"userID": "someone"}}')
        specs = server.v1_specs()
        salt = next(entry["salt"] for entry in specs["dynamic_configs"] if entry["name"] == autotune_id)
        assert answer.status_code == 200 and salt not in answer.text and "rules" not in answer.text
        # A malformed body is a 400 in the error shape, never a 500.
        broken = http.post("/v1/initialize", params={"k": key}, content=b'{"user": ')
        assert broken.status_code == 400 and broken.json()["status"] == 400
        # The browser endpoints answer a preflight; the Console API never does.
        preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
        for path in ("/v1/initialize", "/v1/rgstr"):
            allowed = http.options(path, params={"k": key}, headers=preflight)
            assert allowed.status_code == 204 and allowed.headers["access-control-allow-origin"] == "*"
        console = http.options("/console/v1/autotunes", headers=preflight)
        assert "access-control-allow-origin" not in console.headers
