"""A bandit simulator that drives the real path: a real database, the store, hourly engine updates.

Synthetic users arrive each hour with known true conversion rates per variant (`arms`). Each hour:

1. the variant of every new user comes from what is served at that time: the latest allocation
   (`Traffic.assign`: the serving evaluator when wired by the CLI, else Statsig bucketing by the
   published thresholds with the same sha256 hash);
2. their exposures and conversions (each converting user after a random delay) are recorded
   (`Traffic.record`: SDK event batches through ingestion when wired by the CLI, else direct bulk
   inserts into `units`/`events`);
3. the engine updates the autotune as of the end of the hour, on a `FixedClock`.

Once a winner is declared the autotune is finished: users keep arriving (they all get the winner,
which the regret accounts for) but nothing is written, since nothing would analyse them.

Draws are vectorised (numpy, one seeded generator), writes are one batch per hour, so a 20-seed
study runs in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, Protocol

import numpy as np

from openautotune.clock import HOUR_MS, MINUTE_MS, FixedClock
from openautotune.domain.allocation import BUCKETS
from openautotune.domain.autotune import Allocation, Autotune, Stage, Status
from openautotune.engine.update import update_autotune
from openautotune.store import attribution, updates
from openautotune.store import autotunes as autotune_store
from openautotune.store.database import Database

SIMULATION_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class Exposures:
    """One hour's new users: ids, served variant ids, allocation version, exposure times."""

    unit_ids: list[str]
    variant_ids: list[str]
    versions: list[int | None]
    times_ms: list[int]


@dataclass(frozen=True)
class Conversions:
    unit_ids: list[str]
    times_ms: list[int]


class Traffic(Protocol):
    """How simulated users meet the system: which variant they are served, and how it is recorded."""

    def assign(self, autotune: Autotune, allocation: Allocation | None, unit_ids: Sequence[str]) -> list[str]:
        """The variant id served to each unit, as an SDK would evaluate it."""
        ...

    def record(self, autotune: Autotune, exposures: Exposures, conversions: Conversions, now_ms: int) -> None:
        """Store the hour's exposures and success events."""
        ...


def _hash(text: str) -> int:
    return int.from_bytes(sha256(text.encode()).digest()[:8], "big")


