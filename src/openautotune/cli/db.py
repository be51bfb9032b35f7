"""`openautotune db upgrade`: database maintenance."""

from __future__ import annotations

import typer

from openautotune.cli.common import DatabaseUrl, load_settings, open_database

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply database migrations (the server also does this when it starts)."""
    open_database(load_settings(database_url))
    typer.echo("Database is up to date.")
