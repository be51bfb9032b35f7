"""The NATS JetStream path in process (docs/ingestion.md, "The queue"): the answer comes after the
stream's ack, the consumer writes rows and acks after the commit, a redelivered batch stores nothing
twice, an unreachable queue answers 503. A throwaway Debian `nats-server -js` per test."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from nats.errors import TimeoutError as NatsTimeout

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


class _TimingOut:
    """A pull subscription whose fetch runs out of time the way nats-py's sometimes does: with the
    plain TimeoutError (asyncio's), not its own subclass."""

    def __init__(self, error: type[Exception]) -> None:
        self.error = error

    async def fetch(self, batch: int, timeout: float) -> list[object]:
        raise self.error("no message within the fetch's time")


@pytest.mark.parametrize("error", [TimeoutError, NatsTimeout])
def test_a_fetch_that_times_out_is_an_empty_fetch_whichever_timeout_error(sqlite_url: str, error: type) -> None:
    # Letting the plain one through restarted the consumer whenever messages trickled in, and the
    # messages of the abandoned pull came back only after the 60 s ack wait.
    consumer = NatsConsumer(Database.from_url(sqlite_url), FixedClock(START_MS), "nats://unused")
    assert asyncio.run(consumer._pull(_TimingOut(error))) == []  # type: ignore[arg-type]


def test_batches_that_trickle_in_are_consumed_at_once_without_a_restart(
    sqlite_url: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The plain-TimeoutError race above showed under a loaded CPU in bench/ingest_log.py, rarely in
    # process; this checks what it broke: each batch consumed promptly, the consumer never restarted.
    client, db, key = _client(sqlite_url, queue)
    consumer = NatsConsumer(db, FixedClock(START_MS + 5), queue)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    try:
        with client:
            for number in range(12):  # slower than a fetch's 0.5 s wait, faster, and around it
                events = [custom_event("click", user={"userID": f"t{number}"}, time=START_MS)]
                assert client.post(
                    "/v1/log_event", json={"events": events}, headers={"STATSIG-API-KEY": key}
                ).is_success
                deadline = time.monotonic() + 10  # far below the 60 s ack wait of a lost pull
                while consumer.batches_processed <= number:
                    assert time.monotonic() < deadline, f"batch {number} was not consumed within 10 s"
                    time.sleep(0.02)
                time.sleep((0.1, 0.45, 0.55, 0.8)[number % 4])
    finally:
        stop.set()
        thread.join()
    assert _rows(db) == 12
    assert not [record for record in caplog.records if "consuming the queue failed" in record.getMessage()]
