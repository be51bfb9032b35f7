"""ClickHouse's `late_units`: the copies of late unit rows (an earlier exposure stored after a later
one) where the attribution and health reads look for late units. Written before the row itself, so a
failure between the two inserts leaves a harmless copy, never a late row the reads cannot see; copied
from `units` when a store of schema 2 is migrated (on chdb and one 18.16 server; a cluster runs the
same statements per node). The writes on chdb, one 18.16 server and the two-shard cluster; the reads
are checked with the late-exposure fixtures of test_event_stores.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openautotune.store.attribution import BEGINNING_MS
from openautotune.store.clickhouse.schema import SCHEMA_VERSION, UNIT_COLUMNS
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.clickhouse.writer import unit_tuple

from .conftest import open_store
from .event_fixture import AS_OF, MIN, SPLIT, T0, unit
from .test_event_stores import aggregates, table

LATER = unit("z", "vb", T0 + 30 * MIN)
EARLIER = unit("z", "va", T0 + 2 * MIN)
# z counted once, in the first window, with the earlier exposure's variant; y is an ordinary unit.
FIRST_WINDOW = {("va", 1): (1, 0, 0.0, 0.0, 0), ("vb", 1): (1, 0, 0.0, 0.0, 0)}


@pytest.fixture(params=["chdb", "clickhouse", "cluster"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClickHouseEvents]:
    yield from _opened(request.param, request, tmp_path)


def _opened(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClickHouseEvents]:
    for events in open_store(kind, request, tmp_path):
        assert isinstance(events, ClickHouseEvents)
        yield events


def _counted(store: ClickHouseEvents) -> None:
    assert table(aggregates(store, "occurrence", BEGINNING_MS, SPLIT)) == FIRST_WINDOW
    assert table(aggregates(store, "occurrence", SPLIT, AS_OF)) == {}
    assert table(aggregates(store, "occurrence", BEGINNING_MS, AS_OF)) == FIRST_WINDOW


def test_only_a_late_row_is_copied_to_late_units(store: ClickHouseEvents) -> None:
    store.write_rows([LATER, unit("y", "vb", T0 + 3 * MIN)], [])
    assert store.main.rows("SELECT count() FROM late_units") == [(0,)]
    store.write_rows([EARLIER], [])
    store.write_rows([EARLIER, LATER], [])  # both re-delivered: nothing new
    assert store.main.rows("SELECT unit_id, variant_id, first_exposure_ms FROM late_units") == [
        ("z", "va", T0 + 2 * MIN)
    ]
    assert store.main.rows("SELECT count() FROM units") == [(3,)]
    _counted(store)


def test_a_copy_whose_row_was_not_written_is_harmless_when_the_batch_is_retried(store: ClickHouseEvents) -> None:
    store.write_rows([LATER, unit("y", "vb", T0 + 3 * MIN)], [])
    # The writer failed after the copy and before the row: the retry writes the row and copies again.
    store.main.insert("late_units", UNIT_COLUMNS, [unit_tuple(EARLIER)[: len(UNIT_COLUMNS)]])
    store.write_rows([EARLIER], [])
    assert store.main.rows("SELECT count() FROM late_units") == [(2,)]
    _counted(store)


@pytest.mark.parametrize("kind", ["chdb", "clickhouse"])
def test_a_store_of_schema_2_gets_its_late_rows_copied_on_migrate(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    for store in _opened(kind, request, tmp_path):
        _migrated_from_schema_2(store)


def _migrated_from_schema_2(store: ClickHouseEvents) -> None:
    store.write_rows([LATER, unit("y", "vb", T0 + 3 * MIN)], [])
    store.write_rows([EARLIER], [])
    # Schema 2: no late_units table, version 2 recorded.
    store.main.execute("DROP TABLE late_units")
    store.main.execute("TRUNCATE TABLE openautotune_schema")
    store.main.insert("openautotune_schema", ("version", "applied_ms"), [(2, 0)])
    assert store.migrate(5) == SCHEMA_VERSION == 3
    assert store.migrate(6) == SCHEMA_VERSION  # idempotent: copied once
    assert store.main.rows("SELECT unit_id, first_exposure_ms FROM late_units") == [("z", T0 + 2 * MIN)]
    _counted(store)
