"""Property tests: whatever arrives, the answer is never a 5xx, a refused envelope writes nothing,
a re-sent batch writes nothing new, and units always agree with the exposures they came from."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautotune.clock import DAY_MS
from openautotune.testing import START_MS
from tests.ingest.conftest import Ingest, create_autotune

FUZZ = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8
)
times = st.integers(START_MS - 3 * DAY_MS, START_MS + 2 * DAY_MS) | json_values
ids = st.sampled_from(["u1", "u2", "u3", ""]) | text | ints | json_values
users = (
    st.fixed_dictionaries(
        {},
        optional={
            "userID": ids,
            "customIDs": st.dictionaries(st.sampled_from(["stableID", "companyID"]) | text, ids, max_size=3)
            | json_values,
            "country": text,
            "custom": json_values,
            "privateAttributes": json_values,
        },
    )
    | json_values
)


def exposure_metadata(configs: list[str], rules: list[str]) -> st.SearchStrategy[Any]:
    return (
        st.fixed_dictionaries(
            {},
            optional={
                "config": st.sampled_from(configs) | text | json_values,
                "ruleID": st.sampled_from(rules) | text | json_values,
                "configVersion": st.sampled_from(["1", 1, "0", None, "2", "x"]) | json_values,
                "isManualExposure": st.just("true"),
            },
        )
        | json_values
    )


def events(configs: list[str], rules: list[str]) -> st.SearchStrategy[Any]:
    good_user = st.fixed_dictionaries(
        {"userID": st.sampled_from(["u1", "u2", "u3"])},
        optional={"customIDs": st.fixed_dictionaries({"stableID": st.sampled_from(["s1", "s2"])}), "country": text},
    )
    good_time = st.integers(START_MS - 3 * DAY_MS, START_MS)
    good_exposure = st.fixed_dictionaries(
        {
            "eventName": st.just("statsig::config_exposure"),
            "user": good_user,
            "time": good_time,
            "metadata": st.fixed_dictionaries(
                {
                    "config": st.sampled_from(configs),
                    "ruleID": st.sampled_from(rules),
                    "configVersion": st.sampled_from(["1", 1, "0", "2"]),
                }
            ),
        }
    )
    good_event = st.fixed_dictionaries(
        {"eventName": st.sampled_from(["click", "buy"]), "user": good_user, "time": good_time},
        optional={"value": st.integers(0, 9) | st.sampled_from(["a", "b"]), "metadata": st.just({"k": "v"})},
    )
    junk = st.fixed_dictionaries(
        {},
        optional={
            "eventName": st.sampled_from(["statsig::config_exposure", "click", "statsig::diagnostics"]) | text,
            "user": users,
            "time": times,
            "value": json_values,
            "metadata": exposure_metadata(configs, rules),
        },
    )
    return st.lists(good_exposure | good_event | junk | json_values, max_size=6)


def consistent(ingest: Ingest) -> None:
    """Every unit is the earliest analysable exposure of its unit, with that exposure's variant."""
    analysable: dict[tuple[str, int, str], list[tuple[int, str]]] = {}
    for row in ingest.exposures():
        if row["analysable"]:
            analysable.setdefault((row["autotune_id"], row["run"], row["unit_id"]), []).append(
                (row["time_ms"], row["variant_id"])
            )
    units = {(u["autotune_id"], u["run"], u["unit_id"]): u for u in ingest.units()}
    assert set(units) == set(analysable)
    for key, unit in units.items():
        first = min(time for time, _ in analysable[key])
        assert unit["first_exposure_ms"] == first
        assert (first, unit["variant_id"]) in analysable[key]


def test_fuzzed_batches_never_fail_and_resending_changes_nothing(ingest: Ingest) -> None:
    autotune = create_autotune(ingest.app, "color")
    create_autotune(ingest.app, "drafty", start=False)
    rules = [variant.id for variant in autotune.definition.variants] + ["prestart", "nope"]
    rules += [rule + ":explore" for rule in rules]
    seen = {"accepted": 0, "rejected": 0, "units": 0}

    @FUZZ
    @given(batch=events(["color", "drafty", "ghost"], rules), compress=st.booleans())
    def check(batch: list[Any], compress: bool) -> None:
        first = ingest.post(batch, gzipped=compress)
        assert first.status_code == 200, first.text
        answer = first.json()
        assert answer["success"] is True
        assert answer["accepted"] + len(answer["rejected"]) + answer["ignored"] == len(batch)
        stored = ingest.counts()
        again = ingest.post(batch, gzipped=not compress)
        assert again.json() == answer
        assert ingest.counts() == stored
        consistent(ingest)
        seen["accepted"] += answer["accepted"]
        seen["rejected"] += len(answer["rejected"])
        seen["units"] = stored[1]

    check()
    assert seen["accepted"] and seen["rejected"] and seen["units"], seen  # the strategies reach every side


