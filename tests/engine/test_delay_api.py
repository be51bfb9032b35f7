"""Delayed conversions through HTTP on SQLite and PostgreSQL (engine.md, "Delayed conversions"): units
inside their window are reported as `immatureUnits`; before any mature conversion the delay CDF is its
prior; then it is learnt, and the allocation (and only the allocation) counts the immature units'
observable share."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.stats.winner_rule import TRAFFIC_FLOOR
from openautotune.store import updates
from openautotune.testing import START_MS, TestApp
from tests.engine.test_holdout_api import _entry, _exposure, _log, _results, _rule_of, _started

MINUTE = 60_000
HOUR = 60 * MINUTE


def _traffic(
    client: TestClient, app: TestApp, autotune_id: str, prefix: str, at: int, converts: dict[str, float]
) -> dict[str, int]:
    """200 users exposed at `at` (get_config logs their exposure then, and so do we, as an SDK would);
    the ones whose variant converts do so 10 minutes later (a share of them per variant name, chosen
    by index). Returns the exposed count per variant id."""
    app.clock.set(at)
    data = client.get(f"/console/v1/autotunes/{autotune_id}", headers=app.console_headers()).json()["data"]
    names = {v["id"]: v["name"] for v in data["variants"]}
    version = _entry(client, app, autotune_id)["version"]
    events: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for i in range(200):
        user = f"{prefix}{i}"
        rule = _rule_of(client, app, autotune_id, user)
        variant = rule.split(":")[0]
        counts[variant] = counts.get(variant, 0) + 1
        events.append(_exposure(autotune_id, user, rule, version, at))
        if (i % 10) < 10 * converts[names[variant]]:
            events.append({"eventName": "click", "user": {"userID": user}, "time": at + 10 * MINUTE})
    app.clock.set(at + 20 * MINUTE)
    _log(client, app, events)
    return counts


def _delay_block(app: TestApp, autotune_id: str) -> dict[str, Any]:
    autotune = autotune_service.get(app.db, autotune_id)
    with app.db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms, autotune.run)
    assert record is not None
    block: dict[str, Any] = record.record["delay"]
    return block


@pytest.mark.parametrize("mode", ["expected", "ignored"])
def test_immature_units_shown_unused_before_mature_conversions_then_in_the_allocation_only(
    client: TestClient, test_app: TestApp, mode: str
) -> None:
    data = _started(client, test_app, attributionWindow="2hrs", delayedConversions=mode)
    autotune_id = data["id"]
    first = _traffic(client, test_app, autotune_id, "a", START_MS + MINUTE, {"red": 0.3, "blue": 0.3})

    as_of = START_MS + 30 * MINUTE  # nobody mature yet
    test_app.clock.set(as_of)
    assert update_autotune(test_app.db, test_app.clock, autotune_id, as_of).updated
    early = _results(client, test_app, autotune_id)
    assert [v["immatureUnits"] for v in early["variants"]] == [first.get(v["id"], 0) for v in early["variants"]]
    assert all(v["units"] == 0 for v in early["variants"])
    block = _delay_block(test_app, autotune_id)
    assert block["conversions"] == 0 and block["meanDelayFraction"] == pytest.approx(0.5)  # the uniform prior
    if mode == "expected":
        assert block["used"] is True and block["reason"].startswith("no mature conversion yet")
    else:
        assert block["used"] is False

    # Two hours later the first users are mature (30% each); new users: blue converts, red does not.
    second = _traffic(client, test_app, autotune_id, "b", START_MS + 2 * HOUR + 5 * MINUTE, {"red": 0.0, "blue": 0.8})
    as_of = START_MS + 2 * HOUR + 40 * MINUTE
    test_app.clock.set(as_of)
    outcome = update_autotune(test_app.db, test_app.clock, autotune_id, as_of)
    assert outcome.updated and outcome.stage is not None and outcome.stage.value == "exploiting"
    results = _results(client, test_app, autotune_id)
    by_name = {v["name"]: v for v in results["variants"]}
    ids = {v["name"]: v["id"] for v in results["variants"]}
    assert [by_name[n]["units"] for n in ("red", "blue")] == [first[ids["red"]], first[ids["blue"]]]
    assert [by_name[n]["immatureUnits"] for n in ("red", "blue")] == [second[ids["red"]], second[ids["blue"]]]
    block = _delay_block(test_app, autotune_id)
    assert block["conversions"] == sum(v["successes"] for v in results["variants"])
    # Every mature delay was 10 minutes: the learnt CDF has most of its mass by then.
    assert block["meanDelayFraction"] < 0.2
    mature_pob = by_name["blue"]["probabilityOfBest"]
    if mode == "expected":
        assert block["used"] is True
        assert block["allocationProbabilityOfBest"][1] > max(0.9, mature_pob)
        assert by_name["blue"]["weight"] > 0.7
    else:
        assert block["used"] is False and block["reason"] == 'delayedConversions is "ignored"'
        assert block["allocationProbabilityOfBest"][1] == pytest.approx(mature_pob)
        # The weight follows the mature P(best) alone: (1 - T) x P(best) plus at most the floor T.
        floor = TRAFFIC_FLOOR
        assert (1 - floor) * mature_pob - 1e-9 <= by_name["blue"]["weight"] <= floor + (1 - floor) * mature_pob + 1e-9
