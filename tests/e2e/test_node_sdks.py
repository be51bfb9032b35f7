"""Statsig's Node server SDKs from npm against a real server: the legacy `statsig-node` (specs v1) and
`@statsig/statsig-node-core` 0.23.2 (specs v2; it sends its events with `Content-Encoding: zstd`).

Each evaluates 2,000 users as our evaluator does, and every event it logs is stored end to end.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import sqlalchemy as sa

from openautotune.serving.evaluate import Evaluator
from openautotune.store.ingest_tables import events_table
from tests.e2e.live import LiveServer, sdk_environment
from tests.e2e.npm_packages import NODE_DIR, node_executable, node_packages
from tests.e2e.test_js_client import stored_events, stored_exposures
from tests.e2e.test_legacy_sdk import create

pytestmark = pytest.mark.e2e

COUNT = 2000


def run_node_sdk(kind: str, server: LiveServer, autotune_id: str, event: str) -> list[list[Any]]:
    node = node_executable()
    node_packages()
    done = subprocess.run(
        [node, "run_node_sdk.js", kind, server.url, server.server_key, autotune_id, str(COUNT), event],
        cwd=NODE_DIR,
        env=sdk_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"{kind} Node SDK failed:\n{done.stdout}\n{done.stderr}"
    answer: dict[str, Any] = json.loads(lines[-1])
    results: list[list[Any]] = answer["results"]
    return results


@pytest.mark.parametrize("kind", ["legacy", "core"])
def test_node_sdks_agree_with_our_evaluator_and_their_events_are_stored(
    shared_live_server: LiveServer, kind: str
) -> None:
    server = shared_live_server
    autotune_id = create(server, f"node_{kind}_banner")["id"]
    event = f"node_{kind}_purchase"
    users = [f"node-{kind}-{i}" for i in range(COUNT)]
    evaluator = Evaluator.from_specs(server.v1_specs())

    results = run_node_sdk(kind, server, autotune_id, event)

    expected = []
    for user_id in users:
        evaluation = evaluator.evaluate({"userID": user_id}, autotune_id)
        assert evaluation is not None
        expected.append([evaluation.rule_id, evaluation.group_name])
    assert results == expected
    exposures = stored_exposures(server, autotune_id, COUNT)
    assert sorted((row.unit_id, row.variant_id) for row in exposures) == sorted(
        (user, rule) for user, (rule, _) in zip(users, expected, strict=True)
    )
    events = stored_events(server, event, COUNT)
    assert sorted((row.unit_id, row.value) for row in events) == sorted((user, str(i)) for i, user in enumerate(users))
    with server.db.read() as conn:  # each user carries only a userID: one row per event, no more
        assert conn.execute(sa.select(sa.func.count()).where(events_table.c.event_name == event)).scalar() == COUNT
