"""`openautotune events copy`: backfill or export units, events and raw exposures between event stores
(docs/scale.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from openautotune.cli.common import err
from openautotune.clock import SystemClock
from openautotune.domain.errors import Unavailable
from openautotune.store import migrate
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.clickhouse.url import EventsUrlError, is_clickhouse
from openautotune.store.database import Database
from openautotune.store.events import SqlEvents
from openautotune.store.events_copy import DEFAULT_PAGE, Copyable, copy_events

app = typer.Typer(help="Event store maintenance.", no_args_is_help=True)


def _open(url: str) -> Copyable:
    """A ClickHouse URL (chdb:// or clickhouse://) or the SQLAlchemy URL of a main database; migrated."""
    if is_clickhouse(url):
        store = ClickHouseEvents(url)
        store.migrate(SystemClock().now_ms())
        return store
    db = Database.from_url(url)
    migrate.upgrade(db.engine)
    return SqlEvents(db)


@app.command("copy")
def copy(
    source: Annotated[str, typer.Option("--from", help="Source: a database URL, chdb:///dir or clickhouse://...")],
    target: Annotated[str, typer.Option("--to", help="Target: a database URL, chdb:///dir or clickhouse://...")],
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", help="Where progress is saved; run again with it to resume")
    ] = Path("events-copy.checkpoint.json"),
    page_size: Annotated[int, typer.Option("--page-size", min=1, help="Rows read and written at once")] = DEFAULT_PAGE,
) -> None:
    """Copy every unit, event and raw exposure from one store to another (resumable; counts verified)."""
    opened: list[Copyable] = []
    try:
        opened.append(_open(source))
        opened.append(_open(target))
        origin, destination = opened
        total_units, total_events = origin.counts()
        total_exposures = origin.exposure_count()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=err,
        ) as progress:
            tasks = {
                "units": progress.add_task("units", total=total_units),
                "events": progress.add_task("events", total=total_events),
                "exposures": progress.add_task("exposures", total=total_exposures),
            }
            report = copy_events(
                origin,
                destination,
                checkpoint=checkpoint,
                page_size=page_size,
                on_page=lambda table, rows: progress.advance(tasks[table], rows),
            )
    except (EventsUrlError, Unavailable) as error:
        err.print(f"[red]events copy failed:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        for store in opened:  # chdb keeps one data directory per process open until closed
            if isinstance(store, SqlEvents):
                store.db.dispose()
            else:
                store.close()
    typer.echo(
        f"copied {report.copied['units']} units and {report.copied['events']} events; "
        f"source {report.source_counts[0]} units / {report.source_counts[1]} events, "
        f"target {report.target_counts[0]} / {report.target_counts[1]}; "
        f"copied {report.copied['exposures']} raw exposures, source {report.source_exposures} / "
        f"target {report.target_exposures}"
    )
    if not report.verified:
        err.print("[red]counts differ[/red]: the target held other rows before, or rows were lost; see docs/scale.md")
        raise typer.Exit(1)
    checkpoint.unlink(missing_ok=True)
