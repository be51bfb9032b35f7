"""Issue 12, items 1, 2, 5 and 7: bad input is a 400 that writes nothing, and one bad row never stops
the specs or /v1/get_config of every other autotune (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautotune.service import autotunes as autotune_service
from openautotune.store import audit, spec_changes
from openautotune.store import autotunes as autotune_store
from openautotune.store.contextual import policies_table
from openautotune.testing import TestApp
from tests.api.helpers import BASE, body, created_id, invalid_properties, put
from tests.api.test_contextual_serving import _trained

# Values Python's json accepts but no SDK document can carry (item 1), each as raw JSON text.
UNSERVABLE = {
    "int-2^64": str(2**64),
    "int-4000-digits": "9" * 4000,
    "lone-surrogate": '"\\ud800"',
    "beyond-2^53": str(2**53 + 1),  # console-api.md: outside JavaScript's safe integer range
    "nested-40-deep": "[" * 40 + "]" * 40,
}


def raw_body(template: dict[str, Any], marker: str, value: str) -> bytes:
    """`template` as JSON with the string `marker` replaced by the raw JSON text `value`."""
    return json.dumps(template).replace(json.dumps(marker), value).encode()


def post_raw(client: TestClient, app: TestApp, path: str, content: bytes, method: str = "POST") -> Any:
    headers = {**app.console_headers(), "content-type": "application/json"}
    return client.request(method, path, content=content, headers=headers)


def audit_count(app: TestApp) -> int:
    with app.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(audit.audit_table)).scalar_one())


def autotune_count(app: TestApp) -> int:
    with app.db.read() as conn:
        return autotune_store.page(conn, 1, 0)[1]


def started(client: TestClient, app: TestApp, name: str, color: str) -> str:
    variants = [{"name": "a", "json": {"color": color}}, {"name": "b", "json": {"color": color}}]
    autotune_id = created_id(client, app, name=name, variants=variants)
    assert put(client, app, f"{autotune_id}/start").status_code == 200
    return autotune_id


def assert_every_sdk_endpoint_serves(client: TestClient, app: TestApp, colors: dict[str, str]) -> None:
    """v1 (GET and POST), v2 and get_config answer 200 and serve each autotune of `colors`."""
    key = app.server_key
    v1 = client.get(f"/v1/download_config_specs/{key}.json")
    v1_post = client.post("/v1/download_config_specs", json={}, headers={"STATSIG-API-KEY": key})
    v2 = client.get(f"/v2/download_config_specs/{key}.json")
    for answer in (v1, v1_post, v2):
        assert answer.status_code == 200, answer.text
    v1_names = {entry["name"] for entry in v1.json()["dynamic_configs"]}
    assert set(colors) <= v1_names
    assert v1_post.json()["dynamic_configs"] == v1.json()["dynamic_configs"]
    assert set(colors) <= set(v2.json()["dynamic_configs"])
    for autotune_id, color in colors.items():
        answer = client.post(
            "/v1/get_config",
            json={"configName": autotune_id, "user": {"userID": "u1"}},
            headers={"statsig-api-key": app.client_key},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["value"] == {"color": color}


@pytest.mark.parametrize("value", list(UNSERVABLE.values()), ids=list(UNSERVABLE))
def test_item1_unservable_variant_json_is_400_writes_nothing_and_serving_continues(
    client: TestClient, test_app: TestApp, value: str
) -> None:
    colors = {started(client, test_app, "first", "red"): "red", started(client, test_app, "second", "blue"): "blue"}
    autotunes_before, audit_before = autotune_count(test_app), audit_count(test_app)
    variants = [{"name": "a", "json": {"n": "MARK"}}, {"name": "b", "json": {}}]
    created = post_raw(client, test_app, BASE, raw_body(body(name="bad", variants=variants), "MARK", value))
    assert created.status_code == 400, created.text
    assert created.json()["status"] == 400
    assert created.json()["errors"]
    first = next(iter(colors))
    for method in ("POST", "PATCH"):  # full and partial update of an existing autotune: refused alike
        update = body(variants=variants)
        del update["name"]
        answer = post_raw(client, test_app, f"{BASE}/{first}", raw_body(update, "MARK", value), method)
        assert answer.status_code == 400, answer.text
    assert (autotune_count(test_app), audit_count(test_app)) == (autotunes_before, audit_before)
    assert client.get(f"{BASE}/bad", headers=test_app.console_headers()).status_code == 404
    assert_every_sdk_endpoint_serves(client, test_app, colors)


def test_item1_errors_name_the_field(client: TestClient, test_app: TestApp) -> None:
    variants = [{"name": "a", "json": {"n": "MARK"}}, {"name": "b", "json": {}}]
    for value, where in ((str(2**64), "variants[0].json.n"), ('"\\ud800"', "variants[0].json.n")):
        answer = post_raw(client, test_app, BASE, raw_body(body(variants=variants), "MARK", value))
        assert invalid_properties(answer) == [where]
    answer = client.post(
        BASE,
        json=body(variants=[variants[0] | {"json": {"n": 2**53}}, variants[1]]),
        headers=test_app.console_headers(),
    )
    assert invalid_properties(answer) == ["variants[0].json.n"]


@pytest.mark.parametrize("field", ["description", "goalRichText", "successEvent", "idType"])
def test_item2_lone_surrogate_or_nul_in_a_text_field_is_400_and_writes_nothing(
    client: TestClient, test_app: TestApp, field: str
) -> None:
    autotune_id = created_id(client, test_app)
    audit_before = audit_count(test_app)
    for value in ('"\\ud800"', '"a\\u0000b"'):
        assert (
            post_raw(client, test_app, BASE, raw_body(body(name="other", **{field: "MARK"}), "MARK", value)).status_code
            == 400
        )
        patch = raw_body({field: "MARK"}, "MARK", value)
        assert post_raw(client, test_app, f"{BASE}/{autotune_id}", patch, "PATCH").status_code == 400
    assert audit_count(test_app) == audit_before and autotune_count(test_app) == 1
    listed = client.get(BASE, headers=test_app.console_headers())
    assert listed.status_code == 200 and listed.json()["pagination"]["totalItems"] == 1
    assert client.get(f"{BASE}/{autotune_id}", headers=test_app.console_headers()).status_code == 200


def test_item2_lone_surrogate_in_an_override_is_400_and_writes_nothing(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    audit_before = audit_count(test_app)
    for field in ("ids", "groupID", "environment", "unitType"):
        override: dict[str, Any] = {"groupID": "red", "ids": ["u1"], field: "MARK"}
        if field == "ids":
            override["ids"] = ["u1", "MARK"]
        content = raw_body({"userIDOverrides": [override]}, "MARK", '"\\ud800"')
        for method in ("POST", "PATCH"):
            answer = post_raw(client, test_app, f"{BASE}/{autotune_id}/overrides", content, method)
            assert answer.status_code == 400, (field, method, answer.text)
    too_long = {"userIDOverrides": [{"groupID": "red", "ids": ["x" * 257]}]}
    answer = client.post(f"{BASE}/{autotune_id}/overrides", json=too_long, headers=test_app.console_headers())
    assert invalid_properties(answer) == ["userIDOverrides[0].ids[0]"]
    assert audit_count(test_app) == audit_before
    read = client.get(f"{BASE}/{autotune_id}/overrides", headers=test_app.console_headers())
    assert read.status_code == 200 and read.json()["data"]["userIDOverrides"] == []
    assert client.get(BASE, headers=test_app.console_headers()).status_code == 200


def write_bad_row(app: TestApp, autotune_id: str, bad_json: dict[str, Any]) -> None:
    """What validation now refuses, written straight into the store (a row from before the rule)."""
    autotune = autotune_service.get(app.db, autotune_id)
    first, *rest = autotune.definition.variants
    definition = replace(autotune.definition, variants=(replace(first, json=bad_json), *rest))
    app.clock.advance(1000)
    with app.db.write() as conn:
        autotune_store.save(conn, replace(autotune, definition=definition))
        spec_changes.bump(conn, app.clock.now_ms())


@pytest.mark.parametrize(
    "bad_json", [{"n": 2**64}, {"n": int("9" * 4000)}, {"s": "\ud800"}], ids=["2^64", "4000-digits", "surrogate"]
)
def test_a_bad_row_in_the_store_leaves_every_other_autotune_served(
    client: TestClient, test_app: TestApp, bad_json: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    colors = {started(client, test_app, "first", "red"): "red", started(client, test_app, "second", "blue"): "blue"}
    bad = started(client, test_app, "bad", "green")
    assert client.get("/health").json() == {"status": "ok", "unrenderable": []}
    with caplog.at_level(logging.ERROR, logger="openautotune.specs"):
        write_bad_row(test_app, bad, bad_json)
        for _ in range(3):
            assert_every_sdk_endpoint_serves(client, test_app, colors)
        test_app.clock.advance(1000)
        colors[started(client, test_app, "third", "white")] = "white"  # a new change: rendered again
        assert_every_sdk_endpoint_serves(client, test_app, colors)
    logged = [record for record in caplog.records if bad in record.getMessage()]
    assert len(logged) == 1, [record.getMessage() for record in caplog.records]
    health = client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "degraded", "unrenderable": [bad]}
    v1 = client.get(f"/v1/download_config_specs/{test_app.server_key}.json").json()
    assert bad not in {entry["name"] for entry in v1["dynamic_configs"]}
    unknown = client.post(
        "/v1/get_config",
        json={"configName": bad, "user": {"userID": "u1"}},
        headers={"statsig-api-key": test_app.client_key},
    )
    assert unknown.status_code == 200 and unknown.json()["value"] == {}
    # Deleting the row (the way out) makes the server whole again.
    assert client.delete(f"{BASE}/{bad}", headers=test_app.console_headers()).status_code == 200
    assert client.get("/health").json() == {"status": "ok", "unrenderable": []}


def test_a_row_that_cannot_be_read_as_an_autotune_leaves_every_other_one_served(
    client: TestClient, test_app: TestApp
) -> None:
    colors = {started(client, test_app, "first", "red"): "red", started(client, test_app, "second", "blue"): "blue"}
    broken = started(client, test_app, "broken", "green")
    with test_app.db.write() as conn:  # a definition without variants: no Autotune can be made of it
        table = autotune_store.autotunes_table
        conn.execute(sa.update(table).where(table.c.id == broken).values(definition={"name": "broken"}))
        test_app.clock.advance(1000)
        spec_changes.bump(conn, test_app.clock.now_ms())
    assert_every_sdk_endpoint_serves(client, test_app, colors)
    health = client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "degraded", "unrenderable": [broken]}


DEEP_USER = '{"userID": "u1", "custom": ' + "[" * 2000 + "]" * 2000 + "}"
BAD_USERS = {
    "deep-2000": DEEP_USER,
    "deep-40": '{"userID": "u1", "custom": ' + "[" * 40 + "]" * 40 + "}",
    "int-2^70": '{"userID": ' + str(2**70) + "}",
    "custom-int-2^70": '{"userID": "u1", "custom": {"n": ' + str(2**70) + "}}",
    "surrogate-user-id": '{"userID": "\\ud800"}',
    "surrogate-custom": '{"userID": "u1", "custom": {"s": "\\ud800"}}',
    "user-id-object": '{"userID": {"a": 1}}',
    "custom-ids-list": '{"userID": "u1", "customIDs": [1, 2]}',
    "huge-number": '{"userID": 1e400}',
}


@pytest.mark.parametrize("user", list(BAD_USERS.values()), ids=list(BAD_USERS))
def test_item5_get_config_with_a_hostile_user_is_never_a_5xx(client: TestClient, test_app: TestApp, user: str) -> None:
    autotune_id = started(client, test_app, "first", "red")
    for config in (autotune_id, "unknown"):
        content = ('{"configName": "' + config + '", "user": ' + user + "}").encode()
        answer = client.post(
            "/v1/get_config",
            content=content,
            headers={"statsig-api-key": test_app.client_key, "content-type": "application/json"},
        )
        assert answer.status_code in (200, 400), answer.text
        assert answer.json()["status" if answer.status_code == 400 else "name"] in (400, config)
    assert_every_sdk_endpoint_serves(client, test_app, {autotune_id: "red"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
users = st.dictionaries(
    st.sampled_from(["userID", "customIDs", "custom", "email", "statsigEnvironment", "privateAttributes"]) | st.text(),
    json_values,
    max_size=5,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=users)
def test_get_config_never_answers_5xx_for_any_json_user(client: TestClient, test_app: TestApp, user: Any) -> None:
    autotune_id = "prop"
    if client.get(f"{BASE}/{autotune_id}", headers=test_app.console_headers()).status_code == 404:
        started(client, test_app, autotune_id, "red")
    # json.dumps writes what Python holds (lone surrogates, huge integers, NaN) as an SDK might send it.
    content = json.dumps({"configName": autotune_id, "user": user}).encode()
    answer = client.post(
        "/v1/get_config",
        content=content,
        headers={"statsig-api-key": test_app.client_key, "content-type": "application/json"},
    )
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        assert answer.json()["value"] == {"color": "red"}


@pytest.mark.parametrize(
    "query",
    [
        {"page": str(2**62)},
        {"page": "1" + "0" * 30},
        {"page": "0"},
        {"page": "-1"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": str(2**62)},
        {"page": "1000001"},
        {"page": "x"},
    ],
    ids=lambda q: "&".join(f"{k}={v[:12]}" for k, v in q.items()),
)
def test_item7_page_and_limit_out_of_range_are_400(
    client: TestClient, test_app: TestApp, query: dict[str, str]
) -> None:
    created_id(client, test_app)
    answer = client.get(BASE, params=query, headers=test_app.console_headers())
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"] == 400


def test_item7_last_allowed_page_is_empty_not_an_error(client: TestClient, test_app: TestApp) -> None:
    created_id(client, test_app)
    answer = client.get(BASE, params={"page": "1000000", "limit": "100"}, headers=test_app.console_headers())
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == [] and answer.json()["pagination"]["totalItems"] == 1


def test_the_console_body_is_parsed_with_limits_before_any_handler(client: TestClient, test_app: TestApp) -> None:
    """A field the domain never checks (the decision reason goes to the audit log) is refused too."""
    autotune_id = started(client, test_app, "first", "red")
    audit_before = audit_count(test_app)
    content = raw_body({"id": "a", "decisionReason": "MARK"}, "MARK", '"\\ud800"')
    answer = post_raw(client, test_app, f"{BASE}/{autotune_id}/make_decision", content, "PUT")
    assert invalid_properties(answer) == ["decisionReason"]
    assert audit_count(test_app) == audit_before
    assert client.get(f"{BASE}/{autotune_id}", headers=test_app.console_headers()).json()["data"]["winner"] is None


def test_an_unreadable_contextual_policy_leaves_get_config_serving_every_autotune(
    client: TestClient, test_app: TestApp, caplog: pytest.LogCaptureFixture
) -> None:
    contextual_id, variants = _trained(client, test_app)
    colors = {started(client, test_app, "plain", "red"): "red"}
    with test_app.db.write() as conn:
        conn.execute(sa.update(policies_table).values(model={"not": "a model"}))
        spec_changes.bump(conn, test_app.clock.now_ms() + 10_000)
    with caplog.at_level(logging.ERROR, logger="openautotune.engine"):
        assert_every_sdk_endpoint_serves(client, test_app, colors)
        answer = client.post(
            "/v1/get_config",
            json={"configName": contextual_id, "user": {"userID": "u1", "country": "DE"}},
            headers={"statsig-api-key": test_app.client_key},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["group"] in variants and not answer.json()["rule_id"].endswith(":explore")
    assert any(contextual_id in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("method", "since"),
    [("GET", "9" * 5000), ("GET", "abc"), ("POST", 2**70), ("POST", "\ud800"), ("POST", [1])],
    ids=["get-5000-digits", "get-text", "post-2^70", "post-surrogate", "post-list"],
)
def test_a_bad_since_time_is_400(client: TestClient, test_app: TestApp, method: str, since: Any) -> None:
    key = test_app.server_key
    if method == "GET":
        answer = client.get(f"/v1/download_config_specs/{key}.json", params={"sinceTime": since})
    else:
        content = json.dumps({"sinceTime": since}).encode()
        answer = client.post("/v1/download_config_specs", content=content, headers={"STATSIG-API-KEY": key})
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"] == 400


@pytest.mark.parametrize("bad_id", ["a%00b", "%ED%A0%80", "UPPER", "x" * 201])
def test_a_path_id_that_cannot_be_an_autotune_id_is_404_before_any_query(
    client: TestClient, test_app: TestApp, bad_id: str
) -> None:
    headers = test_app.console_headers()
    for method, path in [
        ("GET", ""),
        ("DELETE", ""),
        ("PUT", "/start"),
        ("PUT", "/reset"),
        ("GET", "/overrides"),
        ("GET", "/results"),
        ("DELETE", "/overrides/userID/u1?groupID=a"),
    ]:
        answer = client.request(method, f"{BASE}/{bad_id}{path}", headers=headers)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["status"] == 404


def test_a_nul_in_the_decision_reason_is_400_and_writes_nothing(client: TestClient, test_app: TestApp) -> None:
    autotune_id = started(client, test_app, "first", "red")
    audit_before = audit_count(test_app)
    answer = put(client, test_app, f"{autotune_id}/make_decision", {"id": "a", "decisionReason": "a\u0000b"})
    assert invalid_properties(answer) == ["decisionReason"]
    assert audit_count(test_app) == audit_before
