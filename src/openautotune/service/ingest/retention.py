"""Retention of the batch log: processed batches older than a setting are deleted (docs/ingestion.md).

A processed batch's row is its report (`accepted`, `ignored`, `rejected`, `problems`; the body was
dropped when it was processed) and, for queued batches, the guard against a redelivered message being
written twice. Both are needed for minutes, not forever: after `retention_hours` the rows go.

`BatchLogPruner` is a background loop `serve` runs under the leader lock (once per installation,
whatever `--workers`): every `interval_seconds` it deletes processed batches older than the retention
in chunks of `chunk` rows, one short transaction each, so appends (which share SQLite's one write lock)
wait at most one chunk. Pending batches are never deleted, however old.
"""

from __future__ import annotations

import logging
import threading

from openautotune.clock import Clock
from openautotune.store import batch_log
from openautotune.store.database import Database

log = logging.getLogger("openautotune.ingest")

CHUNK = 1000
INTERVAL_SECONDS = 300.0
PAUSE_SECONDS = 0.05  # between chunks: other writers get the lock in between
ERROR_BACKOFF_SECONDS = 30.0
HOUR_MS = 3_600_000


def prune_processed(
    db: Database, now_ms: int, retention_hours: float, *, chunk: int = CHUNK, pause: threading.Event | None = None
) -> int:
    """Delete the batches processed more than `retention_hours` before `now_ms`, `chunk` rows per
    transaction until none is left; the number deleted. `pause` (set = stop) is waited on between chunks."""
    if retention_hours <= 0:
        return 0
    cutoff_ms = now_ms - int(retention_hours * HOUR_MS)
    total = 0
    while True:
        with db.write() as conn:
            deleted = batch_log.delete_processed(conn, cutoff_ms, chunk)
        total += deleted
        if deleted < chunk or (pause is not None and pause.wait(PAUSE_SECONDS)):
            return total


class BatchLogPruner:
    """The retention as a leader loop: `start` runs it in a daemon thread until `stop`."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        retention_hours: float,
        *,
        interval_seconds: float = INTERVAL_SECONDS,
        chunk: int = CHUNK,
    ) -> None:
        self._db = db
        self._clock = clock
        self._retention_hours = retention_hours
        self._interval = interval_seconds
        self._chunk = chunk
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.deleted = 0

    def prune_once(self) -> int:
        deleted = prune_processed(
            self._db, self._clock.now_ms(), self._retention_hours, chunk=self._chunk, pause=self._stop
        )
        self.deleted += deleted
        if deleted:
            log.info("Deleted %d processed event batches older than %s hours", deleted, self._retention_hours)
        return deleted

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.prune_once()
            except Exception:  # the database went away: nothing is lost, try again later
                log.exception("deleting old processed event batches failed; retrying")
                self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            self._stop.wait(self._interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="openautotune-batch-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
