"""Retention of the batch log (docs/ingestion.md, "Retention"): processed batches older than the
setting are deleted in chunks, pending ones never, however old; the leader runs it once per
installation. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from openautotune.cli.background import background_runner
from openautotune.clock import HOUR_MS
from openautotune.service.ingest.log_processor import batch_report, unprocessed_batches
from openautotune.service.ingest.retention import BatchLogPruner, prune_processed
from openautotune.settings import Settings
from openautotune.store import batch_log
from openautotune.store.batch_log import BatchReport, LoggedBatch
from openautotune.store.batch_log_table import ingest_batches_table
from openautotune.testing import TestApp, make_test_app


@pytest.fixture
def app(database_url: str) -> Iterator[TestApp]:
    made = make_test_app(database_url, ingest_mode="log")
    yield made
    made.db.dispose()


def _report(batch_id: str, received_ms: int, processed_ms: int) -> BatchReport:
    return BatchReport(batch_id, received_ms, 1, processed_ms, 1, 0, 0, None)


def _log(app: TestApp, *, pending: dict[str, int], processed: dict[str, int], queued: dict[str, int]) -> None:
    """Pending batches received at the given times; batches processed (log) or recorded (queue) at them."""
    with app.db.write() as conn:
        appended = [LoggedBatch(i, at, "", b'{"events":[{}]}', 1) for i, at in {**pending, **processed}.items()]
        batch_log.append(conn, appended)
        batch_log.mark_processed(conn, [_report(i, at, at) for i, at in processed.items()])
        batch_log.insert_processed(conn, [_report(i, at, at) for i, at in queued.items()])


def _ids(app: TestApp) -> set[str]:
    with app.db.read() as conn:
        return set(conn.execute(sa.select(ingest_batches_table.c.id)).scalars())


def test_processed_batches_older_than_the_retention_go_pending_and_recent_ones_stay(app: TestApp) -> None:
    now = app.clock.now_ms()
    old = now - 169 * HOUR_MS
    _log(
        app,
        pending={"pending-old": now - 1000 * HOUR_MS, "pending-new": now},
        processed={"done-old": old, "done-new": now - 167 * HOUR_MS},
        queued={"queued-old": old - 1, "queued-new": now},
    )

    assert prune_processed(app.db, now, 168) == 2

    assert _ids(app) == {"pending-old", "pending-new", "done-new", "queued-new"}
    assert unprocessed_batches(app.db.engine) == (2, now - 1000 * HOUR_MS)  # never a pending batch
    assert batch_report(app.db, "done-old") is None
    kept = batch_report(app.db, "done-new")
    assert kept is not None and kept.accepted == 1  # reports stay for the retention period


def test_many_old_batches_are_deleted_in_chunks_oldest_first(app: TestApp) -> None:
    now = app.clock.now_ms()
    _log(app, pending={}, processed={f"b{n:02d}": now - (200 + n) * HOUR_MS for n in range(7)}, queued={})

    with app.db.write() as conn:  # one chunk: the oldest three
        assert batch_log.delete_processed(conn, now - 168 * HOUR_MS, 3) == 3
    assert _ids(app) == {"b00", "b01", "b02", "b03"}

    assert prune_processed(app.db, now, 168, chunk=2) == 4
    assert _ids(app) == set()


def test_a_retention_of_zero_keeps_everything(app: TestApp) -> None:
    now = app.clock.now_ms()
    _log(app, pending={}, processed={"ancient": now - 10_000 * HOUR_MS}, queued={})

    assert prune_processed(app.db, now, 0) == 0
    assert _ids(app) == {"ancient"}


def test_the_pruner_loop_deletes_at_start_and_stops(app: TestApp) -> None:
    now = app.clock.now_ms()
    _log(app, pending={"waiting": now - 500 * HOUR_MS}, processed={"old": now - 200 * HOUR_MS}, queued={})
    pruner = BatchLogPruner(app.db, app.clock, 168, interval_seconds=3600)
    pruner.start()
    deadline = time.monotonic() + 10
    while pruner.deleted < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    pruner.stop()
    assert time.monotonic() - started < 5  # stop does not wait out the interval
    assert pruner.deleted == 1 and _ids(app) == {"waiting"}


@pytest.mark.parametrize(("hours", "loops"), [(168.0, ["scheduler", "batch_retention"]), (0.0, ["scheduler"])])
def test_the_leader_runs_the_retention_once_per_installation_unless_it_is_off(
    app: TestApp, database_url: str, hours: float, loops: list[str]
) -> None:
    settings = Settings(database_url=database_url, queue_url="nats://x", ingest_log_retention_hours=hours)
    assert background_runner(app.db, settings).names == loops


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).ingest_log_retention_hours == 168.0
    assert Settings.from_env({"OPENAUTOTUNE_INGEST_LOG_RETENTION_HOURS": "0.5"}).ingest_log_retention_hours == 0.5
