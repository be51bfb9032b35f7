"""Engine test helpers: a migrated database, autotunes created and started through the service, and
units/events inserted directly (the way ingestion fills those tables)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from openautotune.clock import FixedClock
from openautotune.domain.autotune import Actor, Autotune
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.store import migrate
from openautotune.store.database import Database
from openautotune.store.ingest_tables import events_table, units_table
from openautotune.testing import START_MS

ACTOR = Actor(id="test", name="tester")
_keys = itertools.count()


def definition_fields(name: str = "checkout", **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": name,
        "variants": [VariantInput("a", {"v": "a"}), VariantInput("b", {"v": "b"})],
        "success_event": "purchase",
        "exploration_window": "24hr",
        "attribution_window": "1hr",
        "winner_threshold": "95%",
    }
    fields.update(overrides)
    return fields


@dataclass
class Env:
    db: Database
    clock: FixedClock
    autotunes: list[str] = field(default_factory=list)

    def create(self, name: str = "checkout", *, start: bool = True, **overrides: Any) -> Autotune:
        autotune = autotune_service.create(self.db, self.clock, ACTOR, definition_fields(name, **overrides))
        if start:
            autotune = autotune_service.start(self.db, self.clock, ACTOR, autotune.id)
        return autotune

    def unit(
        self,
        autotune: Autotune,
        unit_id: str,
        variant: int | str,
        at_ms: int,
        *,
        run: int | None = None,
        period: int | None = None,
    ) -> None:
        self.units(autotune, [(unit_id, variant, at_ms)], run=run, period=period)

    def units(
        self,
        autotune: Autotune,
        rows: list[tuple[str, int | str, int]],
        *,
        run: int | None = None,
        period: int | None = None,
    ) -> None:
        variants = autotune.definition.variants
        values = [
            {
                "autotune_id": autotune.id,
                "run": run if run is not None else autotune.run,
                "unit_id": unit_id,
                "variant_id": variants[variant].id if isinstance(variant, int) else variant,
                "first_exposure_ms": at_ms,
                "allocation_version": period if period is not None else autotune.allocation_version,
            }
            for unit_id, variant, at_ms in rows
        ]
        with self.db.write() as conn:
            conn.execute(units_table.insert(), values)

    def event(
        self,
        unit_id: str,
        at_ms: int,
        *,
        name: str = "purchase",
        id_type: str = "userID",
        value: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.events([(unit_id, at_ms)], name=name, id_type=id_type, value=value, metadata=metadata)

    def events(
        self,
        rows: list[tuple[str, int]],
        *,
        name: str = "purchase",
        id_type: str = "userID",
        value: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        values = [
            {
                "id_type": id_type,
                "unit_id": unit_id,
                "event_name": name,
                "value": value,
                "metadata": metadata,
                "time_ms": at_ms,
                "received_ms": at_ms,
                "dedup_key": f"k{next(_keys)}-{json.dumps([unit_id, at_ms, name])[:40]}",
            }
            for unit_id, at_ms in rows
        ]
        with self.db.write() as conn:
            conn.execute(events_table.insert(), values)


@pytest.fixture
def env(database_url: str) -> Iterator[Env]:
    db = Database.from_url(database_url)
    migrate.upgrade(db.engine)
    yield Env(db=db, clock=FixedClock(START_MS))
    db.dispose()


@pytest.fixture
def sqlite_env(sqlite_url: str) -> Iterator[Env]:
    db = Database.from_url(sqlite_url)
    migrate.upgrade(db.engine)
    yield Env(db=db, clock=FixedClock(START_MS))
    db.dispose()
