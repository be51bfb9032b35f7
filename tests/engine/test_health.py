"""Health checks through the HTTP API on SQLite and PostgreSQL (engine.md, "Health"): the guardrails
extension (validated, stored, echoed), the sample-ratio check and guardrail exclusions in the results."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautotune.domain.allocation import cumulative_thresholds
from openautotune.domain.autotune import Allocation, Stage
from openautotune.engine.health import HealthOptions
from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.store import autotunes as autotune_store
from openautotune.testing import START_MS, TestApp

from .conftest import Env

BASE = "/console/v1/autotunes"
HOUR = 3_600_000
ERRORS = {"event": "error", "higherIsBetter": False, "maxRelativeHarm": 0.1}


def body(name: str = "checkout_flow", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "variants": [{"name": "a", "json": {"v": "a"}}, {"name": "b", "json": {"v": "b"}}],
        "successEvent": "purchase",
        "explorationWindow": "24hr",
        "attributionWindow": "1hr",
        "winnerThreshold": "95%",
        **extra,
    }


def create(client: TestClient, app: TestApp, start: bool = True, **extra: Any) -> dict[str, Any]:
    made = client.post(BASE, json=body(**extra), headers=app.console_headers())
    assert made.status_code == 201, made.text
    data: dict[str, Any] = made.json()["data"]
    if start:
        assert client.put(f"{BASE}/{data['id']}/start", headers=app.console_headers()).status_code == 200
    return data


def health(client: TestClient, app: TestApp, autotune_id: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/{autotune_id}/results", headers=app.console_headers(read_only=True))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


# --- the guardrails extension -------------------------------------------------------------------


def test_guardrails_are_stored_echoed_and_partly_frozen_once_started(client: TestClient, test_app: TestApp) -> None:
    guardrails = [ERRORS, {"event": "refund", "value": "full", "higherIsBetter": False, "maxRelativeHarm": 0.05}]
    made = create(client, test_app, start=False, guardrails=guardrails)
    echoed = [{"value": None, **ERRORS}, guardrails[1]]
    assert made["guardrails"] == echoed
    read = client.get(f"{BASE}/{made['id']}", headers=test_app.console_headers()).json()["data"]
    assert read["guardrails"] == echoed
    assert "guardrails" not in create(client, test_app, start=False, name="plain")  # unset: not shown
    assert client.put(f"{BASE}/{made['id']}/start", headers=test_app.console_headers()).status_code == 200
    headers = test_app.console_headers()
    looser = [{**ERRORS, "maxRelativeHarm": 0.2}, guardrails[1]]
    patched = client.patch(f"{BASE}/{made['id']}", json={"guardrails": looser}, headers=headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["guardrails"][0]["maxRelativeHarm"] == 0.2
    other_event = client.patch(f"{BASE}/{made['id']}", json={"guardrails": [ERRORS]}, headers=headers)
    assert other_event.status_code == 400
    assert other_event.json()["errors"][0]["property"] == "guardrails"


@pytest.mark.parametrize(
    ("guardrails", "property"),
    [
        ([{**ERRORS, "maxRelativeHarm": -0.1}], "guardrails[0].maxRelativeHarm"),
        ([{**ERRORS, "maxRelativeHarm": 11}], "guardrails[0].maxRelativeHarm"),
        ([{**ERRORS, "maxRelativeHarm": "10%"}], "guardrails[0].maxRelativeHarm"),
        ([{**ERRORS, "higherIsBetter": True, "maxRelativeHarm": 1}], "guardrails[0].maxRelativeHarm"),
        ([{"event": "error", "maxRelativeHarm": 0.1}], "guardrails[0].higherIsBetter"),
        ([{**ERRORS, "event": ""}], "guardrails[0].event"),
        ([{**ERRORS, "event": "   "}], "guardrails[0].event"),
        ([{**ERRORS, "event": "x" * 257}], "guardrails[0].event"),
        ([{**ERRORS, "value": "a\u0000b"}], "guardrails[0].value"),
        ([{**ERRORS, "colour": "red"}], "guardrails[0].colour"),
        ([ERRORS, ERRORS], "guardrails[1]"),
        ([ERRORS] * 11, "guardrails"),
        ("error", "guardrails"),
    ],
)
def test_bad_guardrails_are_a_400_in_the_documented_shape(
    client: TestClient, test_app: TestApp, guardrails: Any, property: str
) -> None:
    response = client.post(BASE, json=body(guardrails=guardrails), headers=test_app.console_headers())
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["status"] == 400 and answer["message"].startswith("Invalid request")
    assert property in [error["property"] for error in answer["errors"]], answer


# --- the sample-ratio check -------------------------------------------------------------------


def _units(env: Env, autotune_id: str, counts: tuple[int, int], at: int, version: int, tag: str) -> None:
    autotune = autotune_service.get(env.db, autotune_id)
    rows = [(f"{tag}-a{i}", 0, at) for i in range(counts[0])] + [(f"{tag}-b{i}", 1, at) for i in range(counts[1])]
    env.units(autotune, rows, period=version)


def _publish(env: Env, autotune_id: str, weights: tuple[float, ...], at: int) -> int:
    """A new allocation version, as an engine update (or a lifecycle change) publishes one."""
    with env.db.write() as conn:
        autotune = autotune_store.get(conn, autotune_id)
        assert autotune is not None
        version = autotune.allocation_version + 1
        autotune_store.save(conn, autotune.__class__(**{**autotune.__dict__, "allocation_version": version}))
        autotune_store.insert_allocation(
            conn,
            Allocation(
                autotune_id, autotune.run, version, at, Stage.EXPLOITING, weights, cumulative_thresholds(weights)
            ),
        )
    return version


def test_no_units_yet_means_nothing_to_test(client: TestClient, test_app: TestApp) -> None:
    made = create(client, test_app)
    assert health(client, test_app, made["id"])["health"] is None  # before the first update
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + HOUR).updated
    srm = health(client, test_app, made["id"])["health"]["srm"]
    assert srm["pValue"] is None and srm["warning"] is None
    assert (srm["observed"], srm["expected"]) == ([0, 0], [0.0, 0.0])


def test_single_period_healthy_and_broken(client: TestClient, test_app: TestApp) -> None:
    env = Env(test_app.db, test_app.clock)
    healthy, broken = create(client, test_app, name="healthy"), create(client, test_app, name="broken")
    _units(env, healthy["id"], (1000, 1010), START_MS + 1, 1, "h")
    _units(env, broken["id"], (1000, 800), START_MS + 1, 1, "x")
    for made in (healthy, broken):
        assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 2 * HOUR).updated
    good = health(client, test_app, healthy["id"])["health"]["srm"]
    assert good["observed"] == [1000, 1010] and good["expected"] == pytest.approx([1005.0, 1005.0])
    assert good["warning"] is None and good["pValue"] > 0.5 and good["df"] == 1
    bad = health(client, test_app, broken["id"])["health"]["srm"]
    assert bad["pValue"] < 0.001 and bad["fixedPValue"] < bad["pValue"]
    assert "'b' has 11.1% fewer units" in bad["warning"] and "Likely causes" in bad["warning"]
    # The look-corrected p-value only goes down: a later, healthier look keeps the alarm.
    _units(env, broken["id"], (100, 100), START_MS + 2 * HOUR, 1, "y")
    assert update_autotune(test_app.db, test_app.clock, broken["id"], START_MS + 4 * HOUR).updated
    later = health(client, test_app, broken["id"])["health"]["srm"]
    assert later["pValue"] == bad["pValue"] and later["warning"] is not None


def test_the_threshold_is_a_setting(client: TestClient, test_app: TestApp) -> None:
    env = Env(test_app.db, test_app.clock)
    made = create(client, test_app)
    _units(env, made["id"], (1000, 800), START_MS + 1, 1, "x")
    update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 2 * HOUR, health=HealthOptions(1e-30))
    srm = health(client, test_app, made["id"])["health"]["srm"]
    assert srm["pValue"] > 1e-30 and srm["warning"] is None and srm["threshold"] == 1e-30


def test_each_period_counts_against_the_weights_it_published(client: TestClient, test_app: TestApp) -> None:
    """Weights changed mid-hour (a new version at 00:30); stale SDKs keep logging the old version after
    it; exposures without a known version cannot be held against any split and are reported apart."""
    env = Env(test_app.db, test_app.clock)
    made = create(client, test_app)
    _units(env, made["id"], (500, 500), START_MS + 1, 1, "p1")
    second = _publish(env, made["id"], (0.9, 0.1), START_MS + HOUR // 2)
    _units(env, made["id"], (900, 100), START_MS + HOUR // 2 + 1, second, "p2")
    _units(env, made["id"], (60, 40), START_MS + HOUR // 2 + 2, 1, "stale")  # old specs, after the change
    _units(env, made["id"], (30, 0), START_MS + HOUR // 2 + 3, 0, "noversion")  # no configVersion: period 0
    _units(env, made["id"], (5, 5), START_MS + HOUR // 2 + 4, 999, "unknown")
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 2 * HOUR).updated
    srm = health(client, test_app, made["id"])["health"]["srm"]
    assert srm["observed"] == [1460, 640]
    assert srm["expected"] == pytest.approx([0.5 * 1100 + 0.9 * 1000, 0.5 * 1100 + 0.1 * 1000])
    assert srm["warning"] is None and srm["unattributedUnits"] == 40
    assert [p["period"] for p in srm["periods"]] == [1, second]


def test_results_keep_the_last_check_after_a_mid_hour_make_decision(client: TestClient, test_app: TestApp) -> None:
    env = Env(test_app.db, test_app.clock)
    made = create(client, test_app)
    _units(env, made["id"], (400, 410), START_MS + 1, 1, "p1")
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 2 * HOUR).updated
    before = health(client, test_app, made["id"])["health"]
    test_app.clock.set(START_MS + 2 * HOUR + HOUR // 2)
    decided = client.put(
        f"{BASE}/{made['id']}/make_decision",
        json={"id": made["variants"][0]["id"], "decisionReason": "ship"},
        headers=test_app.console_headers(),
    )
    assert decided.status_code == 200, decided.text
    _units(env, made["id"], (50, 0), START_MS + 2 * HOUR + HOUR // 2 + 1, 2, "after")  # the winner's version
    assert not update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 3 * HOUR).updated
    after = health(client, test_app, made["id"])
    assert after["stage"] == "finished" and after["health"] == before


# --- guardrails ---------------------------------------------------------------------------------


def _guarded(client: TestClient, test_app: TestApp, errors: tuple[int, int], **extra: Any) -> dict[str, Any]:
    """1,000 units a variant; 'b' converts three times as often, with `errors` error events."""
    env = Env(test_app.db, test_app.clock)
    made = create(client, test_app, guardrails=[ERRORS], **extra)
    _units(env, made["id"], (1000, 1000), START_MS + 1, 1, "g")
    env.events([(f"g-a{i}", START_MS + 2) for i in range(50)] + [(f"g-b{i}", START_MS + 2) for i in range(150)])
    env.events(
        [(f"g-a{i}", START_MS + 3) for i in range(errors[0])] + [(f"g-b{i}", START_MS + 3) for i in range(errors[1])],
        name="error",
    )
    return made


def test_a_harmful_variant_is_excluded_flagged_and_not_declared_winner(client: TestClient, test_app: TestApp) -> None:
    made = _guarded(client, test_app, (100, 200))
    outcome = update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 25 * HOUR)
    assert outcome.updated and outcome.winner_variant_id is None  # 'b' leads on purchases but is excluded
    a, b = (variant["id"] for variant in made["variants"])
    results = health(client, test_app, made["id"])
    assert results["stage"] == "exploiting"
    assert [v["weight"] for v in results["variants"]] == [1.0, 0.0]
    checked = results["health"]
    assert checked["excluded"] == [b]
    assert checked["reasons"][0].startswith("'b' excluded from traffic: guardrail 'error' is worse than 'a'")
    guardrail = checked["guardrails"][0]
    assert guardrail["reference"] == a and guardrail["excluded"] == [b]
    assert [(v["units"], v["hits"]) for v in guardrail["variants"]] == [(1000, 100), (1000, 200)]
    assert guardrail["variants"][1]["probabilityOfHarm"] > 0.95 and guardrail["variants"][1]["harmful"]


def test_an_excluded_variant_keeps_the_long_term_floor(client: TestClient, test_app: TestApp) -> None:
    made = _guarded(client, test_app, (100, 200), longtermExplorationAllocation=0.1)
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 2 * HOUR).updated  # exploring
    results = health(client, test_app, made["id"])
    assert results["stage"] == "exploring"
    assert [v["weight"] for v in results["variants"]] == pytest.approx([0.95, 0.05])


def test_harm_within_the_allowance_excludes_nobody(client: TestClient, test_app: TestApp) -> None:
    made = _guarded(client, test_app, (100, 105))
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 2 * HOUR).updated
    checked = health(client, test_app, made["id"])["health"]
    assert checked["excluded"] == [] and checked["reasons"] == []


def test_a_guardrail_event_never_seen_breaks_nothing(client: TestClient, test_app: TestApp) -> None:
    env = Env(test_app.db, test_app.clock)
    made = create(client, test_app, guardrails=[{**ERRORS, "event": "never_logged"}])
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + HOUR).updated  # no units at all
    _units(env, made["id"], (300, 300), START_MS + HOUR + 1, 1, "n")
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 3 * HOUR).updated
    guardrail = health(client, test_app, made["id"])["health"]["guardrails"][0]
    assert [(v["units"], v["hits"], v["harmful"]) for v in guardrail["variants"]] == [(300, 0, False), (300, 0, False)]


def test_an_exclusion_lasts_for_the_run_until_its_rule_changes(client: TestClient, test_app: TestApp) -> None:
    env = Env(test_app.db, test_app.clock)
    made = _guarded(client, test_app, (100, 200))
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 2 * HOUR).updated
    b = made["variants"][1]["id"]
    assert health(client, test_app, made["id"])["health"]["excluded"] == [b]
    # Stale clients still send b's units, now with as few errors as a: the evidence weakens, b stays out.
    _units(env, made["id"], (0, 3000), START_MS + 2 * HOUR + 1, 1, "late")
    env.events([(f"late-b{i}", START_MS + 2 * HOUR + 2) for i in range(300)], name="error")
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 4 * HOUR).updated
    checked = health(client, test_app, made["id"])["health"]
    assert checked["excluded"] == [b] and "earlier update" in checked["reasons"][0]
    # A looser allowance is a new rule: judged afresh, b is back in traffic.
    looser = [{**ERRORS, "maxRelativeHarm": 1.0}]
    assert (
        client.patch(
            f"{BASE}/{made['id']}", json={"guardrails": looser}, headers=test_app.console_headers()
        ).status_code
        == 200
    )
    assert update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 5 * HOUR).updated
    assert health(client, test_app, made["id"])["health"]["excluded"] == []


def test_a_probably_harmful_variant_is_flagged_and_cannot_win(client: TestClient, test_app: TestApp) -> None:
    made = _guarded(client, test_app, (100, 140))  # P(harm) ~0.98 at one look, short of always-valid evidence
    outcome = update_autotune(test_app.db, test_app.clock, made["id"], START_MS + 25 * HOUR)
    assert outcome.updated and outcome.winner_variant_id is None  # 'b' leads on purchases but is flagged
    results = health(client, test_app, made["id"])
    checked = results["health"]
    assert checked["excluded"] == [] and checked["flagged"] == [made["variants"][1]["id"]]
    assert checked["reasons"][0].startswith("'b' flagged, may not be declared the winner")
    assert results["stage"] == "exploiting" and results["variants"][1]["weight"] > 0.5
