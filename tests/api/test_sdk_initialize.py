"""`POST /v1/initialize` for client SDKs (sdk-client-protocol.md): evaluated values only, hashed names,
cheap up-to-date answers, keys, malformed bodies, and contextual decisions with their propensity."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from statsig.client_initialize_formatter import hash_name
from statsig.utils import HashingAlgorithm

from openautotune.contextual.serving import load_deciders
from openautotune.serving.bucketing import bucket
from openautotune.serving.initialize import djb2
from openautotune.store.ingest_tables import exposures_table
from openautotune.testing import TestApp
from tests.api.test_contextual_serving import _trained
from tests.api.test_sdk_specs import started, v1_url

INIT = "/v1/initialize"


def initialize(client: TestClient, key: str, body: dict[str, Any], **params: str) -> httpx.Response:
    """As the JS client sends it: a text/plain string body, the key in `k`, no headers of its own."""
    return client.post(
        INIT,
        params={"k": key, "st": "javascript-client", "sv": "3.33.5", **params},
        content=orjson.dumps(body),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )


def expected_rule(specs: dict[str, Any], name: str, user_id: str) -> str:
    """The variant the SDKs' bucketing picks, read from the published v1 specs."""
    (entry,) = [e for e in specs["dynamic_configs"] if e["name"] == name]
    slot = bucket(entry["salt"], user_id)
    rule = next(r for r in entry["rules"] if slot < r["conditions"][0]["targetValue"])
    return str(rule["id"])


@pytest.mark.parametrize(
    ("name", "hashed"),
    [("button_color_test", "1333727003"), ("", "0"), ("é€ mixed", "450258558"), ("é€😀 mixed", "627409121")],
)
def test_djb2_is_the_js_client_hash(name: str, hashed: str) -> None:
    # Expected values computed by @statsig/client-core 3.33.5's own `_DJB2`. It hashes UTF-16 code
    # units; the Python SDK hashes code points, so the two agree except beyond the BMP (emoji).
    assert djb2(name) == hashed
    if name.isascii() or all(ord(c) < 0x10000 for c in name):
        assert djb2(name) == hash_name(name, HashingAlgorithm.DJB2)


