"""`/metrics` parses as Prometheus text and carries the documented series; `/health` turns unhealthy
past the ingest lag bound and keeps its "degraded" answer otherwise (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from dataclasses import replace

import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from openautotune import metrics
from openautotune.store import autotunes as autotune_store
from openautotune.store import spec_changes
from openautotune.testing import TestApp
from tests.api.helpers import created_id


def scrape(client: TestClient) -> dict[str, list[Sample]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_parse_and_count_requests_by_route_template(client: TestClient, test_app: TestApp) -> None:
    key = test_app.server_key
    before = scrape(client)
    for _ in range(3):
        assert client.get(f"/v1/download_config_specs/{key}.json").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    families = scrape(client)
    requests = families["openautotune_http_requests"]
    template = "/v1/download_config_specs/{sdk_key}.json"
    counted = value(requests, "openautotune_http_requests_total", route=template, method="GET", status="200")
    # The same labels as `counted`: other tests in this process may have answered this route otherwise.
    earlier = value(
        before.get("openautotune_http_requests", []),
        "openautotune_http_requests_total",
        route=template,
        method="GET",
        status="200",
    )
    assert counted - earlier == 3
    assert value(requests, "openautotune_http_requests_total", route="unmatched", status="404") >= 1
    assert not any(key in s.labels.get("route", "") for s in requests), "raw paths (and keys) never become labels"
    durations = families["openautotune_http_request_duration_seconds"]
    assert value(durations, "openautotune_http_request_duration_seconds_count", route=template) >= 3
    for name in (
        "openautotune_ingest_lag_batches",
        "openautotune_ingest_lag_seconds",
        "openautotune_ingest_processed_batches",
        "openautotune_ingest_processed_events",
        "openautotune_update_duration_seconds",
        "openautotune_spec_cache_age_seconds",
        "openautotune_leader",
    ):
        assert name in families, name
    assert value(families["openautotune_ingest_lag_batches"], "openautotune_ingest_lag_batches") == 0
    age = value(families["openautotune_spec_cache_age_seconds"], "openautotune_spec_cache_age_seconds")
    assert 0 <= age < 60, "specs were just checked"


def test_the_hooks_feed_the_metrics(client: TestClient, test_app: TestApp) -> None:
    before = scrape(client)
    test_app.app.state.ingest_lag.provider = lambda: (7, 42.5)
    metrics.record_processed(batches=2, events=1000)
    metrics.record_update("hooked", 0.3)
    families = scrape(client)
    assert value(families["openautotune_ingest_lag_batches"], "openautotune_ingest_lag_batches") == 7
    assert value(families["openautotune_ingest_lag_seconds"], "openautotune_ingest_lag_seconds") == 42.5
    events = "openautotune_ingest_processed_events_total"
    grew = value(families["openautotune_ingest_processed_events"], events) - value(
        before["openautotune_ingest_processed_events"], events
    )
    assert grew == 1000
    updates = families["openautotune_update_duration_seconds"]
    assert value(updates, "openautotune_update_duration_seconds_count", autotune_id="hooked") >= 1


def _with_bound(test_app: TestApp, seconds: float) -> None:
    settings = test_app.app.state.settings
    test_app.app.state.settings = replace(settings, health_max_ingest_lag_seconds=seconds)


def test_health_turns_unhealthy_past_the_lag_bound(client: TestClient, test_app: TestApp) -> None:
    _with_bound(test_app, 60.0)
    assert client.get("/health").json() == {"status": "ok", "unrenderable": []}, "no processor wired: no lag"
    test_app.app.state.ingest_lag.provider = lambda: (3, 59.0)
    assert client.get("/health").status_code == 200
    test_app.app.state.ingest_lag.provider = lambda: (3, 61.0)
    unhealthy = client.get("/health")
    assert unhealthy.status_code == 503
    assert "3 batches wait" in unhealthy.json()["message"]
    _with_bound(test_app, 0.0)
    assert client.get("/health").status_code == 200, "0 turns the lag check off"


def test_health_reports_an_unreadable_lag_as_unhealthy(client: TestClient, test_app: TestApp) -> None:
    def broken() -> tuple[int, float]:
        raise RuntimeError("database gone")

    test_app.app.state.ingest_lag.provider = broken
    assert client.get("/health").status_code == 503
    families = scrape(client)  # the other figures are still scraped; the lag reads NaN
    assert math.isnan(value(families["openautotune_ingest_lag_seconds"], "openautotune_ingest_lag_seconds"))


def test_degraded_stays_degraded_while_the_lag_is_within_its_bound(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    assert client.get("/health").json()["status"] == "ok"
    test_app.app.state.ingest_lag.provider = lambda: (1, 1.0)
    with test_app.db.write() as conn:  # a row no Autotune can be made of (as in test_input_hardening)
        table = autotune_store.autotunes_table
        conn.execute(sa.update(table).where(table.c.id == autotune_id).values(definition={"name": "broken"}))
        test_app.clock.advance(1000)
        spec_changes.bump(conn, test_app.clock.now_ms())
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "degraded", "unrenderable": [autotune_id]}
