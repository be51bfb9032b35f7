"""`openautotune simulate`: synthetic users through the real engine, hour by hour (bandit or contextual)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from openautotune.cli.common import err

if TYPE_CHECKING:  # the simulators pull in numpy and scipy: imported only when the command runs
    from openautotune.simulation.bandit import HourReport, SimulationConfig, SimulationResult


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of rates") from None


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
    from openautotune.simulation.bandit import SimulationConfig

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
            from openautotune.simulation.wiring import run_simulation

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
    from openautotune.simulation.wiring import result_record, run_simulation, run_study

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

        from openautotune.simulation.wiring import run_study

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
    from openautotune.simulation.contextual import ContextualConfig, ContextualHourReport
    from openautotune.simulation.contextual_world import ContextualSpec
    from openautotune.simulation.wiring import run_contextual_simulation

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
