"""`openautotune serve`: the HTTP server (Console API, SDK endpoints, dashboard) and the update scheduler.

`--workers N` forks N server processes on the one port (`cli.workers`); in every process a runner tries
the leader lock, and the one that holds it runs the scheduler (`cli.background`)."""

from __future__ import annotations

import errno
import os
import socket
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from openautotune.cli import workers as workers_cli
from openautotune.cli.common import DatabaseUrl, EventsUrl, err, load_settings, open_database
from openautotune.clock import SystemClock
from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service
from openautotune.settings import Settings
from openautotune.store.database import Database

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI


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
    events_url: EventsUrl = None,
    update_interval: Annotated[
        int | None, typer.Option("--update-interval", help="Seconds between scheduled engine updates (default 3600)")
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option("--queue", help="nats://host:port: publish SDK batches to NATS JetStream (default none)"),
    ] = None,
    ingest_mode: Annotated[
        str | None, typer.Option("--ingest-mode", help="log (default) or sync: see docs/ingestion.md")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", help="Server processes on the port (default: one per core; 1 runs all in this process)"
        ),
    ] = None,
    require_reviews: Annotated[
        bool | None,
        typer.Option(
            "--require-reviews/--no-require-reviews",
            help="Hold Console API changes sent with x-respect-review-settings: true for a second key's review",
        ),
    ] = None,
) -> None:
    """Run the HTTP server (Console API, SDK endpoints, dashboard)."""
    from openautotune.engine.scheduler import MIN_INTERVAL_SECONDS

    settings = load_settings(
        database_url,
        host=host,
        port=port,
        update_interval_seconds=update_interval,
        workers=workers,
        queue_url=queue,
        ingest_mode=ingest_mode,
        require_reviews=require_reviews,
        events_url=events_url,
    )
    if settings.update_interval_seconds < MIN_INTERVAL_SECONDS:
        err.print(f"--update-interval must be at least {MIN_INTERVAL_SECONDS} seconds")
        raise typer.Exit(2)
    if settings.workers < 0:
        err.print("--workers must be 1 or more (0: one per core)")
        raise typer.Exit(2)
    count = settings.workers or os.cpu_count() or 1
    if count > 1 and settings.events_url.startswith("chdb:"):
        # chdb is ClickHouse inside this process: one process may open its data directory.
        err.print("openautotune: --events-url chdb:// runs in one process (--workers 1)", soft_wrap=True)
        count = 1
    # Before anything imports prometheus_client: its workers must write their metrics to shared files.
    metrics_dir = workers_cli.prepare_metrics_dir() if count > 1 else None
    # The port first: a taken port is said at once, and requests sent while the app loads wait in the
    # socket's backlog instead of being refused.
    listening = _listen(settings.host, settings.port, count)
    try:
        _run(settings, listening, count)
    finally:
        for each in listening:
            each.close()
        workers_cli.remove_metrics_dir(metrics_dir)


def _run(settings: Settings, listening: list[socket.socket], count: int) -> None:
    import uvicorn

    from openautotune.api import log_redaction
    from openautotune.api.app import create_app

    log_redaction.install()  # keys out of access and exception logs (docs/security.md)
    _limit_blas_threads(settings.blas_threads)
    db = open_database(settings)
    _print_first_keys(db)
    _show_engine_log(settings.log_level)
    # The app and uvicorn's protocol classes are made here, once: forked workers inherit them ready
    # (like gunicorn's preload), so N workers start as fast as one.
    try:
        application = create_app(settings, db=db, run_migrations=False)
    except ValueError as bad:  # an ingest mode or queue URL that cannot be used
        err.print(str(bad), soft_wrap=True)
        raise typer.Exit(2) from None
    config = uvicorn.Config(application, log_level=settings.log_level)
    config.load()
    if count == 1:
        _serve_process(config, listening[0], db, settings, application)
        return
    from prometheus_client import multiprocess

    db.dispose()  # no open connection may be inherited by the workers: each opens its own
    err.print(f"openautotune: {count} worker processes", soft_wrap=True)
    supervisor = workers_cli.Supervisor(
        count,
        lambda index: _serve_process(config, listening[index], db, settings, application),
        on_exit=multiprocess.mark_process_dead,
    )
    status = supervisor.run()
    if status:
        raise typer.Exit(status)


def _serve_process(
    config: uvicorn.Config, listening: socket.socket, db: Database, settings: Settings, application: FastAPI
) -> None:
    """One server process: the app on the shared socket, and a runner trying the leader lock."""
    import uvicorn

    from openautotune.cli.background import background_runner

    runner = background_runner(db, settings, application=application)
    runner.start()
    try:
        uvicorn.Server(config).run(sockets=[listening])
    finally:
        runner.stop()
        db.dispose()


def _listen(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket on host:port per worker, or a clear message and exit 1 when the port cannot
    be had.

    Several workers get one SO_REUSEPORT socket each, all made here and kept open by `serve`: the
    kernel spreads new connections over them. With one shared socket, the first worker to wake
    accepted a whole burst of keep-alive connections (wrk's 16 went 16/0, 14/2, 11/5), leaving the
    other worker idle. A worker that dies leaves its socket open here, so the connections queued on
    it wait for its replacement instead of being reset.
    """
    made: list[socket.socket] = []
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        first = socket.socket(family, kind, protocol)
        made.append(first)
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Bound without SO_REUSEPORT first: a port held by anyone, another `serve --workers` too, is refused.
        first.bind(address)
        if count > 1:
            address = first.getsockname()  # the port chosen, should it be 0
            first.close()
            made.clear()
            for _ in range(count):
                each = socket.socket(family, kind, protocol)
                made.append(each)
                each.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                each.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                each.bind(address)
        for each in made:
            each.listen(2048)
    except OSError as error:
        for each in made:
            each.close()
        taken = error.errno == errno.EADDRINUSE
        reason = "is already in use (another `openautotune serve`?)" if taken else f"cannot be used: {error}"
        err.print(f"{host}:{port} {reason}. Choose another with --port or OPENAUTOTUNE_PORT.", soft_wrap=True)
        raise typer.Exit(1) from None
    err.print(f"openautotune listening on http://{_url_host(host)}:{port}", soft_wrap=True)
    return made


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _show_engine_log(level: str) -> None:
    """Scheduled updates log one line per autotune, and the leader lock each change of leader; show them
    next to uvicorn's own lines."""
    import logging

    for name, tag in (("openautotune.engine", "engine"), ("openautotune.leader", "leader")):
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(f"%(levelname)s:     {tag}: %(message)s"))
            logger.addHandler(handler)
        logger.setLevel(level.upper())
