"""Dashboard sessions held server-side: opened at sign-in, checked on every request, ended at sign-out.

A session ends when its holder signs out, when it has been idle for `idle_ms`, or `absolute_ms` after
sign-in, whichever comes first; the state is in the database, so every server process agrees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from openautotune.clock import Clock
from openautotune.service import tokens
from openautotune.store import dashboard_sessions as store
from openautotune.store.database import Database

SESSION_ID_CHARS = 43  # ~256 bits from [A-Za-z0-9]
# Recording activity is a write: do it at most once a minute per session (or a tenth of the idle
# limit when that is shorter), so browsing stays a read. Idle expiry is exact to that resolution.
MAX_TOUCH_INTERVAL_MS = 60_000


@dataclass(frozen=True)
class SessionLimits:
    idle_ms: int
    absolute_ms: int

    @classmethod
    def of(cls, idle_minutes: int, max_hours: int) -> SessionLimits:
        """From the settings; a zero or negative setting means the shortest limit (1 minute, 1 hour)."""
        return cls(idle_ms=max(1, idle_minutes) * 60_000, absolute_ms=max(1, max_hours) * 3_600_000)

    @property
    def touch_interval_ms(self) -> int:
        return min(MAX_TOUCH_INTERVAL_MS, self.idle_ms // 10)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def open_session(db: Database, clock: Clock, key_id: str, limits: SessionLimits) -> str:
    """A new session for `key_id`; returns its id (for the cookie; only its hash is stored)."""
    session_id = tokens.secret(SESSION_ID_CHARS)
    now = clock.now_ms()
    with db.write() as conn:
        # Sign-ins are rare: a good moment to forget sessions nobody can use any more.
        store.delete_expired(conn, now - limits.idle_ms, now - limits.absolute_ms)
        store.insert(conn, _hash(session_id), key_id, now)
    return session_id


def is_active(
    db: Database, clock: Clock, session_id: str, key_id: str, limits: SessionLimits, *, activity: bool = True
) -> bool:
    """Whether the session is still open for `key_id`; with `activity`, records it (see MAX_TOUCH_INTERVAL_MS).
    A page's own background polling is no activity: an open tab nobody looks at still goes idle."""
    id_hash, now = _hash(session_id), clock.now_ms()
    with db.read() as conn:
        found = store.get(conn, id_hash)
    if found is None or found.key_id != key_id:
        return False
    if now - found.last_seen_ms >= limits.idle_ms or now - found.created_ms >= limits.absolute_ms:
        close_session(db, session_id)
        return False
    if activity and now - found.last_seen_ms >= limits.touch_interval_ms:
        with db.write() as conn:
            store.touch(conn, id_hash, now)
    return True


def close_session(db: Database, session_id: str) -> None:
    """End the session (signing out): its cookie opens nothing any more, in any server process."""
    with db.write() as conn:
        store.delete(conn, _hash(session_id))