class DirectTraffic:
    """Bucketing by the published thresholds, and bulk inserts straight into `units` and `events`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def assign(self, autotune: Autotune, allocation: Allocation | None, unit_ids: Sequence[str]) -> list[str]:
        variants = autotune.definition.variants
        if autotune.status is Status.FINISHED and autotune.winner_variant_id is not None:
            return [autotune.winner_variant_id] * len(unit_ids)
        if allocation is None:
            raise ValueError("a running autotune always has an allocation")
        thresholds = np.asarray(allocation.thresholds)
        buckets = np.fromiter(
            (_hash(f"{autotune.salt}.{unit}") % BUCKETS for unit in unit_ids), dtype=np.int64, count=len(unit_ids)
        )
        index = np.searchsorted(thresholds, buckets, side="right")
        return [variants[int(i)].id for i in index]

    def record(self, autotune: Autotune, exposures: Exposures, conversions: Conversions, now_ms: int) -> None:
        units: list[tuple[object, ...]] = [
            (autotune.id, autotune.run, unit, variant, at, version, False)
            for unit, variant, version, at in zip(
                exposures.unit_ids, exposures.variant_ids, exposures.versions, exposures.times_ms, strict=True
            )
        ]
        definition = autotune.definition
        value = definition.success_event_value or None
        events: list[tuple[object, ...]] = [
            (
                definition.id_type,
                unit,
                definition.success_event,
                value,
                None,
                at,
                now_ms,
                f"sim:{autotune.id}:{autotune.run}:{unit}:{at}",
            )
            for unit, at in zip(conversions.unit_ids, conversions.times_ms, strict=True)
        ]
        with self._db.write() as conn:
            attribution.insert_units(conn, units)
            attribution.insert_events(conn, events)


DELAY_DISTRIBUTIONS = ("exponential", "lognormal", "uniform", "fixed")


class DelayModel(Protocol):
    """What conversion delays are drawn from (a `SimulationConfig`, or the contextual simulator's config)."""

    @property
    def delay_mean_minutes(self) -> float: ...

    @property
    def delay_distribution(self) -> str: ...


def conversion_delays(rng: np.random.Generator, config: DelayModel, n: int) -> np.ndarray:
    """Conversion delays in ms, with mean `delay_mean_minutes` whatever the distribution."""
    mean = config.delay_mean_minutes * MINUTE_MS
    if config.delay_distribution == "lognormal":
        sigma = 1.0
        draws = rng.lognormal(math.log(mean) - sigma * sigma / 2, sigma, size=n) if mean > 0 else np.zeros(n)
    elif config.delay_distribution == "uniform":
        draws = rng.uniform(0.0, 2.0 * mean, size=n)
    elif config.delay_distribution == "fixed":
        draws = np.full(n, mean)
    else:
        draws = rng.exponential(mean, size=n)
    return np.rint(draws).astype(np.int64)


_delays = conversion_delays  # the name tests/simulation/test_simulator.py imports


@dataclass(frozen=True)
class SimulationConfig:
    arms: tuple[float, ...]
    users_per_hour: int = 1000
    hours: int = 72
    seed: int = 0
    delay_mean_minutes: float = 15.0
    """Mean conversion delay; a conversion later than the attribution window could never count, so
    it is not sent."""
    delay_distribution: str = "exponential"
    """`exponential` (memoryless), `lognormal` (sigma 1: most convert fast, a long tail), `uniform`
    (on [0, 2 x mean]) or `fixed` (every delay = the mean)."""
    start_ms: int = SIMULATION_START_MS
    hourly_factors: tuple[float, ...] = ()
    """Base rates that change with the hour of day: hour h multiplies every arm's rate by
    ``hourly_factors[h % len(hourly_factors)]`` (empty: constant). The true lift stays constant."""
    spike: float = 1.0
    """A launch-day spike: every arm's rate is multiplied by this during the first 24 hours."""

    def __post_init__(self) -> None:
        if len(self.arms) < 2 or any(not (0.0 <= p <= 1.0) for p in self.arms):
            raise ValueError("arms: at least two conversion rates between 0 and 1")
        factors = (*self.hourly_factors, self.spike)
        if any(not (math.isfinite(f) and f >= 0.0) for f in factors):
            raise ValueError("hourly_factors and spike must be non-negative numbers")
        peak = max(self.hourly_factors, default=1.0) * max(self.spike, 1.0)
        if max(self.arms) * peak > 1.0:
            raise ValueError("arms times the base-rate factors must stay conversion rates (at most 1)")
        if self.users_per_hour < 1 or self.hours < 1 or self.delay_mean_minutes < 0:
            raise ValueError("users_per_hour and hours must be positive, delay_mean_minutes non-negative")
        if self.delay_distribution not in DELAY_DISTRIBUTIONS:
            raise ValueError(f"delay_distribution must be one of {', '.join(DELAY_DISTRIBUTIONS)}")


def rates_at(config: SimulationConfig, hour: int) -> np.ndarray:
    """The true conversion rates of hour ``hour``: the arms times that hour's base-rate factor."""
    factor = config.spike if hour < 24 else 1.0
    if config.hourly_factors:
        factor *= config.hourly_factors[hour % len(config.hourly_factors)]
    return np.asarray(config.arms, dtype=np.float64) * factor


@dataclass(frozen=True)
class HourReport:
    hour: int
    users: int
    conversions: int
    served: tuple[float, ...]
    """The share of this hour's users each variant got."""
    stage: str
    pob: tuple[float, ...]
    """P(best) after the update at the end of the hour (empty when no update ran)."""
    weights: tuple[float, ...]
    """The weights published by that update (what the next hour is served)."""
    regret: float
    health: dict[str, Any] | None = None
    """The update's health checks (sample ratio, guardrails), when an update ran."""


@dataclass(frozen=True)
class FinalEstimate:
    """One variant in the last update record: the estimator's rate, its interval, and the raw sums."""

    mean: float
    ci_low: float
    ci_high: float
    units: int
    successes: int


def _final_estimates(db: Database, autotune: Autotune) -> tuple[FinalEstimate, ...]:
    with db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms, autotune.run)
    if record is None:
        return ()
    return tuple(
        FinalEstimate(
            mean=float(v["mean"] or 0.0),
            ci_low=float(v["ciLow"] or 0.0),
            ci_high=float(v["ciHigh"] or 0.0),
            units=int(v["units"]),
            successes=int(v["successes"]),
        )
        for v in record.record["variants"]
    )


@dataclass(frozen=True)
class SimulationResult:
    config: SimulationConfig
    autotune_id: str
    best: int
    winner: int | None
    hours_to_winner: int | None
    regret: float
    equal_split_regret: float
    users: int
    hours: list[HourReport] = field(default_factory=list)
    final: tuple[FinalEstimate, ...] = ()
    """Each variant's estimate in the last update record (what the results API would show)."""
    analysed_hours: int = 0
    """Exposure hours that update analysed (every unit matured by its as_of): 0 .. analysed_hours - 1."""

    @property
    def regret_ratio(self) -> float:
        return self.regret / self.equal_split_regret if self.equal_split_regret > 0 else math.nan


