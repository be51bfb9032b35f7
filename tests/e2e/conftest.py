"""Fixtures for end-to-end tests: a real server process on a free loopback port.

- `live_server`: a fresh SQLite database served by `python -m openautotune serve` (see
  `tests/e2e/live.py` for what a `LiveServer` offers; `LiveServer.start(url, env=...)` starts one on
  any database, e.g. the `database_url` fixture for PostgreSQL). Starting a server takes seconds.
- `shared_live_server`: one server for the whole session, for tests that only add autotunes under
  names no other test uses (and never list or count all of them). Much faster than `live_server`.
- `postgres_live_server`: a fresh PostgreSQL schema served the same way (skips without
  OPENAUTOTUNE_TEST_POSTGRES_URL, like every PostgreSQL test).
- `sdk_env`: the environment an SDK process needs so it can only reach loopback.

Mark tests that use them with `@pytest.mark.e2e`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _postgres_schema_url
from tests.e2e.live import LiveServer, sdk_environment


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer.start(f"sqlite:///{tmp_path / 'live.db'}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer.start(f"sqlite:///{tmp_path_factory.mktemp('shared-live') / 'live.db'}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    base_url: str = request.getfixturevalue("_postgres_server")
    for url in _postgres_schema_url(base_url):
        server = LiveServer.start(url)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def sdk_env() -> dict[str, str]:
    return sdk_environment()
