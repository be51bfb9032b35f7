"""Rate-limit counters in the database, so every server process on one database shares each budget.

Two shapes, for two kinds of traffic:
- `rate_limit_hits`: one row per admitted request (a sliding log). Exact: "at most N in any W
  seconds" holds for every span, not just clock-aligned ones. Used for Console API mutations, which
  are few (at most 900 rows per key for the default 15-minute budget) and each already a write.
- `rate_limit_counters`: one row per (scope, fixed window) holding a count, to which each process
  adds its requests in batches. Used for the high-volume SDK and read budgets, where a write per
  request would cost more than the request itself.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from openautotune.store.database import Database
from openautotune.store.metadata import EpochMs, metadata

hits_table = sa.Table(
    "rate_limit_hits",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(80), nullable=False),
    sa.Column("at_ms", EpochMs, nullable=False),
    sa.Index("ix_rate_limit_hits_scope_at_ms", "scope", "at_ms"),
)

counters_table = sa.Table(
    "rate_limit_counters",
    metadata,
    sa.Column("scope", sa.String(80), primary_key=True),
    sa.Column("window_start_ms", EpochMs, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)


@contextmanager
def relaxed_write(db: Database) -> Iterator[Connection]:
    """A write transaction whose commit does not wait for the disk (SQLite `synchronous=NORMAL` in WAL
    mode, PostgreSQL `synchronous_commit=off`), for counters only. A power cut may forget the last few
    counted requests, which only lets a few more through; it never corrupts anything, and every other
    commit keeps its full durability (the setting is put back before the connection is reused). A
    counted mutation then costs about a millisecond instead of a flush to disk."""
    if not db.is_sqlite:
        with db.write() as conn:
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")  # this transaction only
            yield conn
        return
    with db.engine.connect().execution_options(write=True) as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA synchronous=NORMAL")  # autocommit mode: outside any transaction
        try:
            with conn.begin():
                yield conn
        finally:
            raw.execute("PRAGMA synchronous=FULL")


def lock_scope(conn: Connection, scope: str) -> None:
    """Serialise check-then-insert per scope across processes. SQLite's write transactions (BEGIN
    IMMEDIATE) are serial already; PostgreSQL takes a transaction-scoped advisory lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(zlib.crc32(scope.encode()))))


def count_hits(conn: Connection, scope: str, since_ms: int) -> int:
    """How many of the scope's hits fall after `since_ms` (an index range scan)."""
    query = sa.select(sa.func.count()).where(hits_table.c.scope == scope, hits_table.c.at_ms > since_ms)
    return int(conn.execute(query).scalar_one())


def nth_hit(conn: Connection, scope: str, since_ms: int, n: int) -> int:
    """The time of the scope's `n`-th hit (0-based, oldest first) after `since_ms`."""
    query = (
        sa.select(hits_table.c.at_ms)
        .where(hits_table.c.scope == scope, hits_table.c.at_ms > since_ms)
        .order_by(hits_table.c.at_ms)
        .limit(1)
        .offset(n)
    )
    return int(conn.execute(query).scalar_one())


def add_hit(conn: Connection, scope: str, at_ms: int) -> None:
    conn.execute(hits_table.insert().values(scope=scope, at_ms=at_ms))


def forget_hits(conn: Connection, scope: str, before_ms: int) -> None:
    conn.execute(hits_table.delete().where(hits_table.c.scope == scope, hits_table.c.at_ms <= before_ms))


def add_to_counter(conn: Connection, scope: str, window_start_ms: int, delta: int) -> int:
    """Add `delta` to one window's count (created at `delta`) and return the new total."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(counters_table)
        .values(scope=scope, window_start_ms=window_start_ms, count=delta)
        .on_conflict_do_update(
            index_elements=[counters_table.c.scope, counters_table.c.window_start_ms],
            set_={"count": counters_table.c.count + delta},
        )
        .returning(counters_table.c.count)
    )
    return int(conn.execute(statement).scalar_one())


def forget_counters(conn: Connection, scope: str, before_ms: int) -> None:
    table = counters_table
    conn.execute(table.delete().where(table.c.scope == scope, table.c.window_start_ms < before_ms))