def simulate(
    db: Database,
    clock: FixedClock,
    autotune_id: str,
    config: SimulationConfig,
    traffic: Traffic,
    *,
    on_hour: Callable[[HourReport], None] | None = None,
) -> SimulationResult:
    """Run `config` against the started autotune `autotune_id` (one variant per arm, in order)."""
    rng = np.random.default_rng(config.seed)
    best = int(np.argmax(config.arms))
    with db.read() as conn:
        autotune = autotune_store.get(conn, autotune_id)
    if autotune is None or len(autotune.definition.variants) != len(config.arms):
        raise ValueError("the autotune must exist and have one variant per arm")
    window_ms = autotune.definition.attribution_ms
    variant_index = {variant.id: k for k, variant in enumerate(autotune.definition.variants)}
    allocation: Allocation | None = None
    reports: list[HourReport] = []
    total_regret = 0.0
    winner: int | None = None
    hours_to_winner: int | None = None
    pending_units: list[str] = []
    pending_times = np.zeros(0, dtype=np.int64)
    equal_split_regret = 0.0
    for hour in range(config.hours):
        rates = rates_at(config, hour)
        hour_start = config.start_ms + hour * HOUR_MS
        hour_end = hour_start + HOUR_MS
        if autotune.status is Status.RUNNING:  # once finished, what is served never changes again
            with db.read() as conn:
                autotune = autotune_store.get(conn, autotune_id)
                allocation = autotune_store.latest_allocation(conn, autotune_id)
            assert autotune is not None
        n = config.users_per_hour
        offsets = np.sort(rng.integers(0, HOUR_MS, size=n))
        unit_ids = [f"s{config.seed}-h{hour}-u{i}" for i in range(n)]
        served_ids = traffic.assign(autotune, allocation, unit_ids)
        arms = np.fromiter((variant_index[v] for v in served_ids), dtype=np.int64, count=n)
        converted = rng.random(n) < rates[arms]
        delays = conversion_delays(rng, config, n)
        regret = float(np.sum(rates[best] - rates[arms]))
        total_regret += regret
        equal_split_regret += n * float(np.mean(rates[best] - rates))
        served = tuple(float(x) for x in np.bincount(arms, minlength=len(rates)) / n)
        stage = Stage.FINISHED.value
        pob: tuple[float, ...] = ()
        weights: tuple[float, ...] = ()
        health: dict[str, Any] | None = None
        if autotune.status is Status.RUNNING:
            times = hour_start + offsets
            version = allocation.version if allocation is not None else autotune.allocation_version
            exposures = Exposures(unit_ids, served_ids, [version] * n, [int(t) for t in times])
            # A success event is sent when it happens: queue it, and send what is due by the hour's end.
            hits = np.flatnonzero(converted & (delays <= window_ms))
            pending_units.extend(unit_ids[i] for i in hits)
            pending_times = np.concatenate([pending_times, times[hits] + delays[hits]])
            due = pending_times <= hour_end
            conversions = Conversions(
                [unit for unit, now in zip(pending_units, due, strict=True) if now],
                [int(t) for t in pending_times[due]],
            )
            pending_units = [unit for unit, now in zip(pending_units, due, strict=True) if not now]
            pending_times = pending_times[~due]
            clock.set(hour_end)
            traffic.record(autotune, exposures, conversions, hour_end)
            outcome = update_autotune(db, clock, autotune_id, hour_end)
            stage = outcome.stage.value if outcome.stage is not None else (outcome.reason or "skipped")
            pob, weights, health = outcome.pob, outcome.weights, outcome.health
            if outcome.winner_variant_id is not None:
                winner = variant_index[outcome.winner_variant_id]
                hours_to_winner = hour + 1
        report = HourReport(
            hour=hour,
            users=n,
            conversions=int(converted.sum()),
            served=served,
            stage=stage,
            pob=pob,
            weights=weights,
            regret=regret,
            health=health,
        )
        reports.append(report)
        if on_hour is not None:
            on_hour(report)
    users = config.users_per_hour * config.hours
    updated_hours = hours_to_winner or config.hours
    return SimulationResult(
        config=config,
        autotune_id=autotune_id,
        best=best,
        winner=winner,
        hours_to_winner=hours_to_winner,
        regret=total_regret,
        equal_split_regret=equal_split_regret,
        users=users,
        hours=reports,
        final=_final_estimates(db, autotune),
        # The update at the end of hour h reads the units exposed before hour h (1-hour window; the
        # simulated autotunes use that window).
        analysed_hours=max(0, updated_hours - math.ceil(window_ms / HOUR_MS)),
    )
