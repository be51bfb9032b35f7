"""The `metric_sources` table: named SQL sources, their connection URLs sealed, and their last read.

`url_sealed` holds the full URL encrypted (store.sealed); `url_masked` the same URL with its password
replaced by `***`, which is all any answer shows. The engine writes `last_read_ms` after a good read
and `last_error*` after a failed one, in its own short transaction (the update itself rolls back).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.domain.metric_sources import MetricSource, SourceHealth
from openautotune.store import sealed
from openautotune.store.metadata import EpochMs, metadata

metric_sources_table = sa.Table(
    "metric_sources",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("url_sealed", sa.Text, nullable=False),
    sa.Column("url_masked", sa.Text, nullable=False),
    sa.Column("query", sa.Text, nullable=True),
    sa.Column("table_name", sa.String(200), nullable=True),
    sa.Column("unit_id_column", sa.String(63), nullable=False),
    sa.Column("timestamp_column", sa.String(63), nullable=False),
    sa.Column("value_column", sa.String(63), nullable=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_ms", EpochMs, nullable=False),
    sa.Column("creator_id", sa.String(64), nullable=False),
    sa.Column("creator_name", sa.String(100), nullable=False),
    sa.Column("last_read_ms", EpochMs, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_ms", EpochMs, nullable=True),
    sa.Column("last_error_autotune_id", sa.String(200), nullable=True),
)

_t = metric_sources_table.c


def _from_row(row: sa.Row[tuple[object, ...]], key: str | None) -> MetricSource:
    m = row._mapping
    return MetricSource(
        id=m["id"],
        name=m["name"],
        url=sealed.unseal(key, m["url_sealed"]) if key is not None else "",
        masked_url=m["url_masked"],
        unit_id_column=m["unit_id_column"],
        timestamp_column=m["timestamp_column"],
        query=m["query"],
        table=m["table_name"],
        value_column=m["value_column"],
        description=m["description"],
        created_ms=int(m["created_ms"]),
        creator_id=m["creator_id"],
        creator_name=m["creator_name"],
    )


def _health(row: sa.Row[tuple[object, ...]]) -> SourceHealth:
    m = row._mapping
    return SourceHealth(
        last_read_ms=m["last_read_ms"],
        last_error=m["last_error"],
        last_error_ms=m["last_error_ms"],
        last_error_autotune_id=m["last_error_autotune_id"],
    )


def insert(conn: Connection, source: MetricSource, key: str) -> None:
    """Store a new source, its URL sealed under `key` (the server's sealing secret)."""
    conn.execute(
        metric_sources_table.insert().values(
            id=source.id,
            name=source.name,
            url_sealed=sealed.seal(key, source.url),
            url_masked=source.masked_url,
            query=source.query,
            table_name=source.table,
            unit_id_column=source.unit_id_column,
            timestamp_column=source.timestamp_column,
            value_column=source.value_column,
            description=source.description,
            created_ms=source.created_ms,
            creator_id=source.creator_id,
            creator_name=source.creator_name,
        )
    )


def exists(conn: Connection, source_id: str) -> bool:
    return conn.execute(sa.select(_t.id).where(_t.id == source_id)).first() is not None


def get(conn: Connection, source_id: str, key: str | None = None) -> tuple[MetricSource, SourceHealth] | None:
    """A source and its health; its `url` is unsealed only when `key` is given (the engine's read)."""
    row = conn.execute(sa.select(metric_sources_table).where(_t.id == source_id)).first()
    return (_from_row(row, key), _health(row)) if row is not None else None


def page(conn: Connection, limit: int, offset: int) -> tuple[list[tuple[MetricSource, SourceHealth]], int]:
    total = int(conn.execute(sa.select(sa.func.count()).select_from(metric_sources_table)).scalar() or 0)
    rows = conn.execute(sa.select(metric_sources_table).order_by(_t.created_ms, _t.id).limit(limit).offset(offset))
    return [(_from_row(row, None), _health(row)) for row in rows], total


def delete(conn: Connection, source_id: str) -> bool:
    return conn.execute(metric_sources_table.delete().where(_t.id == source_id)).rowcount > 0


def record_read(conn: Connection, source_id: str, at_ms: int) -> None:
    conn.execute(metric_sources_table.update().where(_t.id == source_id).values(last_read_ms=at_ms))


def record_failure(conn: Connection, source_id: str, at_ms: int, autotune_id: str, reason: str) -> None:
    conn.execute(
        metric_sources_table.update()
        .where(_t.id == source_id)
        .values(last_error=reason, last_error_ms=at_ms, last_error_autotune_id=autotune_id)
    )
