"""SQLite: writers of every process queue on a file lock instead of SQLite's sleeping busy handler.

SQLite lets one writer in at a time. The others wait in its busy handler, which sleeps and retries
(1, 2, 5, 10, ... 100 ms) rather than being woken when the lock frees. One server process hardly
notices (its writes are grouped: `api.exposure_batcher`), but under `serve --workers N` the workers'
writes collide all the time and those sleeps, not the disk, became the limit: two workers answered
`/v1/get_config` at 0.36x the rate of one. An exclusive `flock` on `<db>-write.lock`, taken before
`BEGIN IMMEDIATE` and released after the commit, makes writers wait in the kernel, which wakes the next
one the moment the previous one is done. Readers never take it (WAL lets them read during a write).
Any process that writes without it (an older version, the `sqlite3` shell) is still handled by
SQLite's own lock and busy timeout: the gate only orders the writers that use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from sqlalchemy.engine import Engine


def sqlite_file(engine: Engine) -> str | None:
    """The database file of a SQLite engine, or None (in memory, or not SQLite)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or "mode=memory" in str(engine.url):
        return None
    return database.removeprefix("file:").split("?", 1)[0]


class _Descriptor:
    """A thread's own open file (its own flock owner), closed when the thread's state goes."""

    def __init__(self, path: str) -> None:
        self.pid = os.getpid()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.depth = 0

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class WriteGate:
    """One writer at a time among every thread and process that writes this database file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def _descriptor(self) -> _Descriptor:
        held: _Descriptor | None = getattr(self._local, "descriptor", None)
        # A forked child must not share its parent's open file: flock would see them as one owner.
        if held is None or held.pid != os.getpid():
            held = _Descriptor(self.path)
            self._local.descriptor = held
        return held

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        descriptor = self._descriptor()
        if descriptor.depth == 0:  # a nested write in the same thread already holds it
            fcntl.flock(descriptor.fd, fcntl.LOCK_EX)
        descriptor.depth += 1
        try:
            yield
        finally:
            descriptor.depth -= 1
            if descriptor.depth == 0:
                fcntl.flock(descriptor.fd, fcntl.LOCK_UN)


def gate_for(engine: Engine) -> WriteGate | None:
    path = sqlite_file(engine)
    return WriteGate(f"{path}-write.lock") if path is not None else None
