"""The whole loop with real parts: the real legacy SDK is served and logs exposures and conversions to a
real server; `openautotune update --at` (a real CLI process) declares the winner from what ingestion
stored; the results API reports it; the SDK then serves the winner to everyone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openautotune.clock import SystemClock
from tests.e2e.live import ROOT, LiveServer, SdkProcess, sdk_environment

pytestmark = pytest.mark.e2e
USERS = 60
HOUR = 3_600_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer.start(f"sqlite:///{tmp_path / 'live.db'}")
    try:
        yield live
    finally:
        live.stop()


def test_sdk_traffic_to_engine_winner_to_sdk(server: LiveServer) -> None:
    with server.console() as console:
        body = {
            "name": "engine_e2e",
            "variants": [{"name": "red", "json": {"c": "red"}}, {"name": "blue", "json": {"c": "blue"}}],
            "successEvent": "click",
            "explorationWindow": "1hr",
            "attributionWindow": "1",
            "attributionWindowUnit": "min",
            "winnerThreshold": "95%",
        }
        created = console.post("/console/v1/autotunes", json=body).json()["data"]
        assert console.put(f"/console/v1/autotunes/{created['id']}/start").status_code == 200
    red, blue = (variant["id"] for variant in created["variants"])

    sdk_args = [str(USERS), blue, "click"]
    done = subprocess.run(
        [sys.executable, "-m", "tests.engine.sdk_convert", server.url, server.server_key, created["id"], *sdk_args],
        cwd=ROOT,
        env=sdk_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    served = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    assert set(served.values()) == {red, blue}  # the exploration split served both

    as_of = SystemClock().now_ms() + 2 * HOUR  # after the 1-hour exploration and the 1-minute window
    target = ["--database-url", server.database_url]
    update = subprocess.run(
        [sys.executable, "-m", "openautotune", "update", "--at", str(as_of), "--autotune", created["id"], *target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "updated" in update.stdout, update.stdout

    with server.console() as console:
        results = console.get(f"/console/v1/autotunes/{created['id']}/results").json()["data"]
        autotune = console.get(f"/console/v1/autotunes/{created['id']}").json()["data"]
    assert results["stage"] == "finished" and results["asOf"] == as_of
    assert results["winner"] == {"id": blue, "name": "blue"} == autotune["winner"]
    by_name = {variant["name"]: variant for variant in results["variants"]}
    assert by_name["blue"]["units"] == by_name["blue"]["successes"] == sum(v == blue for v in served.values())
    assert by_name["red"]["units"] == sum(v == red for v in served.values())
    assert by_name["red"]["successes"] == 0
    assert by_name["blue"]["probabilityOfBest"] >= 0.95

    with SdkProcess("legacy", server) as sdk:
        users = [{"userID": user} for user in served]
        assert {rule_id for rule_id, _group, _value in sdk.evaluate(created["id"], users)} == {blue}
