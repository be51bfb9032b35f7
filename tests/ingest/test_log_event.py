"""POST /v1/log_event and /v1/rgstr: envelopes, auth, custom events, rejection, dedup (docs/ingestion.md)."""

from __future__ import annotations

import gzip

import orjson
import pytest

from openautotune.clock import DAY_MS, HOUR_MS
from tests.ingest.conftest import Ingest, create_autotune, custom_event, exposure


def test_events_are_stored_once_per_id_type(ingest: Ingest) -> None:
    user = {"userID": "u1", "customIDs": {"stableID": "s1", "companyID": 42, "empty": ""}}
    t = ingest.now - HOUR_MS

    response = ingest.post(
        [
            custom_event("click", user=user, time=t, value=4.5, metadata={"page": "home", "n": "3"}),
            custom_event("purchase", user={"customIDs": {"stableID": "s2"}}, time=t, value="gold"),
            custom_event("view", user={"userID": "u2"}, time=t, value=7.0),  # the core SDK sends 7 as 7.0
        ]
    )

    assert response.json() == {"success": True, "accepted": 3, "rejected": [], "ignored": 0, "dropped": {}}
    rows = [(r["event_name"], r["id_type"], r["unit_id"], r["value"], r["time_ms"]) for r in ingest.events()]
    assert sorted(rows) == sorted(
        [
            ("click", "userID", "u1", "4.5", t),
            ("click", "stableID", "s1", "4.5", t),
            ("click", "companyID", "42", "4.5", t),
            ("purchase", "stableID", "s2", "gold", t),
            ("view", "userID", "u2", "7", t),
        ]
    )
    assert {r["event_name"]: r["metadata"] for r in ingest.events()}["click"] == {"page": "home", "n": "3"}
    assert all(r["received_ms"] == ingest.now for r in ingest.events())


def test_statsig_internal_events_are_ignored_not_rejected(ingest: Ingest) -> None:
    user = {"userID": "u1"}
    response = ingest.post(
        [
            {"eventName": "statsig::diagnostics", "user": user, "time": ingest.now, "metadata": {"markers": []}},
            {"eventName": "statsig::gate_exposure", "user": user, "time": ingest.now, "metadata": {"gate": "g"}},
            custom_event("click", user=user, time=ingest.now),
        ]
    )

    assert response.json() == {"success": True, "accepted": 1, "rejected": [], "ignored": 2, "dropped": {}}
    assert ingest.counts() == (0, 0, 1)


@pytest.mark.parametrize("path", ["/v1/log_event", "/v1/rgstr"])
def test_gzip_body_and_both_paths(ingest: Ingest, path: str) -> None:
    autotune = create_autotune(ingest.app, "color")
    red = autotune.definition.variants[0].id
    events = [exposure("color", red, time=ingest.now), custom_event("click", user={"userID": "u1"}, time=ingest.now)]

    response = ingest.post(events, gzipped=True, path=path, key=ingest.app.client_key)

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert ingest.counts() == (1, 1, 1)


def test_gzip_without_header_is_recognised(ingest: Ingest) -> None:
    body = gzip.compress(orjson.dumps({"events": [custom_event("a", user={"userID": "u"}, time=ingest.now)]}))
    response = ingest.client.post("/v1/log_event", content=body, headers={"statsig-api-key": ingest.app.server_key})
    assert response.json()["accepted"] == 1


MALFORMED = [
    (b"not json", None, "The body is not valid JSON"),
    (b"", None, "The body is not valid JSON"),
    (b"[1, 2]", None, 'The body must be a JSON object with an "events" list'),
    (b'{"statsigMetadata": {}}', None, 'The body must be a JSON object with an "events" list'),
    (b'{"events": {"eventName": "x"}}', None, 'The body must be a JSON object with an "events" list'),
    (b"\x1f\x8bnot really gzip", "gzip", "The body is not valid compressed data"),
    (gzip.compress(b'{"events": []}')[:-12], "gzip", "The compressed body is truncated"),
    (b'{"events": []}', "compress", "Unsupported Content-Encoding 'compress': send zstd, gzip, br or plain JSON"),
]


def test_malformed_envelopes_are_400_and_store_nothing(ingest: Ingest) -> None:
    good = custom_event("click", user={"userID": "u1"}, time=ingest.now)
    answers = []
    for body, encoding, _ in MALFORMED:
        headers = {"STATSIG-API-KEY": ingest.app.server_key}
        if encoding:
            headers["Content-Encoding"] = encoding
        # A valid event hidden in a broken envelope must not be stored either.
        broken = body.replace(b'"x"}', b'"x"}, "also": ' + orjson.dumps([good]))
        response = ingest.client.post("/v1/log_event", content=broken, headers=headers)
        answers.append((response.status_code, response.json()))

    assert answers == [(400, {"status": 400, "message": message}) for _, _, message in MALFORMED]
    assert ingest.counts() == (0, 0, 0)


