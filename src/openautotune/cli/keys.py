"""`openautotune keys create|list|revoke`: API keys, over the key service."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openautotune.cli.common import DatabaseUrl, err, load_settings, open_database
from openautotune.clock import SystemClock
from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def keys_create(
    type: Annotated[KeyKind, typer.Option("--type", help="console, server or client")],
    read_only: Annotated[bool, typer.Option("--read-only", help="Console keys only: may read, not change")] = False,
    description: Annotated[str, typer.Option(help="What the key is for")] = "",
    database_url: DatabaseUrl = None,
) -> None:
    """Create a key; the key itself is the last line printed (and is never shown again)."""
    if read_only and type is not KeyKind.CONSOLE:
        err.print("--read-only applies to console keys only")
        raise typer.Exit(2)
    db = open_database(load_settings(database_url))
    new = key_service.create_key(db, SystemClock(), type, read_only=read_only, description=description)
    typer.echo(f"Created {type.value} key {new.record.id}{' (read-only)' if read_only else ''}.")
    typer.echo(new.secret)


@app.command("list")
def keys_list(database_url: DatabaseUrl = None) -> None:
    """List keys (ids and hints, never the keys themselves)."""
    db = open_database(load_settings(database_url))
    table = Table("id", "type", "access", "hint", "description", "status")
    for record in key_service.list_keys(db):
        table.add_row(
            record.id,
            record.kind.value,
            "read-only" if record.read_only else "read-write",
            record.hint,
            record.description,
            "active" if record.active else "revoked",
        )
    Console().print(table)


@app.command("revoke")
def keys_revoke(key_id: str, database_url: DatabaseUrl = None) -> None:
    """Revoke a key by its id (see `keys list`)."""
    from openautotune.domain.errors import NotFound

    db = open_database(load_settings(database_url))
    try:
        key_service.revoke_key(db, SystemClock(), key_id)
    except NotFound as missing:
        err.print(missing.message)
        raise typer.Exit(1) from None
    typer.echo(f"Revoked key {key_id}.")
