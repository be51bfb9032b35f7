"""Per-field caps on SDK events, and batches that lose only their invalid events (issue 12, items 3-4).

Every test posts the bad event between two valid ones: the bad one is dropped and counted, the valid
ones are stored, the answer is 200 (an SDK retries 5xx and drops 4xx batches).
"""

from __future__ import annotations

import gzip
import logging
from typing import Any

import orjson
import pytest

from openautotune.service.ingest import parse
from openautotune.service.ingest.envelope import MAX_EVENTS, MAX_SCAN_TOKENS
from tests.ingest.conftest import Ingest, create_autotune, custom_event, exposure

LIMIT = parse.MAX_OBJECT_BYTES
STRING = parse.OBJECT_LIMITS.max_string
KEY = parse.OBJECT_LIMITS.max_key
DEPTH = parse.OBJECT_LIMITS.max_depth


def nested(levels: int) -> dict[str, Any]:
    """An object `levels` objects deep, counting itself."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def sized(total: int, **fixed: Any) -> dict[str, Any]:
    """An object (holding `fixed`) whose compact JSON is exactly `total` bytes, each string within the cap."""
    value: dict[str, Any] = dict(fixed)
    index = 0
    while len(orjson.dumps(value)) < total:
        key = f"k{index}"
        value[key] = ""
        room = total - len(orjson.dumps(value))
        if room < 0:  # the empty member overshot: shorten the previous string instead
            del value[key]
            previous = f"k{index - 1}"
            value[previous] = value[previous][: room - 1 + len(value[previous]) + 1]
            break
        value[key] = "x" * min(room, STRING)
        index += 1
    assert len(orjson.dumps(value)) == total
    return value


def sandwich(ingest: Ingest, bad: Any) -> dict[str, Any]:
    """Post [valid, bad, valid]; the answer, checked to be 200 with both valid events stored."""
    before = len(ingest.events())
    batch = [
        custom_event("click", user={"userID": f"before-{before}"}, time=ingest.now),
        bad,
        custom_event("click", user={"userID": f"after-{before}"}, time=ingest.now),
    ]
    response = ingest.post(batch)
    assert response.status_code == 200, response.text
    units = [row["unit_id"] for row in ingest.events()[before:]]
    assert f"before-{before}" in units and f"after-{before}" in units
    return response.json()  # type: ignore[no-any-return]


def accepted(ingest: Ingest, bad: Any) -> bool:
    answer = sandwich(ingest, bad)
    assert answer["accepted"] + len(answer["rejected"]) == 3
    return answer["accepted"] == 3


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"eventName": "buy", "user": {"userID": "u1"}, "time": 0}
    return base | fields


def test_a_15_mb_value_is_refused_and_the_rest_of_its_batch_stored(ingest: Ingest) -> None:
    huge = custom_event("buy", user={"userID": "attacker"}, time=ingest.now, value="x" * 15_000_000)
    body = orjson.dumps({"events": [custom_event("click", user={"userID": "u1"}, time=ingest.now), huge]})
    assert len(gzip.compress(body)) < 20_000  # the 14.7 KB body

    response = ingest.post_raw(body, gzipped=True)

    assert response.status_code == 200
    assert response.json()["rejected"] == [{"index": 1, "reason": "value is longer than 4096 characters"}]
    assert response.json()["dropped"] == {"value is longer than 4096 characters": 1}
    assert [row["unit_id"] for row in ingest.events()] == ["u1"]


@pytest.mark.parametrize("levels", [DEPTH + 1, 300, 1023, 1500, 5000])
def test_deep_metadata_is_dropped_alone(ingest: Ingest, levels: int) -> None:
    t = ingest.now
    # Built by hand: orjson writes 254 levels at most (and reads 1,024: deeper takes the salvage path).
    body = orjson.dumps({"events": [custom_event("click", user={"userID": "u1"}, time=t), "DEEP"]})
    deep_json = b'{"eventName": "buy", "user": {"userID": "deep"}, "time": %d, "metadata": ' % t
    deep_json += b'{"a": ' * (levels - 1) + b"{}" + b"}" * (levels - 1) + b"}"
    body = body.replace(b'"DEEP"', deep_json)

    response = ingest.post_raw(body, gzipped=True)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    [rejected] = answer["rejected"]
    assert rejected["index"] == 1
    assert "nest" in rejected["reason"]
    assert [row["unit_id"] for row in ingest.events()] == ["u1"]


LIMITS: list[tuple[str, Any, Any]] = [
    ("eventName", event(eventName="e" * 256), event(eventName="e" * 257)),
    ("value", event(value="v" * 4096), event(value="v" * 4097)),
    ("metadata depth", event(metadata=nested(DEPTH)), event(metadata=nested(DEPTH + 1))),
    ("metadata key", event(metadata={"k" * KEY: 1}), event(metadata={"k" * (KEY + 1): 1})),
    ("metadata string", event(metadata={"k": "s" * STRING}), event(metadata={"k": "s" * (STRING + 1)})),
    ("metadata in a list", event(metadata={"k": ["s" * STRING]}), event(metadata={"k": ["s" * (STRING + 1)]})),
    ("metadata size", event(metadata=sized(LIMIT)), event(metadata=sized(LIMIT + 1))),
    ("userID", event(user={"userID": "u" * 256}), event(user={"userID": "u" * 257})),
    (
        "custom id",
        event(user={"customIDs": {"stableID": "s" * 256}}),
        event(user={"customIDs": {"stableID": "s" * 257}}),
    ),
    (
        "custom id type",
        event(user={"customIDs": {"t" * 64: "s"}}),
        event(user={"customIDs": {"t" * 65: "s"}}),
    ),
    (
        "custom id count",
        event(user={"customIDs": {f"t{i}": "s" for i in range(32)}}),
        event(user={"customIDs": {f"t{i}": "s" for i in range(33)}}),
    ),
    (
        "user attribute",
        event(user={"userID": "u", "userAgent": "a" * STRING}),
        event(user={"userID": "u", "userAgent": "a" * (STRING + 1)}),
    ),
    (
        "user custom depth",
        event(user={"userID": "u", "custom": nested(DEPTH - 1)}),
        event(user={"userID": "u", "custom": nested(DEPTH)}),
    ),
    ("user size", event(user=sized(LIMIT, userID="u")), event(user=sized(LIMIT + 1, userID="u"))),
]


@pytest.mark.parametrize(("field", "at_limit", "over_limit"), LIMITS, ids=[case[0] for case in LIMITS])
def test_each_cap_at_and_just_over_its_limit(ingest: Ingest, field: str, at_limit: Any, over_limit: Any) -> None:
    now = ingest.now
    assert accepted(ingest, at_limit | {"time": now}), field
    assert not accepted(ingest, over_limit | {"time": now}), field


def test_exposure_users_are_capped_like_event_users(ingest: Ingest) -> None:
    red = create_autotune(ingest.app, "color").definition.variants[0].id
    fine = exposure("color", red, user=sized(LIMIT, userID="u1"), time=ingest.now)
    large = exposure("color", red, user=sized(LIMIT + 1, userID="u2"), time=ingest.now)
    answer = sandwich(ingest, fine)
    assert answer["accepted"] == 3
    answer = sandwich(ingest, large)
    assert answer["dropped"] == {f"user is larger than {LIMIT} bytes as JSON": 1}
    assert [row["unit_id"] for row in ingest.units()] == ["u1"]


# Raw JSON text of one event: each breaks orjson (reading or writing) or PostgreSQL.
HOSTILE = {
    "NUL in metadata": b'{"eventName": "buy", "user": {"userID": "u"}, "metadata": {"k": "a\\u0000b"}}',
    "NUL in a metadata key": b'{"eventName": "buy", "user": {"userID": "u"}, "metadata": {"a\\u0000": "b"}}',
    "NUL in a user attribute": b'{"eventName": "buy", "user": {"userID": "u", "country": "\\u0000"}}',
    "lone surrogate in metadata": b'{"eventName": "buy", "user": {"userID": "u"}, "metadata": {"k": "\\ud800"}}',
    "lone surrogate in value": b'{"eventName": "buy", "user": {"userID": "u"}, "value": "\\udfff"}',
    "lone surrogate in userID": b'{"eventName": "buy", "user": {"userID": "\\ud800"}}',
    "lone surrogate in eventName": b'{"eventName": "b\\ud800", "user": {"userID": "u"}}',
    "lone surrogate in config": b'{"eventName": "statsig::config_exposure", "user": {"userID": "u"},'
    b' "metadata": {"config": "\\ud800", "ruleID": "r"}}',
    "invalid UTF-8": b'{"eventName": "buy", "user": {"userID": "u"}, "metadata": {"k": "\xed\xa0\x80\xff"}}',
    "2**64-1 in metadata": b'{"eventName": "buy", "user": {"userID": "u"}, "metadata": {"k": 18446744073709551615}}',
    "2**64 as value": b'{"eventName": "buy", "user": {"userID": "u"}, "value": 18446744073709551615}',
    "4,000 digits as value": b'{"eventName": "buy", "user": {"userID": "u"}, "value": ' + b"7" * 4000 + b"}",
    "4,000 digits as userID": b'{"eventName": "buy", "user": {"userID": ' + b"7" * 4000 + b"}}",
    "10,000 digits as time": b'{"eventName": "buy", "user": {"userID": "u"}, "time": "' + b"7" * 10000 + b'"}',
    "1e400 in metadata": b'{"eventName": "buy", "user": {"userID": "u"}, "metadata": {"k": 1e400}}',
    "NaN as value": b'{"eventName": "buy", "user": {"userID": "u"}, "value": NaN}',
    "Infinity in user": b'{"eventName": "buy", "user": {"userID": "u", "custom": {"n": -Infinity}}}',
    "not JSON": b'{"eventName": "buy", "user": {"userID": u}}',
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=list(HOSTILE))
def test_values_that_break_orjson_or_postgresql_drop_only_their_event(ingest: Ingest, raw: bytes) -> None:
    t = ingest.now
    good = [custom_event("click", user={"userID": name}, time=t) for name in ("before", "after")]
    body = b'{"events": [%s, %s, %s], "statsigMetadata": {"sdkType": "py-server"}}' % (
        orjson.dumps(good[0]),
        raw,
        orjson.dumps(good[1]),
    )

    response = ingest.post_raw(body, gzipped=True)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], [item["index"] for item in answer["rejected"]]) == (2, [1])
    assert sum(answer["dropped"].values()) == 1
    assert sorted(row["unit_id"] for row in ingest.events()) == ["after", "before"]


def test_drops_are_counted_per_reason_in_the_answer_and_the_log(
    ingest: Ingest, caplog: pytest.LogCaptureFixture
) -> None:
    t = ingest.now
    batch = [
        custom_event("click", user={"userID": "u1"}, time=t),
        event(value="v" * 5000),
        event(value="v" * 6000),
        event(metadata=nested(100)),
        7,
    ]
    with caplog.at_level(logging.WARNING, logger="openautotune.ingest"):
        answer = ingest.post(batch).json()

    dropped = {
        "value is longer than 4096 characters": 2,
        f"metadata: nesting is deeper than {DEPTH} levels": 1,
        "an event must be an object": 1,
    }
    assert (answer["accepted"], answer["dropped"]) == (1, dropped)
    [record] = [r for r in caplog.records if r.name == "openautotune.ingest"]
    assert record.getMessage() == f"Event batch: 1 stored, 0 ignored, 4 dropped {dropped}"


def test_an_envelope_broken_outside_its_events_is_still_refused_whole(ingest: Ingest) -> None:
    good = orjson.dumps(custom_event("click", user={"userID": "u1"}, time=ingest.now))
    for body in (
        b'{"events": [' + good + b', {"k": NaN}], "statsigMetadata": {"x": nope}}',
        b'{"events": [' + good + b', "\\ud800"]',
        b'{"events": [' + good + b', "\\ud800"]} trailing',
        b'{"events": [' + good + b' "\\ud800"]}',
        b'{"events": "\\ud800", "x": [' + good + b"]}",
    ):
        response = ingest.post_raw(body)
        assert response.status_code == 400, body
    assert ingest.counts() == (0, 0, 0)


def test_a_body_over_the_limits_is_413_and_stores_nothing(ingest: Ingest) -> None:
    good = custom_event("click", user={"userID": "u1"}, time=ingest.now)
    padded = orjson.dumps({"events": [good], "padding": "x" * (17 * 1024 * 1024)})
    too_many = orjson.dumps({"events": [good] * (MAX_EVENTS + 1)})
    salvaged = too_many.replace(b"]}", b', "\\ud800"]}')  # the salvage path counts too
    # Bodies whose parse would build millions of objects (gigabytes, seconds of CPU), and one whose
    # unreadable event would take seconds to skip, from a few KB of gzip each.
    brackets = b'{"events": [%s, %s]}' % (orjson.dumps(good), b"[" * 4_000_000 + b"]" * 4_000_000)
    empty_objects = b'{"events": [%s, [%s]]}' % (orjson.dumps(good), b",".join([b"{}"] * 1_000_000))
    unskippable = b'{"events": [%s, [%s nope]]}' % (orjson.dumps(good), b'"a" ' * (MAX_SCAN_TOKENS + 1))
    bodies = (padded, too_many, salvaged, brackets, empty_objects, unskippable)
    answers = [ingest.post_raw(body, gzipped=True) for body in bodies]
    answers.append(ingest.post_raw(padded))  # over the limit on the wire as well
    assert [(a.status_code, a.json()["status"]) for a in answers] == [(413, 413)] * 7
    assert ingest.counts() == (0, 0, 0)


def test_salvaged_events_are_stored_exactly_as_sent(ingest: Ingest) -> None:
    """Strings holding brackets, quotes and escapes must not confuse the scanner that delimits events."""
    t = ingest.now
    tricky = {"k": ']}"[{\\', "ü": "\\u0041", "nested": {"list": [1, "]", {"}": "{"}]}}
    good = [custom_event("click", user={"userID": f"u{i}"}, time=t, value='"]', metadata=tricky) for i in (1, 2)]
    body = b'{ "statsigMetadata" : {"a": [1, "]"]} ,\n "events" : [ %s ,{"eventName": NaN} , %s ] }' % (
        orjson.dumps(good[0]),
        orjson.dumps(good[1]),
    )

    answer = ingest.post_raw(body).json()

    assert (answer["accepted"], answer["rejected"]) == (
        2,
        [{"index": 1, "reason": "eventName must be a non-empty string"}],
    )
    assert sorted(((row["unit_id"], row["value"], row["metadata"]) for row in ingest.events()), key=str) == [
        ("u1", '"]', tricky),
        ("u2", '"]', tricky),
    ]
