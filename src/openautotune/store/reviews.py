"""Pending reviews: a Console API change stored instead of applied, until a second key decides on it.

A row holds the change as plain JSON (service/review_operations.py reads and writes that form), the
fingerprint of the autotune it was written against (an approval of a stale change is refused), and
both keys: the author's when opened, the reviewer's when approved or rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from openautotune.store.metadata import EpochMs, metadata

reviews_table = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("autotune_id", sa.String(200), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("operation", sa.JSON, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("author_key_id", sa.String(32), nullable=False),
    sa.Column("created_ms", EpochMs, nullable=False),
    sa.Column("reviewer_key_id", sa.String(32), nullable=True),
    sa.Column("decided_ms", EpochMs, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
)


@dataclass(frozen=True)
class StoredReview:
    id: str
    autotune_id: str
    action: str
    operation: dict[str, Any]
    fingerprint: str
    status: str
    author_key_id: str
    created_ms: int
    reviewer_key_id: str | None
    decided_ms: int | None
    comment: str | None


def _review(m: RowMapping) -> StoredReview:
    return StoredReview(
        id=m["id"],
        autotune_id=m["autotune_id"],
        action=m["action"],
        operation=dict(m["operation"]),
        fingerprint=m["fingerprint"],
        status=m["status"],
        author_key_id=m["author_key_id"],
        created_ms=int(m["created_ms"]),
        reviewer_key_id=m["reviewer_key_id"],
        decided_ms=int(m["decided_ms"]) if m["decided_ms"] is not None else None,
        comment=m["comment"],
    )


def insert(conn: Connection, review: StoredReview) -> None:
    conn.execute(
        reviews_table.insert().values(
            id=review.id,
            autotune_id=review.autotune_id,
            action=review.action,
            operation=review.operation,
            fingerprint=review.fingerprint,
            status=review.status,
            author_key_id=review.author_key_id,
            created_ms=review.created_ms,
            reviewer_key_id=review.reviewer_key_id,
            decided_ms=review.decided_ms,
            comment=review.comment,
        )
    )


def get(conn: Connection, review_id: str, *, for_update: bool = False) -> StoredReview | None:
    query = sa.select(reviews_table).where(reviews_table.c.id == review_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _review(row._mapping) if row is not None else None


def page(conn: Connection, status: str | None, limit: int, offset: int) -> tuple[list[StoredReview], int]:
    """Newest first; `status` None lists every review."""
    where = [reviews_table.c.status == status] if status is not None else []
    total = int(conn.execute(sa.select(sa.func.count()).select_from(reviews_table).where(*where)).scalar_one())
    query = (
        sa.select(reviews_table)
        .where(*where)
        .order_by(reviews_table.c.created_ms.desc(), reviews_table.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [_review(row._mapping) for row in conn.execute(query)], total


def decide(
    conn: Connection, review_id: str, status: str, reviewer_key_id: str, now_ms: int, comment: str | None
) -> bool:
    """Close a pending review; False when it was no longer pending (someone decided first)."""
    table = reviews_table
    result = conn.execute(
        table.update()
        .where(table.c.id == review_id, table.c.status == "pending")
        .values(status=status, reviewer_key_id=reviewer_key_id, decided_ms=now_ms, comment=comment)
    )
    return result.rowcount == 1
