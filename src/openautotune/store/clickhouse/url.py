"""Event-store URLs: which store holds exposures and events (docs/scale.md).

- unset / empty: the main database (SQLite or PostgreSQL), as before;
- `chdb:///path/to/dir`: ClickHouse embedded in this process (chdb), data in that directory;
- `clickhouse://user:password@host:port/database[?cluster=NAME]`: a ClickHouse server over the native
  protocol (default port 9000). With `cluster`, the tables are sharded over that cluster of the
  server's `remote_servers` by `cityHash64(unit_id)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORT = 9000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class EventsUrlError(ValueError):
    """An events URL that names no store we can open; the message says what is wrong."""


@dataclass(frozen=True)
class ClickHouseUrl:
    kind: str  # "chdb" or "native"
    path: str = ""  # chdb: the data directory
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    user: str = "default"
    password: str = ""
    database: str = "default"
    cluster: str | None = None

    def masked(self) -> str:
        if self.kind == "chdb":
            return f"chdb://{self.path}"
        cluster = f"?cluster={self.cluster}" if self.cluster else ""
        secret = ":***" if self.password else ""
        return f"clickhouse://{self.user}{secret}@{self.host}:{self.port}/{self.database}{cluster}"


def is_clickhouse(url: str | None) -> bool:
    return bool(url) and str(url).split("://", 1)[0] in ("chdb", "clickhouse")


def parse(url: str) -> ClickHouseUrl:
    """Parse a `chdb://` or `clickhouse://` URL; raises EventsUrlError with the reason."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise EventsUrlError(f"events URL {url!r} has no scheme (chdb:///path or clickhouse://host:port/db)")
    if scheme == "chdb":
        if not rest.startswith("/") or rest == "/":
            raise EventsUrlError("chdb URL needs an absolute data directory: chdb:///path/to/dir")
        return ClickHouseUrl(kind="chdb", path=rest)
    if scheme != "clickhouse":
        raise EventsUrlError(f"events URL scheme {scheme!r} is not chdb or clickhouse")
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as error:
        raise EventsUrlError(f"events URL port: {error}") from None
    database = parts.path.lstrip("/") or "default"
    query = parse_qs(parts.query)
    cluster = query.get("cluster", [None])[0]
    for label, name in (("database", database), ("cluster", cluster)):
        if name is not None and not _NAME.match(name):
            raise EventsUrlError(f"events URL {label} {name!r} is not a plain identifier")
    return ClickHouseUrl(
        kind="native",
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
        database=database,
        cluster=cluster,
    )
