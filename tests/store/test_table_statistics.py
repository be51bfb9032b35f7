"""PostgreSQL event tables get statistics before the engine joins them (store/table_statistics.py):
a bulk-loaded, never-analysed `units` table made a delay-histogram join run for minutes."""

from __future__ import annotations

import sqlalchemy as sa

from openautotune.clock import FixedClock
from openautotune.engine.update import update_running
from openautotune.store import migrate, table_statistics
from openautotune.store.database import Database


def _last_analysis(db: Database, table: str) -> object:
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT coalesce(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema() AND relname = :table"
            ),
            {"table": table},
        ).scalar_one()


def _load_units(db: Database, count: int) -> None:
    rows = [
        {"autotune_id": "bulk", "run": 1, "unit_id": f"u{i}", "variant_id": "a", "first_exposure_ms": i}
        for i in range(count)
    ]
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO units (autotune_id, run, unit_id, variant_id, first_exposure_ms, explore, holdout) "
                "VALUES (:autotune_id, :run, :unit_id, :variant_id, :first_exposure_ms, false, false)"
            ),
            rows,
        )
    with db.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))  # PostgreSQL 15: counters visible now


def test_a_bulk_loaded_table_is_analysed_before_the_updates(database_url: str) -> None:
    db = Database.from_url(database_url)
    migrate.upgrade(db.engine)
    try:
        if db.is_sqlite:
            with db.engine.connect() as conn:
                assert table_statistics.stale_tables(conn) == []  # nothing to do on SQLite
            return
        with db.engine.begin() as conn:  # autovacuum must not analyse it first and hide the check
            conn.execute(sa.text("ALTER TABLE units SET (autovacuum_enabled = false)"))
        _load_units(db, 5_000)
        with db.engine.connect() as conn:
            assert table_statistics.stale_tables(conn) == ["units"]
        assert _last_analysis(db, "units") is None
        update_running(db, FixedClock(10_000), ingest_wait_seconds=0)  # a scheduler round, no autotune
        assert _last_analysis(db, "units") is not None
        with db.engine.connect() as conn:
            assert table_statistics.stale_tables(conn) == []  # analysed: nothing stale any more
    finally:
        db.dispose()
