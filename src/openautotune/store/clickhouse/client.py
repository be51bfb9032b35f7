"""Talking to ClickHouse: one small interface over chdb (in process) and clickhouse-driver (native TCP).

`Client` is what the rest of `store.clickhouse` needs: run a statement, read rows, and insert many rows
at once. SQL values are rendered as literals here (`literal`), the same way for both transports, so a
query text is identical on chdb 26.x and a 18.16 server. Driver errors become `EventStoreUnavailable`
(cannot reach or use the store: the caller fails the update or the batch with that reason) in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from openautotune.store.clickhouse.url import ClickHouseUrl
from openautotune.store.event_store import EventStoreUnavailable


def literal(value: object) -> str:
    """A ClickHouse SQL literal (strings single-quoted with backslash escapes; None is NULL)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


class Client(Protocol):
    """One ClickHouse node (or the in-process engine)."""

    label: str

    def execute(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...

    def rows_with_keys(self, sql: str, keys: Sequence[str]) -> list[tuple[Any, ...]]:
        """Run `sql`, whose `{keys}` names a one-column set of `keys` (`... IN {keys}`), sent as data:
        an IN list of 50,000 literals took seconds just to parse."""
        ...

    def close(self) -> None: ...


# ClickHouse compiles an expression to machine code (LLVM) once it has run it three times. On the
# attribution reads that gained nothing measurable once compiled (full recompute of 2M units 180-218 ms
# with, 180-192 ms without; hourly 22 ms either way) and each compile cost 100-150 ms inside the query
# that triggered it: the third or fourth update, or a one-off backfill. chdb (26.x) runs without it; an
# 18.16 server has it off by default, a newer server can set both to 0 in its profile (docs/scale.md).
JIT_OFF = ("compile_expressions", "compile_aggregate_expressions")


class ChdbClient:
    """ClickHouse inside this process (chdb): one session per data directory, serialised by a lock
    (a chdb session is not safe to use from two threads at once)."""

    def __init__(self, path: str) -> None:
        from chdb import session as chdb_session

        self.label = f"chdb://{path}"
        self._lock = threading.Lock()
        session_class: Any = chdb_session.Session  # chdb is untyped
        try:
            self._session: Any = session_class(path)
            for setting in JIT_OFF:
                self._session.query(f"SET {setting} = 0", "Null")
        except Exception as error:  # chdb raises plain RuntimeError for every failure
            raise EventStoreUnavailable(f"cannot open chdb at {path}: {error}") from error

    @contextmanager
    def _guard(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except EventStoreUnavailable:
                raise
            except Exception as error:
                raise EventStoreUnavailable(f"{self.label}: {error}") from error

    def execute(self, sql: str) -> None:
        with self._guard():
            self._session.query(sql, "Null")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self._guard():
            result = self._session.query(sql, "ArrowTable")
        table: Any = result
        return [tuple(row.values()) for row in table.to_pylist()]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        import pyarrow as pa

        # chdb's Python() table function reads an Arrow table named in the query from this frame:
        # one columnar hand-over, no text rendering of the rows (over a million rows a second).
        batch = pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})  # noqa: F841
        names = ", ".join(columns)
        with self._guard():
            self._session.query(f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(batch)", "Null")

    def rows_with_keys(self, sql: str, keys: Sequence[str]) -> list[tuple[Any, ...]]:
        import pyarrow as pa

        key_table = pa.table({"k": pa.array(list(keys), type=pa.string())})  # noqa: F841 - read by Python()
        with self._guard():
            result = self._session.query(sql.replace("{keys}", "(SELECT k FROM Python(key_table))"), "ArrowTable")
        table: Any = result
        return [tuple(row.values()) for row in table.to_pylist()]

    def close(self) -> None:
        with self._lock:
            self._session.close()


class NativeClient:
    """A ClickHouse server over the native protocol (clickhouse-driver; speaks to 18.16 and 26.x)."""

    def __init__(self, url: ClickHouseUrl, *, host: str | None = None, port: int | None = None) -> None:
        from clickhouse_driver import Client as DriverClient

        self.host = host or url.host
        self.port = port or url.port
        self.label = f"clickhouse://{self.host}:{self.port}/{url.database}"
        self._lock = threading.Lock()
        self._client = DriverClient(
            host=self.host,
            port=self.port,
            user=url.user,
            password=url.password,
            database=url.database,
            connect_timeout=5,
            send_receive_timeout=120,
        )

    def _call(self, run: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                return run()
            except Exception as error:
                # clickhouse_driver raises NetworkError, ServerException, EOFError, socket errors...
                self._client.disconnect()
                raise EventStoreUnavailable(f"{self.label}: {type(error).__name__}: {error}") from error

    def execute(self, sql: str) -> None:
        self._call(lambda: self._client.execute(sql))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self._call(lambda: self._client.execute(sql)))

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        self._call(lambda: self._client.execute(statement, list(rows)))

    def rows_with_keys(self, sql: str, keys: Sequence[str]) -> list[tuple[Any, ...]]:
        # A native-protocol external table: sent with the query, visible to it as `_keys`.
        external = [{"name": "_keys", "structure": [("k", "String")], "data": [{"k": key} for key in keys]}]
        text = sql.replace("{keys}", "(SELECT k FROM _keys)")
        return list(self._call(lambda: self._client.execute(text, external_tables=external)))

    def close(self) -> None:
        self._client.disconnect()
