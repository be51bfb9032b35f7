"""Event batches in every coding Statsig's SDKs send (zstd, br, gzip, identity), as the JS client
writes them to `/v1/rgstr`, and the same size and decompression-bomb limits for each coding."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import brotli
import orjson
import pytest
import zstandard

from openautotune.api.body_encodings import decode_other
from openautotune.api.errors import ApiError
from openautotune.api.sdk_events import MAX_DECOMPRESSED_BYTES
from tests.ingest.conftest import Ingest, create_autotune

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "zstd": lambda data: zstandard.ZstdCompressor(level=3).compress(data),
    "br": lambda data: brotli.compress(data, quality=1),
    "gzip": gzip.compress,
    "identity": lambda data: data,
}


def js_client_batch(autotune_id: str, rule_id: str, now: int) -> bytes:
    """What @statsig/js-client 3.33.5 flushes: an exposure with its metadata and a custom event."""
    user = {"userID": "web-1", "custom": {"plan": "pro"}, "statsigEnvironment": {"tier": "production"}}
    exposure = {
        "eventName": "statsig::config_exposure",
        "user": user,
        "value": None,
        "metadata": {
            "config": autotune_id,
            "ruleID": rule_id,
            "configVersion": 1,
            "rulePassed": "true",
            "reason": "Network:Recognized",
            "lcut": "1767225600001",
            "receivedAt": str(now),
        },
        "secondaryExposures": [],
        "time": now,
        "statsigMetadata": {"currentPage": "http://127.0.0.1/page.html"},
    }
    success = {"eventName": "click", "user": user, "value": 12.5, "metadata": {"sku": "x"}, "time": now + 1}
    diagnostics = {"eventName": "statsig::diagnostics", "user": user, "metadata": {}, "time": now}
    metadata = {"sdkType": "javascript-client", "sdkVersion": "3.33.5", "stableID": "s-1", "sessionID": "x"}
    return orjson.dumps({"events": [exposure, success, diagnostics], "statsigMetadata": metadata})


@pytest.mark.parametrize("coding", sorted(COMPRESSORS))
def test_js_client_batches_in_every_coding_are_stored(ingest: Ingest, coding: str) -> None:
    autotune = create_autotune(ingest.app, "web_banner")
    variant = autotune.definition.variants[1].id
    body = COMPRESSORS[coding](js_client_batch(autotune.id, variant, ingest.now))
    # fetch with a string body sends text/plain; sendBeacon too. The key is only in `k`.
    headers = {"Content-Type": "text/plain;charset=UTF-8", "statsig-event-count": "3", "statsig-sdk-type": "js"}
    if coding != "identity":
        headers["Content-Encoding"] = coding
    response = ingest.client.post(
        "/v1/rgstr", params={"k": ingest.app.client_key, "ec": "3"}, content=body, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 2, "rejected": [], "ignored": 1, "dropped": {}}
    (exposure,) = ingest.exposures()
    assert (exposure["unit_id"], exposure["variant_id"], exposure["config_version"]) == ("web-1", variant, 1)
    assert exposure["time_ms"] == ingest.now and exposure["analysable"]
    (unit,) = ingest.units()
    assert (unit["unit_id"], unit["variant_id"], unit["first_exposure_ms"]) == ("web-1", variant, ingest.now)
    (event,) = ingest.events()
    assert (event["event_name"], event["unit_id"], event["value"], event["time_ms"]) == (
        "click",
        "web-1",
        "12.5",
        ingest.now + 1,
    )


def test_zstd_bodies_of_several_frames_are_read_whole() -> None:
    first, second = b'{"events": [', b"]}"
    body = COMPRESSORS["zstd"](first) + zstandard.ZstdCompressor(write_content_size=False).compress(second)
    assert decode_other(body, "zstd", MAX_DECOMPRESSED_BYTES) == first + second


@pytest.mark.parametrize("coding", ["zstd", "br"])
def test_bombs_are_413_and_broken_bodies_400(coding: str) -> None:
    compress = COMPRESSORS[coding]
    bomb = compress(b'{"events": [' + b" " * (MAX_DECOMPRESSED_BYTES + 1) + b"]}")
    assert len(bomb) < 100_000
    good = compress(orjson.dumps({"events": [{"eventName": "x"}] * 200}))
    cases = [(bomb, 413), (good[:-8], 400), (good + b"trailing", 400), (b"not compressed at all", 400), (b"", 400)]
    for body, status in cases:
        with pytest.raises(ApiError) as refused:
            decode_other(body, coding, MAX_DECOMPRESSED_BYTES)
        assert refused.value.status == status, (body[:20], refused.value.message)
    # Exactly at the limit is fine.
    assert len(decode_other(compress(b"x" * MAX_DECOMPRESSED_BYTES), coding, MAX_DECOMPRESSED_BYTES)) == (
        MAX_DECOMPRESSED_BYTES
    )


def test_bomb_over_http_stores_nothing(ingest: Ingest) -> None:
    bomb = COMPRESSORS["zstd"](b'{"events": [' + b" " * (MAX_DECOMPRESSED_BYTES + 1) + b"]}")
    headers = {"STATSIG-API-KEY": ingest.app.server_key, "Content-Encoding": "zstd"}
    response = ingest.client.post("/v1/log_event", content=bomb, headers=headers)
    assert response.status_code == 413 and response.json()["status"] == 413
    assert ingest.counts() == (0, 0, 0)
