"""`openautotune serve`: the HTTP server (Console API, SDK endpoints, dashboard) and the update scheduler."""

from __future__ import annotations

import errno
import socket
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
    from openautotune.engine.health import HealthOptions
    from openautotune.engine.scheduler import MIN_INTERVAL_SECONDS, Scheduler

    settings = load_settings(database_url, host=host, port=port, update_interval_seconds=update_interval)
    if settings.update_interval_seconds < MIN_INTERVAL_SECONDS:
        err.print(f"--update-interval must be at least {MIN_INTERVAL_SECONDS} seconds")
        raise typer.Exit(2)
    # The port first: a taken port is said at once, and requests sent while the app loads wait in the
    # socket's backlog instead of being refused.
    listening = _listen(settings.host, settings.port)
    import uvicorn

    from openautotune.api import log_redaction
    from openautotune.api.app import create_app

    log_redaction.install()  # keys out of access and exception logs (docs/security.md)
    _limit_blas_threads(settings.blas_threads)
    db = open_database(settings)
    _print_first_keys(db)
    application = create_app(settings, db=db, run_migrations=False)
    _show_engine_log(settings.log_level)
    # The first round waits a moment: it imports the engine (numpy, scipy) in its own thread, which
    # would otherwise compete with the first requests for the interpreter.
    scheduler = Scheduler(
        db,
        SystemClock(),
        settings.update_interval_seconds,
        first_delay_seconds=SCHEDULER_DELAY,
        health=HealthOptions(srm_threshold=settings.srm_threshold),
    )
    scheduler.start()
    config = uvicorn.Config(application, log_level=settings.log_level)
    try:
        uvicorn.Server(config).run(sockets=[listening])
    finally:
        scheduler.stop()
        listening.close()


SCHEDULER_DELAY = 5.0


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a clear message and exit 1 when it cannot be had."""
    listening: socket.socket | None = None
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind, protocol)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(2048)
    except OSError as error:
        if listening is not None:
            listening.close()
        taken = error.errno == errno.EADDRINUSE
        reason = "is already in use (another `openautotune serve`?)" if taken else f"cannot be used: {error}"
        err.print(f"{host}:{port} {reason}. Choose another with --port or OPENAUTOTUNE_PORT.", soft_wrap=True)
        raise typer.Exit(1) from None
    err.print(f"openautotune listening on http://{_url_host(host)}:{port}", soft_wrap=True)
    return listening


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _show_engine_log(level: str) -> None:
    """Scheduled updates log one line per autotune; show them next to uvicorn's own lines."""
    import logging

    engine_log = logging.getLogger("openautotune.engine")
    if not engine_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     engine: %(message)s"))
        engine_log.addHandler(handler)
    engine_log.setLevel(level.upper())
