"""Real `orders` tables for metric-source tests: in PostgreSQL (a private schema), a DuckDB file and a
SQLite file, each with its own column types (timestamptz, naive TIMESTAMP, epoch milliseconds)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import sqlalchemy as sa
from sqlalchemy.engine import make_url

PASSWORD = "hunter2-Sekr3t-pw"
Order = tuple[str, int, float | str | None]  # unit id, time (epoch ms), amount


def moment(ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)


@dataclass
class World:
    """One source database: its URL, how the source names its rows, and how to add, break and mend it."""

    kind: str
    url: str
    table: str | None = None
    query: str | None = None
    schema: str | None = None
    path: Path | None = None

    def source_fields(self) -> dict[str, str | None]:
        return {
            "url": self.url,
            "table": self.table,
            "query": self.query,
            "unit_id_column": "user_id",
            "timestamp_column": "created_at",
            "value_column": "amount",
        }

    def add(self, orders: list[Order]) -> None:
        if self.kind == "postgresql":
            engine = sa.create_engine(self.url)
            with engine.begin() as conn:
                conn.execute(
                    sa.text(f"INSERT INTO {self.schema}.orders (user_id, created_at, amount) VALUES (:u, :t, :a)"),
                    [{"u": u, "t": moment(t), "a": a} for u, t, a in orders],
                )
            engine.dispose()
        elif self.kind == "duckdb":
            with duckdb.connect(str(self.path)) as conn:
                conn.executemany(
                    "INSERT INTO orders VALUES (?, ?, ?)",
                    [(u, moment(t).replace(tzinfo=None), a) for u, t, a in orders],
                )
        else:
            engine = sa.create_engine(self.url)
            with engine.begin() as conn:
                conn.execute(
                    sa.text("INSERT INTO orders (user_id, created_ms, amount) VALUES (:u, :t, :a)"),
                    [{"u": int(u), "t": t, "a": a} for u, t, a in orders],
                )
            engine.dispose()

    def break_(self) -> None:
        """The source goes away: the table is renamed (PostgreSQL, SQLite) or the file moved (DuckDB)."""
        if self.kind == "duckdb":
            assert self.path is not None
            self.path.rename(self.path.with_suffix(".away"))
        else:
            self._sql("ALTER TABLE {t}orders RENAME TO orders_away")

    def mend(self) -> None:
        if self.kind == "duckdb":
            assert self.path is not None
            self.path.with_suffix(".away").rename(self.path)
        else:
            self._sql("ALTER TABLE {t}orders_away RENAME TO orders")

    def _sql(self, text: str) -> None:
        engine = sa.create_engine(self.url)
        with engine.begin() as conn:
            conn.execute(sa.text(text.format(t=f"{self.schema}." if self.schema else "")))
        engine.dispose()


def postgres_world(base_url: str) -> Iterator[World]:
    """`orders` in a private schema, read through a URL that carries a password (trust auth ignores it)."""
    schema = f"ms_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        conn.execute(
            sa.text(f"CREATE TABLE {schema}.orders (user_id text, created_at timestamptz, amount numeric(12, 2))")
        )
    url = make_url(base_url).set(password=PASSWORD).render_as_string(hide_password=False)
    try:
        yield World(kind="postgresql", url=url, table=f"{schema}.orders", schema=schema)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def duckdb_world(directory: Path) -> World:
    """A DuckDB file with `orders` (naive TIMESTAMP = UTC), read through a query with a cast."""
    path = directory / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE orders (user_id VARCHAR, created_at TIMESTAMP, amount DOUBLE)")
    return World(
        kind="duckdb",
        url=f"duckdb:///{path}",
        query="SELECT user_id, created_at, amount::DOUBLE AS amount FROM orders WHERE user_id IS NOT NULL;",
        path=path,
    )


def sqlite_world(directory: Path) -> World:
    """A SQLite file with integer user ids and epoch-millisecond times, read through a query."""
    path = directory / "shop.sqlite"
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (user_id INTEGER, created_ms INTEGER, amount REAL)"))
    engine.dispose()
    return World(
        kind="sqlite",
        url=url,
        query="SELECT user_id, created_ms AS created_at, amount FROM orders",
        path=path,
    )
