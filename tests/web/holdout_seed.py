"""An autotune with a 20% holdout, run by the simulator through the real evaluator and ingestion."""

from __future__ import annotations

from openautotune.clock import FixedClock
from openautotune.domain.autotune import Autotune
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.simulation.bandit import SIMULATION_START_MS, SimulationConfig, simulate
from openautotune.simulation.wiring import SdkTraffic
from openautotune.store.database import Database
from tests.web.helpers import ADMIN


def held_out(db: Database, hours: int = 30) -> Autotune:
    """'Held out': red converts 5%, blue 30%, 200 users an hour, a 1-hour exploration window."""
    clock = FixedClock(SIMULATION_START_MS)
    fields = {
        "name": "Held out",
        "variants": [VariantInput(v, {"color": v}) for v in ("red", "blue")],
        "success_event": "purchase",
        "exploration_window": "1hr",
        "attribution_window": "1hr",
        "winner_threshold": "95%",
        "holdout_percent": 20.0,
    }
    made = autotune_service.create(db, clock, ADMIN, fields)
    autotune_service.start(db, clock, ADMIN, made.id)
    config = SimulationConfig(arms=(0.05, 0.30), users_per_hour=200, hours=hours, seed=4)
    simulate(db, clock, made.id, config, SdkTraffic(db, clock))
    return autotune_service.get(db, made.id)
