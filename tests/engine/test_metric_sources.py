"""Autotunes reading their success data from a metric source (docs/metric-sources.md).

Revenue per unit from an `orders` table in real PostgreSQL, DuckDB and SQLite databases, with the
engine's own database on SQLite and PostgreSQL: the sums match a hand computation and the same data
sent as SDK events; a source that goes down fails the update with its reason, and the next update
recovers every unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from openautotune.domain.autotune import Autotune
from openautotune.engine.update import update_autotune
from openautotune.service import metric_sources
from openautotune.store import metric_sources as source_store
from openautotune.store import updates
from openautotune.store.sealed import SEALING_SECRET
from openautotune.store.server_secrets import server_secrets_table
from openautotune.testing import START_MS

from .conftest import ACTOR, Env
from .metric_source_worlds import PASSWORD, Order, World, duckdb_world, postgres_world, sqlite_world

MIN = 60_000
HOUR = 60 * MIN
T0 = START_MS + 10 * MIN

A_UNITS = ["1001", "1002", "1003", "1004"]
B_UNITS = ["1005", "1006", "1007", "1008"]
ORDERS: list[Order] = [
    ("1001", T0 + 5 * MIN, 10.0),  # first in the window: counts
    ("1001", T0 + 20 * MIN, 99.0),  # a second order: only the first counts
    ("1002", T0 - 5 * MIN, 50.0),  # before the exposure: ignored
    ("1002", T0 + 30 * MIN, 20.0),
    ("1003", T0 + 2 * HOUR, 70.0),  # after the 1-hour window: ignored
    ("1005", T0 + 1 * MIN, 30.0),
    ("1006", T0 + 59 * MIN, 40.0),
    ("1007", T0 + 60 * MIN, 5.0),  # exactly at the window's end: counts
    ("1008", T0 + 61 * MIN, 100.0),  # a minute too late
    ("9999", T0 + 1 * MIN, 1000.0),  # a unit this autotune never exposed
]
# By hand: a = 10 + 20 (1001, 1002), b = 30 + 40 + 5 (1005, 1006, 1007).
EXPECTED = {
    "a": {"units": 4, "successes": 2, "total": 30.0, "totalSq": 10.0**2 + 20.0**2},
    "b": {"units": 4, "successes": 3, "total": 75.0, "totalSq": 30.0**2 + 40.0**2 + 5.0**2},
}


@pytest.fixture(params=["postgresql", "duckdb", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "postgresql":
        yield from postgres_world(request.getfixturevalue("_postgres_server"))
    elif request.param == "duckdb":
        yield duckdb_world(tmp_path)
    else:
        yield sqlite_world(tmp_path)


def _source(env: Env, world: World, name: str = "orders") -> str:
    source, _health = metric_sources.create(
        env.db, env.clock, ACTOR, metric_sources.SourceInput(name=name, **world.source_fields())
    )
    return source.id


def _revenue_autotune(env: Env, source_id: str, name: str = "checkout") -> Autotune:
    return env.create(name, metric_source_id=source_id, optimization_parameter="value")


def _expose(env: Env, autotune: Autotune, at: int, a_units: list[str], b_units: list[str]) -> None:
    env.units(autotune, [(u, 0, at) for u in a_units] + [(u, 1, at) for u in b_units])


def _sums(env: Env, autotune: Autotune) -> dict[str, dict[str, Any]]:
    with env.db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert record is not None
    return {
        v["name"]: {key: v[key] for key in ("units", "successes", "total", "totalSq")}
        for v in record.record["variants"]
    }


def _records(env: Env, autotune: Autotune) -> int:
    with env.db.read() as conn:
        return len(updates.records(conn, autotune.id, autotune.created_ms))


def test_revenue_per_unit_matches_a_hand_computation_and_the_event_path(env: Env, world: World) -> None:
    world.add(ORDERS)
    autotune = _revenue_autotune(env, _source(env, world))
    _expose(env, autotune, T0, A_UNITS, B_UNITS)
    outcome = update_autotune(env.db, env.clock, autotune.id, T0 + HOUR + MIN)
    assert outcome.updated, outcome.reason
    assert _sums(env, autotune) == EXPECTED
    with env.db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert record is not None
    assert record.record["metricSource"] == {"id": "orders", "rowsRead": 6, "unitsConverted": 5}

    # The same orders sent as SDK events (value in metadata) give the same sums: same attribution rules.
    by_events = env.create("checkout_events", metadata_field="amount", optimization_parameter="value")
    _expose(env, by_events, T0, A_UNITS, B_UNITS)
    for unit, at, amount in ORDERS:
        env.event(unit, at, metadata={"amount": amount})
    assert update_autotune(env.db, env.clock, by_events.id, T0 + HOUR + MIN).updated
    assert _sums(env, by_events) == EXPECTED


def test_occurrence_counts_units_with_any_row_in_the_window(env: Env, world: World) -> None:
    world.add(ORDERS)
    autotune = env.create(metric_source_id=_source(env, world))  # optimizes occurrence: no value needed
    _expose(env, autotune, T0, A_UNITS, B_UNITS)
    assert update_autotune(env.db, env.clock, autotune.id, T0 + HOUR + MIN).updated
    sums = _sums(env, autotune)
    assert (sums["a"]["successes"], sums["b"]["successes"]) == (2, 3)
    assert sums["a"]["total"] == 2.0


def test_a_source_that_goes_down_mid_run_fails_the_update_and_the_next_one_recovers(env: Env, world: World) -> None:
    world.add(ORDERS)
    source_id = _source(env, world)
    autotune = _revenue_autotune(env, source_id)
    _expose(env, autotune, T0, A_UNITS, B_UNITS)
    assert update_autotune(env.db, env.clock, autotune.id, T0 + HOUR + MIN).updated

    later = T0 + 2 * HOUR
    world.add([("2001", later + MIN, 7.0), ("2002", later + 2 * MIN, 3.0)])
    _expose(env, autotune, later, ["2001"], ["2002", "2003"])
    world.break_()
    env.clock.set(T0 + 3 * HOUR + 2 * MIN)
    failed = update_autotune(env.db, env.clock, autotune.id, T0 + 3 * HOUR + MIN)
    assert not failed.updated
    assert failed.reason is not None
    assert failed.reason.startswith(f"metric source {source_id!r} failed: ")
    assert failed.reason.endswith("the next update retries")
    assert PASSWORD not in failed.reason
    assert _records(env, autotune) == 1  # nothing written: the failed update's units stay unread
    with env.db.read() as conn:
        found = source_store.get(conn, source_id)
    assert found is not None
    health = found[1]
    assert (health.last_error, health.last_error_autotune_id) == (failed.reason, autotune.id)
    assert health.last_error_ms == env.clock.now_ms()

    world.mend()
    recovered = update_autotune(env.db, env.clock, autotune.id, T0 + 4 * HOUR)
    assert recovered.updated, recovered.reason
    assert recovered.new_units == 3
    sums = _sums(env, autotune)
    assert sums["a"] == {"units": 5, "successes": 3, "total": 37.0, "totalSq": 500.0 + 49.0}
    assert sums["b"] == {"units": 6, "successes": 4, "total": 78.0, "totalSq": 2525.0 + 9.0}
    assert _records(env, autotune) == 2


def test_text_values_follow_the_event_paths_number_rules(env: Env, tmp_path: Path) -> None:
    """A query may hand back text: plain numbers count, anything else scores 0 and is counted as rejected."""
    world = sqlite_world(tmp_path)
    world.add([("1001", T0 + MIN, 1.0), ("1002", T0 + MIN, 1.0), ("1005", T0 + MIN, 1.0)])
    world.query = (
        "SELECT user_id, created_ms AS created_at, "
        "CASE user_id WHEN 1001 THEN '12.5' WHEN 1002 THEN 'n/a' ELSE '1e999' END AS amount FROM orders"
    )
    autotune = _revenue_autotune(env, _source(env, world))
    _expose(env, autotune, T0, ["1001", "1002"], ["1005"])
    assert update_autotune(env.db, env.clock, autotune.id, T0 + HOUR + MIN).updated
    with env.db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert record is not None
    assert record.record["diagnostics"]["newRejected"] == 2
    assert _sums(env, autotune)["a"] == {"units": 2, "successes": 1, "total": 12.5, "totalSq": 156.25}


def test_a_query_with_colons_and_casts_runs_as_written(env: Env, tmp_path: Path) -> None:
    """`:name` in a user's query is text, never a bind parameter of ours."""
    world = sqlite_world(tmp_path)
    world.add([("1001", T0 + MIN, 4.0)])
    world.query = "SELECT user_id, created_ms AS created_at, amount FROM orders WHERE ':x' = ':x'"
    autotune = _revenue_autotune(env, _source(env, world))
    _expose(env, autotune, T0, ["1001"], ["1005"])
    assert update_autotune(env.db, env.clock, autotune.id, T0 + HOUR + MIN).updated
    assert _sums(env, autotune)["a"]["total"] == 4.0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"unit_id_column": "customer"}, "customer"),  # a column the source does not have
        ({"query": "SELECT user_id, created_ms AS created_at, amount FROM no_such_table"}, "no_such_table"),
        ({"url": "postgresql+psycopg://shop:" + PASSWORD + "@127.0.0.1:1/shop"}, "failed: "),  # nothing listens
    ],
)
def test_broken_sources_fail_with_a_reason_and_never_show_the_password(
    env: Env, tmp_path: Path, change: dict[str, str], expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = sqlite_world(tmp_path)
    fields = {**world.source_fields(), **change}
    source, _ = metric_sources.create(env.db, env.clock, ACTOR, metric_sources.SourceInput(name="orders", **fields))
    autotune = _revenue_autotune(env, source.id)
    _expose(env, autotune, T0, ["1001"], ["1005"])
    outcome = update_autotune(env.db, env.clock, autotune.id, T0 + HOUR + MIN)
    assert not outcome.updated
    assert outcome.reason is not None and expected in outcome.reason
    assert PASSWORD not in outcome.reason
    assert PASSWORD not in caplog.text
    assert _records(env, autotune) == 0


def test_an_unknown_source_or_a_missing_value_column_fails_the_update(env: Env, tmp_path: Path) -> None:
    missing = _revenue_autotune(env, "nowhere")
    _expose(env, missing, T0, ["1001"], ["1005"])
    outcome = update_autotune(env.db, env.clock, missing.id, T0 + HOUR + MIN)
    assert outcome.reason == "metric source 'nowhere' failed: no metric source has this id; the next update retries"

    world = sqlite_world(tmp_path)
    fields = {**world.source_fields(), "value_column": None}
    source, _ = metric_sources.create(env.db, env.clock, ACTOR, metric_sources.SourceInput(name="orders", **fields))
    no_value = _revenue_autotune(env, source.id, name="no_value")
    _expose(env, no_value, T0, ["1001"], ["1005"])
    outcome = update_autotune(env.db, env.clock, no_value.id, T0 + HOUR + MIN)
    assert outcome.reason is not None and "valueColumn" in outcome.reason


def test_the_autotunes_value_column_overrides_the_sources(env: Env, tmp_path: Path) -> None:
    world = sqlite_world(tmp_path)
    world.add([("1001", T0 + MIN, 4.0)])
    world.query = "SELECT user_id, created_ms AS created_at, amount, amount * 10 AS tenfold FROM orders"
    autotune = env.create(metric_source_id=_source(env, world), optimization_parameter="value", value_column="tenfold")
    _expose(env, autotune, T0, ["1001"], ["1005"])
    assert update_autotune(env.db, env.clock, autotune.id, T0 + HOUR + MIN).updated
    assert _sums(env, autotune)["a"]["total"] == 40.0


def test_a_lost_sealing_secret_fails_with_a_reason(env: Env, tmp_path: Path) -> None:
    world = sqlite_world(tmp_path)
    autotune = _revenue_autotune(env, _source(env, world))
    _expose(env, autotune, T0, ["1001"], ["1005"])
    with env.db.write() as conn:
        secrets = server_secrets_table
        conn.execute(secrets.update().where(secrets.c.name == SEALING_SECRET).values(value="another key"))
    outcome = update_autotune(env.db, env.clock, autotune.id, T0 + HOUR + MIN)
    assert outcome.reason is not None and "cannot be decrypted" in outcome.reason
    with env.db.write() as conn:
        conn.execute(sa.delete(server_secrets_table))
    outcome = update_autotune(env.db, env.clock, autotune.id, T0 + HOUR + 2 * MIN)
    assert outcome.reason is not None and "is missing" in outcome.reason
