"""Fixtures for ingestion tests: an app with autotunes in each lifecycle state, and batch helpers."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from openautotune.domain.autotune import Actor, Autotune
from openautotune.service import autotunes
from openautotune.service.autotunes import VariantInput
from openautotune.store.ingest_tables import events_table, exposures_table, units_table
from openautotune.testing import TestApp

ACTOR = Actor(id="tests", name="tests")
LOG_EVENT = "/v1/log_event"


def create_autotune(app: TestApp, name: str, *, id_type: str = "userID", start: bool = True) -> Autotune:
    fields: dict[str, Any] = {
        "name": name,
        "variants": [VariantInput("red", {"color": "red"}), VariantInput("blue", {"color": "blue"})],
        "success_event": "click",
        "exploration_window": "24hr",
        "attribution_window": "1hr",
        "winner_threshold": "95%",
        "id_type": id_type,
    }
    made = autotunes.create(app.db, app.clock, ACTOR, fields)
    if start:
        made = autotunes.start(app.db, app.clock, ACTOR, made.id)
    return made


@dataclass
class Ingest:
    """A test app, its client, and shortcuts to post batches and read back what was stored."""

    app: TestApp
    client: TestClient

    @property
    def now(self) -> int:
        return self.app.clock.now_ms()

    def post(self, events: Any, *, key: str | None = None, gzipped: bool = False, path: str = LOG_EVENT) -> Response:
        body = orjson.dumps({"events": events, "statsigMetadata": {"sdkType": "py-server", "sdkVersion": "0.72.1"}})
        return self.post_raw(body, key=key, gzipped=gzipped, path=path)

    def post_raw(
        self, body: bytes, *, key: str | None = None, gzipped: bool = False, path: str = LOG_EVENT
    ) -> Response:
        headers = {"STATSIG-API-KEY": key or self.app.server_key, "Content-Type": "application/json"}
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return self.client.post(path, content=body, headers=headers)

    def rows(self, table: sa.Table, *order: str) -> list[dict[str, Any]]:
        query = sa.select(table)
        if order:
            query = query.order_by(*(table.c[name] for name in order))
        with self.app.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def units(self) -> list[dict[str, Any]]:
        return self.rows(units_table, "autotune_id", "run", "unit_id")

    def exposures(self) -> list[dict[str, Any]]:
        return self.rows(exposures_table, "id")

    def events(self) -> list[dict[str, Any]]:
        return self.rows(events_table, "id")

    def counts(self) -> tuple[int, int, int]:
        return len(self.exposures()), len(self.units()), len(self.events())


@pytest.fixture
def ingest(test_app: TestApp) -> Iterator[Ingest]:
    with TestClient(test_app.app) as client:
        yield Ingest(test_app, client)


def exposure(
    config: str,
    rule_id: str,
    *,
    user: dict[str, Any] | None = None,
    time: int,
    version: Any = "1",
    **metadata: Any,
) -> dict[str, Any]:
    """A `statsig::config_exposure` as the legacy SDK logs it."""
    return {
        "eventName": "statsig::config_exposure",
        "user": user if user is not None else {"userID": "u1"},
        "time": time,
        "metadata": {
            "config": config,
            "ruleID": rule_id,
            "rulePassed": "true",
            "configVersion": version,
            "reason": "Network",
            **metadata,
        },
        "secondaryExposures": [],
    }


def custom_event(
    name: str, *, user: dict[str, Any], time: int, value: Any = None, metadata: Any = None
) -> dict[str, Any]:
    event: dict[str, Any] = {"eventName": name, "user": user, "time": time}
    if value is not None:
        event["value"] = value
    if metadata is not None:
        event["metadata"] = metadata
    return event
