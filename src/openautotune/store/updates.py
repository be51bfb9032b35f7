"""What the engine keeps between updates: cumulative aggregates, update records, and update locks.

Rows are keyed by the autotune's id AND its creation time (`incarnation_ms`): an autotune deleted
and created again under the same name (so the same id) starts from nothing.

- `engine_aggregates`: per (autotune, run, variant, period) sums, to which every update adds the
  sums of the units that matured since the previous one; so an update never reads old units again.
- `engine_updates`: one record per update (its `as_of`, stage, decision, and the JSON `record` with
  the aggregates read, posterior parameters, PoB, weights, thresholds and diagnostics), from which
  the decision can be recomputed.
- `engine_locks`: one row per autotune, taken with one atomic UPDATE that succeeds only when the
  previous holder's lease expired (or released it), so two processes never update one autotune at
  once on SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from openautotune.store.attribution import Aggregate
from openautotune.store.metadata import EpochMs, metadata

_BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")

aggregates_table = sa.Table(
    "engine_aggregates",
    metadata,
    sa.Column("autotune_id", sa.String(200), primary_key=True),
    sa.Column("incarnation_ms", EpochMs, primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True),
    sa.Column("variant_id", sa.String(64), primary_key=True),
    sa.Column("period", sa.Integer, primary_key=True),
    sa.Column("units", sa.BigInteger, nullable=False),
    sa.Column("successes", sa.BigInteger, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("total_sq", sa.Float, nullable=False),
    sa.Column("rejected", sa.BigInteger, nullable=False),
)

updates_table = sa.Table(
    "engine_updates",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("autotune_id", sa.String(200), nullable=False),
    sa.Column("incarnation_ms", EpochMs, nullable=False),
    sa.Column("run", sa.Integer, nullable=False),
    sa.Column("as_of_ms", EpochMs, nullable=False),
    sa.Column("computed_ms", EpochMs, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("decision", sa.String(32), nullable=True),
    sa.Column("allocation_version", sa.Integer, nullable=True),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Index("ix_engine_updates_autotune_as_of", "autotune_id", "as_of_ms"),
)

locks_table = sa.Table(
    "engine_locks",
    metadata,
    sa.Column("autotune_id", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("expires_ms", EpochMs, nullable=False),
)


@dataclass(frozen=True)
class UpdateRecord:
    autotune_id: str
    incarnation_ms: int
    run: int
    as_of_ms: int
    computed_ms: int
    stage: str
    decision: str | None
    allocation_version: int | None
    record: dict[str, Any]


# --- cumulative aggregates -------------------------------------------------------------------


@dataclass(frozen=True)
class RunKey:
    """One run of one incarnation of an autotune."""

    autotune_id: str
    incarnation_ms: int
    run: int


_ADD_TO_CUMULATIVE = """
INSERT INTO engine_aggregates
    (autotune_id, incarnation_ms, run, variant_id, period, units, successes, total, total_sq, rejected)
VALUES (:autotune_id, :incarnation_ms, :run, :variant_id, :period, :units, :successes, :total, :total_sq, :rejected)
ON CONFLICT (autotune_id, incarnation_ms, run, variant_id, period) DO UPDATE SET
    units = engine_aggregates.units + excluded.units,
    successes = engine_aggregates.successes + excluded.successes,
    total = engine_aggregates.total + excluded.total,
    total_sq = engine_aggregates.total_sq + excluded.total_sq,
    rejected = engine_aggregates.rejected + excluded.rejected
