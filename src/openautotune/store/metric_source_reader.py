"""Reading a metric source: one bounded SELECT against the team's own database, rows streamed back.

The statement is built with SQLAlchemy Core, never by pasting text: the source's table or query is the
FROM (a query runs as a subquery, its colons escaped so none becomes a bind), the validated column
names are quoted by the dialect, and our values (the time range, the unit ids) are bound parameters.

The time range is a prefilter that keeps the read to the units that matured in this update; which
rows count is decided exactly in Python (store.source_attribution). To bind it in the column's own
type, one sample row is read first: a SQL timestamp (naive = UTC, or with a zone), epoch milliseconds
(a number), or ISO text (SQLite has no timestamp type) each get bounds of their kind, widened by a
second so text and sub-millisecond rounding never drop a row at the edge.

Reads run in a transaction that is rolled back, READ ONLY with a statement timeout on PostgreSQL;
DuckDB files are opened read-only. Every failure becomes `SourceFailure` with a one-line reason in
which the URL's password never appears.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import NullPool

from openautotune.domain.metric_sources import MetricSource, query_text, table_parts

STATEMENT_TIMEOUT_MS = 120_000
CONNECT_TIMEOUT_SECONDS = 10
# Up to this many matured units, their ids go into the statement (`IN (...)`); above it the time range
# alone bounds the read and rows of other units are dropped in Python.
MAX_BOUND_UNITS = 1_000
FETCH_ROWS = 10_000
_MASK = "***"
_SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "secret", "token", "key")
_EDGE = dt.timedelta(seconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class SourceFailure(Exception):
    """A source could not be read: unreachable, bad SQL, a missing column... `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SourceRow:
    unit_id: str
    time_ms: int
    value: object


def _secrets_of(url: URL) -> list[str]:
    found = [url.password] if isinstance(url.password, str) and url.password else []
    for name, value in url.query.items():
        if any(word in name.lower() for word in _SECRET_QUERY_KEYS):
            found.extend([value] if isinstance(value, str) else list(value))
    return [secret for secret in found if secret]


def parse_url(url: str) -> URL:
    """The URL parsed, with a driver SQLAlchemy can load; `ValueError` with a reason otherwise."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except Exception as error:  # ArgumentError, NoSuchModuleError, ImportError...: all "not usable"
        raise ValueError(f"is not a SQLAlchemy URL with an installed driver ({type(error).__name__})") from None
    return parsed


def mask_url(url: str) -> str:
    """The URL as answers show it: password and secret-looking query parameters replaced by `***`."""
    parsed = make_url(url)
    # A placeholder of URL-safe letters, turned into `***` after rendering (which would escape `*`).
    placeholder = "MASKEDSECRETVALUE"
    masked_query = {
        name: (placeholder if any(word in name.lower() for word in _SECRET_QUERY_KEYS) else value)
        for name, value in parsed.query.items()
    }
    rendered = parsed.set(query=masked_query).render_as_string(hide_password=True)
    return rendered.replace(placeholder, _MASK)


def redact(text: str, url: str) -> str:
    """`text` (an error message) with every secret of `url` replaced by `***`."""
    try:
        secrets = _secrets_of(make_url(url))
    except Exception:
        return text
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return text


def _engine(url: URL) -> sa.Engine:
    connect_args: dict[str, Any] = {}
    backend = url.get_backend_name()
    if backend == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    if backend == "duckdb":
        connect_args["read_only"] = True
    return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)


def _from_clause(source: MetricSource, columns: list[str]) -> sa.FromClause:
    if source.table is not None:
        parts = table_parts(source.table) or [source.table]
        schema = parts[0] if len(parts) == 2 else None
        return sa.table(parts[-1], *(sa.column(name) for name in columns), schema=schema)
    # A backslash-escaped colon is a plain colon to sa.text: the user's text never creates a bind.
    text = query_text(source.query or "").replace(":", "\\:")
    return sa.text(f"\n{text}\n").columns(*(sa.column(name) for name in columns)).subquery("metric_source")


def _to_ms(value: object) -> int | None:
    if type(value) is int:  # epoch milliseconds, the common case first
        return value
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // dt.timedelta(milliseconds=1)
    if isinstance(value, dt.date):  # a DATE column: midnight UTC
        return _to_ms(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC))
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        try:
            return int(value)
        except (OverflowError, ValueError):
            return None
    if isinstance(value, str):
        try:
            return _to_ms(dt.datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


def _bound(sample: object, ms: int, edge: int) -> object:
    """`ms` (widened by a second in the `edge` direction) in the sample's kind, or None: no bound."""
    moment = _EPOCH + dt.timedelta(milliseconds=ms) + edge * _EDGE
    if isinstance(sample, dt.datetime):
        return moment if sample.tzinfo is not None else moment.replace(tzinfo=None)
    if isinstance(sample, dt.date):
        return moment.date()
    if isinstance(sample, int | float | Decimal) and not isinstance(sample, bool):
        return ms + edge * 1000
    if isinstance(sample, str) and _is_plain_iso_text(sample):
        separator = "T" if "T" in sample else " "
        return moment.replace(tzinfo=None).isoformat(sep=separator, timespec="seconds")
    return None  # text with a zone offset, a bare date, or an unknown kind: bounded in Python only


def _is_plain_iso_text(sample: str) -> bool:
    """Zone-less `YYYY-MM-DD HH:MM:SS[.fff]` text compares in time order as text; other shapes may not."""
    try:
        parsed = dt.datetime.fromisoformat(sample.strip())
    except ValueError:
        return False
    return parsed.tzinfo is None and len(sample.strip()) >= 19


def _unit_binds(sample: object, unit_ids: Collection[str]) -> list[object] | None:
    """Unit ids in the column's own type (an integer column is compared with integers); None for any
    other kind (a UUID, say): then the time range alone bounds the read."""
    if isinstance(sample, int) and not isinstance(sample, bool):
        return [int(unit) for unit in unit_ids if unit.lstrip("-").isdigit()]
    if isinstance(sample, str):
        return list(unit_ids)
    return None


def _prepare(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")


def _rows(
    conn: Connection, source: MetricSource, value_column: str | None, lo_ms: int, hi_ms: int, units: Collection[str]
) -> Iterator[SourceRow]:
    columns = [source.unit_id_column, source.timestamp_column]
    if value_column is not None and value_column not in columns:
        columns.append(value_column)
    src = _from_clause(source, columns)
    unit, time = src.c[source.unit_id_column], src.c[source.timestamp_column]
    value = src.c[value_column] if value_column is not None else sa.null()
    sample_row = conn.execute(sa.select(unit, time).where(time.is_not(None)).limit(1)).first()
    if sample_row is None:
        return
    query = sa.select(unit, time, value.label("metric_value")).where(unit.is_not(None), time.is_not(None))
    lo, hi = _bound(sample_row[1], lo_ms, -1), _bound(sample_row[1], hi_ms, +1)
    if lo is not None and hi is not None:
        query = query.where(time >= sa.bindparam("lo", lo), time <= sa.bindparam("hi", hi))
    # DuckDB binds many parameters slowly (0.5-0.7 s for 1,000 ids against 0.1 s for the time range
    # alone, bench/metric_sources.py): a column store scans the range faster than it binds the list.
    few = len(units) <= MAX_BOUND_UNITS and conn.dialect.name != "duckdb"
    binds = _unit_binds(sample_row[0], units) if few else None
    if binds is not None:
        if not binds:
            return  # no unit id of ours can equal any of this column's values
        query = query.where(unit.in_(sa.bindparam("units", binds, expanding=True)))
    result = conn.execution_options(yield_per=FETCH_ROWS).execute(query)
    for row in result:
        unit_id = str(row[0])
        if unit_id not in units:
            continue  # a unit of no autotune, or of another window (the read was bounded by time only)
        time_ms = _to_ms(row[1])
        if time_ms is not None:
            yield SourceRow(unit_id=unit_id, time_ms=time_ms, value=row[2])


def read_rows(
    source: MetricSource, value_column: str | None, lo_ms: int, hi_ms: int, unit_ids: Collection[str]
) -> list[SourceRow]:
    """The rows of `unit_ids` with a timestamp in about `[lo_ms, hi_ms]` (`unit_ids` supports `in`)."""
    try:
        engine = _engine(parse_url(source.url))
    except ValueError as error:
        raise SourceFailure(f"the connection URL {error}") from None
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            _prepare(conn)
            rows = list(_rows(conn, source, value_column, lo_ms, hi_ms, unit_ids))
            transaction.rollback()  # a source is only ever read
            return rows
    except sa.exc.DBAPIError as error:
        detail = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else type(error.orig).__name__
        raise SourceFailure(redact(f"{type(error.orig).__name__}: {detail}", source.url)) from None
    except Exception as error:
        detail = (str(error).strip().splitlines() or [""])[0]
        raise SourceFailure(redact(f"{type(error).__name__}: {detail}", source.url)) from None
    finally:
        engine.dispose()
