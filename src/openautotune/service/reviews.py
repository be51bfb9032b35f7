"""Reviews: with reviews required, a Console API change waits as a pending review until a second
console key approves it (applied then, atomically) or rejects it (nothing changes).

Approval refuses (`StaleReview`, a 409) when the autotune changed after the review was opened: the
reviewer approved a change to the state they saw, so it is never applied to another one. Only what a
person changes counts: the engine's hourly allocation updates do not make a review stale.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from openautotune.clock import Clock
from openautotune.domain.autotune import Actor, Autotune
from openautotune.domain.errors import Conflict, Forbidden, NotFound
from openautotune.domain.ids import could_be_autotune_id
from openautotune.service import review_operations, tokens
from openautotune.service.autotunes import NOT_FOUND
from openautotune.store import audit
from openautotune.store import autotunes as autotune_store
from openautotune.store import reviews as review_store
from openautotune.store.database import Database
from openautotune.store.reviews import StoredReview

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
STATUSES = (PENDING, APPROVED, REJECTED)
REVIEW_NOT_FOUND = "Review not found."
OWN_CHANGE = "A change must be reviewed by a different console key than the one that proposed it."
MAX_COMMENT = 1000
__all__ = ["StoredReview", "approve", "get", "page", "reject", "submit"]


class StaleReview(Conflict):
    """The review cannot be decided as asked: already decided, or its autotune changed since (409)."""


class _InTransaction(Database):
    """The service functions open their own transactions; this one hands them an open one instead, so
    that a dry run can be rolled back and an approval commits with the change it applies."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn.engine)
        self._conn = conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        yield self._conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        yield self._conn


class _DryRun(Exception):
    pass


def fingerprint(autotune: Autotune) -> str:
    """What a person can change; not `allocation_version`, which each engine update moves."""
    state = autotune_store.autotune_to_json(autotune)
    state.pop("allocation_version", None)
    return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _locked_autotune(conn: Connection, autotune_id: str) -> Autotune | None:
    if not could_be_autotune_id(autotune_id):
        return None
    return autotune_store.get(conn, autotune_id, for_update=True)


def _audit(conn: Connection, review: StoredReview, actor: Actor, action: str, now_ms: int, detail: str) -> None:
    audit.record(
        conn,
        audit.AuditEntry(
            autotune_id=review.autotune_id,
            key_id=actor.id,
            actor_name=actor.name,
            at_ms=now_ms,
            action=action,
            detail=detail,
            before=None,
            after=None,
        ),
    )


def submit(db: Database, clock: Clock, author: Actor, operation: Mapping[str, Any]) -> StoredReview:
    """Store `operation` as a pending review. It is tried first and rolled back, so a change that
    would be refused now (bad field, wrong state, unknown id) is refused now, not at approval."""
    now = clock.now_ms()
    with db.write() as conn:
        current = _locked_autotune(conn, operation["autotuneID"])
        if current is None:
            raise NotFound(NOT_FOUND)
        try:
            with conn.begin_nested():
                review_operations.apply(_InTransaction(conn), clock, author, operation)
                raise _DryRun
        except _DryRun:
            pass
        review = StoredReview(
            id=tokens.opaque_id(),
            autotune_id=current.id,
            action=operation["action"],
            operation={**operation, "authorName": author.name},
            fingerprint=fingerprint(current),
            status=PENDING,
            author_key_id=author.id,
            created_ms=now,
            reviewer_key_id=None,
            decided_ms=None,
            comment=None,
        )
        review_store.insert(conn, review)
        _audit(conn, review, author, "review_open", now, f"review {review.id}: {review.action}, pending")
    return review


def get(db: Database, review_id: str) -> StoredReview:
    with db.read() as conn:
        review = review_store.get(conn, review_id) if len(review_id) <= 32 else None
    if review is None:
        raise NotFound(REVIEW_NOT_FOUND)
    return review


def page(db: Database, status: str | None, limit: int, page_number: int) -> tuple[list[StoredReview], int]:
    with db.read() as conn:
        return review_store.page(conn, status, limit, (page_number - 1) * limit)


def _open_for_decision(conn: Connection, review_id: str, reviewer: Actor) -> StoredReview:
    review = review_store.get(conn, review_id, for_update=True) if len(review_id) <= 32 else None
    if review is None:
        raise NotFound(REVIEW_NOT_FOUND)
    if review.status != PENDING:
        raise StaleReview(f"This review is already {review.status}.")
    if review.author_key_id == reviewer.id:
        raise Forbidden(OWN_CHANGE)
    return review


def approve(db: Database, clock: Clock, reviewer: Actor, review_id: str, comment: str | None) -> StoredReview:
    """Apply the reviewed change and close the review, in one transaction: both or neither."""
    now = clock.now_ms()
    with db.write() as conn:
        review = _open_for_decision(conn, review_id, reviewer)
        current = _locked_autotune(conn, review.autotune_id)
        if current is None or fingerprint(current) != review.fingerprint:
            raise StaleReview(
                "The autotune changed after this review was opened; reject it and submit the change again."
            )
        author = Actor(id=review.author_key_id, name=review.operation.get("authorName", "CONSOLE API"))
        review_operations.apply(_InTransaction(conn), clock, author, review.operation)
        review_store.decide(conn, review.id, APPROVED, reviewer.id, now, comment)
        detail = f"review {review.id}: {review.action} by key {review.author_key_id}, approved"
        _audit(conn, review, reviewer, "review_approve", now, detail + (f": {comment}" if comment else ""))
        return review_store.get(conn, review.id) or review


def reject(db: Database, clock: Clock, reviewer: Actor, review_id: str, comment: str | None) -> StoredReview:
    now = clock.now_ms()
    with db.write() as conn:
        review = _open_for_decision(conn, review_id, reviewer)
        review_store.decide(conn, review.id, REJECTED, reviewer.id, now, comment)
        detail = f"review {review.id}: {review.action} by key {review.author_key_id}, rejected"
        _audit(conn, review, reviewer, "review_reject", now, detail + (f": {comment}" if comment else ""))
        return review_store.get(conn, review.id) or review
