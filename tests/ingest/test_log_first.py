"""Log-first ingestion in process (docs/ingestion.md, "Log first"): the answer comes once the raw batch
is durable, the processor turns it into rows, bad events are reported on the batch, and processing is
idempotent and never shared between two processors. SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from openautotune.clock import FixedClock
from openautotune.engine.ingest_lag import wait_for_ingest
from openautotune.service.ingest.log_processor import LogProcessor, batch_report, unprocessed_batches
from openautotune.store.batch_log_table import ingest_batches_table
from openautotune.testing import TestApp, make_test_app
from tests.ingest.conftest import Ingest, create_autotune, custom_event, exposure


@pytest.fixture
def log_ingest(database_url: str) -> Iterator[Ingest]:
    app = make_test_app(database_url, ingest_mode="log")
    with TestClient(app.app) as client:
        yield Ingest(app, client)
    app.db.dispose()


def _processor(app: TestApp) -> LogProcessor:
    return LogProcessor(app.db, app.clock)


def _batches(app: TestApp) -> list[dict[str, object]]:
    with app.db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(ingest_batches_table))]


def test_the_answer_comes_before_the_rows_and_the_processor_writes_them(log_ingest: Ingest) -> None:
    made = create_autotune(log_ingest.app, "color")
    now = log_ingest.now
    events = [
        exposure(made.id, made.definition.variants[0].id, user={"userID": "u1"}, time=now - 10),
        custom_event("click", user={"userID": "u1"}, time=now),
    ]
    response = log_ingest.post(events, gzipped=True)
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == 2 and answer["rejected"] == [] and len(answer["batch_id"]) == 32
    assert log_ingest.counts() == (0, 0, 0)  # acknowledged means logged, not yet processed
    [logged] = _batches(log_ingest.app)
    assert logged["encoding"] == "gzip" and logged["event_count"] == 2 and logged["processed_ms"] is None
    assert gzip.decompress(logged["body"])  # type: ignore[arg-type]  # kept as received
    assert unprocessed_batches(log_ingest.app.db.engine) == (1, now)

    assert _processor(log_ingest.app).drain() == 1
    assert log_ingest.counts() == (1, 1, 1)
    assert unprocessed_batches(log_ingest.app.db.engine) == (0, None)
    [logged] = _batches(log_ingest.app)
    assert logged["body"] is None and logged["accepted"] == 2 and logged["rejected"] == 0
    [row] = log_ingest.events()
    assert row["received_ms"] == now  # the receive time, not the processing time


def test_invalid_events_are_reported_on_the_batch_and_the_valid_ones_stored(log_ingest: Ingest) -> None:
    now = log_ingest.now
    events = [
        custom_event("click", user={"userID": "a"}, time=now),
        "not an event",
        custom_event("click", user={"userID": "b"}, time=now, value="x" * 5000),
        custom_event("click", user={}, time=now),
        custom_event("buy", user={"userID": "c"}, time=now),
    ]
    answer = log_ingest.post(events).json()
    assert answer["accepted"] == 5  # logged; the checks come later
    _processor(log_ingest.app).drain()
    assert sorted(row["unit_id"] for row in log_ingest.events()) == ["a", "c"]
    report = batch_report(log_ingest.app.db, answer["batch_id"])
    assert report is not None and report.processed_ms is not None
    assert (report.accepted, report.rejected, report.ignored) == (2, 3, 0)
    assert report.problems == {
        "dropped": {
            "an event must be an object": 1,
            "value is longer than 4096 characters": 1,
            "user carries no id (userID or customIDs)": 1,
        },
        "rejected": [
            [1, "an event must be an object"],
            [2, "value is longer than 4096 characters"],
            [3, "user carries no id (userID or customIDs)"],
        ],
    }


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}, 400),
        (gzip.compress(b'{"events": [')[:-6], {"Content-Encoding": "gzip"}, 400),
        (b'{"events": {}}', {}, 400),
        (gzip.compress(b'{"events": [' + b"{}," * 9_000_000 + b"{}]"), {"Content-Encoding": "gzip"}, 413),
        (orjson.dumps({"events": [{}] * 10_001}), {}, 413),
    ],
    ids=["corrupt-gzip", "truncated-gzip", "not-a-batch", "decompressed-over-16MiB", "over-10000-events"],
)
def test_refused_bodies_store_nothing(log_ingest: Ingest, body: bytes, headers: dict[str, str], status: int) -> None:
    response = log_ingest.client.post(
        "/v1/log_event", content=body, headers={"STATSIG-API-KEY": log_ingest.app.server_key, **headers}
    )
    assert response.status_code == status
    assert set(response.json()) == {"status", "message"}
    assert _batches(log_ingest.app) == []


def test_a_batch_processed_twice_stores_its_rows_once(log_ingest: Ingest) -> None:
    made = create_autotune(log_ingest.app, "color")
    now = log_ingest.now
    variant = made.definition.variants[1].id
    events = [exposure(made.id, variant, user={"userID": f"u{i}"}, time=now - i) for i in range(20)]
    events += [
        custom_event("click", user={"userID": f"u{i}", "customIDs": {"k": f"k{i}"}}, time=now) for i in range(20)
    ]
    log_ingest.post(events)
    processor = _processor(log_ingest.app)
    processor.drain()
    stored = log_ingest.counts()
    assert stored == (20, 20, 40)
    # As if the processor had written the rows and then died before stamping the batch (it cannot:
    # both are one transaction; this is the stronger case of the rows being there already).
    with log_ingest.app.db.write() as conn:
        conn.execute(sa.update(ingest_batches_table).values(processed_ms=None))
    with log_ingest.app.db.write() as conn:
        body = gzip.compress(orjson.dumps({"events": events}))
        conn.execute(sa.update(ingest_batches_table).values(body=body, encoding="gzip"))
    assert processor.drain() == 1
    assert log_ingest.counts() == stored


def test_two_processors_never_process_the_same_batch(log_ingest: Ingest) -> None:
    now = log_ingest.now
    for number in range(60):
        events = [custom_event("click", user={"userID": f"b{number}-{i}"}, time=now) for i in range(20)]
        assert log_ingest.post(events).status_code == 200
    seen: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def work(slot: int) -> None:
        processor = LogProcessor(log_ingest.app.db, FixedClock(now), max_batches=3)
        start.wait()
        while (reports := processor.process_once()) is not None:
            seen[slot].extend(report.id for report in reports)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(seen[0]) & set(seen[1])
    assert len(seen[0]) + len(seen[1]) == 60
    assert len(log_ingest.events()) == 60 * 20


def test_the_engine_waits_for_pending_batches_then_reports_them(
    log_ingest: Ingest, caplog: pytest.LogCaptureFixture
) -> None:
    now = log_ingest.now
    log_ingest.post([custom_event("click", user={"userID": "a"}, time=now)])
    assert wait_for_ingest(log_ingest.app.db, now - 1, timeout_seconds=0.0) == 0  # logged after that as_of
    assert wait_for_ingest(log_ingest.app.db, now, timeout_seconds=0.0) == 1
    assert "1 SDK batches received before as_of" in caplog.text
    stop = threading.Event()
    thread = _processor(log_ingest.app).start(stop)
    try:
        assert wait_for_ingest(log_ingest.app.db, now, timeout_seconds=30.0) == 0
    finally:
        stop.set()
        thread.join()
