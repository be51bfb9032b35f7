"""An autotune whose units and events live in ClickHouse (chdb) gets the same `health` (guardrails),
`holdout` and `delay` parts in its update records as the same rows in SQLite (issues 15 and 19: those
parts used to read the main database only, and saw nothing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openautotune.clock import FixedClock
from openautotune.domain.autotune import Autotune
from openautotune.domain.guardrails import Guardrail
from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.store import migrate, updates
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.database import Database
from openautotune.store.event_store import EventStore
from openautotune.store.events import SqlEvents
from openautotune.testing import START_MS
from tests.store.event_fixture import event, unit

from .conftest import ACTOR, definition_fields

MIN = 60_000
HOUR = 60 * MIN
PARTS = ("health", "holdout", "delay")


def _rows(autotune: Autotune) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """400 units over 200 minutes, a fifth held out; purchases (b converts more), errors (b more often),
    and late, earlier exposures of some units delivered after the rest."""
    a, b = (variant.id for variant in autotune.definition.variants)
    units, events, late = [], [], []
    for n in range(400):
        at = START_MS + n * 30_000
        variant = b if n % 2 else a
        row = unit(f"u{n}", variant, at, version=autotune.allocation_version, autotune=autotune.id, holdout=n % 5 == 0)
        units.append(row)
        if n % 17 == 0:
            late.append({**row, "first_exposure_ms": at - 10 * MIN})
        if n % 3 == 0 or (variant == b and n % 4 == 1):
            events.append(event(f"u{n}", at + (n % 7) * 8 * MIN, key=f"p{n}", name="purchase"))
        if n % 8 == 0 or (variant == b and n % 4 == 3):
            events.append(event(f"u{n}", at + 5 * MIN, key=f"e{n}", name="error"))
    return units, events, late


def _records(db: Database, store: EventStore, clock: FixedClock) -> list[dict[str, Any]]:
    fields = definition_fields(guardrails=(Guardrail(event="error", max_relative_harm=0.1),), holdout_percent=20.0)
    autotune = autotune_service.create(db, clock, ACTOR, fields)
    autotune = autotune_service.start(db, clock, ACTOR, autotune.id)
    units, events, late = _rows(autotune)
    store.write_rows(units, events)
    store.write_rows(late, [])
    for hours in (1, 2, 3, 5):
        outcome = update_autotune(db, clock, autotune.id, START_MS + hours * HOUR)
        assert outcome.updated, outcome.reason
    with db.read() as conn:
        records = [record.record for record in updates.records(conn, autotune.id, autotune.created_ms)]
    # Variant ids are random per autotune: named by their variant's name, the two runs' records compare.
    text = json.dumps(records)
    for variant in autotune.definition.variants:
        text = text.replace(f'"{variant.id}"', f'"variant {variant.name}"')
    named: list[dict[str, Any]] = json.loads(text)
    return named


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    made = [Database.from_url(f"sqlite:///{tmp_path / name}") for name in ("sqlite.db", "main.db")]
    for db in made:
        migrate.upgrade(db.engine)
    yield made[0], made[1]
    for db in made:
        if db.events is not None:
            db.events.close()
            db.events = None
        db.dispose()


def test_health_holdout_and_delay_parts_on_chdb_match_sqlite(
    databases: tuple[Database, Database], tmp_path: Path
) -> None:
    in_sqlite, with_chdb = databases
    chdb = ClickHouseEvents(f"chdb://{tmp_path / 'events'}")
    chdb.migrate(0)
    with_chdb.events = chdb
    expected = _records(in_sqlite, SqlEvents(in_sqlite), FixedClock(START_MS))
    got = _records(with_chdb, chdb, FixedClock(START_MS))
    assert len(got) == len(expected) == 4
    for mine, reference in zip(got, expected, strict=True):
        for part in PARTS:
            assert mine[part] == reference[part], (mine["asOf"], part)
    last = expected[-1]
    # Not trivial: every part has data, and the SQLite side read it.
    assert last["holdout"]["units"] > 50 and last["holdout"]["variants"][1]["successes"] > 0
    (guardrail,) = last["health"]["guardrails"]
    assert all(row["units"] > 50 and row["hits"] > 10 for row in guardrail["variants"])
    assert last["delay"]["conversions"] > 50
    assert sum(expected[1]["delay"]["immatureUnits"]) > 50