"""


def add_to_cumulative(conn: Connection, key: RunKey, new: Iterable[Aggregate]) -> None:
    """Add one update's newly matured sums to the running totals (inside the update's transaction).

    One upsert (same text on SQLite and PostgreSQL) per (variant, period) row, sent as one executemany.
    """
    rows = [
        {
            "autotune_id": key.autotune_id,
            "incarnation_ms": key.incarnation_ms,
            "run": key.run,
            "variant_id": item.variant_id,
            "period": item.period,
            "units": item.units,
            "successes": item.successes,
            "total": item.total,
            "total_sq": item.total_sq,
            "rejected": item.rejected,
        }
        for item in new
    ]
    if rows:
        conn.execute(sa.text(_ADD_TO_CUMULATIVE), rows)


def cumulative(conn: Connection, key: RunKey) -> list[Aggregate]:
    t = aggregates_table.c
    where = (t.autotune_id == key.autotune_id, t.incarnation_ms == key.incarnation_ms, t.run == key.run)
    query = sa.select(aggregates_table).where(*where).order_by(t.variant_id, t.period)
    return [
        Aggregate(
            variant_id=m["variant_id"],
            period=int(m["period"]),
            units=int(m["units"]),
            successes=int(m["successes"]),
            total=float(m["total"]),
            total_sq=float(m["total_sq"]),
            rejected=int(m["rejected"]),
        )
        for m in (row._mapping for row in conn.execute(query))
    ]


# --- update records --------------------------------------------------------------------------


def insert_record(conn: Connection, record: UpdateRecord) -> None:
    conn.execute(
        updates_table.insert().values(
            autotune_id=record.autotune_id,
            incarnation_ms=record.incarnation_ms,
            run=record.run,
            as_of_ms=record.as_of_ms,
            computed_ms=record.computed_ms,
            stage=record.stage,
            decision=record.decision,
            allocation_version=record.allocation_version,
            record=record.record,
        )
    )


def record_from_row(row: sa.Row[tuple[object, ...]]) -> UpdateRecord:
    """An update record from any query that selects the whole `engine_updates` row."""
    m = row._mapping
    return UpdateRecord(
        autotune_id=m["autotune_id"],
        incarnation_ms=int(m["incarnation_ms"]),
        run=int(m["run"]),
        as_of_ms=int(m["as_of_ms"]),
        computed_ms=int(m["computed_ms"]),
        stage=m["stage"],
        decision=m["decision"],
        allocation_version=m["allocation_version"],
        record=m["record"],
    )


def _of(autotune_id: str, incarnation_ms: int, run: int | None) -> list[sa.ColumnElement[bool]]:
    t = updates_table.c
    where = [t.autotune_id == autotune_id, t.incarnation_ms == incarnation_ms]
    if run is not None:
        where.append(t.run == run)
    return where


def latest_record(
    conn: Connection, autotune_id: str, incarnation_ms: int, run: int | None = None
) -> UpdateRecord | None:
    """The update with the greatest `as_of` (of one run when `run` is given)."""
    t = updates_table.c
    query = sa.select(updates_table).where(*_of(autotune_id, incarnation_ms, run))
    row = conn.execute(query.order_by(t.as_of_ms.desc(), t.id.desc()).limit(1)).first()
    return record_from_row(row) if row is not None else None


def last_as_of(conn: Connection, autotune_id: str, incarnation_ms: int, run: int | None = None) -> int | None:
    query = sa.select(sa.func.max(updates_table.c.as_of_ms)).where(*_of(autotune_id, incarnation_ms, run))
    value = conn.execute(query).scalar()
    return int(value) if value is not None else None


def records(
    conn: Connection, autotune_id: str, incarnation_ms: int, run: int | None = None, limit: int = 10_000
) -> list[UpdateRecord]:
    """Update records in `as_of` order (the history behind charts and audits)."""
    t = updates_table.c
    query = sa.select(updates_table).where(*_of(autotune_id, incarnation_ms, run))
    return [record_from_row(row) for row in conn.execute(query.order_by(t.as_of_ms, t.id).limit(limit))]


def delete_autotune(conn: Connection, autotune_id: str) -> None:
    """Forget everything the engine kept about an autotune (when the autotune is deleted)."""
    for table in (aggregates_table, updates_table, locks_table):
        conn.execute(table.delete().where(table.c.autotune_id == autotune_id))


# --- locks -----------------------------------------------------------------------------------


def try_lock(conn: Connection, autotune_id: str, owner: str, now_ms: int, lease_ms: int) -> bool:
    """Take the autotune's update lock for `lease_ms`; False when another owner holds a live lease.

    Call it in its own short transaction and commit before the update's work starts. The UPDATE is
    atomic on both databases: of two processes racing for an expired lease exactly one changes the
    row (PostgreSQL re-checks the WHERE clause after the row lock; SQLite serialises writers).
    """
    t = locks_table.c
    taken = conn.execute(
        locks_table.update()
        .where(t.autotune_id == autotune_id, sa.or_(t.expires_ms <= now_ms, t.owner == owner))
        .values(owner=owner, expires_ms=now_ms + lease_ms)
    ).rowcount
    if taken == 1:
        return True
    exists = conn.execute(sa.select(t.autotune_id).where(t.autotune_id == autotune_id)).first()
    if exists is not None:
        return False
    try:
        with conn.begin_nested():
            row = {"autotune_id": autotune_id, "owner": owner, "expires_ms": now_ms + lease_ms}
            conn.execute(locks_table.insert().values(**row))
    except IntegrityError:
        return False  # another process created the row (and so holds the lock) first
    return True


def unlock(conn: Connection, autotune_id: str, owner: str) -> None:
    t = locks_table.c
    conn.execute(locks_table.update().where(t.autotune_id == autotune_id, t.owner == owner).values(expires_ms=0))


def lock_holder(conn: Connection, autotune_id: str, now_ms: int) -> str | None:
    t = locks_table.c
    row = conn.execute(sa.select(t.owner, t.expires_ms).where(t.autotune_id == autotune_id)).first()
    if row is None or int(row.expires_ms) <= now_ms:
        return None
    return str(row.owner)
