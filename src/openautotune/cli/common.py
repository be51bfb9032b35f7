"""What every command shares: the database option, settings from env and flags, a migrated database,
and the console for errors."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from openautotune.settings import Settings
from openautotune.store import migrate
from openautotune.store.database import Database

err = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="SQLAlchemy URL; default $OPENAUTOTUNE_DATABASE_URL, else sqlite:///./openautotune.db"
    ),
]


def load_settings(database_url: str | None = None, **overrides: object) -> Settings:
    return Settings.from_env(database_url=database_url, **overrides)


def open_database(settings: Settings) -> Database:
    db = Database.from_url(settings.database_url)
    migrate.upgrade(db.engine)
    return db
