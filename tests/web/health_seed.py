"""An autotune whose health card has something to say: a sample-ratio mismatch and a guardrail that
excludes a variant, made by the real engine from units and events (shared by the browser and CLI tests)."""

from __future__ import annotations

from openautotune.clock import Clock, FixedClock
from openautotune.domain.autotune import Autotune
from openautotune.domain.guardrails import Guardrail
from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.store.database import Database
from tests.engine.conftest import Env
from tests.web.helpers import ADMIN, HOUR_MS


def unhealthy(db: Database, clock: Clock, start_ms: int, name: str = "Signup form") -> Autotune:
    """'Short' lost 20% of its exposures and raises `error` from 10% to 20% of units."""
    fields = {
        "name": name,
        "variants": [VariantInput("Long", {"form": "long"}), VariantInput("Short", {"form": "short"})],
        "success_event": "signup",
        "exploration_window": "24hr",
        "attribution_window": "1hr",
        "winner_threshold": "95%",
        "guardrails": (Guardrail("error", 0.1),),
    }
    made = autotune_service.create(db, clock, ADMIN, fields)
    made = autotune_service.start(db, clock, ADMIN, made.id)
    env = Env(db, FixedClock(start_ms))
    at = made.started_at_ms or start_ms
    env.units(made, [(f"l{i}", 0, at + 1) for i in range(1000)] + [(f"s{i}", 1, at + 1) for i in range(800)])
    env.events([(f"l{i}", at + 2) for i in range(50)] + [(f"s{i}", at + 2) for i in range(60)], name="signup")
    env.events([(f"l{i}", at + 3) for i in range(100)] + [(f"s{i}", at + 3) for i in range(160)], name="error")
    update_autotune(db, clock, made.id, at + 2 * HOUR_MS)
    return autotune_service.get(db, made.id)
