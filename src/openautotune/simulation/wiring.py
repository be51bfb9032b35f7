"""The simulator's wiring (a composition root, like `cli` and `api/app.py`).

`simulation/bandit.py` may only use the engine's own layers (domain, stats, clock, store); this module
plugs in the rest of the real path for `openautotune simulate` and the tests: the autotune is created
and started through the service, users are evaluated by the serving evaluator against the rendered
config spec, and their SDK events go through ingestion (`SdkTraffic`); `DirectTraffic` (the engine's
own bucketing and bulk inserts) is the fast alternative, and a test shows both give the same numbers.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from openautotune.clock import Clock, FixedClock
from openautotune.contextual.features import as_category, as_number, user_value
from openautotune.domain.autotune import Actor, Allocation, Autotune
from openautotune.domain.guardrails import Guardrail
from openautotune.service import autotunes as autotune_service
from openautotune.service import specs as spec_service
from openautotune.service.ingest import Ingestor
from openautotune.serving.bucketing import CMAB_BUCKETS, cmab_bucket, unit_id
from openautotune.serving.cmab import cmab_configs, equal_split
from openautotune.serving.entries import config_entry
from openautotune.serving.evaluate import compile_entry
from openautotune.simulation.bandit import (
    Conversions,
    DirectTraffic,
    Exposures,
    HourReport,
    SimulationConfig,
    SimulationResult,
    Traffic,
    simulate,
)
from openautotune.simulation.contextual import (
    ContextualConfig,
    ContextualExposures,
    ContextualHourReport,
    ContextualResult,
    Served,
    simulate_contextual,
)
from openautotune.store import autotunes as autotune_store
from openautotune.store import migrate
from openautotune.store.database import Database


class SdkTraffic:
    """Simulated users through the real faces: the serving evaluator picks each user's variant from
    the rendered config spec, and their exposures and success events go to ingestion as SDK batches."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._ingestor = Ingestor(db, clock)
        self._rules: dict[str, str] = {}  # unit -> the rule id its exposure logs (e.g. a holdout rule)

    def assign(self, autotune: Autotune, allocation: Allocation | None, unit_ids: Sequence[str]) -> list[str]:
        compiled = compile_entry(config_entry(autotune, allocation))
        evaluations = [compiled.evaluate({"userID": unit}) for unit in unit_ids]
        if any(evaluation.variant_id is None for evaluation in evaluations):
            raise RuntimeError("the evaluator served no variant to a simulated user")
        self._rules = {unit: evaluation.rule_id for unit, evaluation in zip(unit_ids, evaluations, strict=True)}
        return [evaluation.variant_id for evaluation in evaluations if evaluation.variant_id is not None]

    def record(self, autotune: Autotune, exposures: Exposures, conversions: Conversions, now_ms: int) -> None:
        sent = [
            _exposure_event(autotune.id, {"userID": unit}, self._rules.get(unit, variant), version, at)
            for unit, variant, version, at in zip(
                exposures.unit_ids, exposures.variant_ids, exposures.versions, exposures.times_ms, strict=True
            )
        ]
        _ingest_with_conversions(self._ingestor, autotune, sent, conversions)


def _exposure_event(
    autotune_id: str, user: dict[str, object], rule_id: str, version: int | None, at: int
) -> dict[str, object]:
    """A `statsig::config_exposure` exactly as the SDKs log it."""
    return {
        "eventName": "statsig::config_exposure",
        "user": user,
        "time": at,
        "metadata": {
            "config": autotune_id,
            "ruleID": rule_id,
            "rulePassed": "true",
            "configVersion": str(version),
            "reason": "Network",
        },
        "secondaryExposures": [],
    }


def _ingest_with_conversions(
    ingestor: Ingestor, autotune: Autotune, events: list[dict[str, object]], conversions: Conversions
) -> None:
    """Add the success events of the converting units and send everything as one SDK batch."""
    definition = autotune.definition
    for unit, at in zip(conversions.unit_ids, conversions.times_ms, strict=True):
        event: dict[str, object] = {"eventName": definition.success_event, "user": {"userID": unit}, "time": at}
        if definition.success_event_value:
            event["value"] = definition.success_event_value
        events.append(event)
    result = ingestor.ingest(events)
    if result.rejected:
        raise RuntimeError(f"ingestion rejected simulated events: {result.rejected[:3]}")


SIMULATOR = Actor(id="simulator", name="SIMULATOR")


def _create_and_start(db: Database, clock: Clock, fields: Mapping[str, Any], *, salt: str) -> str:
    """Create and start an autotune through the service (as the Console API would), with a salt
    derived from the seed instead of a random one, so that a simulation is reproducible."""
    created = autotune_service.create(db, clock, SIMULATOR, fields)
    with db.write() as conn:
        autotune_store.save(conn, replace(created, salt=salt))
    return autotune_service.start(db, clock, SIMULATOR, created.id).id


