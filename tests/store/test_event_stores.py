"""Every event store returns the reference aggregates (tests/store/event_fixture.py) on the same rows:
SQLite, PostgreSQL, chdb, one ClickHouse 18.16 server and a two-shard 18.16 cluster."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from openautotune.store.attribution import BEGINNING_MS, Aggregate
from openautotune.store.clickhouse.attribution import Window, is_windowed
from openautotune.store.clickhouse.client import NativeClient
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.event_store import EventStore
from tests.services.clickhouse import ThrowawayCluster

from .conftest import open_store
from .event_fixture import (
    AS_OF,
    AUTOTUNE,
    DEFINITIONS,
    GENERATED,
    HOUR,
    MIN,
    REFERENCE,
    SPLIT,
    T0,
    WINDOWS,
    Batch,
    generated,
    late_exposures,
    scenario,
    unit,
)


def load(store: EventStore, batches: list[Batch]) -> None:
    for batch in batches:
        store.write_rows(batch.units, batch.events)


def table(rows: list[Aggregate]) -> dict[tuple[str, int], tuple[int, int, float, float, int]]:
    return {
        (row.variant_id, row.period): (
            row.units,
            row.successes,
            round(row.total, 9),
            round(row.total_sq, 9),
            row.rejected,
        )
        for row in rows
    }


def summed(*parts: list[Aggregate]) -> list[Aggregate]:
    out: dict[tuple[str, int], Aggregate] = {}
    for rows in parts:
        for row in rows:
            key = (row.variant_id, row.period)
            out[key] = out[key].plus(row) if key in out else row
    return list(out.values())


def aggregates(store: EventStore, name: str, after: int, as_of: int, autotune: str = AUTOTUNE) -> list[Aggregate]:
    return store.matured_aggregates(
        autotune_id=autotune, run=1, definition=DEFINITIONS[name], matured_after_ms=after, as_of_ms=as_of
    )


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_reference_aggregates_full_and_incremental(event_store: EventStore, name: str) -> None:
    load(event_store, scenario())
    full = aggregates(event_store, name, BEGINNING_MS, AS_OF)
    assert table(full) == REFERENCE[name]
    first, second = aggregates(event_store, name, BEGINNING_MS, SPLIT), aggregates(event_store, name, SPLIT, AS_OF)
    assert table(summed(first, second)) == REFERENCE[name]


def test_re_delivered_batches_change_nothing(event_store: EventStore) -> None:
    batches = scenario()
    load(event_store, batches)
    load(event_store, batches)
    assert table(aggregates(event_store, "value", BEGINNING_MS, AS_OF)) == REFERENCE["value"]


def test_an_empty_run_has_no_aggregates(event_store: EventStore) -> None:
    assert aggregates(event_store, "occurrence", BEGINNING_MS, AS_OF) == []
    load(event_store, scenario())
    assert aggregates(event_store, "occurrence", AS_OF, AS_OF + 3_600_000) == []


@pytest.fixture(scope="module")
def sqlite_generated(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, object]:
    """The SQLite answers on the generated set: the reference for the other stores."""
    gen = open_store("sqlite", request, tmp_path_factory.mktemp("reference"))
    store = next(gen)
    load(store, generated())
    answers: dict[str, object] = {}
    for name in DEFINITIONS:
        answers[name] = table(aggregates(store, name, BEGINNING_MS, AS_OF, GENERATED))
        answers[f"{name}/split"] = table(aggregates(store, name, SPLIT, AS_OF, GENERATED))
        answers[f"{name}/units"] = store.matured_units(
            autotune_id=GENERATED, run=1, definition=DEFINITIONS[name], as_of_ms=AS_OF
        )
    for _ in gen:
        pass
    return answers


def test_generated_set_matches_sqlite(event_store: EventStore, sqlite_generated: dict[str, object]) -> None:
    load(event_store, generated())
    for name in DEFINITIONS:
        assert table(aggregates(event_store, name, BEGINNING_MS, AS_OF, GENERATED)) == sqlite_generated[name], name
        assert table(aggregates(event_store, name, SPLIT, AS_OF, GENERATED)) == sqlite_generated[f"{name}/split"]
        units = event_store.matured_units(autotune_id=GENERATED, run=1, definition=DEFINITIONS[name], as_of_ms=AS_OF)
        assert units == sqlite_generated[f"{name}/units"], name


def test_the_generated_set_is_not_trivial(sqlite_generated: dict[str, object], tmp_path: Path) -> None:
    rows = sqlite_generated["value"]
    assert isinstance(rows, dict)
    assert sum(r[0] for r in rows.values()) > 1000
    assert sum(r[1] for r in rows.values()) > 100
    assert sum(r[4] for r in rows.values()) > 10  # rejected values


def test_the_cluster_spreads_units_and_their_events_over_both_shards(
    clickhouse_cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    """Both shards hold rows, each unit's events sit on its unit's shard, and the shards' sums are the
    single node's (the reference test above checks the aggregates themselves)."""
    store = ClickHouseEvents(clickhouse_cluster.url(0, f"t_{uuid.uuid4().hex[:12]}") + "?cluster=openautotune")
    store.migrate(0)
    load(store, generated())
    shards = [NativeClient(store.url, host="127.0.0.1", port=port) for port in clickhouse_cluster.ports]
    per_shard = [shard.rows("SELECT count() FROM units_local")[0][0] for shard in shards]
    assert all(count > 300 for count in per_shard) and sum(per_shard) == store.counts()[0]
    for shard in shards:
        strays = shard.rows(
            "SELECT count() FROM events_local WHERE event_name = 'buy' "
            "AND unit_id NOT IN (SELECT unit_id FROM units_local)"
        )
        assert strays == [(0,)]
        shard.close()
    store.close()


