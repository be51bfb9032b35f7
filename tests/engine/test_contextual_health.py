"""Health checks of contextual autotunes (engine.md "Health", contextual.md "Guardrails"), through the HTTP
API on SQLite and PostgreSQL: a variant a guardrail excludes is withheld from the personalized policy
everywhere it is served (v2 `cmab_configs`, `/v1/get_config`, `/v1/initialize`, the ranked list, the v1
weights), and the sample-ratio check runs on the explore traffic, whose weights do not depend on the user."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from openautotune.contextual import training
from openautotune.contextual.policy import explore_weights
from openautotune.contextual.serving import load_deciders
from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.serving.initialize import djb2
from openautotune.store import updates
from openautotune.store.ingest_tables import events_table, exposures_table, units_table
from openautotune.testing import TestApp
from openautotune.web.health_view import health_view
from tests.api.test_sdk_initialize import initialize

from .test_health import ERRORS, create, health

HOUR = 3_600_000
VARIANTS = [{"name": name, "json": {"v": name}} for name in ("a", "b", "c")]


def _contextual(client: TestClient, app: TestApp, name: str, **extra: Any) -> tuple[str, list[str], int, int]:
    made = create(client, app, name=name, isContextual=True, featureList=["country"], variants=VARIANTS, **extra)
    autotune = autotune_service.get(app.db, made["id"])
    assert autotune.started_at_ms is not None
    return made["id"], [v.id for v in autotune.definition.variants], autotune.started_at_ms, autotune.allocation_version


def _serve(
    app: TestApp,
    autotune_id: str,
    counts: list[int],
    at: int,
    version: int,
    tag: str,
    *,
    explore: bool = True,
    errors: tuple[float, ...] = (0.0, 0.0, 0.0),
) -> None:
    """`counts[k]` units of variant k (DE and FR alternately), purchases that suit a for DE and c for FR,
    and `error` events for a share `errors[k]` of each variant's units."""
    variants = [v.id for v in autotune_service.get(app.db, autotune_id).definition.variants]
    rng = np.random.default_rng(len(tag) + at % 1000)
    units, events = [], []
    for k, n in enumerate(counts):
        for i in range(n):
            unit = f"{tag}-{k}-{i}"
            country = "DE" if i % 2 else "FR"
            units.append(
                {
                    "autotune_id": autotune_id,
                    "run": 1,
                    "unit_id": unit,
                    "variant_id": variants[k],
                    "first_exposure_ms": at + i,
                    "allocation_version": version,
                    "explore": explore,
                    "features": {"userID": unit, "country": country},
                    "propensity": None,
                }
            )
            suited = (country, k) in (("DE", 0), ("FR", 2))
            for event, happens in (("purchase", rng.random() < (0.5 if suited else 0.1)), ("error", i < errors[k] * n)):
                if happens:
                    events.append(
                        {
                            "id_type": "userID",
                            "unit_id": unit,
                            "event_name": event,
                            "value": None,
                            "metadata": None,
                            "time_ms": at + n + 60_000,
                            "received_ms": at + n + 60_000,
                            "dedup_key": f"{unit}-{event}",
                        }
                    )
    with app.db.write() as conn:
        conn.execute(units_table.insert(), units)
        conn.execute(events_table.insert(), events)


def _record(app: TestApp, autotune_id: str) -> dict[str, Any]:
    autotune = autotune_service.get(app.db, autotune_id)
    with app.db.read() as conn:
        latest = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert latest is not None
    return latest.record


def _specs(client: TestClient, app: TestApp) -> dict[str, Any]:
    headers = {"statsig-api-key": app.server_key}
    response = client.get(f"/v2/download_config_specs/{app.server_key}.json", headers=headers)
    assert response.status_code == 200, response.text
    specs: dict[str, Any] = response.json()
    return specs


