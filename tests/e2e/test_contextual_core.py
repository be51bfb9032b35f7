"""A contextual autotune end to end with the real core SDK (`statsig-python-core==0.24.2`): the untrained
entry splits by hash, exposures and success events arrive over HTTP, an update trains the models and
publishes `cmab_configs`, the SDK then exploits by the published scores (and explores on its slice), and
the next update stores each unit's propensity under the version it was served by. The legacy SDK gets the
policy's marginal shares as a plain split."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from openautotune.clock import SystemClock
from openautotune.engine.update import update_autotune
from openautotune.serving.bucketing import cmab_bucket
from openautotune.store.ingest_tables import units_table
from tests.contextual.sdk import sdk_score
from tests.e2e.live import LiveServer, SdkProcess

pytestmark = pytest.mark.e2e
HOUR = 3_600_000


def _users(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"userID": f"{prefix}-{i}", "country": "DE" if i % 2 else "FR"} for i in range(count)]


def _cmab(server: LiveServer, autotune_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v2/download_config_specs/{server.server_key}.json", timeout=10.0)
    response.raise_for_status()
    entry: dict[str, Any] = response.json()["cmab_configs"][autotune_id]
    return entry


def _units(server: LiveServer, autotune_id: str, expected: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        with server.db.read() as conn:
            rows = conn.execute(sa.select(units_table).where(units_table.c.autotune_id == autotune_id)).all()
        if len(rows) >= expected or time.monotonic() > deadline:
            return {row.unit_id: row for row in rows}
        time.sleep(0.1)


def test_core_sdk_runs_a_contextual_autotune(live_server: LiveServer) -> None:
    with live_server.console() as console:
        body = {
            "name": "contextual_e2e",
            "variants": [{"name": "de_first", "json": {"v": "de"}}, {"name": "fr_first", "json": {"v": "fr"}}],
            "successEvent": "purchase",
            "explorationWindow": "1hr",
            "attributionWindow": "1hr",
            "winnerThreshold": "95%",
            "isContextual": True,
            "featureList": ["country"],
        }
        created = console.post("/console/v1/autotunes", json=body).json()["data"]
        assert console.put(f"/console/v1/autotunes/{created['id']}/start").status_code == 200
    autotune_id = created["id"]
    de_id, fr_id = (variant["id"] for variant in created["variants"])
    untrained = _cmab(live_server, autotune_id)
    assert "config" not in untrained

    first = _users("ctx-a", 600)
    with SdkProcess("core", live_server) as sdk:
        served = sdk.evaluate(autotune_id, first, log_exposures=True)
    for user, (rule_id, _name, _value) in zip(first, served, strict=True):
        group = (de_id, fr_id)[cmab_bucket(untrained["salt"], user["userID"]) * 2 // 10000]
        assert rule_id == f"{group}:explore"  # the SDK's untrained path: equal split by hash
    units = _units(live_server, autotune_id, len(first))
    assert len(units) == len(first) and all(row.explore for row in units.values())

    # Success events over HTTP: the variant that suits the user's country converts far more often.
    now = SystemClock().now_ms()
    events = []
    for index, (user, (rule_id, _n, _v)) in enumerate(zip(first, served, strict=True)):
        suits = rule_id.removesuffix(":explore") == (de_id if user["country"] == "DE" else fr_id)
        if (suits and index % 10 < 6) or (not suits and index % 10 == 0):
            events.append({"eventName": "purchase", "user": {"userID": user["userID"]}, "time": now})
    answer = httpx.post(
        f"{live_server.url}/v1/log_event",
        json={"events": events},
        headers={"STATSIG-API-KEY": live_server.server_key},
        timeout=10.0,
    )
    assert answer.status_code in (200, 202), answer.text

    # Just late enough to mature the first batch: an update learns from units matured since the previous
    # one (docs/contextual.md), so the second batch, exposed after `now`, must mature after this as_of.
    outcome = update_autotune(live_server.db, SystemClock(), autotune_id, now + HOUR + 1)
    assert outcome.updated and outcome.stage is not None and outcome.stage.value == "exploiting"
    deadline = time.monotonic() + 10
    while "config" not in (entry := _cmab(live_server, autotune_id)):
        assert time.monotonic() < deadline, "the trained policy never reached the v2 specs"
        time.sleep(0.1)
    assert entry["version"] == outcome.allocation_version
    config, rate = entry["config"], entry["sampleRate"]

    def best(user: dict[str, Any]) -> str:
        return max((de_id, fr_id), key=lambda group: sdk_score(config[group], user))

    assert best({"country": "DE"}) == de_id and best({"country": "FR"}) == fr_id

    # The legacy SDK cannot score models: it gets the policy's marginal shares as a plain split.
    assert abs(sum(outcome.weights) - 1) < 1e-9 and min(outcome.weights) > 0.2
    with SdkProcess("legacy", live_server) as legacy:
        plain = legacy.evaluate(autotune_id, _users("ctx-legacy", 200))
    assert {rule_id for rule_id, _n, _v in plain} == {de_id, fr_id}

    second = _users("ctx-b", 400)
    with SdkProcess("core", live_server) as sdk:
        probe = next(f"probe-{i}" for i in range(10_000) if cmab_bucket(entry["salt"], f"probe-{i}") >= rate * 10000)
        sdk.wait_for_rule(autotune_id, {"userID": probe, "country": "DE"}, de_id)  # on the exploit path
        served = sdk.evaluate(autotune_id, second, log_exposures=True)
    exploited = 0
    for user, (rule_id, _name, _value) in zip(second, served, strict=True):
        if cmab_bucket(entry["salt"], user["userID"]) < rate * 10000:
            assert rule_id.endswith(":explore")
        else:
            assert rule_id == best(user)
            exploited += 1
    assert exploited > 100

    units = _units(live_server, autotune_id, len(first) + len(second))
    later = now + 2 * HOUR + 60_000
    assert update_autotune(
        live_server.db, SystemClock(), autotune_id, max(later, SystemClock().now_ms() + 2 * HOUR)
    ).updated
    records = {de_id: config[de_id]["records"], fr_id: config[fr_id]["records"]}
    weights = {group: 1 / (count + 1) for group, count in records.items()}
    total = sum(weights.values())
    with live_server.db.read() as conn:
        rows = conn.execute(sa.select(units_table).where(units_table.c.autotune_id == autotune_id)).all()
    by_unit = {row.unit_id: row for row in rows}
    for user in second:
        row = by_unit[user["userID"]]
        expected = (1 - rate) * (row.variant_id == best(user)) + rate * weights[row.variant_id] / total
        assert row.allocation_version == entry["version"]
        assert row.propensity == pytest.approx(expected, rel=1e-9)
    assert all(by_unit[user["userID"]].propensity == 0.5 for user in first)
