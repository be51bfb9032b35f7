"""Reads and writes of the raw batch log (`ingest_batches`, see batch_log_table).

Every write is one statement for many batches, inside the caller's transaction. The processor's
claim is `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two processors take disjoint batches; on
SQLite the writing transaction holds the database's one write lock (BEGIN IMMEDIATE), which
serialises processors whole.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from openautotune.store.batch_log_table import ingest_batches_table

_T = ingest_batches_table
_c = _T.c


@dataclass(frozen=True)
class LoggedBatch:
    """A batch as appended: `body` is gzip when `encoding == "gzip"`, else the JSON text itself."""

    id: str
    received_ms: int
    encoding: str
    body: bytes
    event_count: int


@dataclass(frozen=True)
class BatchReport:
    """What processing made of a batch; `problems` = {"dropped": {reason: n}, "rejected": [[i, reason]...]}."""

    id: str
    received_ms: int
    event_count: int
    processed_ms: int | None
    accepted: int | None
    ignored: int | None
    rejected: int | None
    problems: dict[str, Any] | None


def _mark(conn: Connection) -> str:
    return "%s" if conn.dialect.name == "postgresql" else "?"


def append(conn: Connection, batches: Sequence[LoggedBatch]) -> None:
    """Append pending batches (one executemany); ids are unique, a repeated id is an error."""
    if not batches:
        return
    m = _mark(conn)
    sql = f"INSERT INTO ingest_batches (id, received_ms, encoding, body, event_count) VALUES ({m}, {m}, {m}, {m}, {m})"
    conn.exec_driver_sql(sql, [(b.id, b.received_ms, b.encoding, b.body, b.event_count) for b in batches])


def pending(conn: Connection, max_batches: int, *, lock: bool = False) -> list[LoggedBatch]:
    """The oldest pending batches; `lock` (PostgreSQL): locked for this transaction, skipping rows
    another processor holds. Without it, read them, check them, then `claim` them."""
    query = (
        sa.select(_c.id, _c.received_ms, _c.encoding, _c.body, _c.event_count)
        .where(_c.processed_ms.is_(None))
        .order_by(_c.received_ms, _c.id)
        .limit(max_batches)
    )
    if lock:
        query = query.with_for_update(skip_locked=True)
    return [
        LoggedBatch(row.id, int(row.received_ms), row.encoding, bytes(row.body or b""), int(row.event_count))
        for row in conn.execute(query)
    ]


def claim(conn: Connection, ids: Collection[str]) -> set[str]:
    """Which of `ids` are still pending, locked for this write transaction (PostgreSQL skips rows
    another processor holds; SQLite's writer holds the whole database)."""
    if not ids:
        return set()
    query = sa.select(_c.id).where(_c.id.in_(sorted(ids)), _c.processed_ms.is_(None))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return set(conn.execute(query).scalars())


def known_ids(conn: Connection, ids: Collection[str]) -> set[str]:
    """Which of `ids` the log already holds (processed or not)."""
    if not ids:
        return set()
    return set(conn.execute(sa.select(_c.id).where(_c.id.in_(sorted(ids)))).scalars())


def _problems(report: BatchReport) -> str | None:
    return None if report.problems is None else orjson.dumps(report.problems).decode()


def mark_processed(conn: Connection, reports: Sequence[BatchReport]) -> None:
    """Stamp claimed batches processed, with their reports; their bodies are dropped."""
    if not reports:
        return
    m = _mark(conn)
    sql = (
        f"UPDATE ingest_batches SET processed_ms = {m}, body = NULL, accepted = {m}, ignored = {m}, "
        f"rejected = {m}, problems = {m} WHERE id = {m}"
    )
    conn.exec_driver_sql(
        sql, [(r.processed_ms, r.accepted, r.ignored, r.rejected, _problems(r), r.id) for r in reports]
    )


def insert_processed(conn: Connection, reports: Sequence[BatchReport]) -> None:
    """Record batches processed without passing through the table (queue, sync mode): no body."""
    if not reports:
        return
    m = _mark(conn)
    sql = (
        "INSERT INTO ingest_batches (id, received_ms, encoding, body, event_count, processed_ms, accepted, ignored,"
        f" rejected, problems) VALUES ({m}, {m}, '', NULL, {m}, {m}, {m}, {m}, {m}, {m})"
    )
    conn.exec_driver_sql(
        sql,
        [
            (r.id, r.received_ms, r.event_count, r.processed_ms, r.accepted, r.ignored, r.rejected, _problems(r))
            for r in reports
        ],
    )


def delete_processed(conn: Connection, processed_before_ms: int, limit: int) -> int:
    """Delete up to `limit` of the batches processed before `processed_before_ms`, oldest first; the
    number deleted. A pending batch is never touched: its `processed_ms` is NULL, which no `<` matches.
    The range is read off `ix_ingest_batches_pending` (processed_ms first)."""
    oldest = sa.select(_c.id).where(_c.processed_ms < processed_before_ms).order_by(_c.processed_ms).limit(limit)
    return int(conn.execute(sa.delete(_T).where(_c.id.in_(oldest))).rowcount)


def unprocessed_batches(engine: Engine, received_before_ms: int | None = None) -> tuple[int, int | None]:
    """(pending batches, receive time of the oldest in epoch ms or None), optionally only those
    received before `received_before_ms`. For lag metrics, health checks and the engine's update."""
    query = sa.select(sa.func.count(), sa.func.min(_c.received_ms)).where(_c.processed_ms.is_(None))
    if received_before_ms is not None:
        query = query.where(_c.received_ms < received_before_ms)
    with engine.connect() as conn:
        count, oldest = conn.execute(query).one()
    return int(count), None if oldest is None else int(oldest)


def report(conn: Connection, batch_id: str) -> BatchReport | None:
    row = conn.execute(
        sa.select(
            _c.id,
            _c.received_ms,
            _c.event_count,
            _c.processed_ms,
            _c.accepted,
            _c.ignored,
            _c.rejected,
            _c.problems,
        ).where(_c.id == batch_id)
    ).one_or_none()
    if row is None:
        return None
    return BatchReport(
        id=row.id,
        received_ms=int(row.received_ms),
        event_count=int(row.event_count),
        processed_ms=row.processed_ms,
        accepted=row.accepted,
        ignored=row.ignored,
        rejected=row.rejected,
        problems=row.problems,
    )
