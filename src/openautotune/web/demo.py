"""`openautotune demo`: a database with a few autotunes at different stages, so the dashboard has something to show.

Each running autotune gets several simulated days of traffic from the simulator
(`simulation/bandit.py`): synthetic users are served by what is published, their exposures and
success events are recorded through the `Traffic` the caller wires (the CLI passes the SDK path:
the serving evaluator and ingestion, so the exposures log and the traffic chart fill too), and the
engine updates every autotune hourly on a simulated clock that ends at the present hour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openautotune.clock import DAY_MS, HOUR_MS, Clock, FixedClock
from openautotune.domain.autotune import Actor, Autotune
from openautotune.domain.errors import Conflict
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.simulation.bandit import SimulationConfig, SimulationResult, Traffic, simulate
from openautotune.store.database import Database

DEMO_ACTOR = Actor(id="demo", name="DEMO")


@dataclass(frozen=True)
class DemoAutotune:
    name: str
    description: str
    variants: tuple[str, ...]
    success_event: str
    arms: tuple[float, ...] = ()  # true conversion rates; empty: left as a draft
    days: int = 0
    users_per_hour: int = 150
    exploration_window: str = "24hr"
    winner_threshold: str = "95%"
    decide: tuple[str, str] | None = None  # (variant name, reason): a decision made by hand at the end


DEMO_AUTOTUNES: tuple[DemoAutotune, ...] = (
    DemoAutotune(
        name="Checkout button",
        description="Which call to action gets more purchases.",
        variants=("Buy now", "Add to cart", "Get it today"),
        success_event="purchase",
        arms=(0.050, 0.058, 0.052),
        days=6,
        winner_threshold="99%",
    ),
    DemoAutotune(
        name="Pricing page headline",
        description="The engine declares a winner once one headline is 95% likely the best.",
        variants=("Simple pricing", "Pay for what you use"),
        success_event="signup",
        arms=(0.040, 0.075),
        days=5,
    ),
    DemoAutotune(
        name="Onboarding email",
        description="Still inside its one-week exploration window: traffic is split evenly.",
        variants=("Short", "Long", "Video"),
        success_event="activated",
        arms=(0.10, 0.11, 0.10),
        days=2,
        exploration_window="168hr",
    ),
    DemoAutotune(
        name="Search ranking",
        description="Decided by hand after three days.",
        variants=("Relevance", "Popularity"),
        success_event="click",
        arms=(0.12, 0.125),
        days=3,
        decide=("Relevance", "Simpler to explain; the difference is too small to matter."),
    ),
    DemoAutotune(
        name="Recommendation widget",
        description="A draft: not started yet.",
        variants=("Carousel", "Grid"),
        success_event="click",
    ),
)


@dataclass(frozen=True)
class DemoOutcome:
    autotune_id: str
    name: str
    status: str
    skipped: bool = False
    result: SimulationResult | None = None


def _fields(spec: DemoAutotune) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "variants": [VariantInput(name, {"label": name}) for name in spec.variants],
        "success_event": spec.success_event,
        "exploration_window": spec.exploration_window,
        "attribution_window": "1hr",
        "winner_threshold": spec.winner_threshold,
    }


def seed(
    db: Database,
    now: Clock,
    traffic_for: Callable[[FixedClock], Traffic],
    *,
    specs: tuple[DemoAutotune, ...] = DEMO_AUTOTUNES,
    seed_number: int = 7,
    on_done: Callable[[DemoOutcome], None] | None = None,
) -> list[DemoOutcome]:
    """Create every demo autotune (an existing name is skipped) and simulate its days of traffic.

    Simulated time ends at the last full hour before `now`, so "last update" reads as recent.
    """
    end_ms = now.now_ms() - now.now_ms() % HOUR_MS
    outcomes: list[DemoOutcome] = []
    for index, spec in enumerate(specs):
        start_ms = end_ms - spec.days * DAY_MS
        clock = FixedClock(start_ms)
        try:
            created = autotune_service.create(db, clock, DEMO_ACTOR, _fields(spec))
        except Conflict:
            outcome = DemoOutcome(autotune_id="", name=spec.name, status="exists", skipped=True)
        else:
            outcome = _run(db, clock, created, spec, start_ms, seed_number + index, traffic_for)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes


def _run(
    db: Database,
    clock: FixedClock,
    created: Autotune,
    spec: DemoAutotune,
    start_ms: int,
    seed_number: int,
    traffic_for: Callable[[FixedClock], Traffic],
) -> DemoOutcome:
    if not spec.arms:
        return DemoOutcome(autotune_id=created.id, name=spec.name, status=created.status.value)
    autotune_service.start(db, clock, DEMO_ACTOR, created.id)
    config = SimulationConfig(
        arms=spec.arms, users_per_hour=spec.users_per_hour, hours=spec.days * 24, seed=seed_number, start_ms=start_ms
    )
    result = simulate(db, clock, created.id, config, traffic_for(clock))
    final = autotune_service.get(db, created.id)
    if spec.decide is not None and final.status.value == "running":
        variant, reason = spec.decide
        final = autotune_service.make_decision(db, clock, DEMO_ACTOR, created.id, variant, reason)
    return DemoOutcome(autotune_id=created.id, name=spec.name, status=final.status.value, result=result)
