"""`openautotune demo`: demo autotunes at every stage with days of simulated traffic."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from openautotune.cli.common import DatabaseUrl, load_settings, open_database
from openautotune.clock import SystemClock
from openautotune.service import keys as key_service


def demo(
    database_url: DatabaseUrl = None,
    users_per_hour: Annotated[
        int, typer.Option("--users-per-hour", help="Simulated users per hour per autotune (default 150)")
    ] = 150,
) -> None:
    """Seed the database with demo autotunes at every stage and days of simulated traffic (then `serve`)."""
    from dataclasses import replace as replace_spec

    from openautotune.simulation.wiring import SdkTraffic
    from openautotune.web import demo as demo_seed

    db = open_database(load_settings(database_url))
    specs = tuple(replace_spec(spec, users_per_hour=users_per_hour) for spec in demo_seed.DEMO_AUTOTUNES)
    out = Console()

    def report(outcome: demo_seed.DemoOutcome) -> None:
        if outcome.skipped:
            out.print(f"[yellow]skipped[/yellow] {outcome.name}: an autotune of that name exists")
            return
        users = f", {outcome.result.users:,} simulated users" if outcome.result is not None else ""
        out.print(f"[green]created[/green] {outcome.name} ({outcome.autotune_id}): {outcome.status}{users}")

    with out.status("Simulating traffic and hourly engine updates…"):
        demo_seed.seed(db, SystemClock(), lambda clock: SdkTraffic(db, clock), specs=specs, on_done=report)
    if not key_service.has_any_key(db):
        out.print("Start the server with `openautotune serve`: on first start it prints a console key to sign in.")
    else:
        out.print("Start the server with `openautotune serve` and sign in with a console key.")
