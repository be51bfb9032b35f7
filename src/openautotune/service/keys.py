"""API keys: creation, listing, revocation and authentication."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

from openautotune.clock import Clock
from openautotune.domain.errors import NotFound, Unauthorized
from openautotune.domain.ids import CLIENT_KEY_PREFIX, CONSOLE_KEY_PREFIX, SERVER_KEY_PREFIX
from openautotune.domain.keys import KeyKind, KeyRecord
from openautotune.service import tokens
from openautotune.store import keys as key_store
from openautotune.store.database import Database

PREFIXES = {KeyKind.CONSOLE: CONSOLE_KEY_PREFIX, KeyKind.SERVER: SERVER_KEY_PREFIX, KeyKind.CLIENT: CLIENT_KEY_PREFIX}


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewKey:
    record: KeyRecord
    secret: str


def create_key(db: Database, clock: Clock, kind: KeyKind, *, read_only: bool = False, description: str = "") -> NewKey:
    raw = PREFIXES[kind] + tokens.secret()
    record = KeyRecord(
        id=tokens.opaque_id(),
        kind=kind,
        read_only=read_only,
        description=description,
        key_hash=hash_key(raw),
        hint=raw[: len(PREFIXES[kind]) + 4] + "…",
        created_ms=clock.now_ms(),
        revoked_ms=None,
    )
    with db.write() as conn:
        key_store.insert(conn, record)
    return NewKey(record=record, secret=raw)


def list_keys(db: Database) -> list[KeyRecord]:
    with db.read() as conn:
        return key_store.all_keys(conn)


def revoke_key(db: Database, clock: Clock, key_id: str) -> None:
    with db.write() as conn:
        if not key_store.revoke(conn, key_id, clock.now_ms()) and not key_store.exists(conn, key_id):
            raise NotFound(f"No key with id {key_id}")


def has_any_key(db: Database) -> bool:
    with db.read() as conn:
        return key_store.count(conn) > 0


class KeyAuthenticator:
    """Finds the active key behind a raw secret.

    Hot paths (SDK polls, event batches) authenticate every request, so answers are cached for
    a few seconds; a revocation therefore takes effect everywhere within `ttl_seconds`.
    """

    def __init__(self, db: Database, ttl_seconds: float = 5.0) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._lock = threading.Lock()

    def authenticate(self, raw_key: str | None) -> KeyRecord | None:
        if not raw_key:
            return None
        digest = hash_key(raw_key)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._ttl:
            record = cached[1]
        else:
            with self._db.read() as conn:
                record = key_store.by_hash(conn, digest)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, record)
        # The lookup is by hash; compare again in constant time so equality never leaks timing.
        if record is None or not hmac.compare_digest(record.key_hash, digest) or not record.active:
            return None
        return record

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


CONSOLE_HEADER = "STATSIG-API-KEY"


def require_console_key(authenticator: KeyAuthenticator, raw_key: str | None) -> KeyRecord:
    """The active console key behind `raw_key`, or Statsig's exact 401 (console-api.md)."""
    record = authenticator.authenticate(raw_key)
    if record is None or record.kind is not KeyKind.CONSOLE:
        raise Unauthorized(
            f"This endpoint only accepts an active CONSOLE key, but an invalid key was sent. Key: {raw_key or ''}"
        )
    return record
