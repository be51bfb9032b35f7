"""Shared by the dashboard tests: signing in with a TestClient, reading CSRF tokens, seeding records."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from openautotune.clock import FixedClock
from openautotune.domain.autotune import Actor, Autotune
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.store import updates
from openautotune.store.database import Database

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HOUR_MS = 3_600_000
ADMIN = Actor(id="test", name="TEST")


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> None:
    page = client.get("/login")
    answer = client.post(
        "/login", data={"key": key, "csrf_token": csrf_of(page.text), "next": "/"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def create(
    db: Database, clock: FixedClock, name: str = "Button color", variants: tuple[str, ...] = ("red", "blue")
) -> Autotune:
    fields: dict[str, Any] = {
        "name": name,
        "variants": [VariantInput(v, {"color": v}) for v in variants],
        "success_event": "click",
        "exploration_window": "24hr",
        "attribution_window": "1hr",
        "winner_threshold": "95%",
    }
    return autotune_service.create(db, clock, ADMIN, fields)


def record(
    autotune: Autotune, as_of_ms: int, stage: str, per_variant: list[tuple[int, int, float, float]]
) -> dict[str, Any]:
    """An engine-shaped update record: per variant (units, successes, P(best), weight)."""
    return {
        "asOf": as_of_ms,
        "stage": stage,
        "metric": "occurrence",
        "variants": [
            {
                "id": variant.id,
                "name": variant.name,
                "units": units,
                "successes": successes,
                "total": float(successes),
                "totalSq": float(successes),
                "mean": (successes + 1) / (units + 2),
                "ciLow": max(0.0, successes / units - 0.05) if units else 0.0,
                "ciHigh": min(1.0, successes / units + 0.05) if units else 1.0,
                "probabilityOfBest": pob,
                "weight": weight,
            }
            for variant, (units, successes, pob, weight) in zip(autotune.definition.variants, per_variant, strict=True)
        ],
    }


def insert_records(db: Database, autotune: Autotune, hours: int, start_ms: int) -> None:
    """`hours` hourly updates: red converts at 10%, blue at 12%; exploring for the first 24."""
    with db.write() as conn:
        for hour in range(1, hours + 1):
            units = 50 * hour
            red, blue = (units, units // 10, 0.3, 0.5), (units, units * 12 // 100, 0.7, 0.5)
            stage = "exploring" if hour < 24 else "exploiting"
            as_of = start_ms + hour * HOUR_MS
            updates.insert_record(
                conn,
                updates.UpdateRecord(
                    autotune_id=autotune.id,
                    incarnation_ms=autotune.created_ms,
                    run=autotune.run,
                    as_of_ms=as_of,
                    computed_ms=as_of,
                    stage=stage,
                    decision=None,
                    allocation_version=None,
                    record=record(autotune, as_of, stage, [red, blue]),
                ),
            )
