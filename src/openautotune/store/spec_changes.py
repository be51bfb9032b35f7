"""One row that says when anything SDKs see last changed.

Every server process compares it with the time of the specs it has cached, so a change made
through one process reaches SDKs polling any other within seconds. Its value is also the
specs' `time`, which must only grow.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.store.metadata import EpochMs, metadata

spec_changes_table = sa.Table(
    "spec_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("changed_ms", EpochMs, nullable=False),
)


def bump(conn: Connection, now_ms: int) -> int:
    """Mark the specs changed; returns the new change time, strictly after the previous one.

    One atomic UPDATE, so two processes bumping at once still produce two distinct times.
    The row itself is created by the first migration.
    """
    column = spec_changes_table.c.changed_ms
    conn.execute(
        spec_changes_table.update()
        .where(spec_changes_table.c.id == 1)
        .values(changed_ms=sa.case((column + 1 > now_ms, column + 1), else_=now_ms))
    )
    return last_change(conn)


def last_change(conn: Connection) -> int:
    value = conn.execute(sa.select(spec_changes_table.c.changed_ms).where(spec_changes_table.c.id == 1)).scalar()
    return int(value) if value is not None else 0
