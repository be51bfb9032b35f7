"""`serve --workers 2` for real, on SQLite and PostgreSQL: one leader among the workers (and replicas),
a killed leader replaced, `/metrics` combined across workers, and a change made through one worker
served by every worker within `specs_refresh_seconds`."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from openautotune.clock import SystemClock
from openautotune.service import keys as key_service
from openautotune.store import updates
from openautotune.store.keys import KeyKind
from tests.api.helpers import body
from tests.conftest import _postgres_schema_url
from tests.e2e.live import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST_LEADER = {
    "OPENAUTOTUNE_LEADER_RETRY_SECONDS": "0.2",
    "OPENAUTOTUNE_LOG_LEVEL": "info",
    "OPENAUTOTUNE_SCHEDULER_FIRST_DELAY_SECONDS": "5",
}
LEADS = re.compile(r"leader: process (\d+) leads")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'workers.db'}"
        return
    yield from _postgres_schema_url(request.getfixturevalue("_postgres_server"))


def wait_for(condition: Callable[[], bool], seconds: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def scrape(server: LiveServer) -> dict[str, float]:
    """Every sample of `/metrics`, by name and labels, as Prometheus would read them."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def total(samples: dict[str, float], prefix: str) -> float:
    return sum(value for key, value in samples.items() if key.startswith(prefix))


def leaders(*servers: LiveServer) -> list[int]:
    """The pids that became leader, in order, as the servers logged them."""
    return [int(pid) for server in servers for pid in LEADS.findall(server.log())]


def workers_of(server: LiveServer) -> list[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def test_a_killed_leader_is_replaced_and_metrics_combine_every_worker(url: str) -> None:
    server = LiveServer.start(url, workers=2, env=FAST_LEADER)
    try:
        wait_for(lambda: len(workers_of(server)) == 2, what="two workers")
        wait_for(lambda: len(leaders(server)) == 1, what="a leader")
        wait_for(lambda: total(scrape(server), "openautotune_leader{") == 1, what="leader gauge 1")
        first = leaders(server)[0]
        assert first in workers_of(server)
        # Fresh connections land on both workers; the scrape (answered by one) counts them all.
        for _ in range(30):
            httpx.get(server.url + "/health", timeout=10)
        counted = total(scrape(server), "openautotune_http_requests_total{method=GET,route=/health,status=200}")
        assert counted >= 30

        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(leaders(server)) == 2, what="a new leader")
        second = leaders(server)[1]
        assert second != first
        wait_for(lambda: len(workers_of(server)) == 2 and first not in workers_of(server), what="a new worker")
        # The dead worker's gauge is gone with it (the supervisor marks it dead): still exactly one leader.
        wait_for(lambda: total(scrape(server), "openautotune_leader{") == 1, what="leader gauge 1 again")
        time.sleep(1.0)
        assert len(leaders(server)) == 2, "the restarted worker did not take the lock from the living leader"
    finally:
        server.stop()


def test_two_processes_never_run_the_same_update(url: str) -> None:
    """A worker pair and a replica on one database: one scheduler round, not three."""
    # The autotune exists before the servers start, so whichever process leads updates it in its first
    # round (5 s after it takes the lock), however slowly the others start.
    setup = LiveServer.start(url, workers=1)
    try:
        with setup.console() as console:
            created = console.post("/console/v1/autotunes", json=body(name="once"))
            assert created.status_code == 201, created.text
            autotune_id = created.json()["data"]["id"]
            assert console.put(f"/console/v1/autotunes/{autotune_id}/start").status_code == 200
    finally:
        setup.stop()

    def recorded() -> int:
        with setup.db.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(updates.updates_table.c.autotune_id == autotune_id)
            return int(conn.execute(query).scalar_one())

    before = recorded()  # the set-up server's own scheduler may have had its round
    server = LiveServer.start(url, workers=2, env=FAST_LEADER)
    replica = LiveServer.start(url, workers=1, env=FAST_LEADER)
    try:
        wait_for(lambda: recorded() > before, seconds=90, what="the first scheduled update")
        time.sleep(8.0)  # without the lock, every other process's scheduler would have had its first round
        assert recorded() == before + 1
        assert len(leaders(server, replica)) == 1
    finally:
        replica.stop()
        server.stop()
        setup.db.dispose()  # `recorded` opened connections after the set-up server stopped


def test_a_change_through_one_worker_is_served_by_every_worker_within_the_refresh(url: str) -> None:
    refresh, key_cache = 1.0, 1.0
    server = LiveServer.start(
        url,
        workers=2,
        env={
            "OPENAUTOTUNE_SPECS_REFRESH_SECONDS": str(refresh),
            "OPENAUTOTUNE_KEY_CACHE_SECONDS": str(key_cache),
        },
    )
    specs_url = f"{server.url}/v1/download_config_specs/{server.server_key}.json"

    def names() -> list[set[str]]:
        # A new connection per request, so the kernel hands them to both workers.
        return [{c["name"] for c in httpx.get(specs_url, timeout=10).json()["dynamic_configs"]} for _ in range(20)]

    try:
        assert all(not served for served in names()), "every worker caches the empty specs"
        with server.console() as console:
            assert console.post("/console/v1/autotunes", json=body(name="seen")).status_code == 201
        time.sleep(refresh + 0.2)
        assert all("seen" in served for served in names())

        # A key revoked elsewhere (here: directly in the database, as `openautotune keys revoke` does)
        # stops working on every worker within `key_cache_seconds`.
        clock = SystemClock()
        spare = key_service.create_key(server.db, clock, KeyKind.SERVER)
        spare_url = f"{server.url}/v1/download_config_specs/{spare.secret}.json"
        assert all(httpx.get(spare_url, timeout=10).status_code == 200 for _ in range(20)), "cached everywhere"
        key_service.revoke_key(server.db, clock, spare.record.id)
        time.sleep(key_cache + 0.2)
        assert all(httpx.get(spare_url, timeout=10).status_code in (401, 403) for _ in range(20))
    finally:
        server.stop()


def test_batches_logged_by_every_worker_are_processed_once_by_the_leader(url: str) -> None:
    """`log` ingest under two workers: each worker appends, only the leader's processor writes rows;
    every acknowledged event is stored exactly once and `/metrics` counts it and shows the lag gone."""
    server = LiveServer.start(url, workers=2, env=FAST_LEADER, ingest_mode="log")
    try:
        wait_for(lambda: len(leaders(server)) == 1, what="a leader")
        batches, per_batch = 40, 25
        acknowledged = 0
        for number in range(batches):
            events = [
                {"eventName": "worker_click", "user": {"userID": f"w{number}-{i}"}, "time": int(time.time() * 1000)}
                for i in range(per_batch)
            ]
            # A fresh connection each time, so both workers take batches.
            response = httpx.post(
                server.url + "/v1/log_event", json={"events": events}, headers={"STATSIG-API-KEY": server.server_key}
            )
            assert response.status_code == 200, response.text
            acknowledged += per_batch

        def stored() -> list[str]:
            with server.db.read() as conn:
                query = sa.text("SELECT unit_id FROM events WHERE event_name = 'worker_click'")
                return [row[0] for row in conn.execute(query)]

        wait_for(lambda: len(stored()) >= acknowledged, what="every event processed")
        units = stored()
        assert len(units) == acknowledged and len(set(units)) == acknowledged
        wait_for(lambda: total(scrape(server), "openautotune_ingest_lag_batches{") == 0, what="no lag")
        samples = scrape(server)
        assert total(samples, "openautotune_ingest_processed_events_total{") >= acknowledged
        assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    finally:
        server.stop()
