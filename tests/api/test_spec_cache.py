"""The spec cache renders once per change, checks at most every `specs_refresh_seconds`, and lets a
second server process on the same database see a change made through the first."""

from __future__ import annotations

from collections.abc import Collection, Iterator

import pytest
from fastapi.testclient import TestClient

from openautotune.api import spec_cache
from openautotune.api.app import create_app
from openautotune.settings import Settings
from openautotune.store.database import Database
from openautotune.testing import TestApp
from tests.api.helpers import created_id, put


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    clock = Monotonic()
    monkeypatch.setattr(spec_cache.time, "monotonic", clock)
    return clock


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counted: list[int] = []
    real = spec_cache.publish

    def counting(state: spec_cache.spec_service.SpecState, suspects: Collection[str] = ()) -> spec_cache.Published:
        counted.append(state.changed_ms)
        return real(state, suspects)

    monkeypatch.setattr(spec_cache, "publish", counting)
    return counted


def test_renders_once_per_change_and_checks_at_most_every_interval(
    test_app: TestApp, monotonic: Monotonic, renders: list[int]
) -> None:
    cache = spec_cache.SpecCache(test_app.db, refresh_seconds=1.0)
    with TestClient(test_app.app) as client:
        first = cache.current()
        assert cache.current() is first and cache.fresh() is first and len(renders) == 1
        test_app.clock.advance(10)
        autotune_id = created_id(client, test_app)
        assert cache.current() is first  # within the interval: no look at the database
        monotonic.now += 1.0
        second = cache.current()
        assert second is not first and second.time_ms > first.time_ms and len(renders) == 2
        assert second.evaluator.evaluate({"userID": "u"}, autotune_id) is not None
        monotonic.now += 5.0
        assert cache.fresh() is None
        assert cache.current() is second and len(renders) == 2  # checked, nothing moved: no render
        test_app.clock.advance(10)
        assert put(client, test_app, f"{autotune_id}/start").status_code == 200
        monotonic.now += 1.0
        assert cache.current().time_ms > second.time_ms and len(renders) == 3


@pytest.fixture
def second_process(test_app: TestApp, database_url: str) -> Iterator[TestClient]:
    """Another server on the same database, as a second process would be."""
    db = Database.from_url(database_url)
    app = create_app(Settings(database_url=database_url, specs_refresh_seconds=0.0), db=db, clock=test_app.clock)
    with TestClient(app) as client:
        yield client
    db.dispose()


def test_a_change_through_one_process_reaches_another(
    client: TestClient, test_app: TestApp, second_process: TestClient
) -> None:
    url = f"/v1/download_config_specs/{test_app.server_key}.json"
    before = second_process.get(url).json()
    autotune_id = created_id(client, test_app)
    after = second_process.get(url).json()
    assert after["time"] > before["time"]
    assert [entry["name"] for entry in after["dynamic_configs"]] == [autotune_id]
