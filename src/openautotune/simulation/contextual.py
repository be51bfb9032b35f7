"""A contextual-autotune simulator on the real path: users with attributes, a true reward model per variant.

The world (`contextual_world.ContextualSpec`) says how users' attributes are distributed and how likely
each variant is to convert each user. Each simulated hour, like `simulator.simulate`:

1. new users are drawn (ids `c<seed>-h<hour>-u<i>`, exposure times uniform in the hour) and served by
   `ContextualTraffic.assign` (wired in `openautotune.simulation.wiring`: the published `cmab_configs` entry
   evaluated exactly as the core SDK evaluates it);
2. each converts with its served variant's true probability for that user, after a random delay; the
   exposures (with the full user object, which is what the engine trains on) and the success events due
   by the end of the hour are recorded (`ContextualTraffic.record`: SDK batches through ingestion);
3. the engine updates the autotune as of the end of the hour (a `FixedClock`): after the exploration
   window it fits one model per variant and publishes a new policy.

Regret is counted against the per-user oracle (the variant with the highest true probability for that
user), for the policy as served and, on the same users, for the best single variant (the one with the
highest population mean, from a large reference sample) and for a uniform split. At the end the last
published policy's true value (with its explore share, and its exploit path alone) is computed exactly on
the reference sample, next to the best single variant's, the uniform split's, the oracle's, and the
engine's own off-policy estimates from its last update record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from openautotune.clock import HOUR_MS, FixedClock
from openautotune.contextual.training import model_from_json
from openautotune.domain.autotune import Autotune
from openautotune.engine.update import update_autotune
from openautotune.simulation.bandit import (
    DELAY_DISTRIBUTIONS,
    SIMULATION_START_MS,
    Conversions,
    conversion_delays,
)
from openautotune.simulation.contextual_world import ContextualSpec, FloatArray
from openautotune.store import autotunes as autotune_store
from openautotune.store import contextual as contextual_store
from openautotune.store import updates
from openautotune.store.database import Database


@dataclass(frozen=True)
class Served:
    """What one user was served: the variant, whether on the explore path, the version echoed."""

    variant_id: str
    explored: bool
    version: int | None


@dataclass(frozen=True)
class ContextualExposures:
    users: list[dict[str, Any]]
    served: list[Served]
    times_ms: list[int]


class ContextualTraffic(Protocol):
    def assign(self, autotune: Autotune, users: Sequence[Mapping[str, Any]]) -> list[Served]:
        """The variant each user is served, as an SDK would evaluate the published policy."""
        ...

    def record(self, autotune: Autotune, exposures: ContextualExposures, conversions: Conversions, now_ms: int) -> None:
        """Store the hour's exposures and success events."""
        ...


@dataclass(frozen=True)
class ContextualConfig:
    spec: ContextualSpec
    users_per_hour: int = 1000
    hours: int = 72
    seed: int = 0
    delay_mean_minutes: float = 15.0
    delay_distribution: str = "exponential"
    start_ms: int = SIMULATION_START_MS
    reference_users: int = 20_000
    """The size of the reference sample the best single variant and the true policy values come from."""

    def __post_init__(self) -> None:
        if self.users_per_hour < 1 or self.hours < 1 or self.delay_mean_minutes < 0 or self.reference_users < 1:
            raise ValueError("users_per_hour, hours and reference_users must be positive, delay non-negative")
        if self.delay_distribution not in DELAY_DISTRIBUTIONS:
            raise ValueError(f"delay_distribution must be one of {', '.join(DELAY_DISTRIBUTIONS)}")


@dataclass(frozen=True)
class ContextualHourReport:
    hour: int
    users: int
    conversions: int
    stage: str
    """The stage after the update at the end of the hour."""
    policy_version: int | None
    """The published policy the hour's users were served by (None: the exploration window's equal split)."""
    served: tuple[float, ...]
    explore_share: float
    """The share of the hour's users served on the explore path."""
    regret: float
    """This hour: sum over users of (oracle's true probability - the served variant's)."""
    best_single_regret: float
    uniform_regret: float
    cumulative_regret: float
    cumulative_best_single_regret: float
    cumulative_uniform_regret: float


@dataclass(frozen=True)
class PolicyValues:
    """True success probability per user (on the reference sample) of each way of serving."""

    personalized: float
    """The last published policy as served (explore share included); the uniform split before any."""
    exploit: float
    """Its exploit path alone (every user gets the best published score)."""
    best_single: float
    uniform: float
    oracle: float
    policy_version: int | None
    sample_rate: float
    estimated: dict[str, float] = field(default_factory=dict)
    """The engine's doubly robust off-policy estimates from its last record: personalized, bestSingle, uniform."""


@dataclass(frozen=True)
class ContextualResult:
    config: ContextualConfig
    autotune_id: str
    best_single: int
    """The index of the variant with the highest population mean."""
    users: int
    regret: float
    best_single_regret: float
    uniform_regret: float
    values: PolicyValues
    hours: list[ContextualHourReport] = field(default_factory=list)

    def trained_hours(self) -> list[ContextualHourReport]:
        """The hours served by a trained policy (after the exploration window)."""
        return [hour for hour in self.hours if hour.policy_version is not None]


def _latest_policy(db: Database, autotune: Autotune) -> contextual_store.Policy | None:
    with db.read() as conn:
        policies = contextual_store.policies_of_run(conn, autotune.id, autotune.created_ms, autotune.run)
    return policies[max(policies)] if policies else None


