"""API keys never reach the server's logs in full: access lines and exception logs show a key's prefix
and at most its last 4 characters, while the 401 body still echoes the key its caller sent."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from openautotune.api import log_redaction
from openautotune.api.log_redaction import redact
from openautotune.testing import TestApp
from tests.e2e.live import LiveServer


@pytest.fixture
def redacting() -> Iterator[None]:
    previous = log_redaction.install()
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


def _shown(key: str) -> str:
    prefix, _, token = key.partition("-")
    return f"{prefix}-…{token[-4:]}"


def test_keys_are_cut_to_their_prefix_and_last_four_characters() -> None:
    key = "secret-q8YTc8mmYFIg3uqdAhxawZXg6h6URccm"
    assert redact(f"GET /v2/download_config_specs/{key}.json") == "GET /v2/download_config_specs/secret-…Rccm.json"
    assert redact("/v1/initialize?k=client-ABCDEFGHIJKLMNOPQRSTUV&x=1") == "/v1/initialize?k=client-…STUV&x=1"
    assert redact('{"key": "console-0123456789abcdefXYZW"}') == '{"key": "console-…XYZW"}'
    assert redact("secret-short") == "secret-…"  # too short to show even 4 characters
    assert redact("secret-abc%2Fdef0123456789zz") == "secret-…89zz"
    assert redact("no key here: clients, secrets, consoles") == "no key here: clients, secrets, consoles"


def test_a_record_keeps_the_argument_shape_uvicorns_access_formatter_reads() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None)
    record.args = ("127.0.0.1:5000", "GET", "/v1/download_config_specs/secret-0123456789abcdefWXYZ.json", "1.1", 200)
    log_redaction.redact_record(record)
    assert record.args == ("127.0.0.1:5000", "GET", "/v1/download_config_specs/secret-…WXYZ.json", "1.1", 200)


class _BrokenSpecs:
    """A spec cache that fails with the caller's key in its message (as a careless error could)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def fresh(self) -> None:
        raise RuntimeError(f"cannot render specs for {self.key}")


def test_an_exception_log_shows_no_key(
    test_app: TestApp, redacting: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = test_app.server_key
    monkeypatch.setattr(test_app.app.state, "specs", _BrokenSpecs(key))
    with TestClient(test_app.app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        answer = client.get(f"/v2/download_config_specs/{key}.json")
    assert answer.status_code == 500
    errors = [record for record in caplog.records if record.exc_info]
    assert errors, caplog.text
    logged = caplog.text + "".join(record.exc_text or "" for record in errors)
    assert key not in logged
    assert f"/v2/download_config_specs/{_shown(key)}.json" in logged
    assert f"cannot render specs for {_shown(key)}" in logged


@pytest.mark.e2e
def test_a_live_servers_access_log_shows_no_key(database_url: str) -> None:
    server = LiveServer.start(database_url, env={"OPENAUTOTUNE_LOG_LEVEL": "info"})
    try:
        wrong = "secret-NotARealKeyButStillSecret42"
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            assert http.get(f"/v2/download_config_specs/{server.server_key}.json").status_code == 200
            assert http.get(f"/v1/download_config_specs/{server.server_key}.json").status_code == 200
            refused = http.get(f"/v1/download_config_specs/{wrong}.json")
            assert refused.status_code == 401
            assert wrong in refused.text  # the caller is told which key it sent, as Statsig does
            http.post(f"/v1/initialize?k={server.client_key}", json={})
        log = server.log()
        for key in (server.server_key, server.client_key, wrong):
            assert key not in log
        assert f'"GET /v2/download_config_specs/{_shown(server.server_key)}.json HTTP/1.1" 200' in log
        assert f'"GET /v1/download_config_specs/{_shown(wrong)}.json HTTP/1.1" 401' in log
        assert f"/v1/initialize?k={_shown(server.client_key)}" in log
    finally:
        server.stop()
