"""Secrets the server generates for itself (e.g. the key that signs dashboard sessions).

Kept in the database so every server process behind one database signs and checks alike,
and a restart does not sign everyone out. Never shown by any API.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.store.metadata import EpochMs, metadata

server_secrets_table = sa.Table(
    "server_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Column("created_ms", EpochMs, nullable=False),
)


def get(conn: Connection, name: str) -> str | None:
    value = conn.execute(sa.select(server_secrets_table.c.value).where(server_secrets_table.c.name == name)).scalar()
    return str(value) if value is not None else None


def insert(conn: Connection, name: str, value: str, created_ms: int) -> None:
    conn.execute(server_secrets_table.insert().values(name=name, value=value, created_ms=created_ms))
