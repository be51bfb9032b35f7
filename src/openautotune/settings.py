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


@dataclass(frozen=True)
class Settings:
    """Every setting the server reads. Each is documented in docs/configuration.md."""

    database_url: str = DEFAULT_URL
    host: str = "127.0.0.1"
    port: int = 8000
    update_interval_seconds: int = 3600
    specs_refresh_seconds: float = 1.0
    key_cache_seconds: float = 5.0
    log_level: str = "info"
    blas_threads: int = 1
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    cors_allowed_origins: str = "*"
    srm_threshold: float = 0.001

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, /, **overrides: Any) -> Settings:
        environ = dict(os.environ) if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                kind = type(getattr(cls, field.name))
                values[field.name] = kind(raw)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["database_url"] = _mask_url(self.database_url)
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"
