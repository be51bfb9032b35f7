"""`openautotune update`: one engine update now, or as of a given time (backfills and replays)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openautotune.cli.common import DatabaseUrl, EventsUrl, load_settings, open_database
from openautotune.clock import SystemClock


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


def update(
    at: Annotated[
        str | None, typer.Option("--at", help="Update as of this time: ISO-8601 or epoch ms (default now)")
    ] = None,
    autotune: Annotated[
        str | None, typer.Option("--autotune", help="Only this autotune (default: all running)")
    ] = None,
    database_url: DatabaseUrl = None,
    events_url: EventsUrl = None,
) -> None:
    """Run one engine update now (or as of --at, for backfills and replays)."""
    from openautotune.engine.health import HealthOptions
    from openautotune.engine.update import update_autotune, update_running

    settings = load_settings(database_url, events_url=events_url)
    db = open_database(settings)
    health = HealthOptions(srm_threshold=settings.srm_threshold)
    clock = SystemClock()
    as_of = _parse_time(at) if at is not None else clock.now_ms()
    if autotune is not None:
        outcomes = [update_autotune(db, clock, autotune, as_of, health=health)]
    else:
        outcomes = update_running(db, clock, as_of, health=health)
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
