"""Shared fixtures: a fresh database on SQLite and (when configured) PostgreSQL, and an app client.

PostgreSQL tests read OPENAUTOTUNE_TEST_POSTGRES_URL. Unset (a laptop without PostgreSQL), they
skip with a reason; set but unreachable, they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from openautotune.store.database import normalise_url
from openautotune.testing import TestApp, make_test_app

POSTGRES_ENV = "OPENAUTOTUNE_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture(scope="session")
def _postgres_server() -> str:
    url = postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (see docs/operations.md)")
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        pytest.fail(f"{POSTGRES_ENV} is set but PostgreSQL is unreachable: {error}")
    finally:
        engine.dispose()
    return normalise_url(url)


def _postgres_schema_url(base_url: str) -> Iterator[str]:
    """A private schema per test: isolated like a new database, but created in milliseconds."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'openautotune.db'}"
        return
    base = request.getfixturevalue("_postgres_server")
    yield from _postgres_schema_url(base)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'openautotune.db'}"


@pytest.fixture
def test_app(database_url: str) -> Iterator[TestApp]:
    made = make_test_app(database_url)
    yield made
    made.db.dispose()


@pytest.fixture
def client(test_app: TestApp) -> Iterator[TestClient]:
    with TestClient(test_app.app) as test_client:
        yield test_client
