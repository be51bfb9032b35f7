"""The `openautotune` command line (a composition root, like `api/app.py`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from openautotune.clock import SystemClock
from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service
from openautotune.settings import Settings
from openautotune.store import migrate
from openautotune.store.database import Database

if TYPE_CHECKING:  # the engine pulls in numpy and scipy: imported only by the commands that need it
    from openautotune.engine.simulator import HourReport, SimulationConfig, SimulationResult

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


def _limit_blas_threads(threads: int) -> None:
    """Cap BLAS threads for the whole server process.

    A server answers many small requests at once (contextual Thompson choices are small matrix-vector
    products): a multi-threaded BLAS made each one ~10x slower on a busy 2-core machine.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


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
    _limit_blas_threads(settings.blas_threads)
    db = _database(settings)
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


_SIMULATION_NAMES = ("SdkTraffic", "run_simulation", "run_study", "start_simulated_autotune")


def __getattr__(name: str) -> Any:
    """`from openautotune.cli import SdkTraffic` (and the other simulation helpers) still works: they
    live in `openautotune.simulation`, imported only when asked for (it pulls in numpy and scipy)."""
    if name in _SIMULATION_NAMES:
        from openautotune import simulation

        return getattr(simulation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of rates") from None


@app.command()
def simulate(
    arms: Annotated[
        str, typer.Option("--arms", help="True conversion rates, e.g. 0.05,0.055,0.06")
    ] = "0.05,0.055,0.06",
    users_per_hour: Annotated[int, typer.Option("--users-per-hour", min=1)] = 1000,
    hours: Annotated[int, typer.Option("--hours", min=1)] = 72,
    delay_minutes: Annotated[float, typer.Option("--delay-minutes", min=0, help="Mean conversion delay")] = 15.0,
    delay_distribution: Annotated[
        str, typer.Option("--delay-distribution", help="exponential, lognormal, uniform or fixed")
    ] = "exponential",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    exploration_window: Annotated[str, typer.Option("--exploration-window")] = "24hr",
    attribution_window: Annotated[str, typer.Option("--attribution-window")] = "1hr",
    winner_threshold: Annotated[str, typer.Option("--winner-threshold")] = "95%",
    long_term: Annotated[float | None, typer.Option("--long-term", help="longtermExplorationAllocation")] = None,
    direct: Annotated[
        bool, typer.Option("--direct", help="Insert units/events directly instead of through SDK ingestion")
    ] = False,
    seeds: Annotated[
        int, typer.Option("--seeds", min=1, help="Run this many seeds (seed, seed+1, ...) and summarise them")
    ] = 1,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes for --seeds")] = 1,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: a temporary SQLite file, deleted at the end")
    ] = None,
    identical: Annotated[
        int | None, typer.Option("--identical", min=2, help="This many identical variants at the first --arms rate")
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option("--schedule", help="Base-rate factors by hour of day, e.g. 24 comma-separated multipliers"),
    ] = None,
    spike: Annotated[float, typer.Option("--spike", min=0, help="Base-rate multiplier during day one")] = 1.0,
    winner_rule: Annotated[str | None, typer.Option("--winner-rule", help="sequential (default) or statsig")] = None,
    estimator: Annotated[str | None, typer.Option("--estimator", help="periodWeighted (default) or pooled")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON record per seed (seed, winner, decisionHour, regret)")
    ] = False,
    contextual: Annotated[
        str | None,
        typer.Option(
            "--contextual",
            help="Simulate a contextual autotune: a JSON spec file (or inline JSON) of user attributes and "
            "per-variant logistic models (see docs/engine.md); --arms is then ignored",
        ),
    ] = None,
) -> None:
    """Simulate an autotune with synthetic users: allocation, P(best), regret and the winner, hour by hour."""
    from rich.progress import Progress

    from openautotune.domain.errors import DomainError
    from openautotune.engine.simulator import SimulationConfig

    if contextual is not None:
        if seeds > 1 or direct:
            raise typer.BadParameter("--contextual runs one seed through the SDK path: no --seeds, no --direct")
        contextual_options: dict[str, Any] = {
            "exploration_window": exploration_window,
            "attribution_window": attribution_window,
            "long_term": long_term,
        }
        _simulate_contextual(
            contextual, users_per_hour, hours, seed, delay_minutes, delay_distribution, database_url, contextual_options
        )
        return
    rates = _floats(arms)
    try:
        config = SimulationConfig(
            arms=rates[:1] * identical if identical is not None and rates else rates,
            users_per_hour=users_per_hour,
            hours=hours,
            seed=seed,
            delay_mean_minutes=delay_minutes,
            delay_distribution=delay_distribution,
            hourly_factors=_floats(schedule) if schedule is not None else (),
            spike=spike,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    out = Console()
    options: dict[str, Any] = {
        "exploration_window": exploration_window,
        "attribution_window": attribution_window,
        "winner_threshold": winner_threshold,
        "long_term": long_term,
        "winner_rule": winner_rule,
        "estimator": estimator,
    }
    if as_json:
        _simulate_json(config, seeds, workers, not direct, database_url, options)
        return
    if seeds > 1:
        _simulate_study(out, config, seeds, workers, not direct, options)
        return
    table = Table("hour", "stage", "served", "P(best) after update", "regret")
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("simulating", total=hours)

        def on_hour(report: HourReport) -> None:
            progress.advance(task)
            table.add_row(
                str(report.hour + 1),
                report.stage,
                " ".join(f"{share:.3f}" for share in report.served),
                " ".join(f"{p:.4f}" for p in report.pob),
                f"{report.regret:.1f}",
            )

        try:
            from openautotune.simulation import run_simulation

            result = run_simulation(
                config,
                database_url=database_url,
                through_sdk=not direct,
                on_hour=on_hour,
                **options,
            )
        except DomainError as error:
            err.print(error.message if hasattr(error, "message") else str(error))
            raise typer.Exit(2) from None
    out.print(table)
    out.print(f"path: {'direct inserts' if direct else 'serving evaluator + SDK ingestion'}; arms {list(config.arms)}")
    winner = f"arm_{result.winner} after {result.hours_to_winner} h" if result.winner is not None else "none"
    out.print(f"best arm: arm_{result.best}; winner: {winner}")
    out.print(
        f"cumulative regret {result.regret:.1f} (equal split: {result.equal_split_regret:.1f}, "
        f"ratio {result.regret_ratio:.3f}) over {result.users} users"
    )


def _simulate_json(
    config: SimulationConfig,
    seeds: int,
    workers: int,
    through_sdk: bool,
    database_url: str | None,
    options: dict[str, Any],
) -> None:
    """One JSON line per seed, printed as each finishes (in seed order)."""
    from dataclasses import replace

    from openautotune.domain.errors import DomainError
    from openautotune.simulation import result_record, run_simulation, run_study

    def emit(result: SimulationResult) -> None:
        typer.echo(json.dumps(result_record(result)))

    try:
        if seeds == 1:
            emit(run_simulation(config, database_url=database_url, through_sdk=through_sdk, **options))
            return
        configs = [replace(config, seed=config.seed + k) for k in range(seeds)]
        run_study(configs, workers=workers, through_sdk=through_sdk, on_result=emit, **options)
    except DomainError as error:
        problems = getattr(error, "problems", [])
        err.print("; ".join(f"{p.property}: {p.error_message}" for p in problems) or error.message)
        raise typer.Exit(2) from None


def _simulate_study(
    out: Console, config: SimulationConfig, seeds: int, workers: int, through_sdk: bool, options: dict[str, Any]
) -> None:
    from dataclasses import replace

    from rich.progress import Progress

    configs = [replace(config, seed=config.seed + k) for k in range(seeds)]
    table = Table("seed", "winner", "hours to winner", "regret", "equal split", "ratio")
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("simulating seeds", total=seeds)

        def on_result(result: SimulationResult) -> None:
            progress.advance(task)
            table.add_row(
                str(result.config.seed),
                f"arm_{result.winner}" if result.winner is not None else "none",
                str(result.hours_to_winner or ""),
                f"{result.regret:.1f}",
                f"{result.equal_split_regret:.1f}",
                f"{result.regret_ratio:.3f}" if result.equal_split_regret > 0 else "-",
            )

        from openautotune.simulation import run_study

        results = run_study(configs, workers=workers, through_sdk=through_sdk, on_result=on_result, **options)
    out.print(table)
    declared = sum(1 for r in results if r.winner is not None)
    if len(set(config.arms)) == 1:
        out.print(f"A/A {list(config.arms)}: a (false) winner was declared in {declared}/{seeds} seeds")
        return
    best = results[0].best
    right = sum(1 for r in results if r.winner == best)
    out.print(
        f"arms {list(config.arms)}: best arm arm_{best} declared in {right}/{seeds} seeds, "
        f"another arm in {declared - right}"
    )
    regret = sum(r.regret for r in results)
    equal = sum(r.equal_split_regret for r in results)
    out.print(f"cumulative regret {regret:.1f} vs equal split {equal:.1f} (ratio {regret / equal:.3f})")


def _simulate_contextual(
    spec_text: str,
    users_per_hour: int,
    hours: int,
    seed: int,
    delay_minutes: float,
    delay_distribution: str,
    database_url: str | None,
    options: dict[str, Any],
) -> None:
    import json
    from pathlib import Path

    from rich.progress import Progress

    from openautotune.domain.errors import DomainError
    from openautotune.engine.contextual_simulator import ContextualConfig, ContextualHourReport
    from openautotune.engine.contextual_world import ContextualSpec
    from openautotune.simulation import run_contextual_simulation

    try:
        text = spec_text if spec_text.lstrip().startswith("{") else Path(spec_text).read_text()
        config = ContextualConfig(
            ContextualSpec.from_json(json.loads(text)),
            users_per_hour=users_per_hour,
            hours=hours,
            seed=seed,
            delay_mean_minutes=delay_minutes,
            delay_distribution=delay_distribution,
        )
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        raise typer.BadParameter(f"--contextual: {error}") from None
    out = Console(width=max(Console().width, 130))
    table = Table(
        "hour",
        "served by",
        "served",
        "explore",
        "regret",
        "cum. regret",
        "cum. best single",
        "cum. uniform",
        title="Regret against the per-user oracle (sum over users of best true rate - served true rate)",
    )
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("simulating", total=hours)

        def on_hour(report: ContextualHourReport) -> None:
            progress.advance(task)
            table.add_row(
                str(report.hour + 1),
                f"policy v{report.policy_version}" if report.policy_version is not None else "equal split",
                " ".join(f"{share:.3f}" for share in report.served),
                f"{report.explore_share:.3f}",
                f"{report.regret:.1f}",
                f"{report.cumulative_regret:.1f}",
                f"{report.cumulative_best_single_regret:.1f}",
                f"{report.cumulative_uniform_regret:.1f}",
            )

        try:
            result = run_contextual_simulation(config, database_url=database_url, on_hour=on_hour, **options)
        except DomainError as error:
            err.print(error.message if hasattr(error, "message") else str(error))
            raise typer.Exit(2) from None
    out.print(table)
    names = [variant.name for variant in config.spec.variants]
    values = result.values
    out.print(f"path: core-SDK evaluation of the published cmab_configs entry + SDK ingestion; variants {names}")
    out.print(
        f"cumulative regret over {result.users} users: policy {result.regret:.1f}, "
        f"best single variant ({names[result.best_single]}) {result.best_single_regret:.1f}, "
        f"uniform split {result.uniform_regret:.1f}"
    )
    policy = (
        f"policy v{values.policy_version}, explore share {values.sample_rate:.3f}" if values.policy_version else "none"
    )
    out.print(
        f"true value per user of the last published policy ({policy}): personalized {values.personalized:.4f} "
        f"(exploit path {values.exploit:.4f}) vs best single variant {values.best_single:.4f} vs uniform "
        f"{values.uniform:.4f} (per-user oracle {values.oracle:.4f})"
    )
    if values.estimated:
        estimated = values.estimated
        out.print(
            f"the engine's own doubly robust estimates: personalized {estimated['personalized']:.4f}, "
            f"best single {estimated['bestSingle']:.4f}, uniform {estimated['uniform']:.4f}"
        )


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


@app.command()
def demo(
    database_url: DatabaseUrl = None,
    users_per_hour: Annotated[
        int, typer.Option("--users-per-hour", help="Simulated users per hour per autotune (default 150)")
    ] = 150,
) -> None:
    """Seed the database with demo autotunes at every stage and days of simulated traffic (then `serve`)."""
    from dataclasses import replace as replace_spec

    from openautotune.simulation import SdkTraffic
    from openautotune.web import demo as demo_seed

    db = _database(_settings(database_url))
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


@app.command()
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
    from openautotune.web import views

    db = _database(_settings(database_url))
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
    occurrence = series.metric == "occurrence"
    table = Table(
        "variant",
        "units",
        "successes" if occurrence else "value sum",
        "rate" if occurrence else "mean",
        "95% CI",
        "P(best)",
        "weight",
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
        )
    out = Console()
    out.print(f"[bold]{series.status_sentence}[/bold]")
    out.print(read_results(db, autotune).verdict)
    out.print(table)


def main() -> None:
    app()
