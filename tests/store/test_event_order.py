"""`EVENT_ORDER`, the byte string a unit's first success event is chosen by in ClickHouse: it must sort
exactly as (time_ms, dedup_key) does, for times around every byte boundary, before 1970 and now, and
for keys that are prefixes of each other (on chdb and on Debian's 18.16 server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openautotune.store.clickhouse.attribution import EVENT_ORDER
from openautotune.store.clickhouse.client import literal
from openautotune.store.clickhouse.store import ClickHouseEvents

from .conftest import open_store

TIMES = (-(2**55), -(2**40), -65536, -256, -255, -1, 0, 1, 255, 256, 65535, 65536, 2**32, 1_767_225_600_000, 2**55)
KEYS = ("", "a", "ab", "b", "e04a", "e04b", "z")


@pytest.fixture(params=["chdb", "clickhouse"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClickHouseEvents]:
    for events in open_store(request.param, request, tmp_path):
        assert isinstance(events, ClickHouseEvents)
        yield events


def test_event_order_sorts_as_time_then_key(store: ClickHouseEvents) -> None:
    pairs = [(time, key) for time in TIMES for key in KEYS]
    items = ", ".join(f"(toInt64({time}), {literal(key)})" for time, key in reversed(pairs))
    query = (
        "SELECT time_ms, dedup_key FROM (SELECT tupleElement(pair, 1) AS time_ms, tupleElement(pair, 2) AS dedup_key "
        f"FROM (SELECT arrayJoin([{items}]) AS pair)) ORDER BY {EVENT_ORDER}"
    )
    assert [(int(time), str(key)) for time, key in store.main.rows(query)] == sorted(pairs)


def test_the_first_event_by_event_order_is_the_earliest_then_the_smallest_key(store: ClickHouseEvents) -> None:
    items = "[(toInt64(5), 'b', 'late'), (toInt64(3), 'z', 'first'), (toInt64(3), 'zz', 'tie, larger key')]"
    query = (
        "SELECT argMin(raw, event_order) FROM (SELECT tupleElement(e, 3) AS raw, time_ms, dedup_key, "
        f"{EVENT_ORDER} AS event_order FROM (SELECT e, tupleElement(e, 1) AS time_ms, tupleElement(e, 2) AS dedup_key "
        f"FROM (SELECT arrayJoin({items}) AS e)))"
    )
    assert store.main.rows(query) == [("first",)]
