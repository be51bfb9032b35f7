"""The latest exposures of an autotune as logged by SDKs (the dashboard's live log stream) and the
traffic each variant got per day (results).

Raw exposures live where ingestion wrote them: in the event store when one is set (ClickHouse,
docs/scale.md), in the main database otherwise; the reads follow the same rule.
"""

from __future__ import annotations

from openautotune.store.database import Database
from openautotune.store.event_store import EventStore
from openautotune.store.events import SqlEvents
from openautotune.store.exposure_log import DAY_MS, MAX_ROWS, LoggedExposure

__all__ = ["DAY_MS", "MAX_ROWS", "LoggedExposure", "daily_counts", "recent"]


def _store(db: Database) -> EventStore:
    return db.events if db.events is not None else SqlEvents(db)


def recent(db: Database, autotune_id: str, limit: int = 50) -> list[LoggedExposure]:
    """Newest first (by the time the client sent), at most `limit` rows (capped at MAX_ROWS)."""
    return _store(db).recent_exposures(autotune_id=autotune_id, limit=limit)


def daily_counts(db: Database, autotune_id: str, run: int) -> dict[tuple[int, str], int]:
    """Exposures of one run per (UTC day start in ms, variant id): the traffic each variant got each day."""
    return _store(db).daily_exposures(autotune_id=autotune_id, run=run)