def test_fuzzed_envelopes_are_answered_and_refusals_write_nothing(ingest: Ingest) -> None:
    valid_event = {"eventName": "click", "user": {"userID": "u1"}, "time": START_MS}
    envelopes = (
        st.binary(max_size=64)
        | json_values.map(orjson.dumps)
        | st.dictionaries(st.sampled_from(["events", "statsigMetadata"]) | text, json_values, max_size=3).map(
            orjson.dumps
        )
    )

    @FUZZ
    @given(
        body=envelopes,
        encoding=st.sampled_from([None, "gzip", "GZIP", "deflate", "identity", "zstd"]),
        compress=st.booleans(),
    )
    def check(body: bytes, encoding: str | None, compress: bool) -> None:
        # Each envelope also smuggles a valid event in: a refused envelope must not store it.
        smuggled = body.replace(b"}", b', "x": ' + orjson.dumps([valid_event]) + b"}", 1)
        content = gzip.compress(smuggled) if compress else smuggled
        headers = {"STATSIG-API-KEY": ingest.app.server_key}
        if encoding:
            headers["Content-Encoding"] = encoding
        before = ingest.counts()
        response = ingest.client.post("/v1/log_event", content=content, headers=headers)
        assert response.status_code < 500, response.text
        answer = response.json()
        assert isinstance(answer, dict)
        if response.status_code >= 400:
            assert answer["status"] == response.status_code
            assert isinstance(answer["message"], str)
            assert ingest.counts() == before
        else:
            assert answer["success"] is True

    check()


# Raw JSON text, because orjson cannot write what SDK-side bugs and attackers send: lone surrogates,
# NaN, integers beyond 64 bits, nesting beyond 254 levels, invalid UTF-8.
def _nest(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


hostile_fragments = (
    json_values.map(orjson.dumps)
    | st.sampled_from(
        [b'"\\ud800"', b'"a\\udfffb"', b'"\\u0000"', b"NaN", b"-Infinity", b"1e400", b"18446744073709551615"]
    )
    | st.integers(21, 5000).map(lambda n: b"9" * n)
    | st.integers(30, 1500).map(_nest)
    | st.sampled_from([255, 256, 4096, 4097, 16384, 16385, 70_000]).map(lambda n: b'"' + b"x" * n + b'"')
    | st.binary(min_size=1, max_size=4).map(lambda raw: b'"' + raw.replace(b'"', b"").replace(b"\\", b"") + b'"')
)


@st.composite
def hostile_event(draw: st.DrawFn) -> bytes:
    """One event as raw JSON text: known fields (and one unknown) holding hostile or arbitrary values."""
    names = st.sampled_from([b'"click"', b'"statsig::config_exposure"', b'"statsig::diagnostics"']) | hostile_fragments
    user = st.sampled_from([b'{"userID": "u1"}', b'{"customIDs": {"stableID": "s1"}}']) | hostile_fragments
    fields = {
        b"eventName": names,
        b"user": user | hostile_fragments.map(lambda raw: b'{"userID": "u1", "custom": {"c": ' + raw + b"}}"),
        b"time": st.just(b"%d" % START_MS) | hostile_fragments,
        b"value": hostile_fragments,
        b"metadata": hostile_fragments.map(lambda raw: b'{"k": ' + raw + b"}") | hostile_fragments,
        b"secondaryExposures": hostile_fragments,
    }
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, min_size=1))
    members = [b'"' + name + b'": ' + draw(fields[name]) for name in chosen]
    return b"{" + b", ".join(members) + b"}"


def test_every_valid_event_of_a_hostile_batch_is_stored_exactly_once(ingest: Ingest) -> None:
    clean_text = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
    counter = iter(range(10**9))

    valid_event = st.builds(
        lambda value, metadata: {
            "eventName": "buy",
            "user": {"userID": f"valid-{next(counter)}", "country": "DE"},
            "time": START_MS,
            "value": value,
            "metadata": metadata,
        },
        st.none() | st.integers(-(2**63), 2**63 - 1) | clean_text,
        st.none() | st.dictionaries(clean_text, clean_text | st.integers(0, 9), max_size=3),
    ).map(orjson.dumps)
    elements = st.lists(valid_event | hostile_event() | hostile_fragments, max_size=8)

    @FUZZ
    @given(batch=elements, compress=st.booleans())
    def check(batch: list[bytes], compress: bool) -> None:
        body = b'{"events": [' + b", ".join(batch) + b'], "statsigMetadata": {"sdkType": "fuzz"}}'
        valid = [orjson.loads(raw)["user"]["userID"] for raw in batch if raw.startswith(b'{"eventName":"buy"')]
        for _ in range(2):  # a re-sent batch stores nothing twice
            response = ingest.post_raw(body, gzipped=compress)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["accepted"] + len(answer["rejected"]) + answer["ignored"] == len(batch)
            assert sum(answer["dropped"].values()) == len(answer["rejected"])
            stored = [row["unit_id"] for row in ingest.events() if row["unit_id"] in valid]
            assert sorted(stored) == sorted(valid)
        seen["valid"] += len(valid)
        seen["mixed"] += bool(valid and answer["rejected"])

    seen = {"valid": 0, "mixed": 0}
    check()
    assert seen["valid"] and seen["mixed"], seen  # valid events did share batches with dropped ones
