"""Signed cookie sessions for the dashboard.

A session is a small JSON payload (the console key's id, whether it is read-only, a CSRF token,
when it was issued, and once signed in the id of its server-side record) followed by an HMAC-SHA256
of it under the server's signing secret (kept in the database). The key itself is never stored, only
its id. A signed-in cookie is honoured only while its server-side record is open
(service/dashboard_sessions.py): signing out or idling ends it even if someone kept a copy.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

COOKIE_NAME = "oat_session"
SESSION_TTL_MS = 12 * 3600 * 1000  # the default; `session_max_hours` sets it (Settings)
MAX_COOKIE_CHARS = 4096
CLOCK_SKEW_MS = 60_000  # several server processes: tolerate a little clock disagreement


@dataclass(frozen=True)
class Session:
    csrf: str
    issued_ms: int
    key_id: str | None = None
    read_only: bool = True
    session_id: str | None = None  # the server-side record of a signed-in session

    @property
    def signed_in(self) -> bool:
        return self.key_id is not None


def new_anonymous(now_ms: int) -> Session:
    """A session before sign-in: it only carries the CSRF token the sign-in form must echo."""
    return Session(csrf=secrets.token_urlsafe(24), issued_ms=now_ms)


def signed_in(key_id: str, read_only: bool, now_ms: int, session_id: str | None = None) -> Session:
    """A fresh session (and a fresh CSRF token) for a key that just proved itself."""
    return Session(
        csrf=secrets.token_urlsafe(24), issued_ms=now_ms, key_id=key_id, read_only=read_only, session_id=session_id
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def encode(session: Session, secret: bytes) -> str:
    payload = _b64(
        orjson.dumps(
            {
                "c": session.csrf,
                "i": session.issued_ms,
                "k": session.key_id,
                "r": session.read_only,
                "s": session.session_id,
            }
        )
    )
    return f"{payload}.{_mac(secret, payload)}"


def decode(cookie: str | None, secret: bytes, now_ms: int, ttl_ms: int = SESSION_TTL_MS) -> Session | None:
    """The session in `cookie`, or None when it is missing, tampered with, malformed or expired."""
    if not cookie or len(cookie) > MAX_COOKIE_CHARS or cookie.count(".") != 1:
        return None
    payload, mac = cookie.split(".")
    try:
        if not hmac.compare_digest(_mac(secret, payload), mac):
            return None
        data = orjson.loads(_unb64(payload))
    except (ValueError, UnicodeError, binascii.Error, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    csrf, issued, key_id, read_only = data.get("c"), data.get("i"), data.get("k"), data.get("r")
    if not isinstance(csrf, str) or not isinstance(issued, int) or not isinstance(read_only, bool):
        return None
    if key_id is not None and not isinstance(key_id, str):
        return None
    session_id = data.get("s")
    if session_id is not None and not isinstance(session_id, str):
        return None
    if now_ms + CLOCK_SKEW_MS < issued or now_ms >= issued + ttl_ms:
        return None
    return Session(csrf=csrf, issued_ms=issued, key_id=key_id, read_only=read_only, session_id=session_id)


def csrf_matches(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf.encode(), (submitted or "").encode())
