"""Signed-in dashboard sessions, kept server-side so that signing out (or idling) ends them everywhere.

The cookie names a session by a random id; only the id's SHA-256 is stored here, so reading this
table does not let anyone sign in. Every server process behind one database sees the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.store.metadata import EpochMs, metadata

dashboard_sessions_table = sa.Table(
    "dashboard_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("created_ms", EpochMs, nullable=False),
    sa.Column("last_seen_ms", EpochMs, nullable=False, index=True),
)


@dataclass(frozen=True)
class StoredSession:
    key_id: str
    created_ms: int
    last_seen_ms: int


def insert(conn: Connection, id_hash: str, key_id: str, now_ms: int) -> None:
    conn.execute(
        dashboard_sessions_table.insert().values(id_hash=id_hash, key_id=key_id, created_ms=now_ms, last_seen_ms=now_ms)
    )


def get(conn: Connection, id_hash: str) -> StoredSession | None:
    table = dashboard_sessions_table
    row = conn.execute(
        sa.select(table.c.key_id, table.c.created_ms, table.c.last_seen_ms).where(table.c.id_hash == id_hash)
    ).first()
    return StoredSession(str(row.key_id), int(row.created_ms), int(row.last_seen_ms)) if row is not None else None


def touch(conn: Connection, id_hash: str, now_ms: int) -> None:
    table = dashboard_sessions_table
    conn.execute(
        table.update().where(table.c.id_hash == id_hash, table.c.last_seen_ms < now_ms).values(last_seen_ms=now_ms)
    )


def delete(conn: Connection, id_hash: str) -> None:
    conn.execute(dashboard_sessions_table.delete().where(dashboard_sessions_table.c.id_hash == id_hash))


def delete_expired(conn: Connection, seen_before_ms: int, created_before_ms: int) -> int:
    """Forget sessions idle since `seen_before_ms` or opened before `created_before_ms`."""
    table = dashboard_sessions_table
    result = conn.execute(
        table.delete().where(sa.or_(table.c.last_seen_ms < seen_before_ms, table.c.created_ms < created_before_ms))
    )
    return result.rowcount