@contextmanager
def _simulation_database(database_url: str | None) -> Iterator[Database]:
    """`database_url`, or a fresh temporary SQLite file; migrated, and disposed of at the end.

    The temporary file lives in memory-backed /dev/shm when there is one: it is deleted at the end, so
    durability buys nothing, and skipping the disk's fsyncs makes a simulation several times faster.
    """
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="openautotune-sim-", dir=shm if shm.is_dir() else None) as folder:
        db = Database.from_url(database_url or f"sqlite:///{Path(folder) / 'simulation.db'}")
        migrate.upgrade(db.engine)
        try:
            yield db
        finally:
            db.dispose()


def start_simulated_autotune(
    db: Database,
    clock: Clock,
    config: SimulationConfig,
    *,
    name: str = "simulated_autotune",
    exploration_window: str = "24hr",
    attribution_window: str = "1hr",
    winner_threshold: str = "95%",
    long_term: float | None = None,
    estimator: str | None = None,
    winner_rule: str | None = None,
    holdout_percent: float | None = None,
    delayed_conversions: str | None = None,
    guardrails: tuple[Guardrail, ...] = (),
) -> str:
    """Create and start (through the service, as the Console API would) one autotune per simulation;
    `estimator`, `winner_rule`, `holdout_percent` and `delayed_conversions` None are the engine's defaults."""
    fields = {
        "name": name,
        "variants": [autotune_service.VariantInput(arm_name(k), {"arm": k}) for k in range(len(config.arms))],
        "success_event": "purchase",
        "exploration_window": exploration_window,
        "attribution_window": attribution_window,
        "winner_threshold": winner_threshold,
        "longterm_exploration_allocation": long_term,
        "estimator": estimator,
        "winner_rule": winner_rule,
        "holdout_percent": holdout_percent,
        "delayed_conversions": delayed_conversions,
        "guardrails": guardrails,
    }
    return _create_and_start(db, clock, fields, salt=f"simulation-{config.seed}")


def arm_name(index: int) -> str:
    """The variant name `start_simulated_autotune` gives arm `index`."""
    return f"arm_{index}"


def result_record(result: SimulationResult) -> dict[str, Any]:
    """One seed's outcome as a JSON record (`openautotune simulate --json`, bench/decisions.py)."""
    return {
        "seed": result.config.seed,
        "winner": arm_name(result.winner) if result.winner is not None else None,
        "best": arm_name(result.best) if len(set(result.config.arms)) > 1 else None,
        "decisionHour": result.hours_to_winner,
        "regret": result.regret,
        "equalSplitRegret": result.equal_split_regret,
        "users": result.users,
    }


def run_simulation(
    config: SimulationConfig,
    *,
    database_url: str | None = None,
    through_sdk: bool = True,
    on_hour: Callable[[HourReport], None] | None = None,
    wrap_traffic: Callable[[Database, Traffic], Traffic] | None = None,
    **autotune_options: Any,
) -> SimulationResult:
    """One simulated autotune on a fresh temporary SQLite file (or `database_url`), start to end;
    `wrap_traffic` may change how users are recorded (bench/health.py: a broken client, guardrail events)."""
    with _simulation_database(database_url) as db:
        clock = FixedClock(config.start_ms)
        autotune_id = start_simulated_autotune(db, clock, config, **autotune_options)
        traffic: Traffic = SdkTraffic(db, clock) if through_sdk else DirectTraffic(db)
        if wrap_traffic is not None:
            traffic = wrap_traffic(db, traffic)
        return simulate(db, clock, autotune_id, config, traffic, on_hour=on_hour)


def _run_one(job: tuple[SimulationConfig, bool, dict[str, Any]]) -> SimulationResult:
    config, through_sdk, options = job
    return run_simulation(config, through_sdk=through_sdk, **options)


def run_study(
    configs: Sequence[SimulationConfig],
    *,
    workers: int = 1,
    through_sdk: bool = False,
    on_result: Callable[[SimulationResult], None] | None = None,
    **autotune_options: Any,
) -> list[SimulationResult]:
    """Several independent simulations (e.g. one per seed), each on its own temporary database,
    spread over `workers` processes; results in the order of `configs`."""
    jobs = [(config, through_sdk, autotune_options) for config in configs]
    results: list[SimulationResult] = []
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            results.append(_run_one(job))
            if on_result is not None:
                on_result(results[-1])
        return results
    # forkserver: workers are forked from a fresh single-threaded process, so a lock some thread of
    # this process happens to hold (a server thread in a test session, say) cannot be inherited.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        for result in pool.map(_run_one, jobs):
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


