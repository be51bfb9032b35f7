"""Shared fixtures: a fresh database on SQLite and PostgreSQL, and an app client.

PostgreSQL tests read OPENAUTOTUNE_TEST_POSTGRES_URL. Unset, the run starts a throwaway PostgreSQL
server of its own (tests/services/postgres.py) and removes it at the end; only when PostgreSQL's server
binaries are missing do those tests skip, with the reason. Set but unreachable, they fail: a run must
never pass by skipping them.
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
from tests.services.postgres import ThrowawayPostgres, Unavailable

POSTGRES_ENV = "OPENAUTOTUNE_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]
_throwaway: ThrowawayPostgres | None = None
_unavailable_reason = ""


def pytest_configure(config: pytest.Config) -> None:
    """Start the throwaway PostgreSQL once, in the process that spawns the xdist workers (they inherit
    the URL through the environment), unless a URL was given."""
    global _throwaway, _unavailable_reason  # noqa: PLW0603 - one server for the whole run
    if os.environ.get(POSTGRES_ENV) or hasattr(config, "workerinput"):
        return
    try:
        _throwaway = ThrowawayPostgres.start()
    except Unavailable as error:
        _unavailable_reason = str(error)
        os.environ[f"{POSTGRES_ENV}_UNAVAILABLE"] = _unavailable_reason
        return
    os.environ[POSTGRES_ENV] = _throwaway.url


def pytest_unconfigure(config: pytest.Config) -> None:
    """Runs after the last test, after a failure and after Ctrl-C alike."""
    global _throwaway  # noqa: PLW0603
    if _throwaway is not None:
        _throwaway.stop()
        os.environ.pop(POSTGRES_ENV, None)
        _throwaway = None


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture(scope="session")
def _postgres_server() -> str:
    url = postgres_url()
    if url is None:
        reason = os.environ.get(f"{POSTGRES_ENV}_UNAVAILABLE", "no server")
        pytest.skip(f"PostgreSQL tests: could not start a throwaway server ({reason}); or set {POSTGRES_ENV}")
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
