"""Event stores for the store tests: SQLite, PostgreSQL, chdb, one 18.16 server, a two-shard 18.16 cluster.

The two clickhouse-server processes start once per session (about a second) and each test gets its own
database on them, so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openautotune.store import migrate
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.database import Database
from openautotune.store.event_store import EventStore
from openautotune.store.events import SqlEvents
from tests.conftest import _postgres_schema_url
from tests.services.clickhouse import ThrowawayCluster, Unavailable

STORES = ["sqlite", "postgresql", "chdb", "clickhouse", "cluster"]


@pytest.fixture(scope="session")
def clickhouse_cluster() -> Iterator[ThrowawayCluster]:
    try:
        cluster = ThrowawayCluster.start()
    except Unavailable as error:
        pytest.skip(f"ClickHouse server tests: {error}")
    yield cluster
    cluster.stop()


def _sql_store(url: str) -> SqlEvents:
    db = Database.from_url(url)
    migrate.upgrade(db.engine)
    return SqlEvents(db)


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    store: EventStore
    if kind == "sqlite":
        store = _sql_store(f"sqlite:///{tmp_path / 'main.db'}")
        yield store
        store.db.dispose()  # type: ignore[attr-defined]
        return
    if kind == "postgresql":
        base = request.getfixturevalue("_postgres_server")
        for url in _postgres_schema_url(base):
            store = _sql_store(url)
            yield store
            store.db.dispose()  # type: ignore[attr-defined]
        return
    if kind == "chdb":
        store = ClickHouseEvents(f"chdb://{tmp_path / 'chdb'}")
    else:
        cluster: ThrowawayCluster = request.getfixturevalue("clickhouse_cluster")
        database = f"t_{uuid.uuid4().hex[:12]}"
        suffix = "?cluster=openautotune" if kind == "cluster" else ""
        store = ClickHouseEvents(cluster.url(0, database) + suffix)
    store.migrate(0)
    yield store
    store.close()


@pytest.fixture(params=STORES)
def event_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    yield from open_store(request.param, request, tmp_path)