def _get_config(client: TestClient, app: TestApp, autotune_id: str, users: int, tag: str) -> list[str]:
    headers = {"statsig-api-key": app.server_key}
    served = []
    for i in range(users):
        user = {"userID": f"{tag}{i}", "country": "DE" if i % 2 else "FR"}
        response = client.post("/v1/get_config", json={"configName": autotune_id, "user": user}, headers=headers)
        assert response.status_code == 200, response.text
        served.append(str(response.json()["group"]))
    return served


# --- guardrails ---------------------------------------------------------------------------------


def test_a_harmful_variant_is_withheld_from_the_trained_policy(client: TestClient, test_app: TestApp) -> None:
    autotune_id, (a, b, c), start, version = _contextual(
        client, test_app, "ctx_guarded", explorationWindow="1hr", guardrails=[ERRORS]
    )
    _serve(test_app, autotune_id, [400, 400, 400], start + 1, version, "w", errors=(0.1, 0.3, 0.1))
    outcome = update_autotune(test_app.db, test_app.clock, autotune_id, start + 3 * HOUR)
    assert outcome.updated and outcome.stage is not None and outcome.stage.value == "exploiting"

    record = _record(test_app, autotune_id)
    checked = record["health"]
    assert checked["excluded"] == [b] and checked["flagged"] == []
    assert checked["reasons"][0].startswith("'b' excluded from traffic: guardrail 'error' is worse than")
    assert "withheld from the personalized policy" in checked["reasons"][-1]
    # Found at this update, after the policy was fitted: withheld from it before it is published.
    assert record["contextual"]["withheld"] == [b] and record["contextual"]["withheldAfterFit"] == [b]
    assert outcome.weights[1] == 0.0 and sum(outcome.weights) == pytest.approx(1.0)  # v1: never b

    entry = _specs(client, test_app)["cmab_configs"][autotune_id]
    assert [group["id"] for group in entry["groups"]] == [a, c] and set(entry["config"]) == {a, c}
    assert entry["version"] == outcome.allocation_version

    decider = load_deciders(test_app.db)[autotune_id]
    assert decider.version == outcome.allocation_version
    for country in ("DE", "FR"):
        x = decider.server.encoding.transform_one({"userID": "p", "country": country})
        assert decider.bank.probabilities(x)[1] == 0.0
        assert decider.server.policy.probabilities(x[None, :])[0][1] == 0.0
    test_app.app.state.contextual.rng = np.random.default_rng(2)
    served = _get_config(client, test_app, autotune_id, 150, "g")
    assert b not in served and {a, c} <= set(served)
    for i in range(30):
        response = initialize(client, test_app.client_key, {"user": {"userID": f"i{i}", "country": "DE"}})
        assert response.status_code == 200, response.text
        assert response.json()["dynamic_configs"][djb2(autotune_id)]["group"].removesuffix(":explore") != b
    with test_app.db.read() as conn:
        stored = conn.execute(
            sa.select(exposures_table.c.rule_id, exposures_table.c.propensity).where(
                exposures_table.c.autotune_id == autotune_id
            )
        ).all()
    assert len(stored) == 180 and all(row.propensity > 0 and not row.rule_id.startswith(b) for row in stored)
    ranked = client.post(
        "/v1/get_cmab_ranked_groups",
        json={"configName": autotune_id, "user": {"userID": "r", "country": "DE"}},
        headers={"statsig-api-key": test_app.server_key},
    )
    assert ranked.status_code == 200 and [g["id"] for g in ranked.json()["rankedGroups"]] == [a, c]

    # The next update fits under the exclusion (it lasts for the run): the published policy is that fit.
    _serve(test_app, autotune_id, [100, 0, 100], start + 3 * HOUR + 1, entry["version"], "n", explore=False)
    later = update_autotune(test_app.db, test_app.clock, autotune_id, start + 5 * HOUR)
    record = _record(test_app, autotune_id)
    assert record["health"]["excluded"] == [b]
    assert record["contextual"]["withheld"] == [b] and "withheldAfterFit" not in record["contextual"]
    assert record["contextual"]["marginalShares"][1] == 0.0 and later.weights[1] == 0.0
    entry = _specs(client, test_app)["cmab_configs"][autotune_id]
    assert [group["id"] for group in entry["groups"]] == [a, c] and entry["version"] == later.allocation_version