# --- contextual autotunes ----------------------------------------------------------------------------


def _sdk_score(group: Mapping[str, Any], user: Mapping[str, Any]) -> float:
    """The core SDK's score of one `cmab_configs[...].config` group for `user` (sdk-core-protocol.md):
    intercept + alpha + categorical weights of the user's values + numeric weights times the user's numbers."""
    score = float(group["intercept"]) + float(group["alpha"])
    for feature, by_value in group["weightsCategorical"].items():
        category = as_category(user_value(user, feature))
        if category is not None:
            score += float(by_value.get(category, 0.0))
    for feature, weight in group["weightsNumerical"].items():
        number = as_number(user_value(user, feature))
        if number is not None:
            score += float(weight) * number
    return score


class SdkContextualTraffic:
    """Simulated users as the core SDK serves them, from the `cmab_configs` entry the v2 specs publish
    at that moment: untrained, the equal split by `sha256(salt.unitID) % 10000`; trained, units hashed below
    `sampleRate * 10000` explore (a variant drawn on every call with weight `1 / (records + 1)`, rule
    `<id>:explore`), the others get the highest published score (lowest when lower is better). Exposures
    (with the full user object) and success events go to ingestion as SDK batches."""

    def __init__(self, db: Database, clock: Clock, seed: int) -> None:
        self._db = db
        self._ingestor = Ingestor(db, clock)
        self._rng = np.random.default_rng([seed, 2])

    def assign(self, autotune: Autotune, users: Sequence[Mapping[str, Any]]) -> list[Served]:
        state = spec_service.load(self._db)
        entry = cmab_configs(state.pairs, state.cmab_policies)[autotune.id]
        groups = [group["id"] for group in entry["groups"]]
        version = int(entry["version"])
        config = entry.get("config")
        served: list[Served] = []
        if config is None:
            for user in users:
                assignment = equal_split(entry, user)
                assert assignment is not None  # the entry has no config
                served.append(Served(assignment.group["id"], True, version))
            return served
        weights = np.array([1.0 / (config[g]["records"] + 1.0) for g in groups])
        weights /= weights.sum()
        cutoff = float(entry["sampleRate"]) * CMAB_BUCKETS
        sign = 1.0 if entry["higherIsBetter"] else -1.0
        for user in users:
            if cmab_bucket(entry["salt"], unit_id(user, entry["idType"])) < cutoff:
                served.append(Served(groups[int(self._rng.choice(len(groups), p=weights))], True, version))
                continue
            scores = [sign * _sdk_score(config[g], user) for g in groups]
            served.append(Served(groups[int(np.argmax(scores))], False, version))
        return served

    def record(self, autotune: Autotune, exposures: ContextualExposures, conversions: Conversions, now_ms: int) -> None:
        sent = [
            _exposure_event(
                autotune.id, dict(user), served.variant_id + (":explore" if served.explored else ""), served.version, at
            )
            for user, served, at in zip(exposures.users, exposures.served, exposures.times_ms, strict=True)
        ]
        _ingest_with_conversions(self._ingestor, autotune, sent, conversions)


def start_contextual_autotune(
    db: Database,
    clock: Clock,
    config: ContextualConfig,
    *,
    name: str = "simulated_contextual_autotune",
    exploration_window: str = "24hr",
    attribution_window: str = "1hr",
    long_term: float | None = None,
    exploration_window_rate: float | None = None,
) -> str:
    """Create and start (through the service) a contextual autotune with one variant per spec variant, its
    `featureList` the spec's attributes."""
    fields = {
        "name": name,
        "variants": [autotune_service.VariantInput(v.name, {"variant": v.name}) for v in config.spec.variants],
        "success_event": "purchase",
        "exploration_window": exploration_window,
        "attribution_window": attribution_window,
        "winner_threshold": "95%",  # required by the definition; a contextual autotune never declares a winner
        "longterm_exploration_allocation": long_term,
        "exploration_window_rate": exploration_window_rate,
        "is_contextual": True,
        "feature_list": list(config.spec.feature_names),
    }
    return _create_and_start(db, clock, fields, salt=f"contextual-simulation-{config.seed}")


def run_contextual_simulation(
    config: ContextualConfig,
    *,
    database_url: str | None = None,
    on_hour: Callable[[ContextualHourReport], None] | None = None,
    **autotune_options: Any,
) -> ContextualResult:
    """One simulated contextual autotune on a fresh temporary SQLite file (or `database_url`), start to end."""
    with _simulation_database(database_url) as db:
        clock = FixedClock(config.start_ms)
        autotune_id = start_contextual_autotune(db, clock, config, **autotune_options)
        traffic = SdkContextualTraffic(db, clock, config.seed)
        return simulate_contextual(db, clock, autotune_id, config, traffic, on_hour=on_hour)
