"""A server worth fuzzing: autotunes in every state, created through the Console API of a live server.

`populate(console, db, count)` creates `count` autotunes cycling through six kinds (draft, running, finished,
running with user-id overrides, contextual, contextual with a trained policy) with 2-4 variants, sizes
or not, `userID` or `companyID` units, occurrence or value metrics. The fuzzers (tests/api/
test_schemathesis.py, `make fuzz`, bench/soak.py) aim some of their requests at these ids so that
generated requests reach real rows, not only 404s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from openautotune.clock import Clock, SystemClock
from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.store.database import Database
from openautotune.store.ingest_tables import events_table, units_table

HOUR_MS = 3_600_000
FUZZ_ENV = "OPENAUTOTUNE_FUZZ_EXAMPLES"  # set by `make fuzz`: a larger budget, and 50 autotunes


def fuzz_budget(default: int) -> int:
    """Examples per fuzzed operation: `default` in `make test`, $OPENAUTOTUNE_FUZZ_EXAMPLES in `make fuzz`."""
    return int(os.environ.get(FUZZ_ENV) or default)


def fuzzing() -> bool:
    return bool(os.environ.get(FUZZ_ENV))


KINDS = ("draft", "running", "finished", "overridden", "contextual", "trained")
COLORS = ("red", "green", "blue", "amber")


@dataclass
class World:
    """The ids `populate` created, by kind (see KINDS)."""

    by_kind: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [autotune_id for ids in self.by_kind.values() for autotune_id in ids]

    def add(self, kind: str, autotune_id: str) -> None:
        self.by_kind.setdefault(kind, []).append(autotune_id)


def autotune_body(number: int, kind: str) -> dict[str, Any]:
    variants = [{"name": color, "json": {"color": color, "n": number}} for color in COLORS[: 2 + number % 3]]
    if number % 2:  # explicit sizes, uneven: the first variant takes what the others leave
        rest = 100 // len(variants)
        for variant in variants:
            variant["size"] = rest
        variants[0]["size"] = 100 - rest * (len(variants) - 1)
    body: dict[str, Any] = {
        "name": f"fuzz_{kind}_{number}",
        "description": f"Seeded {kind} autotune number {number}.",
        "variants": variants,
        "successEvent": "purchase" if number % 4 == 1 else "click",
        "explorationWindow": "1hr" if kind == "trained" else "24hr",
        "attributionWindow": "1hr",
        "winnerThreshold": "95%",
    }
    if number % 4 == 1:
        body["optimizationParameter"] = "value"
    if kind in ("contextual", "trained"):
        body.update(isContextual=True, featureList=["country", "plan"])
    elif number % 3 == 2:
        body["idType"] = "companyID"
    return body


def _create(console: httpx.Client, number: int, kind: str) -> dict[str, Any]:
    created = console.post("/console/v1/autotunes", json=autotune_body(number, kind))
    assert created.status_code == 201, created.text
    data: dict[str, Any] = created.json()["data"]
    if kind != "draft":
        assert console.put(f"/console/v1/autotunes/{data['id']}/start").status_code == 200
    if kind == "finished":
        decision = {"id": data["variants"][-1]["id"], "decisionReason": "seeded"}
        answer = console.put(f"/console/v1/autotunes/{data['id']}/make_decision", json=decision)
        assert answer.status_code == 200, answer.text
    if kind == "overridden":
        overrides = {
            "userIDOverrides": [
                {"groupID": data["variants"][0]["id"], "ids": [f"vip{number}", "alice"]},
                {"groupID": data["variants"][1]["id"], "ids": ["bob"], "environment": "production"},
            ]
        }
        answer = console.post(f"/console/v1/autotunes/{data['id']}/overrides", json=overrides)
        assert answer.status_code == 200, answer.text
    return data


def train_contextual(db: Database, autotune_id: str, *, clock: Clock | None = None, units: int = 400) -> None:
    """Give a started contextual autotune matured units and success events, then run its first update
    (three hours after the start) so that it publishes a trained policy."""
    autotune = autotune_service.get(db, autotune_id)
    start = autotune.started_at_ms
    assert start is not None
    variants = [v.id for v in autotune.definition.variants]
    rng = np.random.default_rng(3)
    unit_rows, event_rows = [], []
    for i in range(units):
        country = "DE" if i % 2 else "FR"
        k = int(rng.integers(0, len(variants)))
        unit = f"trained-{i}"
        unit_rows.append(
            {
                "autotune_id": autotune_id,
                "run": autotune.run,
                "unit_id": unit,
                "variant_id": variants[k],
                "first_exposure_ms": start + i,
                "allocation_version": autotune.allocation_version,
                "explore": True,
                "features": {"userID": unit, "country": country, "custom": {"plan": "pro" if i % 3 else "free"}},
                "propensity": None,
            }
        )
        if rng.random() < (0.6 if (country == "DE") == (k == 0) else 0.1):
            event_rows.append(
                {
                    "id_type": "userID",
                    "unit_id": unit,
                    "event_name": autotune.definition.success_event,
                    "value": "1",
                    "metadata": None,
                    "time_ms": start + 60_000,
                    "received_ms": start + 60_000,
                    "dedup_key": f"{autotune_id}-{i}",
                }
            )
    with db.write() as conn:
        conn.execute(units_table.insert(), unit_rows)
        if event_rows:
            conn.execute(events_table.insert(), event_rows)
    outcome = update_autotune(db, clock or SystemClock(), autotune_id, start + 3 * HOUR_MS)
    assert outcome.updated, outcome


def populate(console: httpx.Client, db: Database, count: int) -> World:
    """`count` autotunes of every kind, created through `console` (a client holding a console key, on a
    live server or a TestClient) on `db` (at most two trained contextual ones: training costs)."""
    world = World()
    for number in range(count):
        kind = KINDS[number % len(KINDS)]
        if kind == "trained" and len(world.by_kind.get("trained", [])) >= 2:
            kind = "contextual"
        data = _create(console, number, kind)
        if kind == "trained":
            train_contextual(db, data["id"])
        world.add(kind, data["id"])
    return world
