"""Two real server processes on one database share each key's budget, with the counters in the
database (the default) or in Redis (OPENAUTOTUNE_REDIS_URL; the local server on 6379, skipped with
the reason when it does not answer)."""

from __future__ import annotations

import os
import socket
import uuid

import httpx
import pytest

from openautotune.service.rate_limits import Budget
from tests.api.helpers import BUTTON_COLOR_TEST as BODY_FOR_LIVE
from tests.e2e.live import LiveServer

REDIS_URL = os.environ.get("OPENAUTOTUNE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BUDGET = 30


def _redis_or_skip() -> str:
    host_port = REDIS_URL.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 6379)), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(16).startswith(b"+PONG"):
                raise OSError("no PONG")
    except OSError as error:
        pytest.skip(f"Redis at {REDIS_URL} does not answer ({error}); set OPENAUTOTUNE_TEST_REDIS_URL")
    return REDIS_URL


def test_two_processes_share_the_mutation_budget(database_url: str) -> None:
    _share_budget(database_url, {})


def test_two_processes_share_the_budget_through_redis(sqlite_url: str) -> None:
    _share_budget(sqlite_url, {"OPENAUTOTUNE_REDIS_URL": _redis_or_skip()})


def _share_budget(database_url: str, extra_env: dict[str, str]) -> None:
    env = {"OPENAUTOTUNE_RATE_LIMIT_MUTATIONS": f"{BUDGET}/60s", **extra_env}
    first = LiveServer.start(database_url, env=env)
    try:
        second = LiveServer.start(database_url, env=env)
        try:
            headers = {"STATSIG-API-KEY": first.console_key}  # keys live in the shared database
            created = httpx.post(f"{first.url}/console/v1/autotunes", json=BODY_FOR_LIVE, headers=headers)
            assert created.status_code == 201, created.text
            path = f"/console/v1/autotunes/{created.json()['data']['id']}"
            statuses = []
            for n in range(BUDGET + 9):
                server = (first, second)[n % 2]
                answer = httpx.patch(f"{server.url}{path}", json={"description": f"{n}"}, headers=headers)
                statuses.append(answer.status_code)
                if answer.status_code == 429:
                    assert int(answer.headers["Retry-After"]) >= 1
            # The creation and BUDGET - 1 edits, whichever process served them; every later one refused.
            assert statuses == [200] * (BUDGET - 1) + [429] * 10
            # SDK traffic of the same deployment is unaffected.
            specs = httpx.get(f"{second.url}/v1/download_config_specs/{first.server_key}.json")
            assert specs.status_code == 200
        finally:
            second.stop()
    finally:
        first.stop()


def test_redis_counters_sliding_log_and_windows() -> None:
    from openautotune.service.rate_limits.counters import RedisCounters

    counters = RedisCounters(_redis_or_skip())
    scope = f"test:{uuid.uuid4().hex}"
    budgets = (Budget(3, 10_000), Budget(4, 60_000))
    assert [counters.admit(scope, budgets, 1_000 + n) for n in range(3)] == [None, None, None]
    assert counters.admit(scope, budgets, 2_000) == 9_000  # the hit at 1_000 leaves the 10 s span at 11_000
    assert counters.admit(scope, budgets, 11_001) is None  # 4 in a minute now
    assert counters.admit(scope, budgets, 20_000) == 1_000 + 60_000 - 20_000
    assert counters.add(scope, 10_000, 0, 5) == 5
    assert counters.add(scope, 10_000, 0, 2) == 7
    assert counters.add(scope, 10_000, 10_000, 1) == 1
    counters.client.delete(f"openautotune:ratelimit:log:{scope}")
