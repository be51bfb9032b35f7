"""The real SDKs' own `log_event` batches (gzip, statsigMetadata, their exposure format) land in the
store: one unit per user with the variant the SDK served, and one event row per id type."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from openautotune.store.ingest_tables import events_table, exposures_table, units_table
from tests.e2e.live import ROOT, LiveServer, sdk_environment

pytestmark = pytest.mark.e2e
USERS = 40


def _run_sdk(kind: str, server: LiveServer, config: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.sdk_logger", kind, server.url, server.server_key, config, str(USERS)],
        cwd=ROOT,
        env=sdk_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("kind", ["legacy", "core"])
def test_sdk_exposures_and_events_are_stored(shared_live_server: LiveServer, kind: str) -> None:
    live_server = shared_live_server  # other tests add their own autotunes: read only ours below
    with live_server.console() as console:
        body = {
            "name": f"ingest_e2e_{kind}",
            "variants": [{"name": "red", "json": {"c": "red"}}, {"name": "blue", "json": {"c": "blue"}}],
            "successEvent": "click",
            "explorationWindow": "24hr",
            "attributionWindow": "1hr",
            "winnerThreshold": "95%",
        }
        created = console.post("/console/v1/autotunes", json=body).json()["data"]
        assert console.put(f"/console/v1/autotunes/{created['id']}/start").status_code == 200
    variant_ids = {variant["id"] for variant in created["variants"]}

    served = _run_sdk(kind, live_server, created["id"])

    assert set(served.values()) <= variant_ids
    prefix = "ingest-ls" if kind == "legacy" else "ingest-cs"
    ours = [f"ingest-{kind}-{i}" for i in range(USERS)] + [f"{prefix}-{i}" for i in range(USERS)]
    with live_server.db.read() as conn:
        units = {
            row.unit_id: row
            for row in conn.execute(sa.select(units_table).where(units_table.c.autotune_id == created["id"]))
        }
        exposures = conn.execute(sa.select(exposures_table).where(exposures_table.c.autotune_id == created["id"])).all()
        events = conn.execute(
            sa.select(events_table.c.id_type, events_table.c.unit_id, events_table.c.value).where(
                events_table.c.unit_id.in_(ours), events_table.c.event_name == "click"
            )
        ).all()
    assert {unit_id: row.variant_id for unit_id, row in units.items()} == served
    assert all(row.allocation_version == 1 and row.run == 1 for row in units.values())
    assert all(row.features["userID"] == unit_id for unit_id, row in units.items())
    assert len(exposures) == USERS and all(row.analysable for row in exposures)
    expected = {("userID", f"ingest-{kind}-{i}", str(i)) for i in range(USERS)}
    expected |= {("stableID", f"{prefix}-{i}", str(i)) for i in range(USERS)}
    assert {(e.id_type, e.unit_id, e.value) for e in events} == expected
