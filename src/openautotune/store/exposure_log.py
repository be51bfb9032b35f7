"""Reads of the raw exposures in the main database: the dashboard's log stream and the daily traffic.

The ClickHouse store answers the same two questions with the text of `clickhouse/exposures.py`; both
order the log stream newest first by (time sent, time received, dedup key), so the same batches give
the same rows in the same order on every store (an autoincrement id exists only in SQL).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.store.ingest_tables import exposures_table

MAX_ROWS = 500
DAY_MS = 86_400_000


@dataclass(frozen=True)
class LoggedExposure:
    time_ms: int
    received_ms: int
    unit_id: str
    variant_id: str | None
    rule_id: str
    run: int | None
    analysable: bool
    reason: str


def capped(limit: int) -> int:
    """The number of rows a log-stream read returns at most: `limit` within [0, MAX_ROWS]."""
    return max(0, min(limit, MAX_ROWS))


def recent(conn: Connection, autotune_id: str, limit: int) -> list[LoggedExposure]:
    """Newest first (by the time the client sent), at most `limit` rows (capped at MAX_ROWS)."""
    table = exposures_table
    query = (
        sa.select(
            table.c.time_ms,
            table.c.received_ms,
            table.c.unit_id,
            table.c.variant_id,
            table.c.rule_id,
            table.c.run,
            table.c.analysable,
            table.c.reason,
        )
        .where(table.c.autotune_id == autotune_id)
        .order_by(table.c.time_ms.desc(), table.c.received_ms.desc(), table.c.dedup_key.desc())
        .limit(capped(limit))
    )
    return [
        LoggedExposure(
            time_ms=int(row.time_ms),
            received_ms=int(row.received_ms),
            unit_id=row.unit_id,
            variant_id=row.variant_id,
            rule_id=row.rule_id,
            run=row.run,
            analysable=bool(row.analysable),
            reason=row.reason or "",
        )
        for row in conn.execute(query)
    ]


def daily_counts(conn: Connection, autotune_id: str, run: int) -> dict[tuple[int, str], int]:
    """Exposures of one run per (UTC day start in ms, variant id): the traffic each variant got each day."""
    table = exposures_table
    day = ((table.c.time_ms // DAY_MS) * DAY_MS).label("day")
    query = (
        sa.select(day, table.c.variant_id, sa.func.count().label("n"))
        .where(table.c.autotune_id == autotune_id, table.c.run == run, table.c.variant_id.is_not(None))
        .group_by(day, table.c.variant_id)
    )
    return {(int(row.day), str(row.variant_id)): int(row.n) for row in conn.execute(query)}
