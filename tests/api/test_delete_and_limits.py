"""Deleting an autotune forgets its data; SDK batches may be larger than Console API bodies."""

from __future__ import annotations

import gzip
import os

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient

from openautotune.store.ingest_tables import exposures_table, units_table
from openautotune.testing import TestApp
from tests.api.helpers import BASE, created_id, put


def _exposure(autotune_id: str, rule_id: str, user_id: str, time_ms: int) -> dict[str, object]:
    return {
        "eventName": "statsig::config_exposure",
        "user": {"userID": user_id},
        "time": time_ms,
        "metadata": {"config": autotune_id, "ruleID": rule_id, "rulePassed": "true"},
    }


def _count(app: TestApp, table: sa.Table) -> int:
    with app.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_recreated_namesake_does_not_inherit_units(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    put(client, test_app, f"{autotune_id}/start")
    variant = client.get(f"{BASE}/{autotune_id}", headers=test_app.console_headers()).json()["data"]["variants"][0]
    batch = {"events": [_exposure(autotune_id, variant["id"], "u1", test_app.clock.now_ms())]}
    answer = client.post("/v1/log_event", json=batch, headers={"STATSIG-API-KEY": test_app.server_key})
    assert answer.status_code == 200, answer.text
    assert _count(test_app, units_table) == 1
    client.delete(f"{BASE}/{autotune_id}", headers=test_app.console_headers())
    assert _count(test_app, units_table) == 0
    assert _count(test_app, exposures_table) == 0
    created_id(client, test_app)
    assert _count(test_app, units_table) == 0


def test_sdk_batches_over_one_mebibyte_are_accepted(client: TestClient, test_app: TestApp) -> None:
    # Incompressible padding keeps the gzip body itself over 1 MiB, as a large batch can be.
    events = [
        {
            "eventName": "view",
            "user": {"userID": f"u{i}"},
            "time": test_app.clock.now_ms(),
            "metadata": {"pad": os.urandom(1200).hex()},
        }
        for i in range(1_000)
    ]
    payload = gzip.compress(orjson.dumps({"events": events}))
    assert len(payload) > 1024 * 1024
    headers = {"STATSIG-API-KEY": test_app.server_key, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    answer = client.post("/v1/log_event", content=payload, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1_000
