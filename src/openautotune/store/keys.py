"""API keys: stored only as SHA-256 hashes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.domain.keys import KeyKind, KeyRecord
from openautotune.store.metadata import EpochMs, metadata

keys_table = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("read_only", sa.Boolean, nullable=False, default=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(32), nullable=False),
    sa.Column("created_ms", EpochMs, nullable=False),
    sa.Column("revoked_ms", EpochMs, nullable=True),
)


def _record(row: sa.Row[tuple[object, ...]]) -> KeyRecord:
    m = row._mapping
    return KeyRecord(
        id=m["id"],
        kind=KeyKind(m["kind"]),
        read_only=bool(m["read_only"]),
        description=m["description"],
        key_hash=m["key_hash"],
        hint=m["hint"],
        created_ms=m["created_ms"],
        revoked_ms=m["revoked_ms"],
    )


def insert(conn: Connection, record: KeyRecord) -> None:
    conn.execute(
        keys_table.insert().values(
            id=record.id,
            kind=record.kind.value,
            read_only=record.read_only,
            description=record.description,
            key_hash=record.key_hash,
            hint=record.hint,
            created_ms=record.created_ms,
            revoked_ms=record.revoked_ms,
        )
    )


def by_hash(conn: Connection, key_hash: str) -> KeyRecord | None:
    row = conn.execute(sa.select(keys_table).where(keys_table.c.key_hash == key_hash)).first()
    return _record(row) if row is not None else None


def all_keys(conn: Connection) -> list[KeyRecord]:
    rows = conn.execute(sa.select(keys_table).order_by(keys_table.c.created_ms, keys_table.c.id))
    return [_record(row) for row in rows]


def count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(keys_table)).scalar_one())


def revoke(conn: Connection, key_id: str, now_ms: int) -> bool:
    result = conn.execute(
        keys_table.update()
        .where(keys_table.c.id == key_id, keys_table.c.revoked_ms.is_(None))
        .values(revoked_ms=now_ms)
    )
    return result.rowcount > 0


def exists(conn: Connection, key_id: str) -> bool:
    return conn.execute(sa.select(keys_table.c.id).where(keys_table.c.id == key_id)).first() is not None


__all__ = ["KeyKind", "KeyRecord", "all_keys", "by_hash", "count", "exists", "insert", "keys_table", "revoke"]
