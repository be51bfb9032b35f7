"""The audit log: every mutation, who made it, when, and the state before and after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Actor, Autotune
from openautotune.store.autotunes import autotune_to_json
from openautotune.store.metadata import EpochMs, metadata

audit_table = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("autotune_id", sa.String(200), nullable=False, index=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("actor_name", sa.String(100), nullable=False),
    sa.Column("at_ms", EpochMs, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("before", sa.JSON, nullable=True),
    sa.Column("after", sa.JSON, nullable=True),
)


@dataclass(frozen=True)
class AuditEntry:
    autotune_id: str
    key_id: str
    actor_name: str
    at_ms: int
    action: str
    detail: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record(conn: Connection, entry: AuditEntry) -> None:
    conn.execute(
        audit_table.insert().values(
            autotune_id=entry.autotune_id,
            key_id=entry.key_id,
            actor_name=entry.actor_name,
            at_ms=entry.at_ms,
            action=entry.action,
            detail=entry.detail,
            before=entry.before,
            after=entry.after,
        )
    )


def record_change(
    conn: Connection,
    action: str,
    actor: Actor,
    at_ms: int,
    before: Autotune | None,
    after: Autotune | None,
    detail: str = "",
) -> None:
    """Audit one change of an autotune with full snapshots before and after (None: created/deleted)."""
    subject = after or before
    if subject is None:
        raise ValueError("an audited change needs a state before or after it")
    record(
        conn,
        AuditEntry(
            autotune_id=subject.id,
            key_id=actor.id,
            actor_name=actor.name,
            at_ms=at_ms,
            action=action,
            detail=detail,
            before=autotune_to_json(before) if before else None,
            after=autotune_to_json(after) if after else None,
        ),
    )


def history(conn: Connection, autotune_id: str, limit: int = 100) -> list[AuditEntry]:
    query = (
        sa.select(audit_table)
        .where(audit_table.c.autotune_id == autotune_id)
        .order_by(audit_table.c.id.desc())
        .limit(limit)
    )
    return [
        AuditEntry(
            autotune_id=m["autotune_id"],
            key_id=m["key_id"],
            actor_name=m["actor_name"],
            at_ms=m["at_ms"],
            action=m["action"],
            detail=m["detail"],
            before=m["before"],
            after=m["after"],
        )
        for m in (row._mapping for row in conn.execute(query))
    ]