def test_an_exclusion_in_the_exploration_window_narrows_the_equal_split(client: TestClient, test_app: TestApp) -> None:
    autotune_id, (a, b, c), start, version = _contextual(client, test_app, "ctx_early", guardrails=[ERRORS])
    _serve(test_app, autotune_id, [400, 400, 400], start + 1, version, "e", errors=(0.1, 0.3, 0.1))
    outcome = update_autotune(test_app.db, test_app.clock, autotune_id, start + 3 * HOUR)
    assert outcome.stage is not None and outcome.stage.value == "exploring"
    assert _record(test_app, autotune_id)["health"]["excluded"] == [b]
    assert list(outcome.weights) == [0.5, 0.0, 0.5]
    entry = _specs(client, test_app)["cmab_configs"][autotune_id]
    assert "config" not in entry and [group["id"] for group in entry["groups"]] == [a, c]
    served = _get_config(client, test_app, autotune_id, 80, "u")
    assert set(served) == {a, c}
    with test_app.db.read() as conn:
        rows = conn.execute(
            sa.select(exposures_table.c.propensity).where(exposures_table.c.autotune_id == autotune_id)
        ).all()
    assert {row.propensity for row in rows} == {0.5}  # 1 / the groups listed, as the SDK splits them


def test_without_a_new_fit_the_latest_policy_is_published_again_restricted(
    client: TestClient, test_app: TestApp
) -> None:
    """An update that cannot publish a fit (non-finite weights) still withholds a newly excluded variant."""
    autotune_id, (a, b, c), start, version = _contextual(client, test_app, "ctx_refit", explorationWindow="1hr")
    _serve(test_app, autotune_id, [200, 200, 200], start + 1, version, "r")
    trained = update_autotune(test_app.db, test_app.clock, autotune_id, start + 3 * HOUR)
    autotune = autotune_service.get(test_app.db, autotune_id)
    unfitted = training.Learned(None, 0.5, None, None, {"message": "a model has non-finite weights"})
    with test_app.db.write() as conn:
        assert training.withhold(conn, autotune, unfitted, []) is unfitted
        again = training.withhold(conn, autotune, unfitted, [b])
        assert again.publishes and set(again.config or {}) == {a, c} and again.withheld == (b,)
        assert (again.model or {})["withheld"] == [b] and again.record["republished"] == trained.allocation_version
        training.save(conn, autotune, 99, start + 4 * HOUR, again)
        # Already withheld in the latest policy: nothing to publish again.
        assert training.withhold(conn, autotune, unfitted, [b]) is unfitted
    decider = load_deciders(test_app.db)[autotune_id]
    x = decider.server.encoding.transform_one({"userID": "z", "country": "FR"})
    assert decider.version == 99 and decider.bank.probabilities(x)[1] == 0.0


@pytest.mark.parametrize(
    ("guardrails", "property"),
    [
        ([{**ERRORS, "maxRelativeHarm": -0.1}], "guardrails[0].maxRelativeHarm"),
        ([{"event": "error", "maxRelativeHarm": 0.1}], "guardrails[0].higherIsBetter"),
        ("error", "guardrails"),
    ],
)
def test_bad_guardrails_on_a_contextual_autotune_are_a_400(
    client: TestClient, test_app: TestApp, guardrails: Any, property: str
) -> None:
    body = {
        "name": "ctx_bad",
        "variants": VARIANTS,
        "successEvent": "purchase",
        "isContextual": True,
        "guardrails": guardrails,
    }
    response = client.post("/console/v1/autotunes", json=body, headers=test_app.console_headers())
    assert response.status_code == 400, response.text
    assert property in [error["property"] for error in response.json()["errors"]]


# --- the sample-ratio check ---------------------------------------------------------------------


