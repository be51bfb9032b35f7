"""`openautotune results`: an autotune's status sentence and results table, or the results API JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from openautotune.cli.common import DatabaseUrl, err, load_settings, open_database

if TYPE_CHECKING:
    from openautotune.web.health_view import HealthView


def results(
    autotune_id: Annotated[str, typer.Argument(help="The autotune's id")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON of GET /console/v1/autotunes/{id}/results")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Print an autotune's status sentence and results table (or the results API JSON with --json)."""
    import orjson

    from openautotune.api.results import MESSAGE as RESULTS_MESSAGE
    from openautotune.api.results import results_json
    from openautotune.domain.errors import NotFound
    from openautotune.engine.results import read_results
    from openautotune.service import autotunes as autotune_service
    from openautotune.web import health_view, views

    db = open_database(load_settings(database_url))
    try:
        autotune = autotune_service.get(db, autotune_id)
    except NotFound as missing:
        err.print(missing.message)
        raise typer.Exit(1) from None
    if as_json:
        body = {"message": RESULTS_MESSAGE, "data": results_json(read_results(db, autotune))}
        typer.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    series = views.load_series(db, autotune)
    current = read_results(db, autotune)
    immature = {variant.name: variant.immature_units for variant in current.variants}
    occurrence = series.metric == "occurrence"
    table = Table(
        "variant",
        "units",
        "successes" if occurrence else "value sum",
        "rate" if occurrence else "mean",
        "95% CI",
        "P(best)",
        "weight",
        "immature",
        title=f"{autotune.definition.name} ({autotune.id}), run {autotune.run}",
    )
    for row in views.summary_rows(series):
        table.add_row(
            row.name + (" (winner)" if row.is_winner else ""),
            f"{row.units:,}" if row.units is not None else "—",
            row.successes_text,
            row.mean_text,
            row.ci_text,
            views.format_percent(row.pob),
            views.format_percent(row.weight),
            f"{immature.get(row.name, 0):,}",
        )
    out = Console()
    out.print(f"[bold]{series.status_sentence}[/bold]")
    out.print(current.verdict)
    out.print(table)
    out.print("immature: units exposed less than one attribution window ago (not in units; the allocation counts them)")
    if current.holdout is not None:
        out.print(holdout_lines(current.holdout, occurrence))
    _print_health(out, health_view.health_view(current.health, [v.name for v in autotune.definition.variants]))


def holdout_lines(block: dict[str, Any], occurrence: bool) -> str:
    """The holdout comparison in two lines (results JSON `holdout`, docs/engine.md "Holdout")."""

    def show(value: Any) -> str:
        if not isinstance(value, int | float):
            return "—"
        return f"{100 * value:.2f}%" if occurrence else f"{value:.4g}"

    lift = block.get("lift") or {}
    regret = block.get("regretAvoided") or {}
    head = (
        f"holdout {block.get('percent')}%: {block.get('units', 0):,} units at {show(block.get('holdoutMean'))}; "
        f"bandit {block.get('banditUnits', 0):,} units at {show(block.get('banditMean'))}"
    )
    if not lift:
        return head + f"\n{block.get('message') or 'not enough data'}"
    return (
        f"{head}\nlift over the holdout {show(lift.get('value'))} (95% interval {show(lift.get('low'))} to "
        f"{show(lift.get('high'))}); regret avoided {regret.get('value', 0):,.1f} "
        f"({regret.get('low', 0):,.1f} to {regret.get('high', 0):,.1f})"
    )


def _print_health(out: Console, view: HealthView | None) -> None:
    """The dashboard's health card as text: sample ratio, exclusions and each guardrail."""
    if view is None:
        return
    style = "bold red" if view.srm_status == "warning" else None
    out.print(view.srm_text, style=style, markup=False, highlight=False)
    for reason in view.reasons:
        out.print(reason, style="bold", markup=False, highlight=False)
    for guardrail in view.guardrails:
        table = Table("variant", "units", "with the event", "rate", "P(harm)", "status")
        table.title = f"guardrail {guardrail.label}: {guardrail.rule}"
        for row in guardrail.rows:
            table.add_row(row.name, f"{row.units:,}", f"{row.hits:,}", row.rate, row.harm, row.status)
        out.print(table)
