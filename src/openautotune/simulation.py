"""The simulator's wiring (a composition root, like `cli.py` and `api/app.py`).

`engine/simulator.py` may only use the engine's own layers (domain, stats, clock, store); this module
plugs in the rest of the real path for `openautotune simulate` and the tests: the autotune is created
and started through the service, users are evaluated by the serving evaluator against the rendered
config spec, and their SDK events go through ingestion (`SdkTraffic`); `DirectTraffic` (the engine's
own bucketing and bulk inserts) is the fast alternative, and a test shows both give the same numbers.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from openautotune.clock import Clock, FixedClock
from openautotune.domain.autotune import Actor, Allocation, Autotune
from openautotune.engine.simulator import (
    Conversions,
    DirectTraffic,
    Exposures,
    HourReport,
    SimulationConfig,
    SimulationResult,
    Traffic,
    simulate,
)
from openautotune.service import autotunes as autotune_service
from openautotune.service.ingest import Ingestor
from openautotune.serving.entries import config_entry
from openautotune.serving.evaluate import compile_entry
from openautotune.store import autotunes as autotune_store
from openautotune.store import migrate
from openautotune.store.database import Database


class SdkTraffic:
    """Simulated users through the real faces: the serving evaluator picks each user's variant from
    the rendered config spec, and their exposures and success events go to ingestion as SDK batches."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._ingestor = Ingestor(db, clock)

    def assign(self, autotune: Autotune, allocation: Allocation | None, unit_ids: Sequence[str]) -> list[str]:
        compiled = compile_entry(config_entry(autotune, allocation))
        served = [compiled.evaluate({"userID": unit}).variant_id for unit in unit_ids]
        if any(variant is None for variant in served):
            raise RuntimeError("the evaluator served no variant to a simulated user")
        return [variant for variant in served if variant is not None]

    def record(self, autotune: Autotune, exposures: Exposures, conversions: Conversions, now_ms: int) -> None:
        events: list[dict[str, object]] = [
            {
                "eventName": "statsig::config_exposure",
                "user": {"userID": unit},
                "time": at,
                "metadata": {
                    "config": autotune.id,
                    "ruleID": variant,
                    "rulePassed": "true",
                    "configVersion": str(version),
                    "reason": "Network",
                },
                "secondaryExposures": [],
            }
            for unit, variant, version, at in zip(
                exposures.unit_ids, exposures.variant_ids, exposures.versions, exposures.times_ms, strict=True
            )
        ]
        definition = autotune.definition
        for unit, at in zip(conversions.unit_ids, conversions.times_ms, strict=True):
            event: dict[str, object] = {"eventName": definition.success_event, "user": {"userID": unit}, "time": at}
            if definition.success_event_value:
                event["value"] = definition.success_event_value
            events.append(event)
        result = self._ingestor.ingest(events)
        if result.rejected:
            raise RuntimeError(f"ingestion rejected simulated events: {result.rejected[:3]}")


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
) -> str:
    """Create and start (through the service, as the Console API would) one autotune per simulation."""
    actor = Actor(id="simulator", name="SIMULATOR")
    fields = {
        "name": name,
        "variants": [autotune_service.VariantInput(f"arm_{k}", {"arm": k}) for k in range(len(config.arms))],
        "success_event": "purchase",
        "exploration_window": exploration_window,
        "attribution_window": attribution_window,
        "winner_threshold": winner_threshold,
        "longterm_exploration_allocation": long_term,
    }
    created = autotune_service.create(db, clock, actor, fields)
    # A salt derived from the seed (instead of a random one) makes a simulation reproducible.
    with db.write() as conn:
        autotune_store.save(conn, replace(created, salt=f"simulation-{config.seed}"))
    return autotune_service.start(db, clock, actor, created.id).id


def run_simulation(
    config: SimulationConfig,
    *,
    database_url: str | None = None,
    through_sdk: bool = True,
    on_hour: Callable[[HourReport], None] | None = None,
    **autotune_options: Any,
) -> SimulationResult:
    """One simulated autotune on a fresh temporary SQLite file (or `database_url`), start to end."""
    # The temporary database lives in memory-backed /dev/shm when there is one: it is deleted at the end,
    # so durability buys nothing, and skipping the disk's fsyncs makes a simulation several times faster.
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="openautotune-sim-", dir=shm if shm.is_dir() else None) as folder:
        db = Database.from_url(database_url or f"sqlite:///{Path(folder) / 'simulation.db'}")
        migrate.upgrade(db.engine)
        try:
            clock = FixedClock(config.start_ms)
            autotune_id = start_simulated_autotune(db, clock, config, **autotune_options)
            traffic: Traffic = SdkTraffic(db, clock) if through_sdk else DirectTraffic(db)
            return simulate(db, clock, autotune_id, config, traffic, on_hour=on_hour)
        finally:
            db.dispose()


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
