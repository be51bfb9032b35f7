"""Rate limits per key (console-api.md, "Rate limits"), on SQLite and PostgreSQL: the 101st mutation in
10 s is a 429 with Retry-After; reads, SDK traffic and other keys keep their own budgets; two server
processes on one database share each budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service
from openautotune.service.rate_limits import BatchedLimiter, Budget, ExactLimiter, parse_budgets
from openautotune.service.rate_limits.counters import DatabaseCounters
from openautotune.testing import TestApp, make_test_app
from tests.api.helpers import BASE, created_id

TOO_MANY = "Too many requests. Retry after {} seconds."


@pytest.fixture
def limited_app(database_url: str) -> Iterator[TestApp]:
    made = make_test_app(
        database_url, rate_limit_mutations="100/10s,900/15m", rate_limit_reads="1000/10s", rate_limit_sdk="50/10s"
    )
    yield made
    made.db.dispose()


@pytest.fixture
def lclient(limited_app: TestApp) -> Iterator[TestClient]:
    with TestClient(limited_app.app) as test_client:
        yield test_client


def _patch(client: TestClient, app: TestApp, autotune_id: str, n: int, headers: dict[str, str] | None = None) -> int:
    response = client.patch(
        f"{BASE}/{autotune_id}", json={"description": f"edit {n}"}, headers=headers or app.console_headers()
    )
    return response.status_code


def _specs(client: TestClient, app: TestApp) -> int:
    return client.get(f"/v1/download_config_specs/{app.server_key}.json").status_code


def test_the_101st_mutation_in_10_seconds_is_refused(lclient: TestClient, limited_app: TestApp) -> None:
    app = limited_app
    autotune_id = created_id(lclient, app)  # the first mutation
    assert [_patch(lclient, app, autotune_id, n) for n in range(99)] == [200] * 99
    app.clock.advance(3_000)
    refused = lclient.patch(
        f"{BASE}/{autotune_id}", json={"description": "one too many"}, headers=app.console_headers()
    )
    assert refused.status_code == 429
    assert refused.json() == {"status": 429, "message": TOO_MANY.format(7)}
    assert refused.headers["Retry-After"] == "7"  # the first of the 100 leaves the window in 7 s
    assert lclient.get(f"{BASE}/{autotune_id}", headers=app.console_headers()).json()["data"]["description"] == (
        "edit 98"
    )
    # Reads, SDK traffic and another key are unaffected by this key's burst.
    assert lclient.get(f"{BASE}/{autotune_id}", headers=app.console_headers()).status_code == 200
    assert _specs(lclient, app) == 200
    other = {"STATSIG-API-KEY": key_service.create_key(app.db, app.clock, KeyKind.CONSOLE).secret}
    assert _patch(lclient, app, autotune_id, 100, other) == 200
    # A refused request is not counted: once the window moves on, the key may act again.
    app.clock.advance(7_000)
    assert _patch(lclient, app, autotune_id, 101) == 200


def test_the_15_minute_budget(database_url: str) -> None:
    app = make_test_app(database_url, rate_limit_mutations="2/10s,4/15m")
    with TestClient(app.app) as client:
        autotune_id = created_id(client, app)
        assert [_patch(client, app, autotune_id, n) for n in range(2)] == [200, 429]  # the creation counts
        app.clock.advance(10_000)
        assert [_patch(client, app, autotune_id, n) for n in range(2)] == [200, 200]  # a new 10 s span
        app.clock.advance(10_000)
        refused = client.patch(f"{BASE}/{autotune_id}", json={"description": "x"}, headers=app.console_headers())
        assert refused.status_code == 429  # 2 per 10 s would allow it; 4 in 15 minutes does not
        assert refused.headers["Retry-After"] == str(15 * 60 - 20)  # when the creation leaves the 15 minutes
    app.db.dispose()


def test_read_only_key_is_limited_too_and_still_forbidden(database_url: str) -> None:
    app = make_test_app(database_url, rate_limit_mutations="2/10s")
    with TestClient(app.app) as client:
        headers = app.console_headers(read_only=True)
        assert [client.put(f"{BASE}/x/start", headers=headers).status_code for _ in range(3)] == [403, 403, 429]
    app.db.dispose()


def test_sdk_budget_is_per_key_and_apart_from_the_console(lclient: TestClient, limited_app: TestApp) -> None:
    app = limited_app
    assert [_specs(lclient, app) for _ in range(50)] == [200] * 50
    refused = lclient.get(f"/v1/download_config_specs/{app.server_key}.json")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"
    assert refused.json() == {"status": 429, "message": TOO_MANY.format(10)}
    assert lclient.get(BASE, headers=app.console_headers()).status_code == 200
    other = key_service.create_key(app.db, app.clock, KeyKind.SERVER).secret
    assert lclient.get(f"/v1/download_config_specs/{other}.json").status_code == 200
    app.clock.advance(10_000)
    assert _specs(lclient, app) == 200


def test_console_burst_leaves_sdk_traffic_alone(lclient: TestClient, limited_app: TestApp) -> None:
    app = limited_app
    autotune_id = created_id(lclient, app)
    statuses = [_patch(lclient, app, autotune_id, n) for n in range(105)]
    assert statuses.count(429) == 6
    assert [_specs(lclient, app) for _ in range(20)] == [200] * 20


def test_bad_budget_settings_stop_the_app(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="OPENAUTOTUNE_RATE_LIMIT_MUTATIONS"):
        make_test_app(sqlite_url, rate_limit_mutations="100 per 10s")


def test_batched_limiters_in_two_processes_share_one_window(sqlite_url: str) -> None:
    """Two limiters (as two processes would hold) over one database: together they admit the budget,
    give or take what each admitted since its last flush."""
    app = make_test_app(sqlite_url)
    counters = DatabaseCounters(app.db)
    budgets = parse_budgets("100/10s", "test")
    one, two = (BatchedLimiter(counters, budgets, app.clock, sync_ms=0, background=False) for _ in range(2))
    admitted = sum(limiter.check("sdk:k").allowed for _ in range(80) for limiter in (one, two))
    assert 100 <= admitted <= 101  # the other process may hold one admitted request not yet flushed
    app.clock.advance(10_000)
    assert one.check("sdk:k").allowed and two.check("sdk:k").allowed
    app.db.dispose()


class _SlowCounters:
    """A shared counter store that takes its time (a busy database, a far Redis)."""

    def __init__(self) -> None:
        self.total = 0
        self.release = threading.Event()

    def admit(self, scope: str, budgets: tuple[Budget, ...], now_ms: int) -> int | None:
        raise AssertionError("batched limiters never admit")

    def add(self, scope: str, window_ms: int, window_start_ms: int, delta: int) -> int:
        self.release.wait(10)
        self.total += delta
        return self.total


def test_a_batched_limiter_flushes_off_the_request_path(sqlite_url: str) -> None:
    """A due flush runs on the limiter's own thread: checks never wait for the counter store, the
    budget is still kept exactly within the process, and the counts reach the store."""
    app = make_test_app(sqlite_url)
    counters = _SlowCounters()
    limiter = BatchedLimiter(counters, parse_budgets("10/10s", "test"), app.clock, sync_ms=0)
    started = time.monotonic()
    verdicts = [limiter.check("sdk:k").allowed for _ in range(15)]
    assert time.monotonic() - started < 1.0  # the store is still blocked
    assert verdicts == [True] * 10 + [False] * 5
    counters.release.set()
    deadline = time.monotonic() + 10
    while counters.total < 10 and time.monotonic() < deadline:
        limiter.check("sdk:k")  # a later check starts the next flush once the first is done
        time.sleep(0.01)
    assert counters.total == 10  # refused requests are not counted
    app.db.dispose()


def test_budgets_are_parsed_strictly() -> None:
    assert parse_budgets("100/10s, 900/15m", "x") == (Budget(100, 10_000), Budget(900, 900_000))
    assert parse_budgets("5/h", "x") == (Budget(5, 3_600_000),)
    assert parse_budgets("off", "x") == () == parse_budgets("", "x")
    for bad in ("100", "0/10s", "100/0s", "100/10d", "-1/10s", "100/10s,"):
        with pytest.raises(ValueError, match="is not a budget"):
            parse_budgets(bad, "x")


def test_counting_leaves_sqlite_connections_fully_durable(sqlite_url: str) -> None:
    """The limiter's commits skip the flush to disk; the connection goes back to the pool with
    synchronous=FULL, so the data's own commits keep their durability."""
    app = make_test_app(sqlite_url)
    limiter = ExactLimiter(DatabaseCounters(app.db), parse_budgets("5/10s", "test"), app.clock)
    assert limiter.check("console-write:k").allowed
    for _ in range(3):  # whichever pooled connection comes back
        with app.db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    app.db.dispose()