def test_a_late_earlier_exposure_moves_the_unit_to_its_window(event_store: EventStore) -> None:
    """z is stored at T0+30min (second window); its earlier exposure at T0+2min (first window) arrives
    later. Every store counts z once, in the first window, with the earlier exposure's variant."""
    later = unit("z", "vb", T0 + 30 * MIN)
    earlier = unit("z", "va", T0 + 2 * MIN)
    load(event_store, [Batch(units=[later], events=[]), Batch(units=[earlier], events=[])])
    load(event_store, [Batch(units=[later], events=[])])  # the later one re-delivered: still not first
    first = table(aggregates(event_store, "occurrence", BEGINNING_MS, SPLIT))
    second = table(aggregates(event_store, "occurrence", SPLIT, AS_OF))
    assert first == {("va", 1): (1, 0, 0.0, 0.0, 0)} and second == {}


def test_hourly_reads_with_late_exposures_match_sqlite(
    event_store: EventStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Incremental reads (ClickHouse's one-pass form) over the generated set plus late, earlier
    exposures: ties in event time, rejected values and units moved to earlier windows, per window and
    summed with the first read from the beginning, as SQLite answers them."""
    batches = [*generated(), late_exposures()]
    (tmp_path / "reference").mkdir()
    generator = open_store("sqlite", request, tmp_path / "reference")
    reference = next(generator)
    load(reference, batches)
    load(event_store, batches)
    rejected_in_windows = 0
    for name in DEFINITIONS:
        for after, as_of in [(BEGINNING_MS, WINDOWS[0][0]), *WINDOWS]:
            expected = table(aggregates(reference, name, after, as_of, GENERATED))
            assert table(aggregates(event_store, name, after, as_of, GENERATED)) == expected, (name, after)
            if after != BEGINNING_MS:
                rejected_in_windows += sum(row[4] for row in expected.values())
    assert rejected_in_windows > 10
    full = aggregates(reference, "value", BEGINNING_MS, WINDOWS[-1][1], GENERATED)
    assert sum(row.units for row in full) == 1500
    for _ in generator:
        pass


def test_forgetting_an_autotune_deletes_its_units_only(event_store: EventStore) -> None:
    """Every run of the autotune, on every shard; the other autotunes' units and all events stay."""
    load(event_store, scenario())
    load(event_store, generated())
    before = aggregates(event_store, "value", BEGINNING_MS, AS_OF, GENERATED)
    event_store.forget_autotune(AUTOTUNE)
    assert event_store.wait_forgotten(AUTOTUNE)
    assert aggregates(event_store, "value", BEGINNING_MS, AS_OF) == []
    assert aggregates(event_store, "value", BEGINNING_MS, AS_OF, GENERATED) == before
    load(event_store, scenario())  # the same units again (a namesake): stored anew, not skipped
    assert table(aggregates(event_store, "value", BEGINNING_MS, AS_OF)) == REFERENCE["value"]


def test_the_one_pass_form_is_taken_by_windowed_reads_only() -> None:
    """From the beginning: the two-part form (faster over every unit). Near time 0, where a unit
    without events (join defaults: time 0) could pass `time >= first exposure`: the two-part form too."""
    value = DEFINITIONS["value"]
    assert not is_windowed(value, Window(AUTOTUNE, 1, BEGINNING_MS, AS_OF))
    assert is_windowed(value, Window(AUTOTUNE, 1, SPLIT, AS_OF))
    assert not is_windowed(value, Window(AUTOTUNE, 1, HOUR // 2, 3 * HOUR))
