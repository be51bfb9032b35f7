"""The server's own secrets: read one, creating it on first use (the same value for every process)."""

from __future__ import annotations

import sqlalchemy as sa

from openautotune.clock import Clock
from openautotune.service import tokens
from openautotune.store import server_secrets
from openautotune.store.database import Database

SESSION_SIGNING = "dashboard-session-signing"


def get_or_create(db: Database, clock: Clock, name: str) -> str:
    """The secret called `name`; the first caller creates it, everyone else reads that one."""
    with db.read() as conn:
        existing = server_secrets.get(conn, name)
    if existing is not None:
        return existing
    try:
        with db.write() as conn:
            existing = server_secrets.get(conn, name)
            if existing is not None:
                return existing
            value = tokens.secret(64)
            server_secrets.insert(conn, name, value, clock.now_ms())
            return value
    except sa.exc.IntegrityError:
        # Another process created it between our read and our insert (PostgreSQL): use theirs.
        with db.read() as conn:
            created = server_secrets.get(conn, name)
        if created is None:
            raise
        return created
