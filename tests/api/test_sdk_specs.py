"""SDK spec endpoints over HTTP on SQLite and PostgreSQL: auth, freshness, encodings, get_config."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from openautotune.api import spec_cache
from openautotune.service import exposures_log
from openautotune.testing import TestApp
from tests.api.helpers import created_id, put


def v1_url(key: str) -> str:
    return f"/v1/download_config_specs/{key}.json"


def v2_url(key: str) -> str:
    return f"/v2/download_config_specs/{key}.json"


def raw_get(client: TestClient, url: str, encoding: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"Accept-Encoding": encoding} if encoding is not None else {"Accept-Encoding": "identity"}
    return client.get(url, headers=headers, **kwargs)


def started(client: TestClient, app: TestApp, **changes: Any) -> str:
    autotune_id = created_id(client, app, **changes)
    assert put(client, app, f"{autotune_id}/start").status_code == 200
    return autotune_id


def test_v1_specs_list_autotunes_and_time_only_grows(client: TestClient, test_app: TestApp) -> None:
    first = client.get(v1_url(test_app.server_key)).json()
    assert first["has_updates"] is True and first["dynamic_configs"] == []
    assert first["time"] == 1  # untouched database: SDKs read time 0 as "no specs yet"
    assert first["diagnostics"] == {"initialize": 0, "dcs": 0, "idlist": 0, "logevent": 0, "api_call": 0}
    autotune_id = started(client, test_app)
    second = client.get(v1_url(test_app.server_key)).json()
    assert second["time"] > first["time"]
    (entry,) = second["dynamic_configs"]
    assert entry["name"] == autotune_id and entry["enabled"] is True and entry["version"] == 1
    assert [rule["conditions"][0]["targetValue"] for rule in entry["rules"]] == [500, 1000]


def test_since_time(client: TestClient, test_app: TestApp) -> None:
    started(client, test_app)
    specs = client.get(v1_url(test_app.server_key)).json()
    now = specs["time"]
    for since in (now, now + 1):
        answer = client.get(v1_url(test_app.server_key), params={"sinceTime": since})
        assert answer.status_code == 200 and answer.json() == {"has_updates": False}
    assert client.get(v1_url(test_app.server_key), params={"sinceTime": now - 1}).json()["time"] == now
    test_app.clock.advance(1000)
    created_id(client, test_app, name="another")
    assert client.get(v1_url(test_app.server_key), params={"sinceTime": now}).json()["time"] > now
    bad = client.get(v1_url(test_app.server_key), params={"sinceTime": "yesterday"})
    assert bad.status_code == 400 and bad.json()["status"] == 400


def test_keys(client: TestClient, test_app: TestApp) -> None:
    assert client.get(v1_url("nokey"), headers={"STATSIG-API-KEY": test_app.server_key}).status_code == 401
    for key in (test_app.client_key, test_app.console_key, "secret-unknown"):
        answer = client.get(v1_url(key))
        assert answer.status_code == 401
        assert set(answer.json()) == {"status", "message"} and answer.json()["status"] == 401
        assert client.get(v2_url(key)).status_code == 401
        assert client.post("/v1/get_id_lists", json={}, headers={"STATSIG-API-KEY": key}).status_code == 401
    posted = client.post("/v1/download_config_specs", json={}, headers={"STATSIG-API-KEY": test_app.server_key})
    assert posted.status_code == 200 and posted.json()["has_updates"] is True
    assert client.post("/v1/download_config_specs", json={}).status_code == 401
    ids = client.post("/v1/get_id_lists", json={}, headers={"STATSIG-API-KEY": test_app.server_key})
    assert ids.status_code == 200 and ids.json() == {}


def test_post_download_config_specs_body(client: TestClient, test_app: TestApp) -> None:
    headers = {"STATSIG-API-KEY": test_app.server_key}
    now = client.post("/v1/download_config_specs", headers=headers).json()["time"]
    answer = client.post("/v1/download_config_specs", json={"sinceTime": now}, headers=headers)
    assert answer.json() == {"has_updates": False}
    for body in (b"{not json", b"[1]", b'{"sinceTime": {}}', b'{"sinceTime": true}'):
        bad = client.post("/v1/download_config_specs", content=body, headers=headers)
        assert bad.status_code == 400 and bad.json()["status"] == 400, body


@pytest.mark.parametrize("path", ["v1", "v2"])
def test_gzip_only_when_accepted(client: TestClient, test_app: TestApp, path: str) -> None:
    started(client, test_app)
    url = (v1_url if path == "v1" else v2_url)(test_app.server_key)
    plain = raw_get(client, url, None)
    assert "content-encoding" not in plain.headers
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as streamed:
        assert streamed.headers["content-encoding"] == "gzip"
        body = b"".join(streamed.iter_raw())
    assert orjson.loads(gzip.decompress(body)) == plain.json()
    refused = raw_get(client, url, "gzip;q=0, zstd")
    assert "content-encoding" not in refused.headers and refused.json() == plain.json()
    with client.stream("GET", url, headers={"Accept-Encoding": "*"}) as streamed:
        assert streamed.headers["content-encoding"] == "gzip"


def test_v2_brotli_checksum_and_double_slash(client: TestClient, test_app: TestApp) -> None:
    started(client, test_app)
    url = v2_url(test_app.server_key)
    specs = raw_get(client, url, None, params={"supports_proto": "true"}).json()
    assert set(specs) >= {"time", "checksum", "condition_map", "experiment_to_layer", "feature_gates"}
    with client.stream("GET", url, headers={"Accept-Encoding": "br, gzip"}) as streamed:
        assert streamed.headers["content-encoding"] == "br"
        body = b"".join(streamed.iter_raw())
    assert orjson.loads(brotli.decompress(body)) == specs
    double = client.get(f"/v2/download_config_specs//{test_app.server_key}.json")
    assert double.status_code == 200 and double.json() == specs
    checksum = specs["checksum"]
    assert client.get(url, params={"checksum": checksum}).json() == {"has_updates": False}
    assert client.get(url, params={"sinceTime": specs["time"], "checksum": "old"}).json() == {"has_updates": False}
    fresh = client.get(url, params={"sinceTime": specs["time"] - 1, "checksum": "old"}).json()
    assert fresh["checksum"] == checksum
    test_app.clock.advance(1000)
    created_id(client, test_app, name="changed")
    changed = client.get(url, params={"checksum": checksum}).json()
    assert changed["checksum"] != checksum and changed["time"] > specs["time"]


def test_a_rendering_bug_never_reaches_sdks(
    client: TestClient, test_app: TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(client, test_app)
    good = client.get(v2_url(test_app.server_key)).json()
    real_render = spec_cache.specs_v2.render

    def buggy(*args: Any) -> dict[str, Any]:
        document = real_render(*args)
        for condition in document["condition_map"].values():
            condition.pop("idType")
        return document

    monkeypatch.setattr(spec_cache.specs_v2, "render", buggy)
    test_app.clock.advance(1000)
    created_id(client, test_app, name="changed")
    assert client.get(v2_url(test_app.server_key)).json() == good


def get_config(client: TestClient, key: str, body: Any) -> httpx.Response:
    return client.post("/v1/get_config", json=body, headers={"statsig-api-key": key})


def test_get_config_evaluates_and_records_the_exposure(client: TestClient, test_app: TestApp) -> None:
    autotune_id = started(client, test_app)
    variants = client.get(f"/console/v1/autotunes/{autotune_id}", headers=test_app.console_headers()).json()
    by_id = {v["id"]: v for v in variants["data"]["variants"]}
    for key in (test_app.server_key, test_app.client_key):
        answer = get_config(client, key, {"configName": autotune_id, "user": {"userID": "u-42"}})
        assert answer.status_code == 200
        data = answer.json()
        assert set(data) == {"name", "value", "rule_id", "group", "group_name"}
        variant = by_id[data["rule_id"]]
        assert data["group"] == variant["id"] and data["group_name"] == variant["name"]
        assert data["value"] == variant["json"]
    logged = exposures_log.recent(test_app.db, autotune_id)
    assert len(logged) >= 1 and logged[0].unit_id == "u-42" and logged[0].rule_id == data["rule_id"]


def test_get_config_refuses_bad_input(client: TestClient, test_app: TestApp) -> None:
    autotune_id = started(client, test_app)
    assert get_config(client, test_app.console_key, {"configName": autotune_id, "user": {}}).status_code == 401
    for body in ({"user": {}}, {"configName": autotune_id}, {"configName": "", "user": {}}, [], "x"):
        answer = get_config(client, test_app.server_key, body)
        assert answer.status_code == 400 and answer.json()["status"] == 400, body
    weird = {"configName": autotune_id, "user": {"userID": {"nested": 1}}}
    assert get_config(client, test_app.server_key, weird).status_code == 400
    unknown = get_config(client, test_app.server_key, {"configName": "nope", "user": {"userID": "u"}})
    assert unknown.status_code == 200 and unknown.json()["rule_id"] == "" and unknown.json()["value"] == {}


def test_draft_get_config_is_prestart(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    answer = get_config(client, test_app.server_key, {"configName": autotune_id, "user": {"userID": "u"}}).json()
    assert answer == {
        "name": autotune_id,
        "value": {"color": "red"},
        "rule_id": "prestart",
        "group": "prestart",
        "group_name": None,
    }
