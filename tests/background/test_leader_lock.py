"""The leader lock: one holder at a time across processes, freed when its holder is killed (SQLite and
PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openautotune.store.database import Database
from openautotune.store.leader_lock import FileLock, ProcessLock, advisory_key, leader_lock

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def two(database_url: str) -> Iterator[tuple[Database, Database]]:
    """Two engines on one database: as two processes would have."""
    first, second = Database.from_url(database_url), Database.from_url(database_url)
    yield first, second
    first.dispose()
    second.dispose()


def test_one_holder_at_a_time_and_release_hands_over(two: tuple[Database, Database]) -> None:
    a = leader_lock(two[0].engine, "background")
    b = leader_lock(two[1].engine, "background")
    assert a.try_acquire()
    assert a.try_acquire(), "taking it again while holding it is a yes"
    assert not b.try_acquire()
    assert a.still_held() and not b.still_held()
    a.release()
    assert not a.still_held()
    assert b.try_acquire()
    assert not a.try_acquire()
    b.release()
    b.release()  # harmless twice


def test_names_do_not_exclude_each_other(two: tuple[Database, Database]) -> None:
    a = leader_lock(two[0].engine, "scheduler")
    b = leader_lock(two[1].engine, "processor")
    assert a.try_acquire() and b.try_acquire()
    a.release()
    b.release()


def _holder(url: str, name: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.background.lock_holder", url, name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_killed_holder_frees_the_lock_for_another_process(database_url: str) -> None:
    holder = _holder(database_url, "background")
    db = Database.from_url(database_url)
    lock = leader_lock(db.engine, "background")
    try:
        assert not lock.try_acquire(), "another process holds it"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 10
        while not lock.try_acquire():
            assert time.monotonic() < deadline, "the lock of a killed process was never freed"
            time.sleep(0.05)
        assert lock.still_held()
    finally:
        lock.release()
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
        db.dispose()


def test_sqlite_uses_a_file_next_to_the_database_and_memory_a_process_lock(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    lock = leader_lock(db.engine, "background")
    assert isinstance(lock, FileLock)
    assert lock.path == str(tmp_path / "x.db-background.lock")
    assert lock.try_acquire()
    assert Path(lock.path).read_text().strip() == str(os.getpid())
    lock.release()
    memory = Database.from_url("sqlite://")
    first, second = leader_lock(memory.engine, "m"), leader_lock(memory.engine, "m")
    assert isinstance(first, ProcessLock)
    assert first.try_acquire() and not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()
    db.dispose()
    memory.dispose()


def test_advisory_keys_differ_per_schema_and_name_and_are_stable() -> None:
    assert advisory_key("public", "background") == advisory_key("public", "background")
    assert advisory_key("public", "background") != advisory_key("t_1", "background")
    assert advisory_key("public", "background") != advisory_key("public", "processor")
    assert -(2**63) <= advisory_key("public", "background") < 2**63


def test_a_lost_postgres_session_loses_the_lock(request: pytest.FixtureRequest) -> None:
    base = request.getfixturevalue("_postgres_server")
    import sqlalchemy as sa

    db = Database.from_url(base)
    lock = leader_lock(db.engine, f"lost-{os.getpid()}-{time.monotonic_ns()}")
    try:
        assert lock.try_acquire()
        conn = lock._conn  # type: ignore[attr-defined]
        backend = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with db.engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            other.commit()
        assert not lock.still_held()
        assert lock.try_acquire(), "free again once the session is gone"
    finally:
        lock.release()
        db.dispose()
