"""The NATS JetStream path in process (docs/ingestion.md, "The queue"): the answer comes after the
stream's ack, the consumer writes rows and acks after the commit, a redelivered batch stores nothing
twice, an unreachable queue answers 503. A throwaway Debian `nats-server -js` per test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openautotune.api.app import create_app
from openautotune.clock import FixedClock
from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service
from openautotune.service.ingest.log_processor import batch_report
from openautotune.service.ingest.logged import GZIP
from openautotune.service.ingest.nats_queue import NatsConsumer
from openautotune.settings import Settings
from openautotune.store.batch_log import LoggedBatch
from openautotune.store.database import Database
from openautotune.testing import START_MS
from tests.e2e.live import free_port
from tests.e2e.nats_server import nats_server
from tests.ingest.conftest import custom_event

pytestmark = pytest.mark.e2e  # a real NATS server


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[str]:
    with nats_server(tmp_path) as url:
        yield url


def _client(sqlite_url: str, queue_url: str) -> tuple[TestClient, Database, str]:
    db = Database.from_url(sqlite_url)
    settings = Settings(database_url=sqlite_url, key_cache_seconds=0.0, queue_url=queue_url)
    app = create_app(settings, db=db, clock=FixedClock(START_MS))
    key = key_service.create_key(db, FixedClock(START_MS), KeyKind.SERVER).secret
    return TestClient(app), db, key


def _rows(db: Database) -> int:
    import sqlalchemy as sa

    from openautotune.store.ingest_tables import events_table

    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one())


def test_published_batches_are_consumed_once(sqlite_url: str, queue: str) -> None:
    client, db, key = _client(sqlite_url, queue)
    with client:
        ids = []
        for number in range(5):
            events = [custom_event("click", user={"userID": f"{number}-{i}"}, time=START_MS) for i in range(10)]
            events.append("not an event")
            response = client.post("/v1/log_event", json={"events": events}, headers={"STATSIG-API-KEY": key})
            assert response.status_code == 200
            ids.append(response.json()["batch_id"])
    assert _rows(db) == 0  # nothing consumed yet: the stream holds the batches
    consumer = NatsConsumer(db, FixedClock(START_MS + 5), queue)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while consumer.batches_processed < 5:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
    assert _rows(db) == 50
    report = batch_report(db, ids[0])
    assert report is not None and (report.accepted, report.rejected) == (10, 1)
    assert report.received_ms == START_MS and report.processed_ms == START_MS + 5
    # A redelivery (killed between commit and ack) carries a known batch id: nothing is written.
    assert consumer.write([LoggedBatch(ids[0], START_MS, GZIP, b"", 10)]) == 0
    assert _rows(db) == 50


def test_an_unreachable_queue_answers_503_and_stores_nothing(sqlite_url: str) -> None:
    client, db, key = _client(sqlite_url, f"nats://127.0.0.1:{free_port()}")
    with client:
        events = [custom_event("click", user={"userID": "a"}, time=START_MS)]
        response = client.post("/v1/log_event", json={"events": events}, headers={"STATSIG-API-KEY": key})
    assert response.status_code == 503
    assert response.json() == {"status": 503, "message": "The event queue is unavailable; retry later"}
    assert _rows(db) == 0
