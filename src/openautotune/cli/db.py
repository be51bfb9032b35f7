"""`openautotune db upgrade`: database maintenance."""

from __future__ import annotations

import typer

from openautotune.cli.common import DatabaseUrl, EventsUrl, load_settings, open_database

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None, events_url: EventsUrl = None) -> None:
    """Apply database migrations, and create or upgrade the event store's tables (the server also does
    this when it starts)."""
    db = open_database(load_settings(database_url, events_url=events_url))
    typer.echo("Database is up to date.")
    if db.events is not None:
        typer.echo(f"Event store {db.events.label} is up to date.")
    db.dispose()
