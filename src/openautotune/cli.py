"""The `openautotune` command line (a composition root, like `api/app.py`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openautotune.clock import SystemClock
from openautotune.service import keys as key_service
from openautotune.settings import Settings
from openautotune.store import migrate
from openautotune.store.database import Database
from openautotune.store.keys import KeyKind

app = typer.Typer(
    help="openautotune: self-hosted Bayesian bandits compatible with Statsig Autotune.", no_args_is_help=True
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
err = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="SQLAlchemy URL; default $OPENAUTOTUNE_DATABASE_URL, else sqlite:///./openautotune.db"
    ),
]


def _settings(database_url: str | None = None, **overrides: object) -> Settings:
    return Settings.from_env(database_url=database_url, **overrides)


def _database(settings: Settings) -> Database:
    db = Database.from_url(settings.database_url)
    migrate.upgrade(db.engine)
    return db


def _print_first_keys(db: Database) -> None:
    """On the first start of an empty database, create and show one console and one server key."""
    if key_service.has_any_key(db):
        return
    clock = SystemClock()
    console_key = key_service.create_key(db, clock, KeyKind.CONSOLE, description="created on first start")
    server_key = key_service.create_key(db, clock, KeyKind.SERVER, description="created on first start")
    out = Console()
    out.print("[bold]First start: these keys are shown once. Keep them.[/bold]")
    out.print(f"Console API key (STATSIG-API-KEY): {console_key.secret}")
    out.print(f"Server secret key (SDKs):          {server_key.secret}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000)")] = None,
    database_url: DatabaseUrl = None,
    update_interval: Annotated[
        int | None, typer.Option("--update-interval", help="Seconds between scheduled engine updates (default 3600)")
    ] = None,
) -> None:
    """Run the HTTP server (Console API, SDK endpoints, dashboard)."""
    import uvicorn

    from openautotune.api.app import create_app

    settings = _settings(database_url, host=host, port=port, update_interval_seconds=update_interval)
    db = _database(settings)
    _print_first_keys(db)
    application = create_app(settings, db=db, run_migrations=False)
    from openautotune.engine.scheduler import MIN_INTERVAL_SECONDS, Scheduler

    if settings.update_interval_seconds < MIN_INTERVAL_SECONDS:
        err.print(f"--update-interval must be at least {MIN_INTERVAL_SECONDS} seconds")
        raise typer.Exit(2)
    scheduler = Scheduler(db, SystemClock(), settings.update_interval_seconds)
    scheduler.start()
    try:
        uvicorn.run(application, host=settings.host, port=settings.port, log_level=settings.log_level)
    finally:
        scheduler.stop()


def _parse_time(text: str) -> int:
    """Epoch milliseconds, or an ISO-8601 time (UTC when it names no zone)."""
    from datetime import UTC, datetime

    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither epoch milliseconds nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@app.command()
def update(
    at: Annotated[
        str | None, typer.Option("--at", help="Update as of this time: ISO-8601 or epoch ms (default now)")
    ] = None,
    autotune: Annotated[
        str | None, typer.Option("--autotune", help="Only this autotune (default: all running)")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run one engine update now (or as of --at, for backfills and replays)."""
    from openautotune.engine.update import update_autotune, update_running

    db = _database(_settings(database_url))
    clock = SystemClock()
    as_of = _parse_time(at) if at is not None else clock.now_ms()
    if autotune is not None:
        outcomes = [update_autotune(db, clock, autotune, as_of)]
    else:
        outcomes = update_running(db, clock, as_of)
    table = Table("autotune", "as of (ms)", "result", "stage", "new units", "P(best)", "allocation", "winner")
    for outcome in outcomes:
        table.add_row(
            outcome.autotune_id,
            str(outcome.as_of_ms),
            "updated" if outcome.updated else f"skipped: {outcome.reason}",
            outcome.stage.value if outcome.stage else "",
            str(outcome.new_units),
            " ".join(f"{p:.4f}" for p in outcome.pob),
            str(outcome.allocation_version or ""),
            outcome.winner_variant_id or "",
        )
    Console(width=200).print(table)
    if not outcomes:
        typer.echo("No running autotune to update.")
    if autotune is not None and not outcomes[0].updated and outcomes[0].reason == "autotune not found":
        raise typer.Exit(1)


@keys_app.command("create")
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
    db = _database(_settings(database_url))
    new = key_service.create_key(db, SystemClock(), type, read_only=read_only, description=description)
    typer.echo(f"Created {type.value} key {new.record.id}{' (read-only)' if read_only else ''}.")
    typer.echo(new.secret)


@keys_app.command("list")
def keys_list(database_url: DatabaseUrl = None) -> None:
    """List keys (ids and hints, never the keys themselves)."""
    db = _database(_settings(database_url))
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


@keys_app.command("revoke")
def keys_revoke(key_id: str, database_url: DatabaseUrl = None) -> None:
    """Revoke a key by its id (see `keys list`)."""
    from openautotune.domain.errors import NotFound

    db = _database(_settings(database_url))
    try:
        key_service.revoke_key(db, SystemClock(), key_id)
    except NotFound as missing:
        err.print(missing.message)
        raise typer.Exit(1) from None
    typer.echo(f"Revoked key {key_id}.")


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply database migrations (the server also does this when it starts)."""
    _database(_settings(database_url))
    typer.echo("Database is up to date.")


def main() -> None:
    app()