def test_gzip_bomb_is_refused(ingest: Ingest) -> None:
    body = gzip.compress(b'{"events": [' + b" " * (17 * 1024 * 1024) + b"]}")
    response = ingest.client.post(
        "/v1/log_event", content=body, headers={"STATSIG-API-KEY": ingest.app.server_key, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_bad_events_are_rejected_by_index_and_the_rest_stored(ingest: Ingest) -> None:
    now = ingest.now
    good = custom_event("click", user={"userID": "u1"}, time=now)
    response = ingest.post(
        [
            good,
            "not an object",
            {"eventName": "", "user": {"userID": "u"}},
            custom_event("click", user={"userID": "u2"}, time=now + DAY_MS + 1),
            custom_event("click", user={}, time=now),
            custom_event("click", user={"userID": "u3"}, time=now, value=True),
            custom_event("click", user={"userID": "u4"}, time=now, metadata=[1]),
            {"eventName": "click", "user": "u5", "time": now},
            {"eventName": "statsig::config_exposure", "user": {"userID": "u6"}, "time": now},
            custom_event("click", user={"userID": "x" * 257}, time=now),
            custom_event("click", user={"userID": "nul\x00"}, time=now),
            custom_event("click", user={"userID": "u7"}, time=now + DAY_MS),  # exactly 24 h ahead: fine
            custom_event("click", user={"userID": "u8"}, time=now - 400 * DAY_MS),  # long ago: fine
        ]
    )

    answer = response.json()
    assert response.status_code == 200
    assert answer["accepted"] == 3
    assert answer["rejected"] == [
        {"index": 1, "reason": "an event must be an object"},
        {"index": 2, "reason": "eventName must be a non-empty string"},
        {"index": 3, "reason": "time is more than 24 hours ahead of the server clock"},
        {"index": 4, "reason": "user carries no id (userID or customIDs)"},
        {"index": 5, "reason": "value must be a string or a number"},
        {"index": 6, "reason": "metadata must be an object"},
        {"index": 7, "reason": "user must be an object"},
        {"index": 8, "reason": "an exposure needs a metadata object"},
        {"index": 9, "reason": "user.userID is longer than 256 characters"},
        {"index": 10, "reason": "user.userID contains a NUL character"},
    ]
    assert sorted(r["unit_id"] for r in ingest.events()) == ["u1", "u7", "u8"]


def test_future_exposures_are_rejected(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "color")
    red = autotune.definition.variants[0].id

    response = ingest.post([exposure("color", red, time=ingest.now + DAY_MS + 1)])

    assert response.json()["rejected"] == [
        {"index": 0, "reason": "time is more than 24 hours ahead of the server clock"}
    ]
    assert ingest.counts() == (0, 0, 0)


def test_a_resent_batch_stores_nothing_new(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "color")
    red, blue = (variant.id for variant in autotune.definition.variants)
    t = ingest.now
    user = {"userID": "u1", "customIDs": {"stableID": "s1"}}
    batch = [
        exposure("color", red, time=t, user=user),
        exposure("color", blue, time=t + 5, user={"userID": "u2"}),
        custom_event("click", user=user, time=t + 10, value=1),
        custom_event("click", user=user, time=t + 10, value=1),  # the same event twice in one batch
    ]

    first = ingest.post(batch, gzipped=True)
    stored = (ingest.exposures(), ingest.units(), ingest.events())
    ingest.app.clock.advance(60_000)  # the retry comes a minute later
    second = ingest.post(batch, gzipped=True)

    assert first.json()["accepted"] == second.json()["accepted"] == 4
    assert (ingest.exposures(), ingest.units(), ingest.events()) == stored
    assert ingest.counts() == (2, 2, 2)


def test_only_server_and_client_keys_may_log(ingest: Ingest) -> None:
    body = orjson.dumps({"events": [custom_event("click", user={"userID": "u1"}, time=ingest.now)]})
    statuses = []
    for key in (ingest.app.console_key, ingest.app.read_only_key, None, "secret-nope"):
        headers = {"STATSIG-API-KEY": key} if key else {}
        response = ingest.client.post("/v1/log_event", content=body, headers=headers)
        statuses.append((response.status_code, response.json()["status"]))

    assert statuses == [(401, 401)] * 4
    assert ingest.counts() == (0, 0, 0)


def test_header_name_is_case_insensitive(ingest: Ingest) -> None:
    body = orjson.dumps({"events": [custom_event("click", user={"userID": "u1"}, time=ingest.now)]})
    response = ingest.client.post("/v1/log_event", content=body, headers={"statsig-api-key": ingest.app.server_key})
    assert response.status_code == 200
    assert ingest.counts() == (0, 0, 1)


def test_empty_batch_is_a_json_answer(ingest: Ingest) -> None:
    response = ingest.post([])
    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 0, "rejected": [], "ignored": 0, "dropped": {}}


def test_key_in_the_query_string_for_beacons(ingest: Ingest) -> None:
    body = gzip.compress(orjson.dumps({"events": [custom_event("click", user={"userID": "u1"}, time=ingest.now)]}))
    response = ingest.client.post(
        f"/v1/rgstr?k={ingest.app.client_key}&st=javascript-client&ec=1&gz=1",
        content=body,
        headers={"Content-Type": "text/plain"},
    )
    refused = ingest.client.post(f"/v1/rgstr?k={ingest.app.console_key}", content=body)
    assert (response.status_code, refused.status_code) == (200, 401)
    assert ingest.counts() == (0, 0, 1)
