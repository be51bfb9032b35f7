"""Public test helpers: an app on a fresh database, a fixed clock, and keys ready to use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from openautotune.api.app import create_app
from openautotune.clock import FixedClock
from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service
from openautotune.settings import Settings
from openautotune.store.database import Database

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed, readable origin for tests


@dataclass
class TestApp:
    __test__ = False  # a helper, not a pytest test class

    app: FastAPI
    db: Database
    clock: FixedClock
    console_key: str
    read_only_key: str
    server_key: str
    client_key: str

    def console_headers(self, *, read_only: bool = False) -> dict[str, str]:
        return {"STATSIG-API-KEY": self.read_only_key if read_only else self.console_key}


# The clock of a test app stands still unless the test moves it, so rate-limit windows never pass:
# limits are off unless a test turns them on (make_test_app(url, rate_limit_mutations="100/10s")).
NO_RATE_LIMITS = {"rate_limit_mutations": "off", "rate_limit_reads": "off", "rate_limit_sdk": "off"}


def make_test_app(
    database_url: str, *, now_ms: int = START_MS, ingest_mode: str = "sync", **settings_overrides: Any
) -> TestApp:
    """An app on `database_url` (migrated) with one key of each kind; `ingest_mode="log"` to test the log;
    `settings_overrides` set any Settings field (rate limits are off by default, see NO_RATE_LIMITS)."""
    clock = FixedClock(now_ms)
    db = Database.from_url(database_url)
    # Sync ingestion: a POST to /v1/log_event answers after its rows are written, with the per-event
    # report, so tests read what they sent at once (the log and queue modes have tests of their own).
    settings = Settings(
        database_url=database_url,
        key_cache_seconds=0.0,
        specs_refresh_seconds=0.0,
        ingest_mode=ingest_mode,
        **{**NO_RATE_LIMITS, **settings_overrides},
    )
    app = create_app(settings, db=db, clock=clock)

    def key(kind: KeyKind, read_only: bool = False) -> str:
        return key_service.create_key(db, clock, kind, read_only=read_only).secret

    return TestApp(
        app=app,
        db=db,
        clock=clock,
        console_key=key(KeyKind.CONSOLE),
        read_only_key=key(KeyKind.CONSOLE, read_only=True),
        server_key=key(KeyKind.SERVER),
        client_key=key(KeyKind.CLIENT),
    )
