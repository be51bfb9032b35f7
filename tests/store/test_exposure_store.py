"""Raw exposures in the event store: the same log stream and daily traffic on every store, a re-sent
batch stored once, the table created on an existing ClickHouse store, and an autotune's exposures
deleted from ClickHouse."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from openautotune.store.clickhouse.schema import SCHEMA_VERSION
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.event_store import EventStore
from openautotune.store.exposure_log import DAY_MS, MAX_ROWS, LoggedExposure

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _exposure(number: int, *, autotune_id: str = "colors", **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "autotune_id": autotune_id,
        "run": 1,
        "unit_id": f"user{number % 7}",
        "rule_id": "red" if number % 3 else "blue",
        "variant_id": "red" if number % 3 else "blue",
        "explore": False,
        "config_version": 1,
        # Spread over three days, with repeated times so the tie-breaks are exercised.
        "time_ms": START + (number % 40) * DAY_MS // 13,
        "received_ms": START + 3 * DAY_MS + number % 2,
        "user": {"userID": f"user{number % 7}", "custom": {"plan": "pro"}},
        "propensity": None,
        "analysable": True,
        "reason": "",
        "dedup_key": f"key{number:05d}",
    }
    row.update(changes)
    return row


def exposure_rows() -> list[dict[str, Any]]:
    rows = [_exposure(number) for number in range(120)]
    # Not analysable (no run, no variant), another run, another autotune: kept out of the counts.
    rows += [_exposure(200 + n, run=None, variant_id=None, analysable=False, reason="unknown rule") for n in range(5)]
    rows += [_exposure(300 + n, run=2) for n in range(4)]
    rows += [_exposure(400 + n, autotune_id="other") for n in range(6)]
    return rows


def _expected_recent(rows: list[dict[str, Any]], autotune_id: str, limit: int) -> list[LoggedExposure]:
    mine = [row for row in rows if row["autotune_id"] == autotune_id]
    mine.sort(key=lambda row: (row["time_ms"], row["received_ms"], row["dedup_key"]), reverse=True)
    return [
        LoggedExposure(
            time_ms=row["time_ms"],
            received_ms=row["received_ms"],
            unit_id=row["unit_id"],
            variant_id=row["variant_id"],
            rule_id=row["rule_id"],
            run=row["run"],
            analysable=row["analysable"],
            reason=row["reason"],
        )
        for row in mine[:limit]
    ]


def _expected_daily(rows: list[dict[str, Any]], autotune_id: str, run: int) -> dict[tuple[int, str], int]:
    counts: dict[tuple[int, str], int] = {}
    for row in rows:
        if row["autotune_id"] == autotune_id and row["run"] == run and row["variant_id"] is not None:
            key = (row["time_ms"] // DAY_MS * DAY_MS, row["variant_id"])
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_the_log_stream_and_daily_traffic_are_the_same_on_every_store(event_store: EventStore) -> None:
    rows = exposure_rows()
    event_store.write_rows([], [], rows[:70])
    event_store.write_rows([], [], rows[50:])  # overlaps the first: a re-sent part is stored once
    event_store.write_rows([], [], rows)  # the whole batch re-delivered: nothing new

    assert event_store.recent_exposures(autotune_id="colors", limit=25) == _expected_recent(rows, "colors", 25)
    everything = event_store.recent_exposures(autotune_id="colors", limit=10_000)
    assert len(everything) == 129  # stored once each, capped only by MAX_ROWS
    assert len(everything) < MAX_ROWS
    assert everything == _expected_recent(rows, "colors", 10_000)
    assert event_store.recent_exposures(autotune_id="colors", limit=-3) == []
    assert event_store.recent_exposures(autotune_id="nobody", limit=10) == []

    daily = event_store.daily_exposures(autotune_id="colors", run=1)
    assert daily == _expected_daily(rows, "colors", 1)
    assert len({day for day, _ in daily}) == 4 and sum(daily.values()) == 120
    assert event_store.daily_exposures(autotune_id="colors", run=2) == _expected_daily(rows, "colors", 2)
    assert event_store.daily_exposures(autotune_id="other", run=1) == {(START, "red"): 4, (START, "blue"): 2}


def _stored(store: ClickHouseEvents, autotune_id: str) -> int:
    ((count,),) = store.main.rows(f"SELECT count() FROM exposures WHERE autotune_id = '{autotune_id}'")
    return int(count)


def test_an_existing_store_gets_the_exposures_table_on_migrate(tmp_path: Path) -> None:
    store = ClickHouseEvents(f"chdb://{tmp_path / 'events'}")
    try:
        store.migrate(0)
        # A store of schema 1: no exposures table, version 1 recorded.
        store.main.execute("DROP TABLE exposures")
        store.main.execute("TRUNCATE TABLE openautotune_schema")
        store.main.insert("openautotune_schema", ("version", "applied_ms"), [(1, 0)])
        assert store.migrate(5) == SCHEMA_VERSION
        assert store.migrate(6) == SCHEMA_VERSION  # idempotent
        assert store.main.rows("SELECT max(version) FROM openautotune_schema") == [(SCHEMA_VERSION,)]
        store.write_rows([], [], exposure_rows())
        assert _stored(store, "colors") == 129
    finally:
        store.close()


def _wait_until(condition: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def test_forgetting_an_autotune_deletes_only_its_exposures(event_store: EventStore) -> None:
    event_store.write_rows([], [], exposure_rows())
    event_store.forget_autotune("colors")  # units and raw exposures: the Console API's delete calls it

    def gone() -> bool:  # on ClickHouse a mutation, applied in the background
        return event_store.recent_exposures(autotune_id="colors", limit=10) == []

    assert _wait_until(gone)
    assert event_store.daily_exposures(autotune_id="colors", run=1) == {}
    assert len(event_store.recent_exposures(autotune_id="other", limit=10)) == 6


def test_exposures_are_listed_for_copy_in_dedup_key_order_with_every_column(event_store: EventStore) -> None:
    rows = exposure_rows()
    event_store.write_rows([], [], rows)
    listed = event_store.page("exposures", None, 50)  # type: ignore[attr-defined]
    listed += event_store.page("exposures", [listed[-1]["dedup_key"]], 1000)  # type: ignore[attr-defined]
    assert listed == sorted(rows, key=lambda row: row["dedup_key"])
    assert event_store.exposure_count() == len(rows)  # type: ignore[attr-defined]
