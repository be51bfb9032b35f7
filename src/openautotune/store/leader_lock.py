"""A named lock that at most one process holds at a time among every process using one database.

`serve` elects the process that runs its background loops (the scheduler, later the processor) with it:

- PostgreSQL: a session-level advisory lock, taken on a connection kept open for as long as the lock
  is held. The server frees it the moment that session ends, and a killed process's socket is closed
  by its kernel, so another process can take over at its next try. The key is derived from the name
  and the current schema: two installations in two schemas of one database do not exclude each other.
- SQLite (a file): an exclusive `flock` on a file next to the database file (`<db>-<name>.lock`). The
  kernel frees it when the holding process ends, however it ends, with no lease to wait out. A SQLite
  database is only shared by processes on one machine, which is exactly where `flock` works.
- SQLite in memory: one process can reach it at all, so a lock within the process.

None of these needs a clock: a paused leader keeps the lock, which is safe because every engine update
also takes its autotune's own lock, so even two runners could never run the same update at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from openautotune.store.write_gate import sqlite_file

log = logging.getLogger("openautotune.leader")


class LeaderLock(Protocol):
    """Non-blocking: a runner tries now and then, and checks now and then that it still holds it."""

    name: str

    def try_acquire(self) -> bool:
        """Take the lock if it is free (True), or say that another process holds it (False)."""
        ...

    def still_held(self) -> bool:
        """Whether the lock is still ours (a lost database connection loses it)."""
        ...

    def release(self) -> None:
        """Give the lock up; harmless when not held."""
        ...


def advisory_key(schema: str, name: str) -> int:
    """A stable signed 64-bit key for `pg_try_advisory_lock` (Python's `hash` differs per process)."""
    digest = hashlib.sha256(f"openautotune:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLock:
    """PostgreSQL: `pg_try_advisory_lock` on a connection of its own, held while leading."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.name = name
        self._engine = engine
        self._conn: Connection | None = None
        self._key: int | None = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return self.still_held()
        # Autocommit: a session-level lock outlives transactions, and the connection never sits
        # "idle in transaction" for the hours a process may lead.
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
            key = advisory_key(str(schema), self.name)
            taken = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one())
        except Exception:
            conn.invalidate()
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn, self._key = conn, key
        return True

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError:
            log.warning("lost the database session holding the %r lock", self.name)
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(sa.exc.DBAPIError):  # a session that is gone took the lock with it
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Never back into the pool: a pooled session that still held the lock would keep it.
            conn.invalidate()
            conn.close()


class FileLock:
    """SQLite: an exclusive `flock` on a lock file next to the database."""

    def __init__(self, path: str, name: str) -> None:
        self.name = name
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # The holder's pid, for an operator wondering which process leads (the lock, not the text, counts).
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


class ProcessLock:
    """SQLite in memory: only this process can open the database, so a lock within the process."""

    def __init__(self, name: str) -> None:
        self.name = name
        with _process_locks_guard:
            self._lock = _process_locks.setdefault(name, threading.Lock())
        self._held = False

    def try_acquire(self) -> bool:
        if not self._held:
            self._held = self._lock.acquire(blocking=False)
        return self._held

    def still_held(self) -> bool:
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()


def leader_lock(engine: Engine, name: str) -> LeaderLock:
    """The lock named `name` on this engine's database."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, name)
    if engine.dialect.name != "sqlite":
        raise ValueError(f"no leader lock for {engine.dialect.name}")
    path = sqlite_file(engine)
    if path is None:
        return ProcessLock(name)
    return FileLock(f"{path}-{name}.lock", name)
