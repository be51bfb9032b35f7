"""What every command shares: the database option, settings from env and flags, a migrated database,
and the console for errors."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from openautotune.clock import SystemClock
from openautotune.domain.errors import Unavailable
from openautotune.settings import Settings
from openautotune.store import migrate
from openautotune.store.clickhouse.url import EventsUrlError
from openautotune.store.database import Database
from openautotune.store.events import open_events

err = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="SQLAlchemy URL; default $OPENAUTOTUNE_DATABASE_URL, else sqlite:///./openautotune.db"
    ),
]


EventsUrl = Annotated[
    str | None,
    typer.Option(
        "--events-url",
        help="Where units and events live: chdb:///dir or clickhouse://user:pass@host:9000/db; "
        "default $OPENAUTOTUNE_EVENTS_URL, else the main database",
    ),
]


def load_settings(database_url: str | None = None, **overrides: object) -> Settings:
    return Settings.from_env(database_url=database_url, **overrides)


def open_database(settings: Settings) -> Database:
    """The main database, migrated, with its event store attached and migrated when one is set."""
    db = Database.from_url(settings.database_url)
    migrate.upgrade(db.engine)
    if settings.events_url:
        try:
            db.events = open_events(settings.events_url, db)
            db.events.migrate(SystemClock().now_ms())
        except (EventsUrlError, Unavailable) as error:
            err.print(f"[red]events store:[/red] {error}")
            raise typer.Exit(2) from None
    return db