def test_sample_ratio_on_the_explore_traffic(client: TestClient, test_app: TestApp) -> None:
    healthy, _, start, version = _contextual(client, test_app, "ctx_srm_ok")
    broken, _, _, _ = _contextual(client, test_app, "ctx_srm_bad")
    _serve(test_app, healthy, [500, 510, 495], start + 1, version, "h")
    _serve(test_app, broken, [500, 500, 300], start + 1, version, "x")
    _serve(test_app, healthy, [300, 0, 0], start + 2, version, "o", explore=False)  # not tested, only counted
    for autotune_id in (healthy, broken):
        assert update_autotune(test_app.db, test_app.clock, autotune_id, start + 2 * HOUR).updated
    good = _record(test_app, healthy)["health"]["srm"]
    assert good["traffic"] == "explore" and "explore path only" in good["scope"]
    assert good["observed"] == [500, 510, 495] and good["untestedUnits"] == 300
    # The SDK's untrained split: 3334, 3333 and 3333 of its 10,000 buckets.
    assert good["expected"] == pytest.approx([1505 * 0.3334, 1505 * 0.3333, 1505 * 0.3333])
    assert good["df"] == 2 and good["pValue"] > 0.5 and good["warning"] is None
    assert good["periods"] == [{"period": version, "shares": [0.3334, 0.3333, 0.3333], "observed": [500, 510, 495]}]
    shown = health(client, test_app, healthy)["health"]["srm"]  # the results API shows the same check
    assert (shown["traffic"], shown["untestedUnits"], shown["observed"]) == ("explore", 300, [500, 510, 495])
    view = health_view(_record(test_app, healthy)["health"], ["a", "b", "c"])  # the dashboard and CLI card
    assert view is not None and view.srm_status == "ok" and "published explore weights" in view.srm_text
    assert "300 exploit units are personalized and not tested" in view.srm_text
    bad = _record(test_app, broken)["health"]["srm"]
    assert bad["pValue"] < 0.001 and "'c' has" in bad["warning"] and "published explore weights" in bad["warning"]

    # Counts carry over: the contextual step reads only the units matured since the previous update.
    _serve(test_app, healthy, [100, 100, 100], start + 2 * HOUR + 1, version, "h2")
    assert update_autotune(test_app.db, test_app.clock, healthy, start + 4 * HOUR).updated
    again = _record(test_app, healthy)["health"]["srm"]
    assert again["observed"] == [600, 610, 595] and again["untestedUnits"] == 300


def test_sample_ratio_of_a_trained_version_uses_its_explore_weights(client: TestClient, test_app: TestApp) -> None:
    autotune_id, _, start, version = _contextual(client, test_app, "ctx_srm_trained", explorationWindow="1hr")
    _serve(test_app, autotune_id, [200, 200, 200], start + 1, version, "t")
    _serve(test_app, autotune_id, [100, 0, 0], start + 2, version, "v1", explore=False)  # a legacy SDK's
    trained = update_autotune(test_app.db, test_app.clock, autotune_id, start + 3 * HOUR)
    assert trained.allocation_version is not None
    entry = _specs(client, test_app)["cmab_configs"][autotune_id]
    records = [entry["config"][group["id"]]["records"] for group in entry["groups"]]
    assert records == [300, 200, 200]
    q = explore_weights(records)
    counts = [round(1000 * float(share)) for share in q]
    _serve(test_app, autotune_id, counts, start + 3 * HOUR + 1, trained.allocation_version, "q")
    assert update_autotune(test_app.db, test_app.clock, autotune_id, start + 5 * HOUR).updated
    srm = _record(test_app, autotune_id)["health"]["srm"]
    assert [p["period"] for p in srm["periods"]] == [version, trained.allocation_version]
    assert srm["periods"][1]["shares"] == pytest.approx(list(q)) and srm["periods"][1]["observed"] == counts
    assert srm["expected"] == pytest.approx(
        [a + sum(counts) * s for a, s in zip([200.04, 199.98, 199.98], q, strict=True)]
    )
    assert srm["warning"] is None
