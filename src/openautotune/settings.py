"""One Settings object: environment variables `OPENAUTOTUNE_*`, overridden by CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from openautotune.store.database import DEFAULT_URL

ENV_PREFIX = "OPENAUTOTUNE_"


def _mask_url(url: str) -> str:
    # postgresql+psycopg://user:secret@host/db -> postgresql+psycopg://user:***@host/db
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{location}"


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _parse_bool(name: str, raw: str) -> bool:
    # bool("false") is True: booleans need their own reading.
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{ENV_PREFIX}{name.upper()} must be true or false, not {raw!r}")


@dataclass(frozen=True)
class Settings:
    """Every setting the server reads. Each is documented in docs/configuration.md."""

    database_url: str = DEFAULT_URL
    # Where units and events live: empty = the main database; chdb:///dir or clickhouse://... (docs/scale.md).
    events_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    update_interval_seconds: int = 3600
    # The scheduler's first round waits this long after start: it imports the engine (numpy, scipy) in
    # its own thread, which would otherwise compete with the first requests for the interpreter.
    scheduler_first_delay_seconds: float = 5.0
    specs_refresh_seconds: float = 1.0
    key_cache_seconds: float = 5.0
    log_level: str = "info"
    blas_threads: int = 1
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    cors_allowed_origins: str = "*"
    ingest_mode: str = "log"  # log | sync (docs/ingestion.md)
    queue_url: str = ""  # nats://host:port: batches go through NATS JetStream
    processor_in_server: int = 1  # 0: `serve` runs no log processor (run `openautotune process`)
    # Processed batches (reports, queue guards) older than this are deleted by the leader; 0 keeps them.
    ingest_log_retention_hours: float = 168.0
    workers: int = 0  # 0: one server process per core (`serve --workers`)
    leader_retry_seconds: float = 2.0
    health_max_ingest_lag_seconds: float = 300.0  # 0: the ingest lag never makes /health unhealthy
    # Reviews and rate limits (docs/configuration.md, "Reviews and rate limits").
    require_reviews: bool = False
    rate_limit_mutations: str = "100/10s,900/15m"
    rate_limit_reads: str = "1000/10s"
    rate_limit_sdk: str = "50000/10s"
    redis_url: str = ""
    srm_threshold: float = 0.001

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, /, **overrides: Any) -> Settings:
        environ = dict(os.environ) if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                kind = type(getattr(cls, field.name))
                values[field.name] = _parse_bool(field.name, raw) if kind is bool else kind(raw)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["database_url"] = _mask_url(self.database_url)
        shown["queue_url"] = _mask_url(self.queue_url)
        shown["redis_url"] = _mask_url(self.redis_url)
        shown["events_url"] = _mask_url(self.events_url)
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"
