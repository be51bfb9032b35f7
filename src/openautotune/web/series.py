"""The time series behind every results chart, and the status sentence: one module for the page and the API.

Input: the autotune and the update records of its current run, as `UpdatePoint`s (oldest first), plus
exposures counted per day. Output: a `Series` that the history API serialises and the page plots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from openautotune.domain.autotune import Autotune, Stage, Status, Variant
from openautotune.domain.windows import DAY_MS


class VariantState(NamedTuple):
    """One variant at one update: cumulative numbers of the run so far (a NamedTuple: a page of 90 days
    of hourly updates and 10 variants makes 21,600 of them, and tuples are the cheapest to build)."""

    variant_id: str
    units: int
    successes: float  # occurrence: units with a success; value: the sum of the units' values
    mean: float | None  # success rate, or mean value per unit
    ci_low: float | None
    ci_high: float | None
    probability_of_best: float | None
    weight: float


@dataclass(frozen=True)
class UpdatePoint:
    as_of_ms: int
    stage: Stage
    variants: tuple[VariantState, ...]  # in the definition's variant order


class DailyVariant(NamedTuple):
    variant_id: str
    units: int
    successes: float
    mean: float | None


@dataclass(frozen=True)
class Day:
    """One UTC day: units that matured that day, and their successes (or value sum) and mean."""

    day: str  # YYYY-MM-DD (UTC)
    start_ms: int
    variants: tuple[DailyVariant, ...]


@dataclass(frozen=True)
class DailyExposures:
    day: str
    start_ms: int
    counts: tuple[int, ...]  # per variant, in definition order


@dataclass(frozen=True)
class Series:
    autotune: Autotune
    status_sentence: str
    metric: str  # "occurrence" or "value"
    updates: tuple[UpdatePoint, ...]
    daily: tuple[Day, ...]
    daily_exposures: tuple[DailyExposures, ...]

    @property
    def variants(self) -> tuple[Variant, ...]:
        return self.autotune.definition.variants

    @property
    def latest(self) -> UpdatePoint | None:
        return self.updates[-1] if self.updates else None


def day_of(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def day_start(epoch_ms: int) -> int:
    return epoch_ms - epoch_ms % DAY_MS


def percent(value: float) -> str:
    """91% or 99.2%: one decimal, dropped when it is zero."""
    text = f"{100 * value:.1f}"
    return (text.removesuffix(".0") if text.endswith(".0") else text) + "%"


def when(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def leader(autotune: Autotune, point: UpdatePoint | None) -> tuple[Variant, float] | None:
    """The variant with the highest probability of best in `point` (ties: the earlier variant)."""
    if point is None:
        return None
    best: tuple[Variant, float] | None = None
    for variant, state in zip(autotune.definition.variants, point.variants, strict=False):
        if state.probability_of_best is not None and (best is None or state.probability_of_best > best[1]):
            best = (variant, state.probability_of_best)
    return best


def status_sentence(autotune: Autotune, latest: UpdatePoint | None, finished_ms: int | None = None) -> str:
    definition = autotune.definition
    if autotune.status is Status.DRAFT:
        return f"Draft: not started; everyone gets {definition.variants[0].name}."
    if autotune.status is Status.FINISHED:
        return _finished_sentence(autotune, latest, finished_ms)
    started = autotune.started_at_ms or 0
    explore_until = started + definition.exploration_ms
    if latest is None or latest.stage is Stage.EXPLORING:
        return f"Exploring until {when(explore_until)}: traffic is split evenly."
    best = leader(autotune, latest)
    if best is None:
        return "Running: waiting for the first results."
    needs = percent(definition.threshold)
    return f"{best[0].name} leads with {percent(best[1])} probability of being best; needs {needs}."


def _finished_sentence(autotune: Autotune, latest: UpdatePoint | None, finished_ms: int | None) -> str:
    """The engine's verdict ("won ... with 99.2%"), or a decision made by hand (the run's last update
    is then not a `finished` one)."""
    winner = autotune.winner
    name = winner.name if winner is not None else "The chosen variant"
    on = f" on {when(finished_ms)}" if finished_ms is not None else ""
    pob = None
    if latest is not None and winner is not None:
        for variant, state in zip(autotune.definition.variants, latest.variants, strict=False):
            if variant.id == winner.id:
                pob = state.probability_of_best
    if latest is not None and latest.stage is Stage.FINISHED:
        return f"{name} won{on}" + (f" with {percent(pob)} probability of being best." if pob is not None else ".")
    then = f" (probability of being best at the last update: {percent(pob)})" if pob is not None else ""
    return f"{name} was chosen by decision{on}{then}."


def daily_from_updates(updates: Sequence[UpdatePoint], variant_count: int) -> tuple[Day, ...]:
    """Per UTC day: the growth of the cumulative numbers between the last update of a day and the day before."""
    last_of_day: dict[str, UpdatePoint] = {}
    for point in updates:
        last_of_day[day_of(point.as_of_ms)] = point
    days: list[Day] = []
    previous_units = [0] * variant_count
    previous_successes = [0.0] * variant_count
    for day, point in last_of_day.items():
        variants: list[DailyVariant] = []
        for index, state in enumerate(point.variants[:variant_count]):
            units = state.units - previous_units[index]
            successes = state.successes - previous_successes[index]
            variants.append(DailyVariant(state.variant_id, units, successes, successes / units if units > 0 else None))
            previous_units[index], previous_successes[index] = state.units, state.successes
        days.append(Day(day=day, start_ms=day_start(point.as_of_ms), variants=tuple(variants)))
    return tuple(days)


def exposures_by_day(autotune: Autotune, counts: Mapping[tuple[int, str], int]) -> tuple[DailyExposures, ...]:
    """`counts` maps (day start ms, variant id) to exposures; variants without exposures that day count 0."""
    ids = [variant.id for variant in autotune.definition.variants]
    days = sorted({day for day, _ in counts})
    return tuple(
        DailyExposures(day=day_of(day), start_ms=day, counts=tuple(counts.get((day, vid), 0) for vid in ids))
        for day in days
    )


def build(
    autotune: Autotune,
    updates: Sequence[UpdatePoint],
    exposure_counts: Mapping[tuple[int, str], int],
    finished_ms: int | None = None,
) -> Series:
    ordered = tuple(sorted(updates, key=lambda point: point.as_of_ms))
    latest = ordered[-1] if ordered else None
    return Series(
        autotune=autotune,
        status_sentence=status_sentence(autotune, latest, finished_ms),
        metric="value" if autotune.definition.optimizes_value else "occurrence",
        updates=ordered,
        daily=daily_from_updates(ordered, len(autotune.definition.variants)),
        daily_exposures=exposures_by_day(autotune, exposure_counts),
    )
