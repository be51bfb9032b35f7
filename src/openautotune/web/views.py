"""What the pages show, computed from the service layer and the update history (no HTML here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from openautotune.domain.autotune import Autotune, Stage, Status, Variant
from openautotune.engine.results import read_results
from openautotune.store.database import Database
from openautotune.web import health_view, results, series
from openautotune.web.templating import format_number, format_percent

if TYPE_CHECKING:  # the figures need plotly and numpy: imported by the page that draws them, not at start
    from openautotune.web import contextual_view, holdout_view

__all__ = ["AutotunePage", "ListRow", "SummaryRow", "format_percent", "list_rows", "load_series", "summary_rows"]


@dataclass(frozen=True)
class ListRow:
    id: str
    name: str
    stage: str
    leader: str | None
    leader_pob: float | None
    units: int | None
    last_update_ms: int | None


@dataclass(frozen=True)
class SummaryRow:
    name: str
    color: str
    is_winner: bool
    units: int | None
    successes_text: str
    mean_text: str
    ci_text: str
    pob: float | None
    weight: float | None


@dataclass(frozen=True)
class AutotunePage:
    series: series.Series
    stage: str
    last_update_ms: int | None
    summary: tuple[SummaryRow, ...]
    figures: dict[str, str]
    config: tuple[tuple[str, str], ...]
    variant_names: dict[str, str]
    contextual: contextual_view.ContextualSection | None = None  # only for contextual autotunes
    verdict: str = ""  # the results' one-sentence verdict (engine/verdict.py)
    health_delay: holdout_view.HealthDelaySection | None = None  # holdout comparison, immature units
    health: health_view.HealthView | None = None  # the latest update's health checks


def stage_of(autotune: Autotune, latest: series.UpdatePoint | None) -> str:
    """The stage people see: the lifecycle status, refined by the latest update while running."""
    if autotune.status is Status.DRAFT:
        return Stage.DRAFT.value
    if autotune.status is Status.FINISHED:
        return Stage.FINISHED.value
    return latest.stage.value if latest is not None and latest.stage is not Stage.DRAFT else Stage.EXPLORING.value


def _pob_of(point: series.UpdatePoint | None, variant_id: str) -> float | None:
    if point is None:
        return None
    return next((state.probability_of_best for state in point.variants if state.variant_id == variant_id), None)


def list_rows(db: Database, autotunes: list[Autotune], now_ms: int) -> list[ListRow]:
    latest = results.latest_points(db, autotunes)
    rows: list[ListRow] = []
    for autotune in autotunes:
        point = latest.get(autotune.id)
        best: tuple[Variant, float | None] | None = series.leader(autotune, point)
        if autotune.status is Status.FINISHED and autotune.winner is not None:
            best = (autotune.winner, _pob_of(point, autotune.winner.id))
        rows.append(
            ListRow(
                id=autotune.id,
                name=autotune.definition.name,
                stage=stage_of(autotune, point),
                leader=best[0].name if best is not None else None,
                leader_pob=best[1] if best is not None else None,
                units=sum(state.units for state in point.variants) if point is not None else None,
                last_update_ms=point.as_of_ms if point is not None else None,
            )
        )
    return rows


def load_series(db: Database, autotune: Autotune, cache: results.PointsCache | None = None) -> series.Series:
    """Everything the results charts and the history API show, for the autotune's current run."""
    points = results.points(db, autotune, cache)
    counts = results.daily_exposures(db, autotune)
    return series.build(autotune, points, counts, results.finished_at(db, autotune, points))


def _current_weight(page_series: series.Series, index: int, recorded: float) -> float:
    """The share of traffic served now: all of it to the winner once finished, else the latest update's."""
    autotune = page_series.autotune
    if autotune.status is Status.FINISHED and autotune.winner_variant_id is not None:
        return 1.0 if page_series.variants[index].id == autotune.winner_variant_id else 0.0
    return recorded


def summary_rows(page_series: series.Series) -> tuple[SummaryRow, ...]:
    from openautotune.web import figures

    latest = page_series.latest
    winner = page_series.autotune.winner_variant_id
    occurrence = page_series.metric == "occurrence"
    rows: list[SummaryRow] = []
    for index, variant in enumerate(page_series.variants):
        state = latest.variants[index] if latest is not None and index < len(latest.variants) else None
        value = format_percent if occurrence else format_number
        if state is None:
            rows.append(
                SummaryRow(variant.name, figures.color(index), variant.id == winner, None, "—", "—", "—", None, None)
            )
            continue
        successes = f"{int(state.successes):,}" if occurrence else format_number(state.successes, 2)
        ci = f"{value(state.ci_low)} – {value(state.ci_high)}" if state.ci_low is not None else "—"
        rows.append(
            SummaryRow(
                name=variant.name,
                color=figures.color(index),
                is_winner=variant.id == winner,
                units=state.units,
                successes_text=successes,
                mean_text=value(state.mean),
                ci_text=ci,
                pob=state.probability_of_best,
                weight=_current_weight(page_series, index, state.weight),
            )
        )
    return tuple(rows)


def _config(autotune: Autotune) -> tuple[tuple[str, str], ...]:
    d = autotune.definition
    optimizes = "value" if d.optimizes_value else "occurrence"
    success = d.success_event + (f" (value = {d.success_event_value!r})" if d.success_event_value else "")
    pairs: list[tuple[str, str]] = [
        ("Description", d.description or "—"),
        ("Unit id type", d.id_type),
        ("Success event", success),
        ("Optimizes", optimizes + (f" of metadata field {d.metadata_field!r}" if d.metadata_field else "")),
        ("Better is", "lower" if d.lower_is_better else "higher"),
        ("Exploration window", d.exploration_window),
        ("Attribution window", f"{d.attribution_window} ({d.attribution_window_unit or 'hour'})"),
        ("Winner threshold", d.winner_threshold),
        ("Long-term exploration", format_percent(d.longterm_exploration_allocation)),
        ("Contextual", "yes" if d.is_contextual else "no"),
        ("Created", f"{series.when(autotune.created_ms)} by {autotune.creator.name}"),
        ("Last modified", f"{series.when(autotune.modified_ms)} by {autotune.modifier.name}"),
    ]
    if d.goal_rich_text:
        pairs.insert(1, ("Goal", d.goal_rich_text))
    return tuple(pairs)


def autotune_page(
    db: Database, autotune: Autotune, now_ms: int, cache: results.PointsCache | None = None
) -> AutotunePage:
    from openautotune.web import contextual_view, figures, holdout_view

    page_series = load_series(db, autotune, cache)
    current = read_results(db, autotune)
    latest = page_series.latest
    names = [variant.name for variant in autotune.definition.variants]
    return AutotunePage(
        series=page_series,
        stage=stage_of(autotune, latest),
        last_update_ms=latest.as_of_ms if latest is not None else None,
        summary=summary_rows(page_series),
        figures=figures.all_figures(page_series),
        config=_config(autotune),
        variant_names={variant.id: variant.name for variant in autotune.definition.variants},
        contextual=contextual_view.section(db, autotune),
        verdict=current.verdict,
        health_delay=holdout_view.section(current),
        health=health_view.health_view(current.health, names),
    )
