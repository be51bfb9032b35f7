"""`openautotune serve`: the HTTP server (Console API, SDK endpoints, dashboard) and the update scheduler."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from openautotune.cli.common import DatabaseUrl, err, load_settings, open_database
from openautotune.clock import SystemClock
from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service
from openautotune.store.database import Database


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


def _limit_blas_threads(threads: int) -> None:
    """Cap BLAS threads for the whole server process.

    A server answers many small requests at once (contextual Thompson choices are small matrix-vector
    products): a multi-threaded BLAS made each one ~10x slower on a busy 2-core machine.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


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

    from openautotune.api import log_redaction
    from openautotune.api.app import create_app

    log_redaction.install()  # keys out of access and exception logs (docs/security.md)
    settings = load_settings(database_url, host=host, port=port, update_interval_seconds=update_interval)
    _limit_blas_threads(settings.blas_threads)
    db = open_database(settings)
    _print_first_keys(db)
    application = create_app(settings, db=db, run_migrations=False)
    from openautotune.engine.scheduler import MIN_INTERVAL_SECONDS, Scheduler

    if settings.update_interval_seconds < MIN_INTERVAL_SECONDS:
        err.print(f"--update-interval must be at least {MIN_INTERVAL_SECONDS} seconds")
        raise typer.Exit(2)
    _show_engine_log(settings.log_level)
    scheduler = Scheduler(db, SystemClock(), settings.update_interval_seconds)
    scheduler.start()
    try:
        uvicorn.run(application, host=settings.host, port=settings.port, log_level=settings.log_level)
    finally:
        scheduler.stop()


def _show_engine_log(level: str) -> None:
    """Scheduled updates log one line per autotune; show them next to uvicorn's own lines."""
    import logging

    engine_log = logging.getLogger("openautotune.engine")
    if not engine_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     engine: %(message)s"))
        engine_log.addHandler(handler)
    engine_log.setLevel(level.upper())
