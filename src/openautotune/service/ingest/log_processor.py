"""The log's two ends as use cases: append batches (the request path), and process them (the processor).

- `append_batches(db, batches)`: one transaction for any number of batches; when it returns they
  are durable (SQLite WAL with synchronous=FULL, PostgreSQL's commit) and may be acknowledged.
- `process_now(db, cache, batch, events, now)`: sync mode, the batch and its rows in one transaction.
- `LogProcessor(db, clock).process_once()`: take the oldest pending batches, check them, and in ONE
  transaction write their rows and stamp them processed (SQLite with a separate event store: the
  event store's idempotent write first, then claim and stamp); `run(stop)` loops until
  `stop` is set. A kill at any point leaves each batch either pending (its rows not written, or written and harmlessly
  rewritten by the next attempt: every row is insert-unless-present) or processed with its rows.
- `unprocessed_batches(engine)`: (pending batches, oldest receive time), for lag metrics and health.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy.engine import Connection, Engine

from openautotune.clock import Clock
from openautotune.service.ingest.batch import BatchResult, FactsCache
from openautotune.service.ingest.processor import (
    CheckedBatches,
    check_batches,
    process_into,
    reports_of,
    store_in_event_store,
    write_checked,
)
from openautotune.store import batch_log
from openautotune.store.batch_log import BatchReport, LoggedBatch
from openautotune.store.database import Database
from openautotune.store.leader_lock import leader_lock

log = logging.getLogger("openautotune.ingest")

MAX_BATCHES_PER_TRANSACTION = 20  # 10,000 events of 500-event batches: thousands of rows per commit
IDLE_SECONDS = 0.2
ERROR_BACKOFF_SECONDS = 2.0
TURN_POLL_SECONDS = 0.01  # how often a processor waiting for the event-store turn tries again


def append_batches(db: Database, batches: Sequence[LoggedBatch]) -> None:
    with db.write() as conn:
        batch_log.append(conn, batches)


def process_now(db: Database, cache: FactsCache, batch: LoggedBatch, events: Sequence[Any], now_ms: int) -> BatchResult:
    """Sync mode: record the batch as processed and write its rows in one transaction."""
    with db.write() as conn:
        [(report, result)] = process_into(conn, cache, [batch], now_ms, decoded=[events], events=db.events)
        batch_log.insert_processed(conn, [report])
    return result


def unprocessed_batches(engine: Engine, received_before_ms: int | None = None) -> tuple[int, int | None]:
    """(pending batches, receive time of the oldest in epoch ms or None)."""
    return batch_log.unprocessed_batches(engine, received_before_ms)


def ingest_lag(db: Database, clock: Clock) -> tuple[int, float]:
    """(pending batches, seconds the oldest has waited): what `/metrics` and `/health` report."""
    count, oldest_ms = unprocessed_batches(db.engine)
    return count, 0.0 if oldest_ms is None else max(0.0, (clock.now_ms() - oldest_ms) / 1000.0)


def batch_report(db: Database, batch_id: str) -> BatchReport | None:
    with db.read() as conn:
        return batch_log.report(conn, batch_id)


class LogProcessor:
    """Turns pending logged batches into rows. Any number may run against one database."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        max_batches: int = MAX_BATCHES_PER_TRANSACTION,
        idle_seconds: float = IDLE_SECONDS,
        cache: FactsCache | None = None,
        on_processed: Callable[[int, int], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._max_batches = max_batches
        self._idle = idle_seconds
        self._cache = cache or FactsCache()
        self._wake = threading.Event()
        self.batches_processed = 0
        self.events_processed = 0
        # Told (batches, events) after each commit: `/metrics`' throughput counters.
        self._on_processed = on_processed

    def wake(self) -> None:
        """New batches were appended in this process: do not wait out the idle pause."""
        self._wake.set()

    def process_once(self) -> list[BatchReport] | None:
        """Up to `max_batches` of the oldest pending batches; None when none is pending."""
        if self._db.is_sqlite:
            return self._committed(self._process_sqlite())
        with self._db.write() as conn:
            # PostgreSQL: lock the batches first (SKIP LOCKED), so concurrent processors check and
            # write disjoint batches in parallel; other writers are not held up by these row locks.
            batches = batch_log.pending(conn, self._max_batches, lock=True)
            if not batches:
                return None
            reports = self._write(conn, check_batches(batches))
        return self._committed(reports)

    def _process_sqlite(self) -> list[BatchReport] | None:
        """SQLite has ONE write lock, which the request path appends under: read and check outside
        any transaction (the CPU-heavy part), then claim what is still pending and write it. A batch
        another processor took meanwhile is left out ([] when all were).

        With a separate event store (ClickHouse) its write, tens of milliseconds, runs before the
        write lock too (inside it the appends waited for it: acknowledged events/s at 0.8x SQLite's),
        and the write transaction only claims and stamps. That write is idempotent, so a kill before
        the stamp stores nothing twice on the retry."""
        events = self._db.events
        with self._event_store_turn() if events is not None else nullcontext():
            with self._db.read() as conn:
                batches = batch_log.pending(conn, self._max_batches)
            if not batches:
                return None
            checked = check_batches(batches)
            if events is not None:
                with self._db.read() as conn:
                    store_in_event_store(conn, self._cache, checked, events)
            with self._db.write() as conn:
                claimed = batch_log.claim(conn, checked.ids)
                if not claimed:
                    return []
                if events is None:
                    return self._write(conn, checked.only(claimed))
                reports = reports_of(checked.only(claimed), self._clock.now_ms())
                return self._stamp(conn, [report for report, _ in reports])

    @contextmanager
    def _event_store_turn(self) -> Iterator[None]:
        """One processor at a time, among every process on this SQLite database (a `flock` next to the
        file), reads, checks and writes the event store: outside SQLite's write lock nothing else
        keeps two processors from writing the same pending batches at once, and ClickHouse's
        check-then-insert would then store a unit twice."""
        turn = leader_lock(self._db.engine, "event-store-writer")
        while not turn.try_acquire():
            time.sleep(TURN_POLL_SECONDS)
        try:
            yield
        finally:
            turn.release()

    def _write(self, conn: Connection, checked: CheckedBatches) -> list[BatchReport]:
        results = write_checked(conn, self._cache, checked, self._clock.now_ms(), events=self._db.events)
        return self._stamp(conn, [report for report, _ in results])

    def _stamp(self, conn: Connection, reports: list[BatchReport]) -> list[BatchReport]:
        batch_log.mark_processed(conn, reports)
        self.batches_processed += len(reports)
        self.events_processed += sum(report.event_count for report in reports)
        return reports

    def _committed(self, reports: list[BatchReport] | None) -> list[BatchReport] | None:
        if reports and self._on_processed is not None:
            self._on_processed(len(reports), sum(report.event_count for report in reports))
        return reports

    def drain(self) -> int:
        """Process until nothing is pending; the number of batches processed."""
        total = 0
        while (reports := self.process_once()) is not None:
            total += len(reports)
        return total

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set: process while there is work, else wait a moment (or a wake)."""
        while not stop.is_set():
            try:
                done = self.process_once()
            except Exception:  # the database went away, a deadlock...: the batches stay pending
                log.exception("processing logged batches failed; retrying")
                stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            if done is None:
                self._wake.wait(self._idle)
                self._wake.clear()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="openautotune-processor", daemon=True)
        thread.start()
        return thread
