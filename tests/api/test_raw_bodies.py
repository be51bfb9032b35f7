"""Hypothesis against the endpoints that read raw bodies (the OpenAPI document cannot describe what the SDK
endpoints really receive: gzip, bytes, JSON no encoder would write), and an exhaustive table of extreme
values planted in valid SDK and Console API requests. SQLite and PostgreSQL.

Every body is JSON text built by tests/api/nasty_json.py (lone surrogates, 2^70, 4,000-digit integers,
1e400, NaN, nesting up to 1,500 levels, stray keys) or plain bytes, sent plain, gzip, truncated gzip or
deflate, with a valid key of the right kind. Each answer must be below 500, documented for its path, a
JSON object, and an error in the `{"status", "message"}` shape. Afterwards every seeded autotune is still
served by both spec downloads and `/v1/get_config` (a bad row must not take serving down: issue #12).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautotune.testing import START_MS, TestApp
from tests.api import nasty_json as nasty
from tests.api.fuzz_world import World, fuzz_budget, populate

FUZZ = settings(
    max_examples=8 * fuzz_budget(5),  # 40 in make test, 800 in make fuzz
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Served:
    client: TestClient
    app: TestApp
    world: World
    documented: dict[str, set[int]]

    def post(self, path: str, content: bytes, encoding: str | None = None, *, documented_as: str | None = None) -> Any:
        """POST with the key of the right kind; `documented_as` is the OpenAPI path when `path` has ids in it."""
        key = self.app.console_key if path.startswith("/console") else self.app.server_key
        headers = {"STATSIG-API-KEY": key, "Content-Type": "application/json"}
        if encoding:
            headers["Content-Encoding"] = encoding
        method = "PATCH" if documented_as == "/console/v1/autotunes/{id}" else "POST"
        response = self.client.request(method, path, content=content, headers=headers)
        sent = f"{method} {path} (Content-Encoding: {encoding}) with {content[:400]!r}"
        assert response.status_code < 500, f"{response.status_code} {response.text[:200]} for {sent}"
        documented = self.documented[documented_as or path]
        assert response.status_code in documented, f"undocumented {response.status_code} for {sent}"
        answer = orjson.loads(response.content)
        assert isinstance(answer, dict), response.text[:300]
        if response.status_code >= 400:
            assert answer["status"] == response.status_code and isinstance(answer["message"], str), answer
        return answer


@pytest.fixture
def served(test_app: TestApp) -> Iterator[Served]:
    with TestClient(test_app.app, raise_server_exceptions=False) as client:
        client.headers.update(test_app.console_headers())
        world = populate(client, test_app.db, 6)
        del client.headers["STATSIG-API-KEY"]
        spec = client.get("/openapi.json").json()
        documented = {
            path: {int(status) for operation in item.values() for status in operation["responses"]}
            for path, item in spec["paths"].items()
        }
        yield Served(client, test_app, world, documented)
        _still_serving(client, test_app, world)


def _still_serving(client: TestClient, app: TestApp, world: World) -> None:
    """A bad request must never leave the service unable to serve the others (issue #12, item 1)."""
    key = app.server_key
    assert client.get(f"/v1/download_config_specs/{key}.json").status_code == 200
    assert client.get(f"/v2/download_config_specs/{key}.json").status_code == 200
    for autotune_id in world.ids:
        body = {"configName": autotune_id, "user": {"userID": "after-the-fuzz"}}
        answer = client.post("/v1/get_config", json=body, headers={"statsig-api-key": key})
        assert answer.status_code == 200, answer.text


def _encode(text: str, how: str) -> tuple[bytes, str | None]:
    raw = text.encode("utf-8", "surrogatepass")
    if how == "gzip":
        return gzip.compress(raw), "gzip"
    if how == "gzip, truncated":
        return gzip.compress(raw)[:-7], "gzip"
    if how == "gzip, undeclared":
        return gzip.compress(raw), None
    if how == "deflate":
        return zlib.compress(raw), "deflate"
    return raw, None


ENCODINGS = st.sampled_from(["plain", "gzip", "gzip, truncated", "gzip, undeclared", "deflate"])
USER = {
    "userID": "fuzz-user",
    "customIDs": {"stableID": "s-1", "companyID": "c-1"},
    "country": "DE",
    "custom": {"plan": "pro", "tags": ["a"]},
    "statsigEnvironment": {"tier": "production"},
}
EXPOSURE = {
    "eventName": "statsig::config_exposure",
    "user": USER,
    "time": START_MS,
    "metadata": {"config": "fuzz_running_1", "ruleID": "x", "configVersion": "1"},
    "secondaryExposures": [],
}
CUSTOM = {"eventName": "click", "user": USER, "time": START_MS, "value": 3, "metadata": {"page": "home"}}
# A valid batch with one nasty value planted anywhere, or any structure at all around nasty values.
EVENT = nasty.json_object(
    {
        "eventName": st.sampled_from(['"statsig::config_exposure"', '"click"', '"purchase"']) | nasty.strings,
        "user": nasty.users,
    },
    {
        "time": nasty.numbers | nasty.values,
        "value": nasty.numbers | nasty.strings | nasty.values,
        "metadata": nasty.json_object({}, {"config": nasty.strings, "ruleID": nasty.strings}) | nasty.values,
        "secondaryExposures": nasty.values,
    },
)
BATCHES = (
    nasty.planted({"events": [CUSTOM, EXPOSURE]})
    | nasty.planted({"events": [EXPOSURE, CUSTOM], "statsigMetadata": {"sdkType": "py-server"}})
    | nasty.planted({"events": [CUSTOM, EXPOSURE, CUSTOM]})
    | nasty.json_object({'"events"': st.lists(EVENT, max_size=5).map(lambda items: "[" + ",".join(items) + "]")})
    | nasty.values
)


def _events(text: str) -> list[Any]:
    envelope = json.loads(text)  # Python's reader takes NaN, 2^70 and lone surrogates as they are
    assert isinstance(envelope, dict)
    events: list[Any] = envelope["events"]
    return events


@pytest.mark.parametrize("path", ["/v1/log_event", "/v1/rgstr"])
def test_event_batches_of_anything(served: Served, path: str) -> None:
    @FUZZ
    @given(text=BATCHES, how=ENCODINGS, junk=st.none() | st.none() | st.none() | st.binary(max_size=200))
    def check(text: str, how: str, junk: bytes | None) -> None:
        content, encoding = (junk, None) if junk is not None else _encode(text, how)
        answer = served.post(path, content, encoding)
        if "success" in answer:  # every event is accounted for: accepted, rejected (with a reason) or ignored
            assert answer["success"] is True
            assert answer["accepted"] + len(answer["rejected"]) + answer["ignored"] == len(_events(text))

    check()


def test_config_requests_with_any_user(served: Served) -> None:
    names = st.sampled_from([orjson.dumps(i).decode() for i in served.world.ids]) | nasty.values
    request = st.one_of(
        [nasty.planted({"configName": autotune_id, "user": USER}) for autotune_id in served.world.ids[:3]]
        + [nasty.json_object({"configName": names, "user": nasty.users})]
    )

    @FUZZ
    @given(text=request, path=st.sampled_from(["/v1/get_config", "/v1/get_cmab_ranked_groups"]), how=ENCODINGS)
    def check(text: str, path: str, how: str) -> None:
        served.post(path, *_encode(text, how))

    check()


def test_spec_and_id_list_bodies(served: Served) -> None:
    body = nasty.json_object({}, {"sinceTime": nasty.numbers | nasty.strings | nasty.values}) | nasty.values

    @FUZZ
    @given(text=body, path=st.sampled_from(["/v1/download_config_specs", "/v1/get_id_lists"]), how=ENCODINGS)
    def check(text: str, path: str, how: str) -> None:
        served.post(path, *_encode(text, how))

    check()


CREATE = {
    "name": "fuzz_planted",
    "description": "Seeded by the fuzzer.",
    "variants": [{"name": "red", "json": {"color": "red", "n": [1]}}, {"name": "blue", "json": {}, "size": 50}],
    "successEvent": "click",
    "explorationWindow": "24hr",
    "attributionWindow": "1hr",
    "winnerThreshold": "95%",
    "idType": "userID",
}
PLANTINGS = [
    ("/v1/log_event", None, {"events": [EXPOSURE, CUSTOM]}),
    ("/v1/get_config", None, {"configName": "fuzz_running_1", "user": USER}),
    ("/v1/get_cmab_ranked_groups", None, {"configName": "fuzz_trained_5", "user": USER}),
    ("/console/v1/autotunes", None, CREATE),
    (
        "/console/v1/autotunes/fuzz_draft_0",
        "/console/v1/autotunes/{id}",
        {"description": "d", "variants": CREATE["variants"]},
    ),
    (
        "/console/v1/autotunes/fuzz_overridden_3/overrides",
        "/console/v1/autotunes/{id}/overrides",
        {"userIDOverrides": [{"groupID": "red", "ids": ["alice", "bob"], "environment": "production"}]},
    ),
]


@pytest.mark.parametrize(("path", "documented_as", "template"), PLANTINGS)
def test_every_extreme_value_in_every_place(
    served: Served, path: str, documented_as: str | None, template: dict[str, Any]
) -> None:
    """Each value of nasty_json.EXTREME_* (and 255-1,500 levels of nesting) at each place of a valid request
    (SDK and Console API alike; a new name per create), plain and gzip for the SDK, then every seeded
    autotune still served: every answer below 500; all failures are listed together."""
    failures = []
    for number, (what, planted) in enumerate(nasty.every_planting(template)):
        text = planted.replace('"fuzz_planted"', f'"fuzz_planted_{number}"')
        how = "gzip" if number % 2 and not path.startswith("/console") else "plain"
        try:
            served.post(path, *_encode(text, how), documented_as=documented_as)
        except AssertionError as failure:
            failures.append(f"{what}: {str(failure).splitlines()[0][:160]}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


QUERY_NUMBERS = [str(2**62), str(2**63), str(2**64), str(2**70), "9" * 4000, "-1", "0", "1e400", "NaN", "%00", "1.5"]


def test_extreme_numbers_in_queries(served: Served) -> None:
    """Page, limit and sinceTime as numbers no column or encoder takes (issue #12, item 7): never a 500."""
    key = served.app.server_key
    console = served.app.console_headers()
    failures = []
    for value in QUERY_NUMBERS:
        for url, headers in (
            (f"/console/v1/autotunes?page={value}", console),
            (f"/console/v1/autotunes?limit={value}", console),
            (f"/v1/download_config_specs/{key}.json?sinceTime={value}", {}),
            (f"/v2/download_config_specs/{key}.json?sinceTime={value}&checksum={value}", {}),
        ):
            status = served.client.get(url, headers=headers).status_code
            if status >= 500:
                failures.append(f"GET {url[:90]}: {status}")
    assert not failures, "\n".join(failures)