def test_client_key_gets_every_autotune_evaluated_and_nothing_else(client: TestClient, test_app: TestApp) -> None:
    first = started(client, test_app, name="init_a")
    second = started(client, test_app, name="init_b", variants=[{"name": n, "json": {"n": n}} for n in "xyz"])
    specs = client.get(v1_url(test_app.server_key)).json()
    salts = {entry["salt"] for entry in specs["dynamic_configs"]}
    for i in range(30):
        user = {"userID": f"u{i}", "custom": {"plan": "pro"}, "privateAttributes": {"email": "a@b.c"}}
        response = initialize(client, test_app.client_key, {"user": user, "hash": "djb2"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["has_updates"] is True and answer["time"] == specs["time"] and answer["hash_used"] == "djb2"
        assert answer["user"] == {"userID": f"u{i}", "custom": {"plan": "pro"}}  # private attributes stay private
        assert answer["feature_gates"] == {} and answer["layer_configs"] == {}
        assert set(answer["dynamic_configs"]) == {djb2(first), djb2(second)}
        for name in (first, second):
            entry = answer["dynamic_configs"][djb2(name)]
            assert entry["rule_id"] == entry["group"] == expected_rule(specs, name, f"u{i}")
            assert entry["version"] == 1 and entry["id_type"] == "userID" and entry["is_user_in_experiment"] is True
        text = response.text
        assert not any(salt in text for salt in salts) and "rules" not in text and "returnValue" not in text


@pytest.mark.parametrize(
    ("algorithm", "hasher"), [("none", HashingAlgorithm.NONE), ("sha256", HashingAlgorithm.SHA256)]
)
def test_names_are_hashed_as_asked(
    client: TestClient, test_app: TestApp, algorithm: str, hasher: HashingAlgorithm
) -> None:
    name = started(client, test_app, name="hash_me")
    answer = initialize(client, test_app.client_key, {"user": {"userID": "u"}, "hash": algorithm}).json()
    assert answer["hash_used"] == algorithm
    assert list(answer["dynamic_configs"]) == [hash_name(name, hasher)]
    default = initialize(client, test_app.client_key, {"user": {"userID": "u"}}).json()
    assert default["hash_used"] == "djb2" and list(default["dynamic_configs"]) == [djb2(name)]


def test_fresh_clients_get_the_cheap_answer(client: TestClient, test_app: TestApp) -> None:
    started(client, test_app)
    now = initialize(client, test_app.client_key, {"user": {"userID": "u"}}).json()["time"]
    for since in (now, now + 5):
        cheap = initialize(client, test_app.client_key, {"user": {"userID": "u"}, "sinceTime": since})
        assert cheap.status_code == 200 and cheap.json() == {"has_updates": False}
    stale = initialize(client, test_app.client_key, {"user": {"userID": "u"}, "sinceTime": now - 1})
    assert stale.json()["time"] == now


def test_obfuscated_bodies_are_read(client: TestClient, test_app: TestApp) -> None:
    name = started(client, test_app)
    encoded = base64.b64encode(orjson.dumps({"user": {"userID": "u7"}})).decode()[::-1]
    response = client.post(INIT, params={"k": test_app.client_key, "se": "1"}, content=encoded)
    assert response.status_code == 200, response.text
    assert response.json()["user"] == {"userID": "u7"} and djb2(name) in response.json()["dynamic_configs"]


def test_keys(client: TestClient, test_app: TestApp) -> None:
    body = {"user": {"userID": "u"}}
    assert initialize(client, test_app.client_key, body).status_code == 200
    assert initialize(client, test_app.server_key, body).status_code == 200
    by_header = client.post(INIT, json=body, headers={"STATSIG-API-KEY": test_app.server_key})
    assert by_header.status_code == 200
    for key in (test_app.console_key, "client-not-a-key", ""):
        refused = initialize(client, key, body)
        assert refused.status_code == 401 and set(refused.json()) == {"status", "message"}


MALFORMED: list[tuple[bytes, dict[str, str]]] = [
    (b"", {}),
    (b"not json", {}),
    (b"[1]", {}),
    (b'{"user": 3}', {}),
    (b'{"hash": "djb2"}', {}),
    (b'{"user": {}, "hash": "md5"}', {}),
    (b'{"user": {}, "hash": 7}', {}),
    (b'{"user": {}, "sinceTime": true}', {}),
    (b'{"user": {}, "sinceTime": "soon"}', {}),
    (b'{"user": {}, "sinceTime": {"a": 1}}', {}),
    (b'{"user": {"userID": "\\ud800"}}', {}),
    (b'{"user": ' + b"[" * 100 + b"]" * 100 + b"}", {}),
    (b"\xff\xfe", {}),
    (b"not base64 !", {"se": "1"}),
    (base64.b64encode(b"not json")[::-1], {"se": "1"}),
]


@pytest.mark.parametrize(("raw", "params"), MALFORMED)
def test_malformed_bodies_are_400(client: TestClient, test_app: TestApp, raw: bytes, params: dict[str, str]) -> None:
    started(client, test_app)
    response = client.post(INIT, params={"k": test_app.client_key, **params}, content=raw)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"status", "message"} and response.json()["status"] == 400


def test_contextual_autotunes_are_decided_here_with_their_propensity(client: TestClient, test_app: TestApp) -> None:
    autotune_id, variants = _trained(client, test_app)
    plain = started(client, test_app, name="plain_beside_contextual")
    decider = load_deciders(test_app.db)[autotune_id]
    test_app.app.state.contextual.rng = np.random.default_rng(1)
    answers = []
    for i in range(30):
        user = {"userID": f"c{i}", "country": "DE" if i % 2 else "FR"}
        response = initialize(client, test_app.client_key, {"user": user})
        assert response.status_code == 200, response.text
        answers.append((user, response.json()["dynamic_configs"]))
    with test_app.db.read() as conn:
        stored = {
            row.unit_id: row
            for row in conn.execute(sa.select(exposures_table).where(exposures_table.c.autotune_id == autotune_id))
        }
        plain_rows = conn.execute(sa.select(exposures_table).where(exposures_table.c.autotune_id == plain)).all()
    assert plain_rows == []  # plain autotunes are exposed when the page reads them, not here
    for user, configs in answers:
        entry = configs[djb2(autotune_id)]
        row = stored[user["userID"]]
        variant = entry["rule_id"].removesuffix(":explore")
        assert variant in variants and entry["rule_id"] == row.rule_id and entry["group_name"] is not None
        assert entry["version"] == row.config_version == decider.version
        k = variants.index(variant)
        expected = decider.bank.probabilities(decider.server.encoding.transform_one(user))[k]
        assert row.propensity == pytest.approx(expected, rel=1e-12)
    suited = sum(
        c[djb2(autotune_id)]["rule_id"].startswith(variants[0 if u["country"] == "DE" else 1]) for u, c in answers
    )
    assert suited >= 20


def test_sdk_exception_reports_are_accepted(client: TestClient, test_app: TestApp) -> None:
    report = {"exception": "TypeError", "info": "x is undefined", "statsigMetadata": {"sdkType": "javascript-client"}}
    headers = {"STATSIG-API-KEY": test_app.client_key}
    assert client.post("/v1/sdk_exception", json=report, headers=headers).status_code == 202
    assert client.post("/v1/sdk_exception", content=b"{", headers=headers).status_code == 400
    assert client.post("/v1/sdk_exception", json=report).status_code == 401