def _values(
    db: Database, autotune: Autotune, reference: Sequence[Mapping[str, Any]], truth: FloatArray
) -> PolicyValues:
    best_single = float(truth.mean(axis=0).max())
    uniform = float(truth.mean())
    oracle = float(truth.max(axis=1).mean())
    policy = _latest_policy(db, autotune)
    if policy is None:
        return PolicyValues(uniform, uniform, best_single, uniform, oracle, None, 1.0)
    server = model_from_json(policy.model)
    design = server.encoding.transform(list(reference))
    probabilities = server.policy.probabilities(design)
    greedy = server.policy.greedy(design)
    with db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms, autotune.run)
    estimated: dict[str, float] = {}
    if record is not None and "policyValue" in (record.record.get("contextual") or {}):
        value = record.record["contextual"]["policyValue"]
        estimated = {name: float(value[name]["dr"]) for name in ("personalized", "bestSingle", "uniform")}
    return PolicyValues(
        personalized=float((probabilities * truth).sum(axis=1).mean()),
        exploit=float(truth[np.arange(truth.shape[0]), greedy].mean()),
        best_single=best_single,
        uniform=uniform,
        oracle=oracle,
        policy_version=policy.version,
        sample_rate=policy.sample_rate,
        estimated=estimated,
    )


def simulate_contextual(
    db: Database,
    clock: FixedClock,
    autotune_id: str,
    config: ContextualConfig,
    traffic: ContextualTraffic,
    *,
    on_hour: Callable[[ContextualHourReport], None] | None = None,
) -> ContextualResult:
    """Run `config` against the started contextual autotune `autotune_id` (its variants in spec order)."""
    spec = config.spec
    rng = np.random.default_rng(config.seed)
    reference = spec.draw_users(
        np.random.default_rng([config.seed, 1]), [f"ref-{i}" for i in range(config.reference_users)]
    )
    reference_truth = spec.probabilities(reference)
    best_single = int(np.argmax(reference_truth.mean(axis=0)))
    with db.read() as conn:
        autotune = autotune_store.get(conn, autotune_id)
    if autotune is None or not autotune.definition.is_contextual:
        raise ValueError("the autotune must exist and be contextual")
    if len(autotune.definition.variants) != len(spec.variants):
        raise ValueError("the autotune must have one variant per variant of the spec")
    window_ms = autotune.definition.attribution_ms
    variant_index = {variant.id: k for k, variant in enumerate(autotune.definition.variants)}
    reports: list[ContextualHourReport] = []
    totals = np.zeros(3)
    pending_units: list[str] = []
    pending_times = np.zeros(0, dtype=np.int64)
    for hour in range(config.hours):
        hour_start = config.start_ms + hour * HOUR_MS
        hour_end = hour_start + HOUR_MS
        with db.read() as conn:
            current = autotune_store.get(conn, autotune_id)
        assert current is not None
        autotune = current
        policy = _latest_policy(db, autotune)
        n = config.users_per_hour
        times = hour_start + np.sort(rng.integers(0, HOUR_MS, size=n))
        unit_ids = [f"c{config.seed}-h{hour}-u{i}" for i in range(n)]
        users = spec.draw_users(rng, unit_ids)
        served = traffic.assign(autotune, users)
        arms = np.fromiter((variant_index[s.variant_id] for s in served), dtype=np.int64, count=n)
        truth = spec.probabilities(users)
        chosen = truth[np.arange(n), arms]
        converted = rng.random(n) < chosen
        delays = conversion_delays(rng, config, n)
        oracle = truth.max(axis=1)
        regrets = np.array(
            [
                float(np.sum(oracle - chosen)),
                float(np.sum(oracle - truth[:, best_single])),
                float(np.sum(oracle - truth.mean(axis=1))),
            ]
        )
        totals += regrets
        exposures = ContextualExposures(users, served, [int(t) for t in times])
        # A success event is sent when it happens: queue it, and send what is due by the hour's end.
        hits = np.flatnonzero(converted & (delays <= window_ms))
        pending_units.extend(unit_ids[i] for i in hits)
        pending_times = np.concatenate([pending_times, times[hits] + delays[hits]])
        due = pending_times <= hour_end
        conversions = Conversions(
            [unit for unit, now in zip(pending_units, due, strict=True) if now], [int(t) for t in pending_times[due]]
        )
        pending_units = [unit for unit, now in zip(pending_units, due, strict=True) if not now]
        pending_times = pending_times[~due]
        clock.set(hour_end)
        traffic.record(autotune, exposures, conversions, hour_end)
        outcome = update_autotune(db, clock, autotune_id, hour_end)
        report = ContextualHourReport(
            hour=hour,
            users=n,
            conversions=int(converted.sum()),
            stage=outcome.stage.value if outcome.stage is not None else (outcome.reason or "skipped"),
            policy_version=policy.version if policy is not None else None,
            served=tuple(float(x) for x in np.bincount(arms, minlength=len(variant_index)) / n),
            explore_share=sum(1 for s in served if s.explored) / n,
            regret=float(regrets[0]),
            best_single_regret=float(regrets[1]),
            uniform_regret=float(regrets[2]),
            cumulative_regret=float(totals[0]),
            cumulative_best_single_regret=float(totals[1]),
            cumulative_uniform_regret=float(totals[2]),
        )
        reports.append(report)
        if on_hour is not None:
            on_hour(report)
    return ContextualResult(
        config=config,
        autotune_id=autotune_id,
        best_single=best_single,
        users=config.users_per_hour * config.hours,
        regret=float(totals[0]),
        best_single_regret=float(totals[1]),
        uniform_regret=float(totals[2]),
        values=_values(db, autotune, reference, reference_truth),
        hours=reports,
    )
