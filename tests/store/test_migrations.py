"""Migrations apply on both backends, twice without harm, and the spec-change clock only grows."""

from __future__ import annotations

import sqlalchemy as sa

from openautotune.store import migrate, spec_changes
from openautotune.store.database import Database
from openautotune.store.schema import metadata


def test_upgrade_creates_every_table_and_is_idempotent(database_url: str) -> None:
    db = Database.from_url(database_url)
    migrate.upgrade(db.engine)
    migrate.upgrade(db.engine)
    tables = set(sa.inspect(db.engine).get_table_names())
    assert set(metadata.tables) <= tables
    db.dispose()


def test_spec_change_time_strictly_grows(database_url: str) -> None:
    db = Database.from_url(database_url)
    migrate.upgrade(db.engine)
    with db.write() as conn:
        first = spec_changes.bump(conn, 1_000)
        second = spec_changes.bump(conn, 1_000)
        third = spec_changes.bump(conn, 500)
        fourth = spec_changes.bump(conn, 5_000)
    assert (first, second, third, fourth) == (1_000, 1_001, 1_002, 5_000)
    with db.read() as conn:
        assert spec_changes.last_change(conn) == 5_000
    db.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    db = Database.from_url(sqlite_url)
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    db.dispose()


def test_head_from_file_names_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    assert migrate.head_revision() == ScriptDirectory.from_config(migrate._config()).get_current_head()


def test_current_revision_before_and_after_upgrade(database_url: str) -> None:
    db = Database.from_url(database_url)
    assert migrate.current_revision(db.engine) is None
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision()
    db.dispose()
